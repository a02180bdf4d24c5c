"""Fixtures: an app on a fresh database, its test client, and real gunicorn servers."""
import os
import shutil
import signal
import subprocess
import sys
import uuid

import pytest
import redis

from gateway import create_app, migrations
from gateway.db import database, is_sqlite
from gateway.models import (AUTH_MODELS, CATALOG_MODELS, DEFAULT_WORKSPACE, ENTITY_MODELS,
                            REGISTRY_MODELS, SYSTEM_WORKSPACE, WEBHOOK_MODELS, Workspace)
from tests import processes
from tests.processes import free_port

# Set to a PostgreSQL URL to run every test on PostgreSQL instead of SQLite files.
POSTGRES_URL = os.environ.get("GATEWAY_TEST_DATABASE_URL") or None
MLFLOW_ROOT = "/api/2.0/mlflow"
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


@pytest.fixture
def database_url(tmp_path):
    """A database nobody else is using: a new SQLite file, or an emptied PostgreSQL one."""
    return POSTGRES_URL or f"sqlite:///{tmp_path / 'test.db'}"


@pytest.fixture
def app(database_url):
    """The app on a migrated, empty database."""
    yield make_app(database_url)
    database.close()


def _empty_postgres():
    tables = ", ".join(f'"{model._meta.table_name}"'
                       for model in REGISTRY_MODELS + AUTH_MODELS + ENTITY_MODELS + WEBHOOK_MODELS
                       + CATALOG_MODELS)
    database.execute_sql(f"TRUNCATE {tables} RESTART IDENTITY CASCADE")
    Workspace.insert(name=DEFAULT_WORKSPACE, description="The default workspace").execute()
    Workspace.insert(name=SYSTEM_WORKSPACE, description="Platform-provided resources").execute()


@pytest.fixture
def client(app):
    return app.test_client()


class Api:
    """Calls to the MLflow face through Flask's test client; paths are relative to the root."""

    def __init__(self, client, root=MLFLOW_ROOT):
        self.client, self.root = client, root

    def __getattr__(self, method):
        def call(path, **kwargs):
            return getattr(self.client, method)(f"{self.root}/{path}", **kwargs)
        return call

    def model(self, name, **fields):
        response = self.post("registered-models/create", json={"name": name, **fields})
        assert response.status_code == 200, response.json
        return response.json["registered_model"]

    def version(self, name, source="s3://bucket/model", **fields):
        response = self.post("model-versions/create", json={"name": name, "source": source,
                                                            **fields})
        assert response.status_code == 200, response.json
        return response.json["model_version"]


@pytest.fixture
def api(client):
    return Api(client)


class Server:
    """A gunicorn process serving the gateway on a free port; stopped even if it fails to start."""

    def __init__(self, database_url, workers=2, env=None, command=None, wait_seconds=60):
        """`command` replaces gunicorn's (its "{port}" is filled in); run from the project."""
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.env = {**os.environ, "GATEWAY_DATABASE_URL": database_url, **(env or {})}
        subprocess.run([sys.executable, "-m", "gateway", "db", "upgrade"], env=self.env,
                       check=True, capture_output=True, timeout=120)
        command = [part.replace("{port}", str(self.port)) for part in command or ()]
        self.process = processes.start(command or [
            sys.executable, "-m", "gunicorn", "-w", str(workers), "-b", f"127.0.0.1:{self.port}",
            "--graceful-timeout", "2", "gateway.app:create_app()"], env=self.env, cwd=ROOT)
        try:
            processes.wait_for(processes.http_ok(f"{self.url}/health"), wait_seconds,
                               f"gateway on port {self.port}", self.process)
        except BaseException:
            self.stop()
            raise

    def stop(self):
        processes.stop(self.process)

    def kill(self):
        """kill -9 the master and every worker at once, as a crash would."""
        processes.kill(self.process)


def serve(tmp_path_factory, name, workers=2, env=None):
    """Start a gunicorn gateway on the test database (a new SQLite file unless PostgreSQL)."""
    url = POSTGRES_URL or f"sqlite:///{tmp_path_factory.mktemp(name) / 'gateway.db'}"
    return Server(url, workers=workers, env=env)


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    """A two-worker gunicorn gateway shared by a test module (tests use unique names)."""
    server = serve(tmp_path_factory, "server")
    yield server
    server.stop()


@pytest.fixture
def unique():
    """A fresh name prefix, so tests sharing a server never collide."""
    return f"t{uuid.uuid4().hex[:10]}"


@pytest.fixture
def db(app):
    """An open connection for calling services directly."""
    with app.app_context(), database.connection_context():
        yield database


PLATFORM = "ocid1.aidataplatform.oc1.iad.amaaaaaatestplatform"


def oci_root(platform=PLATFORM, workspace=None):
    """The MLflow-shaped root of an OCI platform's (or one of its workspaces') registry."""
    scope = f"/workspaces/{workspace}" if workspace else ""
    return f"/20260430/aiDataPlatforms/{platform}{scope}/mlops/api/2.0/mlflow"


@pytest.fixture
def oci(client):
    """Calls to the OCI face at the platform level."""
    return Api(client, oci_root())


def make_app(database_url, **config):
    """An app on a migrated, empty database, with extra configuration."""
    app = create_app({"TESTING": True, "DATABASE_URL": database_url, "WEBHOOK_DELIVERY": False,
                      **config})
    with database.connection_context():
        migrations.upgrade()
        if not is_sqlite():
            _empty_postgres()
    return app


def redis_server_path():
    """redis-server's path; without one, a test skips, or fails where CI requires Redis."""
    path = shutil.which("redis-server")
    if path is None:
        reason = "redis-server is not installed (apt-get install redis-server)"
        if os.environ.get("GATEWAY_TEST_REQUIRE_REDIS"):
            pytest.fail(f"{reason}, and GATEWAY_TEST_REQUIRE_REDIS is set")
        pytest.skip(reason)
    return path


def start_redis(directory):
    """A private redis-server on a free port: (process, url)."""
    port = free_port()
    process = processes.start([redis_server_path(), "--port", str(port), "--bind", "127.0.0.1",
                               "--save", "", "--appendonly", "no", "--dir", str(directory)])
    url = f"redis://127.0.0.1:{port}"
    try:
        processes.wait_for(lambda: redis.Redis.from_url(url, socket_timeout=5).ping(), 30,
                           "redis-server", process)
    except BaseException:
        processes.stop(process)
        raise
    return process, url


@pytest.fixture(scope="session")
def redis_url(tmp_path_factory):
    """A private redis-server for the session."""
    process, url = start_redis(tmp_path_factory.mktemp("redis"))
    yield url
    processes.stop(process)


def pytest_configure(config):
    """SIGTERM (a CI timeout, `kill`) interrupts the run like Ctrl-C: fixtures still stop."""
    signal.signal(signal.SIGTERM, signal.default_int_handler)


def pytest_sessionfinish(session, exitstatus):
    """Whatever a failed or interrupted test left running is stopped here."""
    processes.stop_all()


@pytest.fixture
def receiver():
    """A webhook receiver on a free port (tests/webhook_receiver.py)."""
    from tests.webhook_receiver import Receiver
    receiver = Receiver()
    yield receiver
    receiver.close()

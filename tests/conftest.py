"""Fixtures: an app on a fresh database, its test client, and real gunicorn servers."""
import os
import signal
import socket
import subprocess
import sys
import time
import uuid

import pytest
import redis
import requests

from gateway import create_app, migrations
from gateway.db import database, is_sqlite
from gateway.models import (AUTH_MODELS, DEFAULT_WORKSPACE, ENTITY_MODELS, REGISTRY_MODELS,
                            Workspace)

# Set to a PostgreSQL URL to run every test on PostgreSQL instead of SQLite files.
POSTGRES_URL = os.environ.get("GATEWAY_TEST_DATABASE_URL")
MLFLOW_ROOT = "/api/2.0/mlflow"


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
    tables = ", ".join(f'"{model._meta.table_name}"' for model in REGISTRY_MODELS + AUTH_MODELS + ENTITY_MODELS)
    database.execute_sql(f"TRUNCATE {tables} RESTART IDENTITY CASCADE")
    Workspace.insert(name=DEFAULT_WORKSPACE, description="The default workspace").execute()


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


def free_port():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class Server:
    """A gunicorn process serving the gateway on a free port."""

    def __init__(self, database_url, workers=2, env=None):
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.env = {**os.environ, "GATEWAY_DATABASE_URL": database_url, **(env or {})}
        subprocess.run([sys.executable, "-m", "gateway", "db", "upgrade"], env=self.env,
                       check=True, capture_output=True)
        self.process = subprocess.Popen(
            [sys.executable, "-m", "gunicorn", "-w", str(workers), "-b", f"127.0.0.1:{self.port}",
             "--graceful-timeout", "2", "gateway.app:create_app()"],
            env=self.env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        self._wait()

    def _wait(self):
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(self.process.stderr.read().decode())
            try:
                if requests.get(f"{self.url}/health", timeout=1).status_code == 200:
                    return
            except requests.ConnectionError:
                time.sleep(0.1)
        raise RuntimeError("gunicorn did not start in 30 s")

    def stop(self):
        self.process.terminate()
        self.process.wait(timeout=15)
        self.process.stderr.close()

    def kill(self):
        """kill -9 the master and every worker at once, as a crash would."""
        workers = subprocess.run(["pgrep", "-P", str(self.process.pid)], capture_output=True,
                                 text=True).stdout.split()
        for pid in [self.process.pid, *map(int, workers)]:
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        self.process.wait(timeout=15)
        self.process.stderr.close()


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
    app = create_app({"TESTING": True, "DATABASE_URL": database_url, **config})
    with database.connection_context():
        migrations.upgrade()
        if not is_sqlite():
            _empty_postgres()
    return app


@pytest.fixture(scope="session")
def redis_url(tmp_path_factory):
    """A private redis-server for the session (CI installs it from Debian's packages)."""
    port = free_port()
    process = subprocess.Popen(["redis-server", "--port", str(port), "--save", "",
                                "--appendonly", "no",
                                "--dir", str(tmp_path_factory.mktemp("redis"))],
                               stdout=subprocess.DEVNULL)
    url = f"redis://127.0.0.1:{port}"
    deadline = time.monotonic() + 10
    while True:
        try:
            redis.Redis.from_url(url).ping()
            break
        except redis.ConnectionError:
            assert time.monotonic() < deadline, "redis-server did not start"
            time.sleep(0.05)
    yield url
    process.terminate()
    process.wait(timeout=10)

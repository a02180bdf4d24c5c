"""Tracking pass-through: the gateway in front of a real MLflow tracking server (3.17.2), with
the unmodified MLflow client; and, against a recording stand-in, what is sent upstream and how
failures answer."""
import hashlib
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import mlflow
import pytest
import requests
from mlflow import MlflowClient

from tests import processes
from tests.conftest import Server, make_app
from tests.processes import free_port, wait_for

pytestmark = pytest.mark.server
DEFAULT_ENV = Path(__file__).parent.parent / ".ci" / ".mlflow-server" / "bin" / "mlflow"
DRIVER = Path(__file__).with_name("mlflow_client_driver.py")
OCI = "/20260430/aiDataPlatforms"


class Recorder:
    """A stand-in upstream that records what reaches it (and can be slow)."""

    def __init__(self, delay=0.0):
        self.requests, self.delay = [], delay
        recorder = self

        class Handler(BaseHTTPRequestHandler):
            def _answer(self):
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                recorder.requests.append({"method": self.command, "path": self.path,
                                          "headers": {k.lower(): v for k, v in
                                                      self.headers.items()}, "body": body})
                time.sleep(recorder.delay)
                answer = json.dumps({"workspace": {"name": "x"}} if "workspaces" in self.path
                                    else {"seen": self.path}).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(answer)))
                self.end_headers()
                self.wfile.write(answer)

            do_GET = do_POST = do_DELETE = do_PATCH = do_PUT = _answer

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self):
        if self.server is not None:
            self.server.shutdown()
            self.server.server_close()
            self.server = None


@pytest.fixture
def recorder():
    stand_in = Recorder()
    yield stand_in
    stand_in.close()


def test_forwarded_calls_carry_the_tenants_workspace_never_the_callers_credentials(
        database_url, recorder):
    from gateway.db import database
    from gateway.services import principals, workspaces
    app = make_app(database_url, AUTH="required", AUTH_CACHE_SECONDS=0,
                   TRACKING_UPSTREAM=recorder.url, TRACKING_UPSTREAM_TOKEN="upstream-secret")
    with app.app_context(), database.connection_context():
        workspaces.create("team-a")
        workspaces.create("team-b")
        principals.create("ann")
        token = principals.issue_token("ann")
        principals.grant("ann", "team-a", "writer")
    client = app.test_client()
    try:
        mine = {"Authorization": f"Bearer {token}", "X-MLFLOW-WORKSPACE": "team-a",
                "dh-user-principal": "someone-else", "Cookie": "session=1"}
        answer = client.post("/api/2.0/mlflow/experiments/create", json={"name": "e"},
                             headers={**mine, "opc-request-id": "trace-me"})
        assert answer.status_code == 200 and answer.json == {
            "seen": "/api/2.0/mlflow/experiments/create"}
        sent = [r for r in recorder.requests if "experiments" in r["path"]][-1]
        assert sent["headers"]["x-mlflow-workspace"] == "team-a"
        assert sent["headers"]["authorization"] == "Bearer upstream-secret"
        assert "dh-user-principal" not in sent["headers"] and "cookie" not in sent["headers"]
        assert sent["headers"]["opc-request-id"] == "trace-me"
        assert json.loads(sent["body"]) == {"name": "e"}
        # The upstream learnt the workspace from the gateway first (it owns workspaces).
        assert any(r["path"].startswith("/api/3.0/mlflow/workspaces") for r in recorder.requests)
        # Another tenant's workspace, by setting the header: refused here, never forwarded.
        before = len(recorder.requests)
        other = client.post("/api/2.0/mlflow/runs/search", json={},
                            headers={**mine, "X-MLFLOW-WORKSPACE": "team-b"})
        assert other.status_code == 403 and len(recorder.requests) == before
        assert client.get("/api/2.0/mlflow/experiments/get?experiment_id=1").status_code == 401
        # The registry stays the gateway's: nothing of it is forwarded.
        client.post("/api/2.0/mlflow/registered-models/create", json={"name": "m"},
                    headers=mine)
        wrong = client.get("/api/2.0/mlflow/registered-models/create", headers=mine)
        assert wrong.status_code == 405
        assert not any("registered-models" in r["path"] for r in recorder.requests)
    finally:
        database.close()


def test_a_retried_forwarded_write_reaches_the_upstream_once(database_url, recorder):
    app = make_app(database_url, TRACKING_UPSTREAM=recorder.url)
    client = app.test_client()
    token = {"opc-retry-token": "run-create-1"}
    first = client.post("/api/2.0/mlflow/runs/create", json={"experiment_id": "1"},
                        headers=token)
    again = client.post("/api/2.0/mlflow/runs/create", json={"experiment_id": "1"},
                        headers=token)
    assert (first.status_code, again.status_code) == (200, 200)
    assert again.json == first.json
    assert len([r for r in recorder.requests if r["path"].endswith("runs/create")]) == 1
    other = client.post("/api/2.0/mlflow/runs/create", json={"experiment_id": "2"},
                        headers=token)
    assert other.status_code == 409  # the same token on another request
    client.post("/api/2.0/mlflow/runs/create", json={"experiment_id": "1"})
    assert len([r for r in recorder.requests if r["path"].endswith("runs/create")]) == 2


def test_concurrent_duplicates_of_a_forwarded_write_wait_for_the_first(database_url):
    slow = Recorder(delay=1.0)
    try:
        app = make_app(database_url, TRACKING_UPSTREAM=slow.url)
        headers = {"opc-retry-token": "concurrent-1"}

        def send(_):
            return app.test_client().post("/api/2.0/mlflow/runs/create", headers=headers,
                                          json={"experiment_id": "7"})
        with ThreadPoolExecutor(3) as pool:
            answers = list(pool.map(send, range(3)))
        assert [a.status_code for a in answers] == [200] * 3
        assert all(a.json == answers[0].json for a in answers)
        assert len([r for r in slow.requests if r["path"].endswith("runs/create")]) == 1
        # An upstream failure is not remembered: the retry runs again.
        slow.close()
        down = app.test_client().post("/api/2.0/mlflow/runs/create", json={"experiment_id": "8"},
                                      headers={"opc-retry-token": "fails-1"})
        assert down.status_code == 503
        again = app.test_client().post("/api/2.0/mlflow/runs/create",
                                       json={"experiment_id": "8"},
                                       headers={"opc-retry-token": "fails-1"})
        assert again.status_code == 503
        from gateway.db import database
        from gateway.models import RetryToken
        with app.app_context(), database.connection_context():
            kept = {row.token: row.status for row in RetryToken.select()}
        assert kept == {"concurrent-1": 200}  # the failure's reservation was released
    finally:
        slow.close()


def test_upstream_down_is_503_and_slow_is_504(database_url):
    port = free_port()
    app = make_app(database_url, TRACKING_UPSTREAM=f"http://127.0.0.1:{port}")
    down = app.test_client().get("/api/2.0/mlflow/experiments/search")
    assert down.status_code == 503 and down.headers["Retry-After"]
    assert down.json["error_code"] == "TEMPORARILY_UNAVAILABLE"
    slow = Recorder(delay=3)
    try:
        app = make_app(database_url, TRACKING_UPSTREAM=slow.url, TRACKING_TIMEOUT_SECONDS=1)
        answer = app.test_client().get("/api/2.0/mlflow/experiments/search")
        assert answer.status_code == 504 and answer.json["error_code"] == (
            "TEMPORARILY_UNAVAILABLE")
    finally:
        slow.close()


def test_without_an_upstream_tracking_routes_say_how_to_configure_one(client):
    answer = client.post("/api/2.0/mlflow/experiments/create", json={"name": "e"})
    assert answer.status_code == 404 and answer.json["error_code"] == "ENDPOINT_NOT_FOUND"
    assert "GATEWAY_TRACKING_UPSTREAM" in answer.json["message"]
    oci = client.get(f"{OCI}/p1/workspaces/w1/mlops/api/2.0/mlflow/runs/get?run_id=1")
    assert oci.status_code == 404 and oci.json["code"] == "NotFound"
    assert "--tracking" in oci.json["message"]
    # The registry's own paths keep their answers: a wrong method is still 405.
    assert client.get("/api/2.0/mlflow/registered-models/create").status_code == 405


def test_the_asgi_worker_runs_exactly_the_forwarded_calls_in_its_threads(database_url,
                                                                          recorder):
    from gateway.asgi import Forwards
    forwards = Forwards(make_app(database_url, TRACKING_UPSTREAM=recorder.url), 1)

    def forwarded(method, path):
        return forwards.match({"type": "http", "method": method, "path": path})
    assert forwarded("GET", "/api/2.0/mlflow/runs/get")
    assert forwarded("POST", "/ajax-api/2.0/mlflow/experiments/search")
    assert forwarded("PUT", "/api/2.0/mlflow-artifacts/artifacts/1/mlflow/webhooks/a.bin")
    assert forwarded("GET", f"{OCI}/p1/workspaces/w1/mlops/api/2.0/mlflow/experiments/get")
    assert forwarded("GET", "/") and forwarded("GET", "/static-files/static/js/main.js")
    assert forwarded("GET", "/model-versions/get-artifact")
    # The gateway's own routes (and a wrong method on one of them) stay on its one thread.
    assert not forwarded("GET", "/api/2.0/mlflow/registered-models/get")
    assert not forwarded("GET", "/api/2.0/mlflow/registered-models/create")
    assert not forwarded("POST", f"{OCI}/p1/mlops/api/2.0/mlflow/webhooks/create")
    assert not forwarded("GET", "/health") and not forwarded("GET", "/v1/models")


@pytest.fixture(scope="module")
def mlflow_executable():
    """`mlflow` of MLflow 3.17.2's own environment (built on first use)."""
    path = os.environ.get("GATEWAY_TEST_MLFLOW_SERVER") or str(DEFAULT_ENV)
    if not Path(path).exists() and path == str(DEFAULT_ENV):
        subprocess.run(["bash", str(DEFAULT_ENV.parent.parent.parent / "mlflow_server_env.sh"),
                        str(DEFAULT_ENV.parent.parent)], capture_output=True, timeout=1200)
    if not Path(path).exists():
        reason = f"MLflow's server could not be built ({path}): bash .ci/mlflow_server_env.sh"
        if os.environ.get("GATEWAY_TEST_REQUIRE_MLFLOW_SERVER"):
            pytest.fail(reason)
        pytest.skip(reason)
    return path


@pytest.fixture(scope="module")
def mlflow_server(tmp_path_factory, mlflow_executable):
    """A real MLflow tracking server (workspaces on) from its own environment."""
    path = mlflow_executable
    folder = tmp_path_factory.mktemp("upstream")
    port = free_port()
    process = processes.start([path, "server", "--host", "127.0.0.1", "--port", str(port),
                               "--backend-store-uri", f"sqlite:///{folder / 'mlflow.db'}",
                               "--artifacts-destination", str(folder / "artifacts"),
                               "--enable-workspaces", "--workers", "2"], cwd=str(folder))
    url = f"http://127.0.0.1:{port}"
    try:
        wait_for(lambda: requests.get(f"{url}/health", timeout=5).ok, 180,
                 "MLflow's tracking server", process=process)
        yield url
    finally:
        processes.stop(process)


@pytest.fixture(scope="module")
def fronted(tmp_path_factory, mlflow_server):
    """The gateway as deployed (`gateway serve`: gunicorn's asyncio worker) in front of it."""
    server = Server(f"sqlite:///{tmp_path_factory.mktemp('tracking') / 'gateway.db'}", env={
        "GATEWAY_TRACKING_UPSTREAM": mlflow_server}, command=[
        sys.executable, "-m", "gateway", "serve", "--port", "{port}", "--workers", "2"])
    yield server
    server.stop()


@pytest.fixture
def tracked(fronted, monkeypatch):
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "0")
    mlflow.set_tracking_uri(fronted.url)
    mlflow.set_registry_uri(fronted.url)
    yield MlflowClient(tracking_uri=fronted.url, registry_uri=fronted.url)
    mlflow.set_tracking_uri(None)


def test_a_data_scientists_run_through_the_gateway(tracked, unique, tmp_path):
    experiment = mlflow.set_experiment(f"{unique}-exp")
    note = tmp_path / "note.txt"
    note.write_text("hello from the run")
    big = tmp_path / "weights.bin"
    big.write_bytes(os.urandom(20 * 1024 * 1024))
    with mlflow.start_run() as run:
        mlflow.log_param("depth", 6)
        mlflow.log_metric("auc", 0.91)
        mlflow.set_tag("team", "fraud")
        mlflow.log_artifact(str(note))
        mlflow.log_artifact(str(big))
    found = tracked.search_runs([experiment.experiment_id])
    assert [(r.data.params, r.data.metrics, r.data.tags.get("team")) for r in found] == [
        ({"depth": "6"}, {"auc": 0.91}, "fraud")]
    back = Path(tracked.download_artifacts(run.info.run_id, "note.txt", str(tmp_path / "d1")))
    assert back.read_text() == "hello from the run"
    copy = Path(tracked.download_artifacts(run.info.run_id, "weights.bin", str(tmp_path / "d2")))
    assert hashlib.sha256(copy.read_bytes()).digest() == hashlib.sha256(
        big.read_bytes()).digest()
    # The registry is the gateway's, and takes versions from the upstream's runs.
    tracked.create_registered_model(f"{unique}-model")
    version = tracked.create_model_version(f"{unique}-model", f"runs:/{run.info.run_id}/note.txt",
                                           run_id=run.info.run_id)
    assert version.version == "1" and version.run_id == run.info.run_id


def test_tenants_cannot_see_each_others_runs(fronted, unique):
    for tenant in ("a", "b"):
        requests.post(f"{fronted.url}/api/3.0/mlflow/workspaces",
                      json={"name": f"{unique}-{tenant}"}, timeout=30).raise_for_status()
    url = f"{fronted.url}/api/2.0/mlflow"

    def call(tenant, path, body):
        return requests.post(f"{url}/{path}", json=body, timeout=30,
                             headers={"X-MLFLOW-WORKSPACE": f"{unique}-{tenant}"})
    made = call("a", "experiments/create", {"name": "secret-exp"})
    assert made.status_code == 200, made.text
    experiment_id = made.json()["experiment_id"]
    assert call("a", "experiments/search", {"max_results": 10}).json()["experiments"][0][
        "name"] == "secret-exp"
    assert "experiments" not in call("b", "experiments/search", {"max_results": 10}).json() or [
        e["name"] for e in call("b", "experiments/search", {"max_results": 10}).json()[
            "experiments"]] == ["Default"]
    other = requests.get(f"{url}/experiments/get?experiment_id={experiment_id}", timeout=30,
                         headers={"X-MLFLOW-WORKSPACE": f"{unique}-b"})
    assert other.status_code == 404  # the upstream's own MLflow error, passed through
    assert other.json()["error_code"] == "RESOURCE_DOES_NOT_EXIST"


def test_deleting_a_workspace_deletes_it_upstream_in_the_same_mode(database_url, mlflow_server,
                                                                  unique):
    """Two apps on one database stand for two workers; each keeps its own note of the
    workspaces the upstream has."""
    from gateway.app import create_app
    first = make_app(database_url, TRACKING_UPSTREAM=mlflow_server).test_client()
    second = create_app({"TESTING": True, "DATABASE_URL": database_url,
                         "WEBHOOK_DELIVERY": False,
                         "TRACKING_UPSTREAM": mlflow_server}).test_client()
    name, workspaces = f"{unique}-gone", "/api/3.0/mlflow/workspaces"
    header = {"X-MLFLOW-WORKSPACE": name}
    assert first.post(workspaces, json={"name": name}).status_code == 201
    for worker in (first, second):
        made = worker.post("/api/2.0/mlflow/experiments/create", headers=header,
                           json={"name": f"e-{id(worker)}"})
        assert made.status_code == 200, made.json
    # RESTRICT: the gateway has no models there, the upstream has experiments: refused, and
    # nothing is deleted on either side.
    refused = first.delete(f"{workspaces}/{name}")
    assert refused.status_code == 409, refused.json
    assert "tracking server" in refused.json["message"]
    assert first.get(f"{workspaces}/{name}").status_code == 200
    assert requests.get(f"{mlflow_server}{workspaces}/{name}", timeout=30).status_code == 200
    assert first.delete(f"{workspaces}/{name}?mode=CASCADE").status_code == 204
    assert requests.get(f"{mlflow_server}{workspaces}/{name}", timeout=30).status_code == 404
    # A namesake starts clean, also on the worker that still believed the old one was there.
    assert first.post(workspaces, json={"name": name}).status_code == 201
    for worker in (second, first):
        found = worker.post("/api/2.0/mlflow/experiments/search", headers=header,
                            json={"max_results": 10})
        assert found.status_code == 200, found.json
        assert [e["name"] for e in found.json.get("experiments", [])] in ([], ["Default"])
    # An upstream that cannot be reached leaves the gateway's workspace in place (503).
    down = create_app({"TESTING": True, "DATABASE_URL": database_url, "WEBHOOK_DELIVERY": False,
                       "TRACKING_UPSTREAM": f"http://127.0.0.1:{free_port()}"}).test_client()
    answer = down.delete(f"{workspaces}/{name}?mode=CASCADE")
    assert answer.status_code == 503 and answer.headers["Retry-After"]
    assert first.get(f"{workspaces}/{name}").status_code == 200


@pytest.mark.parametrize("face", ["mlflow", "oci"])
def test_pyfunc_models_log_register_and_load_through_the_gateway(fronted, mlflow_executable,
                                                                 unique, face):
    """The full MLflow client: log_model(registered_model_name=...), load by number and alias,
    predict, register_model("runs:/..."); under the MLflow root and under an OCI workspace
    path (whose runs live in the platform's workspace upstream)."""
    base = fronted.url if face == "mlflow" else (
        f"{fronted.url}{OCI}/{unique}-platform/workspaces/w1/mlops")
    name = f"{unique}-{face}"
    result = subprocess.run([str(Path(mlflow_executable).with_name("python")), str(DRIVER),
                             base, name], capture_output=True, text=True, timeout=900)
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-4000:]
    facts = json.loads(result.stdout.strip().splitlines()[-1])
    assert facts["versions"] == ["1", "2"]
    # The versions are the gateway's registry's, in the face's namespace.
    mine = requests.get(f"{base}/api/2.0/mlflow/model-versions/get",
                        params={"name": name, "version": "2"}, timeout=30)
    assert mine.status_code == 200 and mine.json()["model_version"]["run_id"] == facts["run_id"]
    run = requests.get(f"{fronted.url}/api/2.0/mlflow/runs/get",
                       params={"run_id": facts["run_id"]}, timeout=30)
    # An OCI platform's runs are not the default workspace's.
    assert run.status_code == (200 if face == "mlflow" else 404), run.text


def test_run_based_sources_are_checked_against_the_upstream(fronted, unique):
    """MLflow's source rules that need a tracking store, asked of the upstream in the tenant's
    workspace: a run's artifact URI is accepted with its run_id, not with another's."""
    api = f"{fronted.url}/api/2.0/mlflow"
    experiment = requests.post(f"{api}/experiments/create", json={"name": f"{unique}-src"},
                               timeout=30).json()["experiment_id"]
    run = requests.post(f"{api}/runs/create", json={"experiment_id": experiment},
                        timeout=30).json()["run"]["info"]
    other = requests.post(f"{api}/runs/create", json={"experiment_id": experiment},
                          timeout=30).json()["run"]["info"]
    requests.post(f"{api}/registered-models/create", json={"name": f"{unique}-src"}, timeout=30)

    def create(source, run_id):
        return requests.post(f"{api}/model-versions/create", timeout=30, json={
            "name": f"{unique}-src", "source": source, "run_id": run_id})
    inside = run["artifact_uri"] + "/model"
    assert inside.startswith("mlflow-artifacts:/")
    assert create(inside, run["run_id"]).status_code == 200
    refused = create(inside, other["run_id"])
    assert refused.status_code == 400 and "run_id request parameter" in refused.json()["message"]
    assert create(inside, "0" * 32).status_code == 400  # no such run upstream
    # Another tenant's run is not found from here either.
    requests.post(f"{fronted.url}/api/3.0/mlflow/workspaces", json={"name": f"{unique}-t2"},
                  timeout=30)
    headers = {"X-MLFLOW-WORKSPACE": f"{unique}-t2"}
    requests.post(f"{api}/registered-models/create", json={"name": "m"}, headers=headers,
                  timeout=30)
    theirs = requests.post(f"{api}/model-versions/create", timeout=30, headers=headers, json={
        "name": "m", "source": inside, "run_id": run["run_id"]})
    assert theirs.status_code == 400, theirs.text


def _rendered(url, expected, deadline_seconds=180):
    """The DOM headless Chromium renders at url once it shows every expected text (MLflow's UI
    is a single-page app: its pages appear after its own API calls)."""
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    if chromium is None:
        reason = "Chromium is not installed (apt-get install chromium)"
        if os.environ.get("GATEWAY_TEST_REQUIRE_CHROMIUM"):
            pytest.fail(reason)
        pytest.skip(reason)
    deadline, dom = time.monotonic() + deadline_seconds, ""
    while time.monotonic() < deadline:
        try:
            dom = subprocess.run(
                [chromium, "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
                 "--disable-dev-shm-usage", "--virtual-time-budget=30000", "--dump-dom", url],
                capture_output=True, text=True,
                timeout=max(5, deadline - time.monotonic())).stdout
        except subprocess.TimeoutExpired:
            break
        if all(text in dom for text in expected):
            return dom
    raise AssertionError(f"{url} never showed {expected}; last DOM: {dom[-1500:]}")


def test_mlflows_ui_shows_the_gateways_registry_and_the_upstreams_experiments(fronted, unique):
    api = f"{fronted.url}/api/2.0/mlflow"
    requests.post(f"{api}/registered-models/create", json={"name": f"a-{unique}-ui-model"},
                  timeout=30).raise_for_status()
    requests.post(f"{api}/experiments/create", json={"name": f"a-{unique}-ui-exp"},
                  timeout=30).raise_for_status()
    page = requests.get(fronted.url + "/", timeout=30)
    assert page.status_code == 200 and "<html" in page.text  # the UI, served by the upstream
    # Names sorting first: the pages list the first page of what the module made.
    # The UI knows workspaces (the gateway's server-info says so): it names one in the URL.
    _rendered(f"{fronted.url}/#/models?workspace=default", [f"a-{unique}-ui-model"])
    _rendered(f"{fronted.url}/#/experiments?workspace=default", [f"a-{unique}-ui-exp"])


def test_gateway_serve_tracking_runs_and_stops_a_local_tracking_server(tmp_path,
                                                                      mlflow_executable):
    """`gateway serve --tracking`: MLflow's server as a child on a private port, its data
    beside the gateway's SQLite database, forwarded to, and stopped with the gateway."""
    port, log = free_port(), tmp_path / "serve.log"
    env = {**os.environ, "GATEWAY_DATABASE_URL": f"sqlite:///{tmp_path / 'gateway.db'}",
           "GATEWAY_TRACKING_MLFLOW": mlflow_executable}
    env.pop("GATEWAY_TRACKING_UPSTREAM", None)
    env.pop("PROMETHEUS_MULTIPROC_DIR", None)
    with open(log, "wb") as sink:
        process = processes.start([sys.executable, "-m", "gateway", "serve", "--tracking",
                                   "--port", str(port), "--workers", "1"], env=env,
                                  cwd=tmp_path, stderr=sink)
    child = None
    try:
        base = f"http://127.0.0.1:{port}"
        processes.wait_for(processes.http_ok(f"{base}/health"), 300, "gateway serve --tracking",
                           process)
        started = re.search(r"tracking server at (\S+) \(pid (\d+)\)", log.read_text())
        upstream, child = started.group(1), int(started.group(2))
        made = requests.post(f"{base}/api/2.0/mlflow/experiments/create",
                             json={"name": "local"}, timeout=30)
        assert made.status_code == 200, made.text
        assert requests.get(f"{upstream}/api/2.0/mlflow/experiments/get-by-name", timeout=30,
                            params={"experiment_name": "local"}).status_code == 200
        assert (tmp_path / "mlflow-tracking" / "mlflow.db").exists()
        # It dies: the gateway answers 503 meanwhile, restarts it on its port, and forwards
        # to it again (its data kept).
        os.killpg(child, signal.SIGKILL)
        processes.wait_for(lambda: not _group_alive(child), 30, "the killed tracking server")
        down = requests.get(f"{base}/api/2.0/mlflow/experiments/get-by-name", timeout=30,
                            params={"experiment_name": "local"})
        assert down.status_code == 503 and down.headers["Retry-After"]
        processes.wait_for(lambda: re.search(r"restarted at \S+ \(pid (\d+)\)",
                                             log.read_text()), 60, "a restart", process)
        child = int(re.findall(r"restarted at \S+ \(pid (\d+)\)", log.read_text())[-1])
        processes.wait_for(lambda: requests.get(
            f"{base}/api/2.0/mlflow/experiments/get-by-name", timeout=30,
            params={"experiment_name": "local"}).status_code == 200, 180,
            "the restarted tracking server", process)
        process.send_signal(signal.SIGTERM)
        process.wait(60)
        processes.wait_for(lambda: not _answers(upstream), 30, "the tracking server to stop")
        processes.wait_for(lambda: not _group_alive(child), 30,
                           "the tracking server's processes (its job consumers too) to end")
        child = None
    finally:
        processes.stop(process)
        if child is not None:  # the test failed with the child running: do not leave it
            try:
                os.killpg(child, signal.SIGKILL)
            except ProcessLookupError:
                pass


def _group_alive(group):
    try:
        os.killpg(group, 0)
        return True
    except ProcessLookupError:
        return False


def _answers(url):
    try:
        requests.get(f"{url}/health", timeout=2)
        return True
    except requests.ConnectionError:
        return False

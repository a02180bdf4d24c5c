"""What an operator meets, over real HTTP against real gunicorn processes: `gateway serve`'s
metrics, rate limits under plain gunicorn, a frozen SQLite writer, a hung Redis, the CLI."""
import fcntl
import os
import re
import signal
import socket
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor

import pytest
import requests

from gateway.db import open_database
from tests import processes
from tests.conftest import (MLFLOW_ROOT, POSTGRES_URL, Server, free_port, oci_root,
                            start_redis)
from tests.slow_clients import SlowClients

pytestmark = pytest.mark.server


def _database(tmp_path, name="gateway.db"):
    return POSTGRES_URL or f"sqlite:///{tmp_path / name}"


def _metric_sum(text, name, **labels):
    total = 0.0
    for line in text.splitlines():
        if line.startswith(name + "{") and all(f'{k}="{v}"' in line for k, v in labels.items()):
            total += float(line.rsplit(" ", 1)[1])
    return total


def test_gateway_serve_metrics_count_every_worker_and_leave_no_folder(tmp_path):
    port = free_port()
    env = {k: v for k, v in os.environ.items() if k != "PROMETHEUS_MULTIPROC_DIR"}
    env.update(GATEWAY_DATABASE_URL=_database(tmp_path), TMPDIR=str(tmp_path),
               GATEWAY_ACCESS_LOG="false")
    # Synchronous workers take one request at a time, so concurrent clients reach several.
    process = processes.start([sys.executable, "-m", "gateway", "serve", "--port", str(port),
                               "--workers", "4", "--worker-class", "sync"], env=env, cwd=tmp_path)
    try:
        base = f"http://127.0.0.1:{port}"
        processes.wait_for(processes.http_ok(f"{base}/health"), 60, "gateway serve", process)
        folders = [p for p in os.listdir(tmp_path) if p.startswith("gateway-metrics-")]
        assert len(folders) == 1
        search = f"{base}{MLFLOW_ROOT}/registered-models/search"
        # Three connections that have sent half a request each hold one synchronous worker,
        # so the 57 other searches are answered by the fourth; then the three finish theirs.
        pinned = [socket.create_connection(("127.0.0.1", port), timeout=30) for _ in range(3)]
        try:
            for sock in pinned:
                sock.sendall(b"GET /api/2.0/mlflow/registered-models/search HTTP/1.1\r\n"
                             b"Host: x\r\n")
            time.sleep(1)
            with ThreadPoolExecutor(4) as pool:
                codes = list(pool.map(lambda _: requests.get(search, timeout=30).status_code,
                                      range(57)))
            for sock in pinned:
                sock.sendall(b"Connection: close\r\n\r\n")
                assert sock.recv(64).startswith(b"HTTP/1.1 200")
        finally:
            for sock in pinned:
                sock.close()
        assert codes == [200] * 57
        answer = requests.get(f"{base}/metrics", timeout=30)
        assert answer.status_code == 200
        assert answer.headers["Content-Type"].count("charset") == 1
        searches = _metric_sum(answer.text, "gateway_requests_total",
                               route="/api/2.0/mlflow/registered-models/search")
        assert searches == 60
        # Every worker wrote samples, and /metrics summed them all.
        assert len([f for f in os.listdir(tmp_path / folders[0]) if f.startswith("counter")]) == 4
    finally:
        processes.stop(process)
    assert not [p for p in os.listdir(tmp_path) if p.startswith("gateway-metrics-")]


def test_a_memory_limit_holds_for_the_whole_server_under_plain_gunicorn(tmp_path):
    command = [sys.executable, "-m", "gunicorn", "-w", "4", "-b", "127.0.0.1:{port}", "wsgi:app"]
    server = Server(_database(tmp_path), command=command, env={
        "GATEWAY_RATE_LIMIT": "20/minute", "GATEWAY_ACCESS_LOG": "false"})
    try:
        url = f"{server.url}{MLFLOW_ROOT}/registered-models/search"
        with ThreadPoolExecutor(16) as pool:
            codes = list(pool.map(lambda _: requests.get(url, timeout=30).status_code,
                                  range(120)))
        assert set(codes) == {200, 429}
        # Each of the 4 workers admits its share (5) at most: 20 for the server, not 80.
        assert 5 <= codes.count(200) <= 20
    finally:
        server.stop()


@pytest.mark.skipif(POSTGRES_URL is not None, reason="the writers' queue is SQLite's")
def test_a_frozen_sqlite_writer_gets_others_a_503_in_time_not_a_killed_worker(tmp_path):
    path = tmp_path / "frozen.db"
    server = Server(f"sqlite:///{path}", workers=2,
                    env={"GATEWAY_SQLITE_BUSY_TIMEOUT_MS": "1000"})
    try:
        create = f"{server.url}{MLFLOW_ROOT}/registered-models/create"
        oci_create = server.url + oci_root("ocid1.p..frozen") + "/registered-models/create"
        with open(f"{path}.writers", "ab") as frozen:  # a worker frozen holding its turn
            fcntl.flock(frozen, fcntl.LOCK_EX)
            started = time.monotonic()
            answer = requests.post(create, json={"name": "m"}, timeout=60)
            waited = time.monotonic() - started
            oci = requests.post(oci_create, json={"name": "m"}, timeout=60)
            fcntl.flock(frozen, fcntl.LOCK_UN)
        assert answer.status_code == 503 and waited < 10
        assert answer.json()["error_code"] == "TEMPORARILY_UNAVAILABLE"
        assert answer.headers["Retry-After"] and answer.headers["opc-request-id"]
        assert oci.status_code == 503 and oci.json()["code"] == "ServiceUnavailable"
        # Reads never queued, and writes go on as soon as the holder lets go.
        assert requests.post(create, json={"name": "m"}, timeout=60).status_code == 200
    finally:
        server.stop()


def test_a_hung_redis_costs_at_most_its_timeout_then_limiting_resumes(tmp_path):
    redis_process, redis_url = start_redis(tmp_path)
    server = None
    try:
        server = Server(_database(tmp_path), workers=2, env={
            "GATEWAY_RATE_LIMIT": "5/minute", "GATEWAY_RATE_LIMIT_STORAGE": redis_url,
            "GATEWAY_REDIS_TIMEOUT_MS": "200"})
        url = f"{server.url}{MLFLOW_ROOT}/registered-models/search"
        assert requests.get(url, timeout=30).status_code == 200
        os.kill(redis_process.pid, signal.SIGSTOP)
        try:
            timings = []
            for _ in range(8):  # more than the limit: Redis is out of reach, so fail open
                started = time.monotonic()
                assert requests.get(url, timeout=30).status_code == 200
                timings.append(time.monotonic() - started)
        finally:
            os.kill(redis_process.pid, signal.SIGCONT)
        assert sorted(timings)[len(timings) // 2] < 1.0, timings
        # Redis answers again: the limit counts again (1 before, 4 more, then 429).
        codes = [requests.get(url, timeout=30).status_code for _ in range(6)]
        assert 429 in codes and codes.count(200) <= 4
    finally:
        if server is not None:
            server.stop()
        processes.stop(redis_process)


def test_a_replayed_token_of_a_deleted_model_is_refused_even_when_its_id_is_reused(tmp_path):
    server = Server(_database(tmp_path), workers=1)
    try:
        base = server.url + oci_root("ocid1.p..reuse")
        token = {"opc-retry-token": "reuse-1"}

        def post(path, body, headers=None):
            return requests.post(f"{base}/{path}", json=body, headers=headers, timeout=30)

        assert post("registered-models/create", {"name": "x"}, token).status_code == 200
        version = post("model-versions/create", {"name": "x", "source": "s3://b/x"},
                       {"opc-retry-token": "reuse-2"})
        assert version.status_code == 200
        assert post("registered-models/delete", {"name": "x"}).status_code == 200
        # SQLite without AUTOINCREMENT would hand x's row ids to y and its version.
        assert post("registered-models/create", {"name": "y"}).status_code == 200
        assert post("model-versions/create", {"name": "y", "source": "s3://b/y"}
                    ).status_code == 200
        for path, body, headers in (("registered-models/create", {"name": "x"}, token),
                                    ("model-versions/create", {"name": "x", "source": "s3://b/x"},
                                     {"opc-retry-token": "reuse-2"})):
            replay = post(path, body, headers)
            assert replay.status_code == 409, replay.text
            assert replay.json()["code"] == "InvalidatedRetryToken"
    finally:
        server.stop()


def test_the_cli_answers_version_and_help():
    for flag in ("--version", "-V"):
        answer = subprocess.run([sys.executable, "-m", "gateway", flag], capture_output=True,
                                text=True, timeout=60)
        assert answer.returncode == 0
        assert re.fullmatch(r"gateway, version \d+\.\d+\.\d+\n", answer.stdout)
    answer = subprocess.run([sys.executable, "-m", "gateway", "-h"], capture_output=True,
                            text=True, timeout=60)
    assert answer.returncode == 0 and "serve" in answer.stdout and "principal" in answer.stdout


def test_a_server_that_never_comes_up_is_stopped_with_its_children(tmp_path):
    marker = f"never-up-{os.getpid()}-{time.monotonic_ns()}"
    command = [sys.executable, "-c",
               "import subprocess, sys, time; "
               f"subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(120)', '{marker}']); "
               "time.sleep(120)"]
    server = None
    with pytest.raises(TimeoutError):
        server = Server(_database(tmp_path), command=command, wait_seconds=2)
    assert server is None
    processes.wait_for(lambda: subprocess.run(["pgrep", "-f", marker]).returncode == 1, 10,
                       "the child of the failed server to be gone")


def test_waiting_for_a_server_outlasts_a_slow_answer():
    answers = iter([requests.ReadTimeout("busy"), requests.ConnectionError("refused"), True])

    def check():
        answer = next(answers)
        if isinstance(answer, Exception):
            raise answer
        return answer

    assert processes.wait_for(check, 10, "a busy server", pause=0.01) is True
    with pytest.raises(TimeoutError, match="last error"):
        processes.wait_for(lambda: 1 / 0, 0.2, "never", pause=0.01)


def test_a_failed_commit_is_a_json_503_with_a_request_id(database_url, monkeypatch):
    from peewee import OperationalError

    from gateway.db import database
    from tests.conftest import make_app
    client = make_app(database_url).test_client()

    def disk_full(self):
        raise OperationalError("database or disk is full")

    monkeypatch.setattr(type(database.obj), "commit", disk_full)
    # Without a token the service's own transaction commits; with one, the request's
    # transaction commits after the view (in an after_request hook).
    for headers in ({}, {"opc-retry-token": "full-1"}):
        answer = client.post(oci_root("ocid1.p..full") + "/registered-models/create",
                             json={"name": "m"}, headers=headers)
        assert answer.status_code == 503, answer.data
        assert answer.json["code"] == "ServiceUnavailable"
        assert answer.headers["opc-request-id"] and answer.headers["Retry-After"]
    monkeypatch.undo()
    assert client.post(f"{MLFLOW_ROOT}/registered-models/create", json={"name": "m"}
                       ).status_code == 200


def test_open_database_keeps_the_busy_timeout_setting(tmp_path):
    db = open_database(f"sqlite:///{tmp_path / 't.db'}", busy_timeout_ms=1234)
    assert db.execute_sql("PRAGMA busy_timeout").fetchone() == (1234,)


@pytest.mark.parametrize("connections", [100])
def test_gateway_serve_answers_others_while_slow_clients_hold_connections(tmp_path,
                                                                           connections):
    port = free_port()
    env = {**os.environ, "GATEWAY_DATABASE_URL": _database(tmp_path),
           "GATEWAY_ACCESS_LOG": "false", "GATEWAY_MAX_CONTENT_LENGTH": "65536"}
    process = processes.start([sys.executable, "-m", "gateway", "serve", "--port", str(port),
                               "--workers", "2"], env=env, cwd=tmp_path)
    slow = None
    try:
        base = f"http://127.0.0.1:{port}"
        processes.wait_for(processes.http_ok(f"{base}/health"), 60, "gateway serve", process)
        slow = SlowClients(port, connections)
        time.sleep(1)  # the slow clients are connected and stalled
        latencies = []
        for index in range(10):
            started = time.monotonic()
            answer = requests.post(f"{base}{MLFLOW_ROOT}/registered-models/create",
                                   json={"name": f"m{index}"}, timeout=30)
            latencies.append(time.monotonic() - started)
            assert answer.status_code == 200, answer.text
        # A synchronous worker per stalled client would make these wait ~30 s (the worker
        # timeout); the figure to quote is in benchmarks/slow_clients.py.
        assert max(latencies) < 5, latencies
        # Bodies are read only up to the limit, declared or chunked: 413 in the face's format.
        too_big = requests.post(f"{base}{MLFLOW_ROOT}/registered-models/create",
                                data=b"x" * 70000, timeout=30,
                                headers={"Content-Type": "application/json"})
        chunked = requests.post(f"{base}{MLFLOW_ROOT}/registered-models/create",
                                data=iter([b"{", b" " * 70000, b"}"]), timeout=30,
                                headers={"Content-Type": "application/json"})
        for answer in (too_big, chunked):
            assert answer.status_code == 413, answer.text
            assert answer.json()["error_code"] == "INVALID_PARAMETER_VALUE"
        small_chunked = requests.post(f"{base}{MLFLOW_ROOT}/registered-models/create",
                                      data=iter([b'{"name": ', b'"chunky"}']), timeout=30,
                                      headers={"Content-Type": "application/json"})
        assert small_chunked.status_code == 200, small_chunked.text
    finally:
        if slow is not None:
            slow.close()
        processes.stop(process)

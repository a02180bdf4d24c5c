"""PostgreSQL going away under a running gateway: every face answers 503 in its format, the
gateway recovers without a restart, and a connection killed mid-request harms no other."""
import socket
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from urllib.parse import urlsplit, urlunsplit

import psycopg2
import pytest
import requests

from tests import processes
from tests.conftest import MLFLOW_ROOT, POSTGRES_URL, Server, oci_root

pytestmark = [pytest.mark.server,
              pytest.mark.skipif(POSTGRES_URL is None, reason="PostgreSQL only "
                                 "(GATEWAY_TEST_DATABASE_URL): SQLite cannot be unreachable")]


class Outage:
    """A TCP relay in front of PostgreSQL that the test can cut (and restore) at will."""

    def __init__(self, target_host, target_port):
        self.target = (target_host, target_port)
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        self.up, self.links, self.lock = True, [], threading.Lock()
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self):
        while True:
            try:
                client, _ = self.listener.accept()
            except OSError:
                return
            if not self.up:
                client.close()
                continue
            try:
                server = socket.create_connection(self.target, timeout=5)
            except OSError:
                client.close()
                continue
            with self.lock:
                self.links += [client, server]
            for a, b in ((client, server), (server, client)):
                threading.Thread(target=self._pipe, args=(a, b), daemon=True).start()

    @staticmethod
    def _pipe(source, sink):
        try:
            while data := source.recv(65536):
                sink.sendall(data)
        except OSError:
            pass
        finally:
            for s in (source, sink):
                try:
                    s.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass

    def cut(self):
        self.up = False
        with self.lock:
            for link in self.links:
                try:
                    link.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass
            self.links = []

    def restore(self):
        self.up = True

    def close(self):
        self.cut()
        self.listener.close()


@pytest.fixture
def outage():
    parts = urlsplit(POSTGRES_URL)
    relay = Outage(parts.hostname, parts.port or 5432)
    relayed = urlunsplit(parts._replace(netloc=f"{parts.username}:{parts.password}@"
                                               f"127.0.0.1:{relay.port}"))
    yield relay, relayed
    relay.close()


def test_an_unreachable_database_is_503_on_every_face_and_recovers_without_restart(outage):
    relay, url = outage
    server = Server(url, workers=2)
    try:
        mlflow = f"{server.url}{MLFLOW_ROOT}"
        oci = server.url + oci_root("ocid1.p..outage")
        nemo = f"{server.url}/apis/models/v2/workspaces/default/models"
        assert requests.post(f"{mlflow}/registered-models/create", json={"name": "before"},
                             timeout=30).status_code == 200
        relay.cut()
        calls = [("GET", f"{mlflow}/registered-models/search", None, "error_code",
                  "TEMPORARILY_UNAVAILABLE"),
                 ("POST", f"{mlflow}/registered-models/create", {"name": "during"}, "error_code",
                  "TEMPORARILY_UNAVAILABLE"),
                 ("POST", f"{oci}/registered-models/create", {"name": "during"}, "code",
                  "ServiceUnavailable"),
                 ("GET", nemo, None, "detail", None)]
        for _ in range(3):  # each worker, with a pooled connection or none
            for method, url_, body, field, code in calls:
                answer = requests.request(method, url_, json=body, timeout=30,
                                          headers={"opc-retry-token": f"t{time.monotonic()}"}
                                          if method == "POST" else None)
                assert answer.status_code == 503, (url_, answer.status_code, answer.text)
                assert answer.headers["Retry-After"] and answer.headers["opc-request-id"]
                assert field in answer.json() and (code is None or answer.json()[field] == code)
        assert requests.get(f"{server.url}/health/ready", timeout=30).status_code == 503
        assert requests.get(f"{server.url}/health", timeout=30).status_code == 200
        relay.restore()

        def recovered():
            return all(requests.get(f"{mlflow}/registered-models/search", timeout=30
                                    ).status_code == 200 for _ in range(4))
        processes.wait_for(recovered, 30, "the gateway to use the database again")
        with ThreadPoolExecutor(4) as pool:
            codes = list(pool.map(lambda i: requests.post(
                f"{mlflow}/registered-models/create", json={"name": f"after-{i}"},
                timeout=30).status_code, range(8)))
        assert codes == [200] * 8
        assert requests.get(f"{server.url}/health/ready", timeout=30).status_code == 200
    finally:
        server.stop()


def _backend_waiting_on_a_lock(admin):
    with admin.cursor() as cursor:
        cursor.execute("SELECT pid FROM pg_stat_activity WHERE wait_event_type = 'Lock' "
                       "AND datname = current_database() AND pid <> pg_backend_pid()")
        rows = cursor.fetchall()
    return rows[0][0] if rows else None


@pytest.fixture
def admin():
    connection = psycopg2.connect(POSTGRES_URL)
    connection.autocommit = True
    yield connection
    connection.close()


def _lock_model(name):
    """A transaction of the test's own holding a model's row lock (as a slow writer would)."""
    holder = psycopg2.connect(POSTGRES_URL)
    with holder.cursor() as cursor:
        cursor.execute("SELECT id FROM registered_model WHERE name = %s FOR UPDATE", (name,))
        assert cursor.fetchone()
    return holder


def test_a_connection_killed_mid_request_is_a_json_503_and_the_next_request_works(admin,
                                                                                  unique):
    server = Server(POSTGRES_URL, workers=1, env={"GATEWAY_RETRY_TOKEN_WAIT_MS": "60000"})
    holder = None
    try:
        base = f"{server.url}{MLFLOW_ROOT}"
        requests.post(f"{base}/registered-models/create", json={"name": unique},
                      timeout=30).raise_for_status()
        holder = _lock_model(unique)
        with ThreadPoolExecutor(1) as pool:
            waiting = pool.submit(requests.post, f"{base}/model-versions/create",
                                  json={"name": unique, "source": "s3://b/1"},
                                  headers={"opc-retry-token": f"kill-{unique}"}, timeout=60)
            pid = processes.wait_for(lambda: _backend_waiting_on_a_lock(admin), 30,
                                     "the gateway's backend to wait on the row lock")
            with admin.cursor() as cursor:
                cursor.execute("SELECT pg_terminate_backend(%s)", (pid,))
            answer = waiting.result(timeout=60)
        assert answer.status_code == 503, answer.text
        assert answer.json()["error_code"] == "TEMPORARILY_UNAVAILABLE"
        assert answer.headers["opc-request-id"] and answer.headers["Retry-After"]
        holder.rollback()
        # The same (only) worker answers the next requests, on a fresh connection.
        for path, body in (("registered-models/search", None),
                           ("model-versions/create", {"name": unique, "source": "s3://b/2"})):
            again = requests.request("GET" if body is None else "POST", f"{base}/{path}",
                                     json=body, timeout=30)
            assert again.status_code == 200, again.text
    finally:
        if holder is not None:
            holder.close()
        server.stop()


def test_a_retry_token_request_past_its_lock_wait_is_a_retryable_409(unique):
    server = Server(POSTGRES_URL, workers=1, env={"GATEWAY_RETRY_TOKEN_WAIT_MS": "300"})
    holder = None
    try:
        base = server.url + oci_root(f"ocid1.p..{unique}")
        requests.post(f"{base}/registered-models/create", json={"name": unique},
                      timeout=30).raise_for_status()
        holder = _lock_model(unique)
        answer = requests.post(f"{base}/model-versions/create",
                               json={"name": unique, "source": "s3://b/1"},
                               headers={"opc-retry-token": f"wait-{unique}"}, timeout=60)
        assert answer.status_code == 409, answer.text
        assert answer.json()["code"] == "IncorrectState"
        holder.rollback()
        retried = requests.post(f"{base}/model-versions/create",
                                json={"name": unique, "source": "s3://b/1"},
                                headers={"opc-retry-token": f"wait-{unique}"}, timeout=60)
        assert retried.status_code == 200 and retried.json()["model_version"]["version"] == "1"
    finally:
        if holder is not None:
            holder.close()
        server.stop()

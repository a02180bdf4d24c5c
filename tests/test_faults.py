"""Faults: kill -9 under load, two gateway processes sharing retry tokens, a bad-input sweep."""
import sqlite3
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import pytest
import requests

from tests.conftest import MLFLOW_ROOT, POSTGRES_URL, Server, oci_root, serve

pytestmark = pytest.mark.server


@pytest.fixture
def database_file(tmp_path):
    return POSTGRES_URL or f"sqlite:///{tmp_path / 'crash.db'}"


def create_until_refused(base, name, answered, stop):
    """Create versions until the server goes away; keep the numbers answered with 200."""
    with requests.Session() as session:
        while not stop.is_set():
            try:
                response = session.post(f"{base}/model-versions/create",
                                        json={"name": name, "source": "s3://crash/m"}, timeout=5)
            except requests.RequestException:
                return
            if response.status_code == 200:
                answered.append(int(response.json()["model_version"]["version"]))


def stored_versions(base, name):
    answer = requests.get(f"{base}/model-versions/search",
                          params={"filter": f"name = '{name}'", "max_results": 200000}).json()
    return [int(v["version"]) for v in answer.get("model_versions", [])]


def test_kill_9_under_load_loses_and_duplicates_nothing(database_file, unique):
    server = Server(database_file, workers=4)
    base = server.url + MLFLOW_ROOT
    requests.post(f"{base}/registered-models/create", json={"name": unique}).raise_for_status()
    answered, stop = [], threading.Event()
    threads = [threading.Thread(target=create_until_refused, args=(base, unique, answered, stop))
               for _ in range(8)]
    for thread in threads:
        thread.start()
    time.sleep(1.5)
    server.kill()
    stop.set()
    for thread in threads:
        thread.join(timeout=30)
    assert len(answered) > 50, "the load did not run"
    restarted = Server(database_file, workers=2)
    try:
        stored = stored_versions(restarted.url + MLFLOW_ROOT, unique)
    finally:
        restarted.stop()
    assert set(answered) <= set(stored)                      # every 200 is there
    assert len(stored) == len(set(stored))                   # nothing twice
    assert sorted(stored) == list(range(1, len(stored) + 1))  # no holes, no reuse
    assert_database_sound(database_file)


def assert_database_sound(url):
    if url.startswith("sqlite"):
        with sqlite3.connect(url.removeprefix("sqlite:///")) as db:
            assert db.execute("PRAGMA integrity_check").fetchone() == ("ok",)
            assert db.execute("PRAGMA foreign_key_check").fetchall() == []
        return
    import psycopg2
    with psycopg2.connect(url) as db, db.cursor() as cursor:
        cursor.execute("SELECT count(*) FROM model_version v LEFT JOIN registered_model m "
                       "ON m.id = v.registered_model_id WHERE m.id IS NULL")
        assert cursor.fetchone() == (0,)
        cursor.execute("SELECT count(*) FROM registered_model m WHERE m.last_version < "
                       "(SELECT COALESCE(MAX(version), 0) FROM model_version v "
                       " WHERE v.registered_model_id = m.id)")
        assert cursor.fetchone() == (0,)


def test_retry_token_replays_across_two_gateway_processes_run_once(database_file, unique):
    first = Server(database_file, workers=2)
    second = Server(database_file, workers=2)
    try:
        roots = [s.url + oci_root(f"ocid1.p..{unique}", "ws") for s in (first, second)]
        requests.post(f"{roots[0]}/registered-models/create", json={"name": unique}
                      ).raise_for_status()

        def create(index):
            return requests.post(f"{roots[index % 2]}/model-versions/create",
                                 json={"name": unique, "source": "s3://a/m"},
                                 headers={"opc-retry-token": f"shared-{unique}"}, timeout=60)

        with ThreadPoolExecutor(20) as pool:
            answers = list(pool.map(create, range(40)))
        assert {a.status_code for a in answers} == {200}
        assert {a.json()["model_version"]["version"] for a in answers} == {"1"}
        assert stored_versions(roots[1], unique) == [1]
    finally:
        first.stop()
        second.stop()


@pytest.fixture(scope="module")
def sweep_server(tmp_path_factory):
    server = serve(tmp_path_factory, "sweep", env={"GATEWAY_MAX_CONTENT_LENGTH": "65536"})
    yield server
    server.stop()


@pytest.mark.parametrize("path", [MLFLOW_ROOT, oci_root(), "/apis/models/v2/workspaces/default"])
def test_bad_input_sweep_over_http(sweep_server, path, unique):
    base = sweep_server.url + path
    create = f"{base}/models" if path.startswith("/apis") else f"{base}/registered-models/create"
    json_headers = {"Content-Type": "application/json"}
    before = model_count(sweep_server)
    bad_bodies = [
        b'{"name": "' + b"x" * 70000 + b'"}',                 # over the size limit
        b'{"name": "\xff\xfe\xfd"}',                           # invalid UTF-8
        b"[" * 50000 + b"]" * 50000,                           # nested far too deep
        b'{"name": ',                                          # truncated
        b"\x00\x01\x02",                                       # not JSON at all
    ]
    for body in bad_bodies:
        response = requests.post(create, data=body, headers=json_headers, timeout=30)
        assert 400 <= response.status_code < 500, (body[:20], response.status_code)
    huge_query = requests.get(f"{base}/registered-models/search?filter=" + "a" * 20000)
    assert 400 <= huge_query.status_code < 500
    if not path.startswith("/apis"):
        token = requests.get(f"{base}/registered-models/search",
                             params={"page_token": "not-a-token"})
        assert token.status_code == 400
    assert model_count(sweep_server) == before  # nothing was written


def model_count(server):
    answer = requests.get(f"{server.url}{MLFLOW_ROOT}/registered-models/search",
                          params={"max_results": 1000}).json()
    return len(answer.get("registered_models", []))

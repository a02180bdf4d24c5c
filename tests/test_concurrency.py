"""Concurrent creates through a multi-worker gunicorn: every version number exactly once."""
from concurrent.futures import ThreadPoolExecutor

import pytest
import requests

from tests.conftest import MLFLOW_ROOT, Server, serve

pytestmark = pytest.mark.server
THREADS, PER_THREAD = 16, 15


@pytest.fixture(scope="module")
def busy_server(tmp_path_factory):
    server = serve(tmp_path_factory, "busy", workers=4)
    yield server
    server.stop()


def create_versions(base, name, count):
    numbers = []
    with requests.Session() as session:
        for index in range(count):
            response = session.post(f"{base}/model-versions/create",
                                    json={"name": name, "source": f"s3://b/{index}"}, timeout=60)
            assert response.status_code == 200, response.text
            numbers.append(int(response.json()["model_version"]["version"]))
    return numbers


def test_concurrent_creates_of_one_model_number_each_version_once(busy_server, unique):
    base = busy_server.url + MLFLOW_ROOT
    requests.post(f"{base}/registered-models/create", json={"name": unique}).raise_for_status()
    with ThreadPoolExecutor(THREADS) as pool:
        results = pool.map(lambda _: create_versions(base, unique, PER_THREAD), range(THREADS))
        answered = sorted(number for numbers in results for number in numbers)
    total = THREADS * PER_THREAD
    assert answered == list(range(1, total + 1))
    stored = requests.get(f"{base}/model-versions/search",
                          params={"filter": f"name = '{unique}'", "max_results": 1000}).json()
    assert sorted(int(v["version"]) for v in stored["model_versions"]) == answered


def test_concurrent_creates_of_one_model_name_make_one_model(busy_server, unique):
    base = busy_server.url + MLFLOW_ROOT

    def create(_):
        return requests.post(f"{base}/registered-models/create", json={"name": unique},
                             timeout=60).json()

    with ThreadPoolExecutor(THREADS) as pool:
        answers = list(pool.map(create, range(THREADS)))
    created = [a for a in answers if "registered_model" in a]
    refused = [a for a in answers if a.get("error_code") == "RESOURCE_ALREADY_EXISTS"]
    assert (len(created), len(refused)) == (1, THREADS - 1)


def test_two_gateway_processes_on_one_database_share_the_numbering(busy_server, unique):
    second = Server(busy_server.env["GATEWAY_DATABASE_URL"], workers=2)
    try:
        bases = [busy_server.url + MLFLOW_ROOT, second.url + MLFLOW_ROOT]
        requests.post(f"{bases[0]}/registered-models/create", json={"name": unique}
                      ).raise_for_status()
        with ThreadPoolExecutor(THREADS) as pool:
            results = pool.map(lambda i: create_versions(bases[i % 2], unique, PER_THREAD),
                               range(THREADS))
            answered = sorted(number for numbers in results for number in numbers)
        assert answered == list(range(1, THREADS * PER_THREAD + 1))
    finally:
        second.stop()

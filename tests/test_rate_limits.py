"""Per-tenant rate limits through Flask's test client (in-process counters)."""
import pytest

from gateway.db import database
from gateway.services import principals
from tests.conftest import Api, make_app, oci_root

SEARCH = "registered-models/search"


@pytest.fixture
def limited(database_url):
    app = make_app(database_url, RATE_LIMIT="3/minute",
                   RATE_LIMIT_OVERRIDES={"team-a": "5/minute"})
    client = app.test_client()
    client.post("/api/3.0/mlflow/workspaces", json={"name": "team-a"})
    client.post("/api/3.0/mlflow/workspaces", json={"name": "team-b"})
    return client


def statuses(api, count, **headers):
    return [api.get(SEARCH, headers=headers).status_code for _ in range(count)]


def test_over_the_limit_is_429_with_retry_after(limited):
    api = Api(limited)
    assert statuses(api, 3) == [200, 200, 200]
    refused = api.get(SEARCH)
    assert refused.status_code == 429
    assert refused.json["error_code"] == "REQUEST_LIMIT_EXCEEDED"
    assert 1 <= int(refused.headers["Retry-After"]) <= 60


def test_tenants_are_counted_apart_and_overrides_apply(limited):
    api = Api(limited)
    assert statuses(api, 4) == [200, 200, 200, 429]
    assert statuses(api, 4, **{"X-MLFLOW-WORKSPACE": "team-b"}) == [200, 200, 200, 429]
    assert statuses(api, 6, **{"X-MLFLOW-WORKSPACE": "team-a"}) == [200] * 5 + [429]


def test_oci_face_says_too_many_requests(limited):
    oci = Api(limited, oci_root())
    answers = [oci.get(SEARCH) for _ in range(4)]
    assert [a.status_code for a in answers] == [200, 200, 200, 429]
    assert answers[-1].json["code"] == "TooManyRequests"
    assert answers[-1].headers["Retry-After"]


def test_each_worker_enforces_its_share_of_an_in_process_limit(database_url):
    app = make_app(database_url, RATE_LIMIT="4/minute", RATE_LIMIT_WORKERS=2)
    assert statuses(Api(app.test_client()), 3) == [200, 200, 429]


def test_a_principal_limit_counts_across_workspaces(database_url):
    app = make_app(database_url, AUTH="required", PRINCIPAL_RATE_LIMIT="4/minute")
    with app.app_context(), database.connection_context():
        principals.create("ann")
        principals.grant("ann", "*", "admin")
        token = principals.issue_token("ann")
        principals.create("bob")
        principals.grant("bob", "*", "reader")
        other = principals.issue_token("bob")
    client = app.test_client()
    ann = {"Authorization": f"Bearer {token}"}
    client.post("/api/3.0/mlflow/workspaces", json={"name": "team-a"}, headers=ann)
    api = Api(client)
    assert statuses(api, 2, **ann) == [200, 200]
    assert statuses(api, 2, **ann, **{"X-MLFLOW-WORKSPACE": "team-a"}) == [200, 429]
    # Another principal has its own count; workspaces have no limit of their own here.
    assert statuses(api, 4, Authorization=f"Bearer {other}") == [200] * 4


def test_no_limit_when_unset(client):
    assert set(statuses(Api(client), 30)) == {200}


def test_oversize_bodies_are_413_on_the_oci_face(database_url):
    app = make_app(database_url, MAX_CONTENT_LENGTH=100)
    response = Api(app.test_client(), oci_root()).post(
        "registered-models/create", json={"name": "m", "description": "x" * 500})
    assert (response.status_code, response.json["code"]) == (413, "PayloadTooLarge")

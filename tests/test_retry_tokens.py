"""opc-retry-token semantics through Flask's test client (real HTTP ones are elsewhere)."""
import time

import pytest

from gateway.db import database
from gateway.models import RetryToken, now_ms
from gateway.retry_tokens import fingerprint, purge_expired
from gateway.work import UnitOfWork
from tests.conftest import POSTGRES_URL


def create_version(oci, token, source="s3://a/m", **headers):
    return oci.post("model-versions/create", json={"name": "m", "source": source},
                    headers={"opc-retry-token": token, **headers})


def versions(oci):
    found = oci.get("model-versions/search").json.get("model_versions", [])
    return sorted(v["version"] for v in found)


@pytest.fixture
def model(oci):
    oci.model("m")


def test_replay_returns_the_original_answer_and_changes_nothing(oci, model):
    first = create_version(oci, "tok-1")
    again = create_version(oci, "tok-1")
    assert (again.status_code, again.json) == (200, first.json)
    assert again.headers["etag"] == first.headers["etag"]
    assert again.headers["opc-request-id"] != first.headers["opc-request-id"]
    assert versions(oci) == ["1"]


def test_replay_of_an_error_returns_the_same_error(oci):
    first = create_version(oci, "tok-err")  # model "m" does not exist yet
    oci.model("m")
    again = create_version(oci, "tok-err")
    assert first.status_code == again.status_code == 404
    assert again.json == first.json
    assert versions(oci) == []


def test_same_token_different_request_is_409(oci, model):
    create_version(oci, "tok-2", "s3://a/m")
    other = create_version(oci, "tok-2", "s3://b/m")
    assert (other.status_code, other.json["code"]) == (409, "Conflict")
    assert versions(oci) == ["1"]


@pytest.mark.parametrize("same_request", [True, False])
def test_losing_a_race_for_the_token_undoes_the_action(oci, model, same_request, monkeypatch):
    # Another request takes the token while this one runs (simulated inside its unit of work,
    # once it has created its version): this one rolls its version back and answers with
    # the winner's answer, or 409 if the winner's request was a different one.
    noted = UnitOfWork.note_created

    def take_the_token_first(unit, kind, row_id):
        noted(unit, kind, row_id)
        RetryToken.create(caller="", token="race", created_at=now_ms(),
                          fingerprint=fingerprint() if same_request else "another request",
                          expires_at=now_ms() + 60000, status=200, body='{"winner": true}',
                          headers='{"Content-Type": "application/json"}')

    monkeypatch.setattr(UnitOfWork, "note_created", take_the_token_first)
    answer = create_version(oci, "race")
    if same_request:
        assert (answer.status_code, answer.json) == (200, {"winner": True})
    else:
        assert (answer.status_code, answer.json["code"]) == (409, "Conflict")
    assert "opc-request-id" in answer.headers
    assert versions(oci) == []


def test_tokens_are_per_caller(oci, model):
    create_version(oci, "shared", **{"dh-user-principal": "alice"})
    create_version(oci, "shared", **{"dh-user-principal": "bob"})
    assert versions(oci) == ["1", "2"]


def test_token_of_a_deleted_resource_is_invalidated(oci, model):
    create_version(oci, "tok-3")
    oci.post("model-versions/delete", json={"name": "m", "version": "1"})
    replay = create_version(oci, "tok-3")
    assert (replay.status_code, replay.json["code"]) == (409, "InvalidatedRetryToken")
    assert versions(oci) == []


def test_token_of_a_deleted_model_is_invalidated(oci):
    first = oci.post("registered-models/create", json={"name": "x"},
                     headers={"opc-retry-token": "tok-model"})
    assert first.status_code == 200
    oci.post("registered-models/delete", json={"name": "x"})
    replay = oci.post("registered-models/create", json={"name": "x"},
                      headers={"opc-retry-token": "tok-model"})
    assert replay.json["code"] == "InvalidatedRetryToken"


def test_expired_tokens_run_again_and_are_purged(app, oci, model):
    app.config["RETRY_TOKEN_TTL_SECONDS"] = 0.05
    create_version(oci, "tok-4")
    time.sleep(0.1)
    assert create_version(oci, "tok-4").json["model_version"]["version"] == "2"
    create_version(oci, "tok-5")
    time.sleep(0.1)
    with app.app_context(), database.connection_context():
        assert purge_expired() == 2
        assert RetryToken.select().count() == 0


def test_token_length_is_checked(oci, model):
    assert create_version(oci, "x" * 65).json["code"] == "InvalidParameter"
    assert create_version(oci, "").json["code"] == "InvalidParameter"
    assert versions(oci) == []


def test_tokens_work_on_the_mlflow_face_too(api, client):
    api.model("m")
    client.post("/api/3.0/mlflow/workspaces", json={"name": "team-b"})
    body = {"name": "m", "source": "s3://a/m"}
    first = api.post("model-versions/create", json=body, headers={"opc-retry-token": "t"})
    again = api.post("model-versions/create", json=body, headers={"opc-retry-token": "t"})
    assert first.json == again.json
    other_workspace = api.post("model-versions/create", json=body,
                               headers={"opc-retry-token": "t", "X-MLFLOW-WORKSPACE": "team-b"})
    assert other_workspace.status_code == 409


def test_reads_ignore_tokens(oci, model):
    create_version(oci, "tok-6")
    response = oci.get("model-versions/search", headers={"opc-retry-token": "tok-6"})
    assert response.status_code == 200


def test_fingerprints_stay_the_same_across_releases(app):
    # Stored tokens are compared with new requests' fingerprints, so the formula must not
    # drift: sha256 of method, path, query and workspace (each + newline), then the body.
    import hashlib
    body = b'{"name": "m", "source": "s3://a/m"}'
    with app.test_request_context("/api/2.0/mlflow/model-versions/create?x=1", method="POST",
                                  data=body, headers={"X-MLFLOW-WORKSPACE": "team-a"}):
        expected = hashlib.sha256(b"POST\n/api/2.0/mlflow/model-versions/create\nx=1\nteam-a\n"
                                  + body).hexdigest()
        assert fingerprint() == expected


@pytest.mark.skipif(not POSTGRES_URL, reason="PostgreSQL only: SQLite has one writer at a time")
def test_a_token_still_being_answered_elsewhere_is_a_retryable_409(app, oci, model):
    import psycopg2
    app.config["RETRY_TOKEN_WAIT_MS"] = 200
    other = psycopg2.connect(POSTGRES_URL)  # another request, holding the token uncommitted
    try:
        other.cursor().execute(
            "INSERT INTO retry_token (caller, token, fingerprint, created_at, expires_at) "
            "VALUES ('', 'held', 'x', 0, %s)", (now_ms() + 60000,))
        answer = create_version(oci, "held")
    finally:
        other.rollback()
        other.close()
    assert (answer.status_code, answer.json["code"]) == (409, "IncorrectState")
    assert versions(oci) == []

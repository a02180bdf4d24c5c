"""Authentication and per-workspace authorization through Flask's test client."""
import base64
import time

import pytest

from gateway.db import database
from gateway.models import ApiToken
from gateway.services import principals, workspaces
from gateway.services.workspaces import platform_workspace
from tests.conftest import PLATFORM, Api, make_app, oci_root


@pytest.fixture
def secure(database_url, request):
    """An app with auth required, a team-a workspace and principals with known roles.

    Changes to grants apply at once here (AUTH_CACHE_SECONDS=0), unless a test is marked
    with @pytest.mark.auth_cache(seconds).
    """
    marker = request.node.get_closest_marker("auth_cache")
    app = make_app(database_url, AUTH="required",
                   AUTH_CACHE_SECONDS=marker.args[0] if marker else 0)
    with app.app_context(), database.connection_context():
        # Grants are given in existing workspaces only.
        workspaces.create("team-a")
        platform_workspace(PLATFORM, create=True)
        tokens = {}
        for name, grants in {"admin": {"*": "admin"},
                             "alice": {"team-a": "writer", "default": "reader"},
                             "bob": {"team-a": "reader"},
                             "carol": {},
                             "oci-writer": {platform_workspace(PLATFORM): "writer"}}.items():
            principals.create(name)
            tokens[name] = principals.issue_token(name)
            for workspace, role in grants.items():
                principals.grant(name, workspace, role)
        principals.create("svc", can_act_for_others=True)
        principals.grant("svc", "default", "writer")
        tokens["svc"] = principals.issue_token("svc")
        principals.set_password("alice", "alice-password")
    client = app.test_client()
    yield app, client, tokens
    database.close()


def bearer(token):
    return {"Authorization": f"Bearer {token}"}


def basic(name, password):
    return {"Authorization": "Basic " + base64.b64encode(f"{name}:{password}".encode()).decode()}


TEAM_A = {"X-MLFLOW-WORKSPACE": "team-a"}


def test_missing_credentials_are_401_on_every_face(secure):
    _, client, _ = secure
    response = client.get("/api/2.0/mlflow/registered-models/search")
    assert response.status_code == 401
    assert response.json["error_code"] == "UNAUTHENTICATED"
    assert "Bearer" in response.headers["WWW-Authenticate"]
    oci = client.get(oci_root() + "/registered-models/search")
    assert (oci.status_code, oci.json["code"]) == (401, "NotAuthenticated")
    assert client.get("/api/3.0/mlflow/workspaces").status_code == 401


@pytest.mark.parametrize("headers", [
    bearer("gw_not-a-real-token"), basic("alice", "wrong-password"), basic("nobody", "x"),
    {"Authorization": "Basic !!!"}, {"Authorization": "Digest abc"},
    {"Authorization": 'Signature keyId="a/b/c",signature="abc",headers="date"'},
])
def test_bad_credentials_are_401(secure, headers):
    _, client, _ = secure
    assert client.get("/api/2.0/mlflow/registered-models/search",
                      headers=headers).status_code == 401


def test_health_and_version_need_no_credentials(secure):
    _, client, _ = secure
    assert client.get("/health").status_code == 200
    assert client.get("/version").status_code == 200


def test_bearer_and_basic_both_work(secure):
    _, client, tokens = secure
    team = Api(client)
    created = team.post("registered-models/create", json={"name": "m"},
                        headers={**TEAM_A, **bearer(tokens["alice"])})
    assert created.status_code == 200
    assert created.json["registered_model"]["user_id"] == "alice"
    got = team.get("registered-models/get", query_string={"name": "m"},
                   headers={**TEAM_A, **basic("alice", "alice-password")})
    assert got.status_code == 200


def test_roles_decide_reads_and_writes(secure):
    _, client, tokens = secure
    api = Api(client)
    create = {"name": "m"}
    assert api.post("registered-models/create", json=create,
                    headers={**TEAM_A, **bearer(tokens["bob"])}).status_code == 403
    assert api.post("registered-models/create", json=create,
                    headers={**TEAM_A, **bearer(tokens["alice"])}).status_code == 200
    read = api.get("registered-models/get", query_string=create,
                   headers={**TEAM_A, **bearer(tokens["bob"])})
    assert read.status_code == 200
    # get-latest-versions is a POST that only reads
    assert api.post("registered-models/get-latest-versions", json=create,
                    headers={**TEAM_A, **bearer(tokens["bob"])}).status_code == 200
    denied = api.get("registered-models/get", query_string=create,
                     headers={**TEAM_A, **bearer(tokens["carol"])})
    assert (denied.status_code, denied.json["error_code"]) == (403, "PERMISSION_DENIED")
    # alice only reads the default workspace
    assert api.post("registered-models/create", json=create,
                    headers=bearer(tokens["alice"])).status_code == 403


def test_grants_take_effect_without_restart(secure):
    app, client, tokens = secure
    api = Api(client)
    headers = {**TEAM_A, **bearer(tokens["carol"])}
    assert api.get("registered-models/search", headers=headers).status_code == 403
    with app.app_context(), database.connection_context():
        principals.grant("carol", "team-a", "reader")
    assert api.get("registered-models/search", headers=headers).status_code == 200
    with app.app_context(), database.connection_context():
        principals.revoke("carol", "team-a")
    assert api.get("registered-models/search", headers=headers).status_code == 403


@pytest.mark.auth_cache(0.3)
def test_workers_reuse_roles_and_tokens_for_auth_cache_seconds(secure):
    app, client, tokens = secure
    api = Api(client)
    headers = {**TEAM_A, **bearer(tokens["bob"])}
    assert api.get("registered-models/search", headers=headers).status_code == 200
    with app.app_context(), database.connection_context():
        principals.revoke("bob", "team-a")
        ApiToken.delete().execute()
    # Within the cache's time the worker still knows bob's token and role ...
    assert api.get("registered-models/search", headers=headers).status_code == 200
    time.sleep(0.35)
    # ... and after it, the revocation holds.
    assert api.get("registered-models/search", headers=headers).status_code == 401


def test_oci_face_hides_platforms_the_caller_cannot_see(secure):
    _, client, tokens = secure
    oci = Api(client, oci_root())
    outsider = oci.get("registered-models/search", headers=bearer(tokens["bob"]))
    assert (outsider.status_code, outsider.json["code"]) == (404, "NotAuthorizedOrNotFound")
    created = oci.post("registered-models/create", json={"name": "m"},
                       headers=bearer(tokens["oci-writer"]))
    assert created.status_code == 200


def test_oci_reader_who_writes_is_403_not_authorized(secure):
    app, client, tokens = secure
    with app.app_context(), database.connection_context():
        principals.grant("bob", platform_workspace(PLATFORM), "reader")
    oci = Api(client, oci_root())
    response = oci.post("registered-models/create", json={"name": "m"},
                        headers=bearer(tokens["bob"]))
    assert (response.status_code, response.json["code"]) == (403, "NotAuthorized")


def test_workspace_api_is_scoped_by_role(secure):
    _, client, tokens = secure
    root = "/api/3.0/mlflow/workspaces"
    listed = client.get(root, headers=bearer(tokens["bob"])).json["workspaces"]
    assert [w["name"] for w in listed] == ["team-a"]
    every = client.get(root, headers=bearer(tokens["admin"])).json["workspaces"]
    assert {"default", "team-a"} <= {w["name"] for w in every}
    assert client.post(root, json={"name": "team-b"},
                       headers=bearer(tokens["alice"])).status_code == 403
    assert client.delete(f"{root}/team-a", headers=bearer(tokens["alice"])).status_code == 403
    assert client.get(f"{root}/team-a", headers=bearer(tokens["bob"])).status_code == 200


def test_acting_user_header_only_for_trusted_principals(secure):
    _, client, tokens = secure
    api = Api(client)
    acting = {"dh-user-principal": "someone-else"}
    trusted = api.post("registered-models/create", json={"name": "by-svc"},
                       headers={**bearer(tokens["svc"]), **acting}).json
    assert trusted["registered_model"]["user_id"] == "someone-else"
    untrusted = api.post("registered-models/create", json={"name": "by-alice"},
                         headers={**TEAM_A, **bearer(tokens["alice"]), **acting}).json
    assert untrusted["registered_model"]["user_id"] == "alice"


def test_refusals_do_not_burn_retry_tokens(secure):
    app, client, tokens = secure
    api = Api(client)
    headers = {**TEAM_A, **bearer(tokens["carol"]), "opc-retry-token": "t-1"}
    assert api.post("registered-models/create", json={"name": "m"},
                    headers=headers).status_code == 403
    with app.app_context(), database.connection_context():
        principals.grant("carol", "team-a", "writer")
    assert api.post("registered-models/create", json={"name": "m"},
                    headers=headers).status_code == 200


def test_unknown_auth_mode_is_refused_at_startup(database_url):
    with pytest.raises(ValueError, match="GATEWAY_AUTH"):
        make_app(database_url, AUTH="sometimes")


# Security hardening, item 7 (in-process: this module owns its database on PostgreSQL too).
def test_7_unknown_users_cost_a_password_hash_too(database_url, monkeypatch):
    app = make_app(database_url)
    checked = []
    real = principals.check_password_hash
    monkeypatch.setattr(principals, "check_password_hash",
                        lambda stored, given: checked.append(stored) or real(stored, given))
    with app.app_context():
        assert principals.by_password("nobody-at-all", "guess") is None
    assert len(checked) == 1 and checked[0].startswith(("scrypt:", "pbkdf2:"))

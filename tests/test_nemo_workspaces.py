"""NeMo's workspaces and members (/apis/entities/v2/workspaces) over HTTP (Flask's test client):
one set of workspaces and grants shared with the MLflow and OCI faces."""
import uuid

import pytest

from gateway.db import database
from gateway.services import principals
from tests.conftest import make_app

ROOT = "/apis/entities/v2/workspaces"
MLFLOW = "/api/2.0/mlflow/registered-models"


def models(name):
    return f"/apis/models/v2/workspaces/{name}/models"


def test_workspace_lifecycle(client):
    created = client.post(ROOT, json={"name": "team-a", "description": "A team"},
                          headers={"dh-user-principal": "ann"})
    assert created.status_code == 201
    body = created.json
    assert set(body) == {"id", "name", "description", "created_at", "updated_at", "created_by",
                         "updated_by"}
    assert (body["name"], body["description"], body["created_by"]) == ("team-a", "A team", "ann")
    assert uuid.UUID(body["id"]) and body["created_at"].endswith("Z")
    assert client.get(f"{ROOT}/team-a").json == body
    assert client.post(ROOT, json={"name": "team-a"}).status_code == 409
    updated = client.put(f"{ROOT}/team-a", json={"description": "B team"})
    assert (updated.status_code, updated.json["description"]) == (200, "B team")
    assert updated.json["id"] == body["id"] and updated.json["updated_at"] >= body["updated_at"]
    # The same workspace as MLflow's.
    assert client.get("/api/3.0/mlflow/workspaces/team-a").json["workspace"]["description"] == (
        "B team")
    assert client.post(models("team-a"), json={"name": "m1"}).status_code == 201
    assert client.post(f"{MLFLOW}/create", json={"name": "m2"},
                       headers={"X-MLFLOW-WORKSPACE": "team-a"}).status_code == 200

    deleted = client.delete(f"{ROOT}/team-a")
    assert (deleted.status_code, deleted.json["id"]) == (200, body["id"])
    assert client.get(f"{ROOT}/team-a").status_code == 404
    assert client.get(models("team-a")).status_code == 404
    assert client.delete(f"{ROOT}/team-a").status_code == 404
    # Everything in it went with it: a namesake starts empty, with a new id.
    again = client.post(ROOT, json={"name": "team-a"}).json
    assert again["id"] != body["id"]
    assert client.get(models("team-a")).json["data"] == []


@pytest.mark.parametrize("name", ["Team-a", "1team", "a", "team--a", "team-", "x" * 64,
                                  "team a", "team/a", "", "tëam"])
def test_bad_names_are_422_in_nemos_body_and_create_nothing(client, name):
    response = client.post(ROOT, json={"name": name})
    assert response.status_code == 422
    assert response.json["detail"][0]["loc"] == ["body", "name"]
    assert [w["name"] for w in client.get(ROOT).json["data"]] == ["default", "system"]


@pytest.mark.parametrize("name", ["ab", "team_a", "a.b@c+d", "a1-b2", "x" * 63])
def test_nemo_names_are_accepted_and_usable_for_models(client, name):
    assert client.post(ROOT, json={"name": name}).status_code == 201
    assert client.post(models(name), json={"name": "m"}).status_code == 201
    assert [m["name"] for m in client.get(models(name)).json["data"]] == ["m"]


def test_built_in_workspaces(client):
    names = [w["name"] for w in client.get(ROOT).json["data"]]
    assert names == ["default", "system"]
    for name in ("default", "system"):
        assert client.post(ROOT, json={"name": name}).status_code == 409  # exist_ok finds it
        assert client.get(f"{ROOT}/{name}").json["id"]
        assert client.delete(f"{ROOT}/{name}").status_code == 422
    assert client.post(ROOT, json={}).json["detail"][0] == {
        "loc": ["body", "name"], "msg": "Field required", "type": "missing"}


def test_list_pages_sorts_and_filters_in_every_syntax(client):
    for name, text in (("alpha", "first team"), ("beta", "second"), ("gamma", "third team")):
        client.post(ROOT, json={"name": name, "description": text})
    listed = client.get(f"{ROOT}?page_size=2&sort=-name").json
    assert [w["name"] for w in listed["data"]] == ["system", "gamma"]
    assert listed["pagination"] == {"page": 1, "page_size": 2, "current_page_size": 2,
                                    "total_pages": 3, "total_results": 5}
    assert listed["sort"] == "-name"

    def names(query):
        response = client.get(f"{ROOT}?{query}&sort=name")
        assert response.status_code == 200, response.json
        return [w["name"] for w in response.json["data"]]
    assert names('filter={"description": {"$like": "TEAM"}}') == ["alpha", "gamma"]
    assert names("filter[description][$like]=team&filter[name][$nin]=alpha") == ["gamma"]
    assert names('filter=description~"team" OR name:"beta"') == ["alpha", "beta", "gamma"]
    assert names('filter=-name IN ["default", "system"]') == ["alpha", "beta", "gamma"]
    assert names('filter={"$not": {"name": {"$in": ["alpha", "beta"]}}}') == [
        "default", "gamma", "system"]
    assert client.get(f"{ROOT}?filter[colour]=red").status_code == 400
    assert client.get(f"{ROOT}?sort=size").status_code == 422


def test_retry_token_replays_a_create(client):
    headers = {"opc-retry-token": "ws-create-1"}
    first = client.post(ROOT, json={"name": "once"}, headers=headers)
    again = client.post(ROOT, json={"name": "once"}, headers=headers)
    assert (first.status_code, again.status_code) == (201, 201)
    assert again.json == first.json
    assert client.post(ROOT, json={"name": "once"}).status_code == 409


@pytest.fixture
def secure(database_url):
    """auth required; root is admin of every workspace; ann, bob and cat have no grants."""
    app = make_app(database_url, AUTH="required", AUTH_CACHE_SECONDS=0)
    tokens = {}
    with app.app_context(), database.connection_context():
        for name in ("root", "ann", "bob", "cat"):
            principals.create(name)
            tokens[name] = {"Authorization": f"Bearer {principals.issue_token(name)}"}
        principals.grant("root", "*", "admin")
    yield app, app.test_client(), tokens
    database.close()


def test_members_are_grants_every_face_honours(secure):
    app, client, who = secure
    assert client.post(ROOT, json={"name": "ann-ws"}).status_code == 401
    created = client.post(ROOT, json={"name": "ann-ws"}, headers=who["ann"])
    assert (created.status_code, created.json["created_by"]) == (201, "ann")
    members = client.get(f"{ROOT}/ann-ws/members", headers=who["ann"]).json["data"]
    assert [(m["principal"], m["roles"], m["granted_by"]) for m in members] == [
        ("ann", ["Admin"], "ann")]
    assert members[0]["granted_at"].endswith("Z")

    mlflow_write = {**who["bob"], "X-MLFLOW-WORKSPACE": "ann-ws"}
    assert client.post(f"{MLFLOW}/create", json={"name": "m"},
                       headers=mlflow_write).status_code == 403
    added = client.post(f"{ROOT}/ann-ws/members", json={"principal": "bob", "roles": ["Editor"]},
                        headers=who["ann"])
    assert (added.status_code, added.json["roles"], added.json["granted_by"]) == (
        201, ["Editor"], "ann")
    assert client.post(f"{ROOT}/ann-ws/members", json={"principal": "bob", "roles": ["Viewer"]},
                       headers=who["ann"]).status_code == 409
    assert client.post(f"{MLFLOW}/create", json={"name": "m"},
                       headers=mlflow_write).status_code == 200
    # Viewer: reads through MLflow, no writes; a list of roles grants the highest.
    viewer = client.put(f"{ROOT}/ann-ws/members/bob", json={"roles": ["Viewer"]},
                        headers=who["ann"])
    assert viewer.json["roles"] == ["Viewer"]
    assert client.post(f"{MLFLOW}/create", json={"name": "m2"},
                       headers=mlflow_write).status_code == 403
    assert client.get(f"{MLFLOW}/get?name=m", headers=mlflow_write).status_code == 200
    assert client.post(models("ann-ws"), json={"name": "n"}, headers=who["bob"]).status_code == 403
    assert client.get(f"{ROOT}/ann-ws/members", headers=who["bob"]).status_code == 403
    assert client.put(f"{ROOT}/ann-ws", json={"description": "x"},
                      headers=who["bob"]).status_code == 403
    assert client.put(f"{ROOT}/ann-ws/members/bob", json={"roles": ["Viewer", "Editor"]},
                      headers=who["ann"]).json["roles"] == ["Editor"]
    assert client.put(f"{ROOT}/ann-ws", json={"description": "x"},
                      headers=who["bob"]).json["updated_by"] == "bob"
    assert client.delete(f"{ROOT}/ann-ws", headers=who["bob"]).status_code == 403
    # A grant made by the operator (`gateway principal grant`) shows as a member.
    with app.app_context(), database.connection_context():
        principals.grant("cat", "ann-ws", "reader")
    listed = client.get(f"{ROOT}/ann-ws/members", headers=who["ann"]).json["data"]
    assert [(m["principal"], m["roles"]) for m in listed] == [
        ("ann", ["Admin"]), ("bob", ["Editor"]), ("cat", ["Viewer"])]
    removed = client.delete(f"{ROOT}/ann-ws/members/bob", headers=who["ann"])
    assert (removed.status_code, removed.json["id"]) == (200, "bob")
    assert client.get(f"{MLFLOW}/get?name=m", headers=mlflow_write).status_code == 403
    assert client.delete(f"{ROOT}/ann-ws/members/bob", headers=who["ann"]).status_code == 404
    assert client.put(f"{ROOT}/ann-ws/members/bob", json={"roles": ["Admin"]},
                      headers=who["ann"]).status_code == 404


def test_outsiders_see_nothing_and_bad_member_requests_are_422(secure):
    _, client, who = secure
    client.post(ROOT, json={"name": "ann-ws"}, headers=who["ann"])
    for method, path in (("get", ""), ("put", ""), ("delete", ""), ("get", "/members"),
                         ("post", "/members")):
        response = getattr(client, method)(f"{ROOT}/ann-ws{path}", json={"principal": "cat"},
                                           headers=who["cat"])
        assert response.status_code == 404, (method, path)
    assert [w["name"] for w in client.get(ROOT, headers=who["cat"]).json["data"]] == []
    assert [w["name"] for w in client.get(ROOT, headers=who["ann"]).json["data"]] == ["ann-ws"]
    assert len(client.get(ROOT, headers=who["root"]).json["data"]) == 3
    for payload in ({"principal": "bob", "roles": ["Owner"]}, {"principal": "bob", "roles": []},
                    {"roles": ["Viewer"]}, {"principal": "", "roles": ["Viewer"]}):
        response = client.post(f"{ROOT}/ann-ws/members", json=payload, headers=who["ann"])
        assert response.status_code == 422, payload
    assert client.put(f"{ROOT}/ann-ws/members/ann", json={"roles": "Admin"},
                      headers=who["ann"]).status_code == 422
    # A principal the gateway has not seen is recorded, without credentials.
    added = client.post(f"{ROOT}/ann-ws/members", json={"principal": "dan@example.com"},
                        headers=who["ann"])
    assert (added.status_code, added.json["roles"]) == (201, ["Viewer"])


def test_system_is_read_only_but_to_platform_admins(secure):
    app, client, who = secure
    with app.app_context(), database.connection_context():
        principals.grant("ann", "system", "admin")
    assert client.get(models("system"), headers=who["ann"]).status_code == 200
    assert client.post(models("system"), json={"name": "m"}, headers=who["ann"]).status_code == 403
    assert client.post(f"{MLFLOW}/create", json={"name": "m"},
                       headers={**who["ann"], "X-MLFLOW-WORKSPACE": "system"}).status_code == 403
    assert client.post(models("system"), json={"name": "m"},
                       headers=who["root"]).status_code == 201


def test_lists_of_every_workspace_count_against_the_callers_limit(database_url):
    app = make_app(database_url, AUTH="required", PRINCIPAL_RATE_LIMIT="3/minute")
    with app.app_context(), database.connection_context():
        principals.create("ann")
        token = {"Authorization": f"Bearer {principals.issue_token('ann')}"}
    client = app.test_client()
    try:
        answers = [client.get(ROOT, headers=token) for _ in range(3)]
        assert [a.status_code for a in answers] == [200, 200, 200]
        refused = client.get("/api/3.0/mlflow/workspaces", headers=token)
        assert refused.status_code == 429 and int(refused.headers["Retry-After"]) >= 1
        refused = client.get(ROOT, headers=token)
        assert (refused.status_code, list(refused.json)) == (429, ["detail"])
    finally:
        database.close()

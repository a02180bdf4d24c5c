"""The OpenMetadata face over HTTP (Flask's test client): ML model services and ML models on the
shared registry, every rule of seeds 000-002 and OpenMetadata 2.0.7's client contract."""
import json
from urllib.parse import quote

import pytest

from gateway.db import database
from gateway.services import principals
from tests.conftest import make_app

V1 = "/api/v1"
MODELS = f"{V1}/mlmodels"
SERVICES = f"{V1}/services/mlmodelServices"
MLFLOW = "/api/2.0/mlflow/registered-models"
PATCH = "application/json-patch+json"
MLFLOW_CONNECTION = {"config": {"type": "Mlflow", "trackingUri": "http://mlflow:5000",
                                "registryUri": "http://mlflow:5000"}}
FULL_MODEL = {
    "name": "churn", "service": "svc", "displayName": "Churn", "description": "predicts churn",
    "algorithm": "xgboost",
    "mlFeatures": [{"name": "age", "dataType": "numerical", "description": "years",
                    "featureSources": [{"name": "age", "dataType": "integer",
                                        "fullyQualifiedName": "db.schema.users.age"}],
                    "featureAlgorithm": "bucketize"},
                   {"name": "plan", "dataType": "categorical"}],
    "mlHyperParameters": [{"name": "max_depth", "value": "6", "description": "tree depth"}],
    "target": "churned", "dashboard": "superset.churn_board",
    "mlStore": {"storage": "s3://models/churn", "imageRepository": "ecr/churn"},
    "server": "http://serving:8080/churn",
    "tags": [{"tagFQN": "PII.Sensitive", "source": "Classification", "labelType": "Manual",
              "state": "Confirmed"}],
    "owners": [{"id": "6e3b8d9c-1b2a-4c5d-9e8f-0a1b2c3d4e5f", "type": "user", "name": "ann"}],
    "extension": {"team": "growth"}, "sourceUrl": "http://git/churn",
    "domains": ["Marketing"], "sourceHash": "abc123",
}


@pytest.fixture
def om(client):
    created = client.post(SERVICES, json={"name": "svc", "serviceType": "Mlflow",
                                          "connection": MLFLOW_CONNECTION})
    assert created.status_code == 201, created.json
    return client


def test_handshake_answers_the_clients_version(client):
    answer = client.get(f"{V1}/system/version")
    assert answer.status_code == 200 and answer.json["version"].startswith("2.0.")


def test_service_create_read_and_upsert(om):
    got = om.get(f"{SERVICES}/name/svc")
    assert got.status_code == 200
    body = got.json
    assert (body["name"], body["fullyQualifiedName"], body["serviceType"], body["version"]) == (
        "svc", "svc", "Mlflow", 0.1)
    assert body["connection"] == MLFLOW_CONNECTION and body["deleted"] is False
    assert body["href"].endswith(f"{SERVICES}/{body['id']}")
    assert om.get(f"{SERVICES}/{body['id']}").json == body
    duplicate = om.post(SERVICES, json={"name": "svc", "serviceType": "Mlflow"})
    assert duplicate.status_code == 409 and duplicate.json == {"code": 409,
                                                               "message": "Entity already exists"}
    same = om.put(SERVICES, json={"name": "svc", "serviceType": "Mlflow"})
    assert (same.status_code, same.headers["X-OpenMetadata-Change"]) == (200, "entityNoChange")
    changed = om.put(SERVICES, json={"name": "svc", "serviceType": "Mlflow", "description": "d"})
    assert (changed.status_code, changed.headers["X-OpenMetadata-Change"]) == (200,
                                                                               "entityUpdated")
    assert (changed.json["version"], changed.json["description"]) == (0.2, "d")
    made = om.put(SERVICES, json={"name": "sk", "serviceType": "Sklearn"})
    assert (made.status_code, made.headers["X-OpenMetadata-Change"]) == (201, "entityCreated")
    listed = om.get(SERVICES).json
    assert [s["name"] for s in listed["data"]] == ["registry", "sk", "svc"]
    assert listed["paging"]["total"] == 3


def test_model_with_every_field_round_trips(om):
    created = om.post(MODELS, json=FULL_MODEL)
    assert created.status_code == 201, created.json
    body = created.json
    assert created.headers["Location"] == body["href"]
    assert body["fullyQualifiedName"] == "svc.churn" and body["version"] == 0.1
    for key in ("displayName", "description", "algorithm", "mlHyperParameters", "target",
                "mlStore", "server", "tags", "owners", "extension", "sourceUrl", "sourceHash"):
        assert body[key] == FULL_MODEL[key], key
    assert [f["fullyQualifiedName"] for f in body["mlFeatures"]] == ["svc.churn.age",
                                                                     "svc.churn.plan"]
    assert body["mlFeatures"][0]["featureSources"] == FULL_MODEL["mlFeatures"][0][
        "featureSources"]
    assert body["dashboard"]["type"] == "dashboard" and body["dashboard"][
        "fullyQualifiedName"] == "superset.churn_board"
    assert [d["fullyQualifiedName"] for d in body["domains"]] == ["Marketing"]
    assert body["service"] == {"id": om.get(f"{SERVICES}/name/svc").json["id"],
                               "type": "mlmodelService", "name": "svc",
                               "fullyQualifiedName": "svc", "deleted": False,
                               "href": body["service"]["href"]}
    assert body["serviceType"] == "Mlflow" and body["votes"] == {"upVotes": 0, "downVotes": 0}
    by_id = om.get(f"{MODELS}/{body['id']}?fields=owners,tags,followers,votes,extension")
    assert by_id.json == body
    assert om.get(f"{MODELS}/name/svc.churn?fields=owners").json == body
    assert om.get(f"{MODELS}/name/svc.churn?fields=colour").status_code == 400
    # The same model through MLflow: a registered model named churn.
    mlflow = om.get(f"{MLFLOW}/get?name=churn").json["registered_model"]
    assert mlflow["description"] == "predicts churn"


def test_dotted_names_are_quoted_in_fqns(om):
    om.post(SERVICES, json={"name": "team.svc", "serviceType": "Sklearn"})
    created = om.post(MODELS, json={"name": "model.v2", "service": '"team.svc"'})
    assert created.json["fullyQualifiedName"] == '"team.svc"."model.v2"'
    fqn = quote('"team.svc"."model.v2"', safe="")
    assert om.get(f"{MODELS}/name/{fqn}").json["name"] == "model.v2"
    assert om.get(f"{MODELS}/name/team.svc.model.v2").status_code == 404


@pytest.mark.parametrize("body, message", [
    ({"service": "svc"}, "name"),
    ({"name": "m"}, "service"),
    ({"name": "a::b", "service": "svc"}, "name"),
    ({"name": "x" * 257, "service": "svc"}, "name"),
    ({"name": 'say"hi', "service": "svc"}, "name"),
    ({"name": "m", "service": "svc", "domain": "Marketing"}, "domain"),
    ({"name": "m", "service": "svc", "mlFeatures": [{"name": "f", "dataType": "text"}]},
     "mlFeatures"),
    ({"name": "m", "service": "svc", "tags": [{"tagFQN": "PII.Sensitive"}]}, "tags"),
    ({"name": "m", "service": "svc", "owners": [{"id": "not-a-uuid", "type": "user"}]},
     "owners"),
    ({"name": "m", "service": "svc", "dashboard": {"id": "x", "type": "dashboard"}},
     "dashboard"),
    ({"name": "m/1", "service": "svc"}, "'/'"),
])
def test_bad_bodies_are_400_in_openmetadatas_shape_and_store_nothing(om, body, message):
    answer = om.post(MODELS, json=body)
    assert answer.status_code == 400, answer.json
    assert answer.json["code"] == 400 and message in answer.json["message"]
    assert om.get(MODELS).json["paging"]["total"] == 0


def test_unreadable_bodies_and_unknown_services(om):
    assert om.post(MODELS, data="{nope", content_type="application/json").json["code"] == 400
    assert om.post(MODELS, json=["a"]).json["code"] == 400
    missing = om.post(MODELS, json={"name": "m", "service": "ghost"})
    assert (missing.status_code, missing.json["code"]) == (404, 404)
    assert om.post(SERVICES, json={"name": "s", "serviceType": "Oracle"}).status_code == 400
    assert om.get(f"{MODELS}/{'0' * 8}-0000-4000-8000-{'0' * 12}").status_code == 404
    assert om.get(f"{MODELS}/name/svc.ghost").json == {
        "code": 404, "message": "mlmodel instance for svc.ghost not found"}
    assert om.get(f"{V1}/nothing-here").json["code"] == 404


def test_versions_minor_major_and_no_change(om):
    first = om.put(MODELS, json={"name": "m", "service": "svc", "algorithm": "xgb"})
    assert (first.status_code, first.headers["X-OpenMetadata-Change"]) == (201, "entityCreated")
    model_id = first.json["id"]
    minor = om.put(MODELS, json={"name": "m", "service": "svc", "algorithm": "xgb",
                                 "description": "first"})
    assert (minor.json["version"], minor.headers["X-OpenMetadata-Change"]) == (
        0.2, "entityUpdated")
    assert minor.json["changeDescription"] == {
        "fieldsAdded": [{"name": "description", "newValue": "first"}], "fieldsUpdated": [],
        "fieldsDeleted": [], "previousVersion": 0.1}
    same = om.put(MODELS, json={"name": "m", "service": "svc", "algorithm": "xgb"})
    assert (same.json["version"], same.headers["X-OpenMetadata-Change"]) == (0.2,
                                                                             "entityNoChange")
    major = om.put(MODELS, json={"name": "m", "service": "svc", "algorithm": "random-forest"})
    assert major.json["version"] == 1.2
    assert major.json["changeDescription"]["fieldsUpdated"] == [
        {"name": "algorithm", "oldValue": "xgb", "newValue": "random-forest"}]
    history = om.get(f"{MODELS}/{model_id}/versions").json
    assert history["entityType"] == "mlmodel"
    assert [json.loads(v)["version"] for v in history["versions"]] == [1.2, 0.2, 0.1]
    old = om.get(f"{MODELS}/{model_id}/versions/0.2").json
    assert (old["version"], old["algorithm"], old["description"]) == (0.2, "xgb", "first")
    assert om.get(f"{MODELS}/{model_id}/versions/0.5").status_code == 404
    assert om.get(f"{MODELS}/{model_id}/versions/abc").status_code == 400


def test_json_patch(om):
    model = om.post(MODELS, json={"name": "m", "service": "svc", "algorithm": "xgb",
                                  "mlHyperParameters": [{"name": "lr", "value": "0.1"}]}).json
    ops = [{"op": "add", "path": "/description", "value": "patched"},
           {"op": "replace", "path": "/mlHyperParameters/0/value", "value": "0.2"},
           {"op": "add", "path": "/tags/0", "value": {"tagFQN": "Tier.Tier1",
                                                      "source": "Classification",
                                                      "labelType": "Manual",
                                                      "state": "Confirmed"}}]
    patched = om.patch(f"{MODELS}/{model['id']}", data=json.dumps(ops), content_type=PATCH)
    assert patched.status_code == 200, patched.json
    body = patched.json
    assert (body["description"], body["mlHyperParameters"][0]["value"], body["version"]) == (
        "patched", "0.2", 0.2)
    assert [t["tagFQN"] for t in body["tags"]] == ["Tier.Tier1"]
    removed = om.patch(f"{MODELS}/name/svc.m", content_type=PATCH,
                       data=json.dumps([{"op": "remove", "path": "/description"}]))
    assert "description" not in removed.json and removed.json["version"] == 0.3
    for bad in ([{"op": "replace", "path": "/name", "value": "other"}],
                [{"op": "remove", "path": "/nothing"}], [{"op": "jump"}],
                [{"op": "add", "path": "/colour", "value": "red"}],
                [{"op": "replace", "path": "/algorithm", "value": 5}]):
        answer = om.patch(f"{MODELS}/{model['id']}", data=json.dumps(bad), content_type=PATCH)
        assert answer.status_code == 400, bad
    assert om.patch(f"{MODELS}/{model['id']}", json=ops).status_code == 400  # not a JSON patch
    assert om.get(f"{MODELS}/{model['id']}").json["version"] == 0.3


def test_bulk_with_a_partial_failure(om):
    answer = om.put(f"{MODELS}/bulk?async=false", json=[
        {"name": "b1", "service": "svc"}, {"name": "b2", "service": "ghost"},
        {"name": "b::3", "service": "svc"}, {"name": "b4", "service": "svc"}])
    result = answer.json
    assert (answer.status_code, result["status"]) == (200, "partialSuccess")
    assert (result["numberOfRowsProcessed"], result["numberOfRowsPassed"],
            result["numberOfRowsFailed"]) == (4, 2, 2)
    assert [r["request"]["name"] for r in result["successRequest"]] == ["b1", "b4"]
    assert [r["status"] for r in result["failedRequest"]] == [404, 400]
    assert [m["name"] for m in om.get(MODELS).json["data"]] == ["b1", "b4"]
    everything = om.put(f"{SERVICES}/bulk?async=false", json=[
        {"name": "s1", "serviceType": "Sklearn"}, {"name": "s2", "serviceType": "VertexAI"}])
    assert everything.json["status"] == "success"
    assert om.put(f"{MODELS}/bulk", json=[{"name": "b::5", "service": "svc"}]).json[
        "status"] == "failure"


def test_paging_across_pages_in_both_directions(om):
    names = [f"m{i}" for i in range(7)]
    for name in names:
        om.post(MODELS, json={"name": name, "service": "svc"})
    seen, after, pages = [], None, []
    while True:
        page = om.get(f"{MODELS}?limit=3" + (f"&after={after}" if after else "")).json
        assert page["paging"]["total"] == 7
        pages.append(page)
        seen += [m["name"] for m in page["data"]]
        after = page["paging"].get("after")
        if not after:
            break
    assert seen == names and len(pages) == 3
    assert "before" not in pages[0]["paging"]
    back = om.get(f"{MODELS}?limit=3&before={pages[2]['paging']['before']}").json
    assert [m["name"] for m in back["data"]] == ["m3", "m4", "m5"]
    first = om.get(f"{MODELS}?limit=3&before={back['paging']['before']}").json
    assert [m["name"] for m in first["data"]] == ["m0", "m1", "m2"]
    assert "before" not in first["paging"]
    assert om.get(f"{MODELS}?limit=0").json == {"data": [], "paging": {"total": 7}}
    assert om.get(f"{MODELS}?after=garbage").status_code == 400
    assert om.get(f"{MODELS}?limit=-1").status_code == 400
    assert om.get(f"{MODELS}?service=svc&limit=100").json["paging"]["total"] == 7


def test_soft_delete_restore_hard_delete(om):
    model = om.post(MODELS, json={"name": "m", "service": "svc"}).json
    deleted = om.delete(f"{MODELS}/{model['id']}")
    assert (deleted.status_code, deleted.json["deleted"], deleted.json["version"]) == (
        200, True, 0.2)
    assert om.get(f"{MODELS}/{model['id']}").status_code == 404
    assert om.get(f"{MODELS}/{model['id']}?include=deleted").json["deleted"] is True
    assert om.get(MODELS).json["data"] == []
    assert [m["name"] for m in om.get(f"{MODELS}?include=all").json["data"]] == ["m"]
    restored = om.put(f"{MODELS}/restore", json={"id": model["id"]})
    assert (restored.json["deleted"], restored.json["version"]) == (False, 0.3)
    gone = om.delete(f"{MODELS}/name/svc.m?hardDelete=true")
    assert gone.status_code == 200
    assert om.get(f"{MODELS}/{model['id']}?include=all").status_code == 404
    assert om.get(f"{MLFLOW}/get?name=m").status_code == 404  # the registered model too
    assert om.get(f"{MODELS}?include=bogus").status_code == 400


def test_service_delete_needs_recursive_when_not_empty(om):
    om.post(MODELS, json={"name": "m1", "service": "svc"})
    om.post(MODELS, json={"name": "m2", "service": "svc"})
    refused = om.delete(f"{SERVICES}/name/svc")
    assert (refused.status_code, refused.json["code"]) == (400, 400)
    assert "not empty" in refused.json["message"]
    soft = om.delete(f"{SERVICES}/name/svc?recursive=true")
    assert soft.json["deleted"] is True
    assert om.get(MODELS).json["data"] == []
    service_id = soft.json["id"]
    om.put(f"{SERVICES}/restore", json={"id": service_id})
    assert [m["name"] for m in om.get(MODELS).json["data"]] == ["m1", "m2"]
    assert om.delete(f"{SERVICES}/{service_id}?hardDelete=true&recursive=true").status_code == 200
    assert om.get(f"{SERVICES}/{service_id}?include=all").status_code == 404
    assert om.get(f"{MLFLOW}/search").json == {}  # the models are gone from MLflow too


def test_mlflow_models_live_in_the_registry_service(om):
    om.post(f"{MLFLOW}/create", json={"name": "from-mlflow", "description": "mlflow's"})
    listed = om.get(f"{MODELS}?service=registry").json["data"]
    assert [(m["fullyQualifiedName"], m["serviceType"], m["description"]) for m in listed] == [
        ("registry.from-mlflow", "Mlflow", "mlflow's")]
    assert om.get(f"{SERVICES}/name/registry").json["serviceType"] == "Mlflow"
    assert om.delete(f"{SERVICES}/name/registry").status_code == 400
    assert om.post(SERVICES, json={"name": "registry", "serviceType": "Mlflow"}).status_code == 409
    # Written through OpenMetadata, it keeps its id and starts its history.
    updated = om.put(MODELS, json={"name": "from-mlflow", "service": "registry",
                                   "algorithm": "lightgbm"})
    assert updated.json["id"] == listed[0]["id"] and updated.json["version"] == 1.1
    # One name space per workspace: another service cannot take the name.
    taken = om.post(MODELS, json={"name": "from-mlflow", "service": "svc"})
    assert taken.status_code == 409
    assert om.put(MODELS, json={"name": "from-mlflow", "service": "svc"}).status_code == 409


def test_workspaces_are_chosen_by_the_path(om):
    assert om.post("/api/3.0/mlflow/workspaces", json={"name": "team-a"}).status_code == 201
    root = "/workspaces/team-a/api/v1"
    assert om.get(f"{root}/system/version").status_code == 200
    assert om.post(f"{root}/services/mlmodelServices",
                   json={"name": "svc", "serviceType": "Sklearn"}).status_code == 201
    assert om.post(f"{root}/mlmodels", json={"name": "m", "service": "svc"}).status_code == 201
    assert om.get(MODELS).json["data"] == []  # default's catalog is another
    assert om.get(f"{MLFLOW}/get?name=m", headers={"X-MLFLOW-WORKSPACE": "team-a"}).json[
        "registered_model"]["name"] == "m"
    assert om.get("/workspaces/ghost/api/v1/mlmodels").json["code"] == 404


def test_retry_tokens_and_request_ids(om):
    headers = {"opc-retry-token": "om-create-1"}
    first = om.post(MODELS, json={"name": "m", "service": "svc"}, headers=headers)
    again = om.post(MODELS, json={"name": "m", "service": "svc"}, headers=headers)
    assert (first.status_code, again.status_code) == (201, 201)
    assert again.json == first.json and first.headers["opc-request-id"]


@pytest.fixture
def secure(database_url):
    app = make_app(database_url, AUTH="required", AUTH_CACHE_SECONDS=0)
    tokens = {}
    with app.app_context(), database.connection_context():
        for name, role in (("writer", "writer"), ("reader", "reader"), ("outsider", None)):
            principals.create(name)
            tokens[name] = {"Authorization": f"Bearer {principals.issue_token(name)}"}
            if role:
                principals.grant(name, "default", role)
    yield app.test_client(), tokens
    database.close()


def test_authentication_and_roles(secure):
    client, who = secure
    assert client.get(f"{V1}/system/version").status_code == 200  # the handshake is open
    anonymous = client.get(MODELS)
    assert (anonymous.status_code, anonymous.json["code"]) == (401, 401)
    assert client.get(MODELS, headers={"Authorization": "Bearer nope"}).status_code == 401
    service = {"name": "svc", "serviceType": "Mlflow"}
    assert client.post(SERVICES, json=service, headers=who["writer"]).status_code == 201
    refused = client.post(MODELS, json={"name": "m", "service": "svc"}, headers=who["reader"])
    assert (refused.status_code, refused.json["code"]) == (403, 403)
    assert client.get(SERVICES, headers=who["reader"]).status_code == 200
    assert client.get(SERVICES, headers=who["outsider"]).status_code == 403
    made = client.post(MODELS, json={"name": "m", "service": "svc"}, headers=who["writer"])
    assert made.json["updatedBy"] == "writer"
    # Another workspace, named in the path: outsiders cannot tell it exists.
    created = client.post("/apis/entities/v2/workspaces", json={"name": "writers-own"},
                          headers=who["writer"])
    assert created.status_code == 201
    own = "/workspaces/writers-own/api/v1/mlmodels"
    assert client.get(own, headers=who["writer"]).status_code == 200
    for name in ("reader", "outsider"):
        hidden = client.get(own, headers=who[name])
        assert (hidden.status_code, hidden.json["code"]) == (404, 404)
        assert client.get("/workspaces/no-such/api/v1/mlmodels",
                          headers=who[name]).status_code == 404

"""The MLflow face over HTTP (Flask's test client): routes, transport rules and error bodies."""
import json

import pytest

from tests.conftest import Api


def test_both_roots_serve_the_same_registry(api, client):
    api.model("m")
    ajax = Api(client, "/ajax-api/2.0/mlflow")
    assert ajax.get("registered-models/get", query_string={"name": "m"}).json[
        "registered_model"]["name"] == "m"


def test_shapes_omit_empty_fields_like_mlflow(api):
    model = api.model("m")
    assert set(model) == {"name", "creation_timestamp", "last_updated_timestamp"}
    version = api.version("m")
    assert version["version"] == "1" and version["status"] == "READY"
    assert (version["description"], version["run_id"], version["run_link"]) == ("", "", "")
    assert "tags" not in version and "aliases" not in version
    got = api.get("registered-models/get", query_string={"name": "m"}).json["registered_model"]
    assert got["latest_versions"][0]["version"] == "1"
    assert "aliases" not in got["latest_versions"][0]


def test_get_never_reads_a_body(api):
    # MLflow's server reads a GET's JSON body when there is no query string; the gateway does
    # not (no signature or cache covers a GET's body), so the name is missing.
    api.model("m")
    response = api.get("registered-models/get", json={"name": "m"})
    assert response.status_code == 400
    assert "Missing value for required parameter 'name'" in response.json["message"]


def test_repeated_query_keys_are_lists(api):
    api.model("m")
    api.version("m")
    api.post("model-versions/transition-stage",
             json={"name": "m", "version": "1", "stage": "Staging",
                   "archive_existing_versions": False})
    api.version("m")
    response = api.get("registered-models/get-latest-versions?name=m&stages=staging&stages=None")
    assert [v["version"] for v in response.json["model_versions"]] == ["1", "2"]
    response = api.post("registered-models/get-latest-versions", json={"name": "m",
                                                                        "stages": ["Production"]})
    assert response.status_code == 200 and response.json == {}


def test_search_paging_over_http(api):
    for name in ("a", "b", "c"):
        api.model(name)
    first = api.get("registered-models/search", query_string={"max_results": 2}).json
    assert [m["name"] for m in first["registered_models"]] == ["a", "b"]
    second = api.get("registered-models/search", query_string={
        "max_results": 2, "page_token": first["next_page_token"]}).json
    assert [m["name"] for m in second["registered_models"]] == ["c"]
    assert "next_page_token" not in second
    assert api.get("model-versions/search").json == {}


def test_void_answers_are_empty_objects(api):
    api.model("m")
    for method, path, body in [("post", "registered-models/set-tag", {"key": "k", "value": "v"}),
                               ("delete", "registered-models/delete-tag", {"key": "k"}),
                               ("delete", "registered-models/delete", {})]:
        response = getattr(api, method)(path, json={"name": "m", **body})
        assert (response.status_code, response.json) == (200, {})


@pytest.mark.parametrize("path, body, status, code, message", [
    ("registered-models/create", {}, 400, "INVALID_PARAMETER_VALUE",
     "Missing value for required parameter 'name'. See the API docs for more information about "
     "request parameters."),
    ("registered-models/create", {"name": ""}, 400, "INVALID_PARAMETER_VALUE",
     "Missing value for required parameter 'name'."),
    ("registered-models/create", {"name": 5}, 400, "INVALID_PARAMETER_VALUE",
     "Invalid value 5 for parameter 'name' supplied:  Hint: Value was of type 'int'."),
    ("registered-models/create", {"name": "m", "tags": "x"}, 400, "INVALID_PARAMETER_VALUE",
     "Invalid value \"x\" for parameter 'tags' supplied"),
    ("registered-models/create", {"name": "m", "tags": [{"key": "k", "value": 3}]}, 400,
     "INVALID_PARAMETER_VALUE", "for parameter 'tags' supplied"),
    ("model-versions/create", {"name": "m"}, 400, "INVALID_PARAMETER_VALUE",
     "Missing value for required parameter 'source'."),
    ("model-versions/create", {"name": "nope", "source": "s3://x/m"}, 404,
     "RESOURCE_DOES_NOT_EXIST", "Registered Model with name=nope not found"),
    ("model-versions/transition-stage", {"name": "m", "version": 1, "stage": "Staging"}, 400,
     "INVALID_PARAMETER_VALUE", "Invalid value 1 for parameter 'version' supplied"),
    ("registered-models/search", {"max_results": 1001}, 400, "INVALID_PARAMETER_VALUE",
     "It must be at most 1000, but got value 1001"),
])
def test_bad_input_gets_mlflow_errors(api, path, body, status, code, message):
    if path.endswith("search"):
        response = api.get(path, query_string=body)
    else:
        response = api.post(path, json=body)
    assert response.status_code == status
    assert response.json["error_code"] == code
    assert message in response.json["message"]


def test_duplicate_model_is_400_resource_already_exists(api):
    api.model("m")
    response = api.post("registered-models/create", json={"name": "m"})
    assert response.status_code == 400
    assert response.json == {"error_code": "RESOURCE_ALREADY_EXISTS",
                             "message": "Registered Model (name=m) already exists."}


def test_missing_alias_is_400_not_404(api):
    api.model("m")
    response = api.get("registered-models/alias", query_string={"name": "m", "alias": "x"})
    assert response.status_code == 400
    assert response.json["message"] == "Registered model alias x not found."


@pytest.mark.parametrize("data, content_type, message", [
    ("{bad", "application/json", "Malformed JSON request body"),
    ("[1, 2]", "application/json", "must be a JSON object"),
    (b"\xff\xfe{", "application/json", "Malformed JSON request body"),
    ("[" * 100000 + "]" * 100000, "application/json", "Malformed JSON request body"),
    ('{"name": "m"}', "text/plain", "Content-Type must be one of ['application/json']"),
    ('{"name": "m"}', None, "Content-Type header is missing"),
])
def test_malformed_bodies_are_400_and_write_nothing(api, data, content_type, message):
    headers = {"Content-Type": content_type} if content_type else {}
    response = api.post("registered-models/create", data=data, headers=headers)
    assert response.status_code == 400
    assert message in response.json["message"]
    assert api.get("registered-models/search").json == {}


def test_double_encoded_json_is_accepted(api):
    response = api.post("registered-models/create", data=json.dumps(json.dumps({"name": "m"})),
                        content_type="application/json")
    assert response.json["registered_model"]["name"] == "m"


def test_unknown_routes_and_methods_answer_json(client, api):
    response = client.get("/api/2.0/mlflow/nope")
    assert response.status_code == 404 and response.json["error_code"] == "ENDPOINT_NOT_FOUND"
    response = client.get("/")
    assert response.status_code == 404 and response.is_json
    response = api.put("registered-models/create", json={"name": "m"})
    assert response.status_code == 405 and response.json["error_code"] == "ENDPOINT_NOT_FOUND"
    assert "POST" in response.headers["Allow"]


def test_oversize_body_is_413_before_parsing(app, api):
    app.config["MAX_CONTENT_LENGTH"] = 1000
    response = api.post("registered-models/create", json={"name": "m", "description": "x" * 2000})
    assert response.status_code == 413
    assert response.json["error_code"] == "INVALID_PARAMETER_VALUE"
    assert api.get("registered-models/search").json == {}


def test_health_version_and_server_info(client):
    assert client.get("/health").data == b"OK"
    assert client.get("/version").data == b"3.17.2"
    assert client.get("/api/3.0/mlflow/server-info").json["workspaces_enabled"] is True


def test_workspace_header_scopes_the_registry(api, client):
    assert client.post("/api/3.0/mlflow/workspaces", json={"name": "team-a"}).status_code == 201
    api.model("m", description="default")
    api.post("registered-models/create", json={"name": "m", "description": "team"},
             headers={"X-MLFLOW-WORKSPACE": "team-a"})
    got = api.get("registered-models/get", query_string={"name": "m"},
                  headers={"X-MLFLOW-WORKSPACE": "team-a"}).json["registered_model"]
    assert got["description"] == "team"
    assert api.get("registered-models/get", query_string={"name": "m"}).json[
        "registered_model"]["description"] == "default"


@pytest.mark.parametrize("header, status, message", [
    ("ghost", 404, "Workspace 'ghost' not found"),
    ("Bad_Name", 400, "must match the pattern"),
    ("x", 400, "must be between 2 and 63 characters"),
])
def test_bad_workspace_headers(api, header, status, message):
    response = api.get("registered-models/search", headers={"X-MLFLOW-WORKSPACE": header})
    assert response.status_code == status and message in response.json["message"]


def test_workspace_crud(client):
    root = "/api/3.0/mlflow/workspaces"
    created = client.post(root, json={"name": "team-a", "description": "A"})
    assert (created.status_code, created.json) == (
        201, {"workspace": {"name": "team-a", "description": "A"}})
    assert client.post(root, json={"name": "team-a"}).json["error_code"] == (
        "RESOURCE_ALREADY_EXISTS")
    assert [w["name"] for w in client.get(root).json["workspaces"]] == ["default", "system",
                                                                   "team-a"]
    updated = client.patch(f"{root}/team-a", json={"default_artifact_root": "s3://a/m"})
    assert updated.json["workspace"] == {"name": "team-a", "description": "A",
                                         "default_artifact_root": "s3://a/m"}
    assert client.patch(f"{root}/team-a", json={}).status_code == 400
    assert client.delete(f"{root}/team-a").status_code == 204
    assert client.get(f"{root}/team-a").status_code == 404


@pytest.mark.parametrize("method, path, message", [
    ("post", "", "The 'default' workspace is reserved and cannot be created"),
    ("delete", "/default", "The 'default' workspace is reserved and cannot be deleted"),
    ("delete", "/team-a?mode=SOMETIMES", "Invalid deletion mode 'SOMETIMES'"),
    ("post", "", "Workspace name 'api' is reserved"),
])
def test_workspace_rules(client, method, path, message):
    client.post("/api/3.0/mlflow/workspaces", json={"name": "team-a"})
    body = {"name": "api" if "api" in message else "default"}
    response = getattr(client, method)(f"/api/3.0/mlflow/workspaces{path}", json=body)
    assert response.status_code == 400 and message in response.json["message"]


def test_workspace_delete_modes(client, api):
    root = "/api/3.0/mlflow/workspaces"
    team = {"X-MLFLOW-WORKSPACE": "team-a"}
    client.post(root, json={"name": "team-a"})
    api.post("registered-models/create", json={"name": "m"}, headers=team)
    restricted = client.delete(f"{root}/team-a")
    assert restricted.status_code == 409 and "still contains 1" in restricted.json["message"]
    api.model("m")
    clash = client.delete(f"{root}/team-a?mode=SET_DEFAULT")
    assert clash.status_code == 409 and "m" in clash.json["message"]
    api.delete("registered-models/delete", json={"name": "m"})
    assert client.delete(f"{root}/team-a?mode=SET_DEFAULT").status_code == 204
    assert api.get("registered-models/get", query_string={"name": "m"}).status_code == 200
    client.post(root, json={"name": "team-b"})
    api.post("registered-models/create", json={"name": "n"}, headers={"X-MLFLOW-WORKSPACE": "team-b"})
    assert client.delete(f"{root}/team-b?mode=CASCADE").status_code == 204
    client.post(root, json={"name": "team-b"})
    assert api.get("registered-models/search", headers={"X-MLFLOW-WORKSPACE": "team-b"}).json == {}


JUNK = [None, "", 0, -1, 2**63, 1.5, True, [], {}, "x" * 300, "../..", "\u0000", "名前", [1, {}]]
ROUTES = [
    ("post", "registered-models/create"), ("get", "registered-models/get"),
    ("patch", "registered-models/update"), ("post", "registered-models/rename"),
    ("delete", "registered-models/delete"), ("get", "registered-models/search"),
    ("post", "registered-models/get-latest-versions"), ("post", "registered-models/set-tag"),
    ("delete", "registered-models/delete-tag"), ("post", "registered-models/alias"),
    ("delete", "registered-models/alias"), ("get", "registered-models/alias"),
    ("post", "model-versions/create"), ("get", "model-versions/get"),
    ("patch", "model-versions/update"), ("delete", "model-versions/delete"),
    ("get", "model-versions/search"), ("post", "model-versions/transition-stage"),
    ("get", "model-versions/get-download-uri"), ("post", "model-versions/set-tag"),
    ("delete", "model-versions/delete-tag"),
]
FIELDS = ["name", "new_name", "version", "source", "key", "value", "alias", "stage", "tags",
          "stages", "filter", "max_results", "order_by", "page_token", "description", "run_id",
          "archive_existing_versions"]


@pytest.mark.parametrize("method, path", ROUTES)
def test_no_junk_input_produces_a_500(api, method, path):
    api.model("m")
    api.version("m")
    for junk in JUNK:
        for field in FIELDS:
            body = {"name": "m", "version": "1", "source": "s3://a/m", "key": "k", "alias": "a",
                    "stage": "Staging", field: junk}
            response = getattr(api, method)(path, json=body)
            assert response.status_code < 500, (field, junk, response.json)
            assert response.is_json


def test_latest_versions_come_in_mlflow_s_order(api):
    # MLflow 3.17.2 on SQLite, v1 Staging, v2 None, v3 Production: get and get-latest-versions
    # list the stages in the order of their first version (1, 2, 3); search lists them by
    # stage name (None, Production, Staging: 2, 3, 1).
    api.model("m")
    for number in range(1, 5):
        api.version("m", f"s3://bucket/v{number}")
    for number, stage in (("1", "Staging"), ("3", "Production"), ("4", "Staging")):
        assert api.post("model-versions/transition-stage", json={
            "name": "m", "version": number, "stage": stage,
            "archive_existing_versions": False}).status_code == 200
    # v1 Staging, v2 None, v3 Production, v4 Staging: Staging is first seen at v1, holds v4.
    got = api.get("registered-models/get", query_string={"name": "m"}).json["registered_model"]
    assert [v["version"] for v in got["latest_versions"]] == ["4", "2", "3"]
    latest = api.post("registered-models/get-latest-versions", json={"name": "m"}).json
    assert [v["version"] for v in latest["model_versions"]] == ["4", "2", "3"]
    asked = api.post("registered-models/get-latest-versions",
                     json={"name": "m", "stages": ["Production", "Staging"]}).json
    assert [v["version"] for v in asked["model_versions"]] == ["4", "3"]
    found = api.get("registered-models/search").json["registered_models"][0]
    assert [v["version"] for v in found["latest_versions"]] == ["2", "3", "4"]

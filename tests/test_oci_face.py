"""The OCI AI Data Platform face through Flask's test client."""
import pytest

from gateway.services.workspaces import platform_workspace
from tests.conftest import PLATFORM, Api, oci_root


def test_platform_model_gets_versions_through_two_workspace_paths(client, oci):
    oci.model("m")
    first = Api(client, oci_root(workspace="ws-a")).version("m", "s3://a/m")
    second = Api(client, oci_root(workspace="ws-b")).version("m", "s3://b/m")
    assert (first["version"], first["workspace_key"]) == ("1", "ws-a")
    assert (second["version"], second["workspace_key"]) == ("2", "ws-b")
    got = oci.get("model-versions/get", query_string={"name": "m", "version": "1"}).json
    assert got["model_version"]["workspace_key"] == "ws-a"


def test_two_platforms_never_see_each_other(client):
    one, two = Api(client, oci_root("ocid1.p.one")), Api(client, oci_root("ocid1.p.two"))
    one.model("m", description="one")
    two.model("m", description="two")
    one.version("m")
    assert two.get("registered-models/get", query_string={"name": "m"}).json[
        "registered_model"]["description"] == "two"
    assert "latest_versions" not in two.get("registered-models/get",
                                            query_string={"name": "m"}).json["registered_model"]
    assert two.get("model-versions/get", query_string={"name": "m", "version": "1"}
                   ).status_code == 404


def test_platform_registry_is_an_mlflow_workspace(api, oci):
    oci.model("m", description="via oci")
    workspace = platform_workspace(PLATFORM)
    got = api.get("registered-models/get", query_string={"name": "m"},
                  headers={"X-MLFLOW-WORKSPACE": workspace})
    assert got.json["registered_model"]["description"] == "via oci"
    assert api.get("registered-models/get", query_string={"name": "m"}).status_code == 404


def test_reads_of_an_unknown_platform_create_nothing(client, api):
    ghost = Api(client, oci_root("ocid1.p.ghost"))
    assert ghost.get("registered-models/search").json == {}
    workspaces = client.get("/api/3.0/mlflow/workspaces").json["workspaces"]
    assert [w["name"] for w in workspaces] == ["default", "system"]


@pytest.mark.parametrize("method, path, body, status, code", [
    ("post", "registered-models/create", {}, 400, "MissingParameter"),
    ("post", "registered-models/create", {"name": 5}, 400, "InvalidParameter"),
    ("get", "registered-models/get?name=nope", None, 404, "NotAuthorizedOrNotFound"),
    ("post", "model-versions/create", {"name": "nope", "source": "s3://a/m"}, 404,
     "NotAuthorizedOrNotFound"),
    ("post", "model-versions/create", {"name": "m", "source": "s3://a/m", "model_id": "x" * 37},
     400, "InvalidParameter"),
    ("post", "model-versions/create", {"name": "m", "source": "s3://a/m",
                                       "tags": [{"key": f"k{i}", "value": "v"} for i in range(21)]},
     400, "InvalidParameter"),
    ("post", "model-versions/create", {"name": "m" * 256, "source": "s3://a/m"}, 400,
     "InvalidParameter"),
    ("get", "nope", None, 404, "NotFound"),
    ("get", "registered-models/create", None, 405, "MethodNotAllowed"),
])
def test_errors_have_oci_bodies_with_mlflow_codes(oci, method, path, body, status, code):
    oci.model("m")
    response = getattr(oci, method)(path, json=body) if body is not None else getattr(
        oci, method)(path)
    assert response.status_code == status
    assert response.json["code"] == code
    assert response.json["message"] and response.json["error_code"]
    assert response.headers["opc-request-id"]


def test_malformed_json_is_cannot_parse_request(oci):
    response = oci.post("registered-models/create", data="{", content_type="application/json")
    assert (response.status_code, response.json["code"]) == (400, "CannotParseRequest")


def test_duplicate_model_name_is_409_with_mlflow_code(oci):
    oci.model("m")
    response = oci.post("registered-models/create", json={"name": "m"})
    assert response.status_code == 409
    assert response.json == {"code": "Conflict",
                             "message": "Registered Model (name=m) already exists.",
                             "error_code": "RESOURCE_ALREADY_EXISTS"}


def test_oci_post_verbs(oci):
    oci.model("m")
    oci.version("m")
    oci.post("registered-models/set-tag", json={"name": "m", "key": "k", "value": "v"})
    assert oci.post("registered-models/update", json={"name": "m", "description": "d"}
                    ).json["registered_model"]["description"] == "d"
    assert oci.post("model-versions/update", json={"name": "m", "version": "1",
                                                   "description": "vd"}
                    ).json["model_version"]["description"] == "vd"
    assert oci.post("registered-models/delete-tag", json={"name": "m", "key": "k"}).json == {}
    assert oci.post("model-versions/delete", json={"name": "m", "version": "1"}).json == {}
    assert oci.post("registered-models/delete", json={"name": "m"}).json == {}
    assert oci.get("registered-models/get", query_string={"name": "m"}).status_code == 404


def test_dh_user_principal_is_recorded(oci):
    headers = {"dh-user-principal": "alice@example.com"}
    model = oci.post("registered-models/create", json={"name": "m"}, headers=headers).json
    version = oci.post("model-versions/create", json={"name": "m", "source": "s3://a/m"},
                       headers=headers).json
    assert model["registered_model"]["user_id"] == "alice@example.com"
    assert version["model_version"]["user_id"] == "alice@example.com"


@pytest.mark.parametrize("path_platform, workspace", [
    ("x" * 501, None), ("ocid1.p", " "), ("ocid1.p", "k" * 256)])
def test_bad_path_parameters_are_400(client, path_platform, workspace):
    response = client.get(oci_root(path_platform, workspace) + "/registered-models/search")
    assert (response.status_code, response.json["code"]) == (400, "InvalidParameter")


def test_health_and_version_under_mlops(client):
    root = f"/20260430/aiDataPlatforms/{PLATFORM}/mlops"
    assert client.get(f"{root}/health").data == b"OK"
    assert client.get(f"{root}/api/3.0/mlflow/server-info").json["workspaces_enabled"] is True


@pytest.mark.parametrize("body", [
    {"name": "m", "source": "s3://b/m"},
    {"name": "m", "source": "s3://b/m", "run_id": None, "description": None, "other": 1},
    {"name": "m" * 255, "source": "s" * 500, "run_id": "r" * 32, "model_id": "i" * 36},
    {"name": "m", "source": "s3://b/m", "tags": []},
    {"name": "m" * 256, "source": "s3://b/m"}, {"name": "", "source": "s3://b/m"},
    {"name": None, "source": "s3://b/m"}, {"name": 7, "source": "s3://b/m"},
    {"name": "m\x00", "source": "s3://b/m"}, {"name": "m", "source": "s3://b/m", "run_id": ""},
    {"name": "m", "source": "s3://b/m", "description": "d" * 5001},
    {"name": "m", "source": "s3://b/m", "tags": [{"key": "k", "value": "v"}]},
    {"name": "m", "source": "s3://b/m", "tags": [{"key": "k"}] * 21},
])
def test_the_quick_look_at_oci_limits_never_passes_what_the_schema_refuses(body):
    from marshmallow import ValidationError
    from gateway.faces.oci.schemas import create_model_version_details, plainly_within_limits
    try:
        create_model_version_details.load(body)
        valid = True
    except ValidationError:
        valid = False
    quick = plainly_within_limits(body)
    assert not quick or valid  # a quick pass is always a schema pass
    if "tags" not in body or not body["tags"]:
        assert quick == valid  # and without tags it decides exactly as the schema does


def test_oci_limits_on_a_version_create_apply_on_both_roots(client, oci):
    """CreateModelVersionDetails: OCI's own limits, checked before MLflow's view runs."""
    oci.model("m")
    long_run = {"name": "m", "source": "s3://b/m", "run_id": "r" * 33}
    for root in (oci, Api(client, oci_root(workspace="ws"))):
        answer = root.post("model-versions/create", json=long_run)
        assert answer.status_code == 400, answer.json
        assert (answer.json["code"], answer.json["message"]) == (
            "InvalidParameter", "Invalid CreateModelVersionDetails.run_id: "
                                "['Length must be between 1 and 32.']")
    assert oci.get("model-versions/get", query_string={"name": "m", "version": "1"}
                   ).status_code == 404  # nothing half-made

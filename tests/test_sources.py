"""Model-version sources checked as MLflow 3.17.2's server checks them, on the MLflow and OCI
faces (the messages are MLflow's, from mlflow/server/handlers.py)."""
import pytest

from tests.conftest import MLFLOW_ROOT, Api, make_app, oci_root

ABSOLUTE = ("an absolute path must be provided without relative path references present. "
            "Please provide an absolute path.")
RUN_ID = "The run_id request parameter must identify the resource that contains the source."
MODEL_ID = "The model_id request parameter must identify the resource that contains the source."
LOCAL = ("To use a local path as a model version source, the run_id request parameter has to be "
         "specified and the local path has to be contained within the artifact directory of the "
         "run specified by the run_id.")
REGISTRY = "Registered model sources must use the active model registry."

REFUSED = [
    ("s3://x", {}, ABSOLUTE),
    ("s3://x/", {}, ABSOLUTE),
    ("s3://bucket/models/../other", {}, ABSOLUTE),
    ("s3://bucket/models/%2e%2e/other", {}, ABSOLUTE),
    ("s3://bucket/models/%252e%252e/other", {}, ABSOLUTE),
    ("gs://bucket/a/./b", {}, ABSOLUTE),
    ("mlflow-artifacts:/models/../../etc", {}, ABSOLUTE),
    ("runs:/run_id/model", {"run_id": "run_id_1"}, RUN_ID),
    ("runs:/abc/model", {}, RUN_ID),
    ("runs://host/abc/model", {"run_id": "abc"}, RUN_ID),
    ("/srv/models/m1", {}, LOCAL),
    ("file:///srv/models/m1", {}, LOCAL),
    ("relative/path", {}, LOCAL),
    ("/srv/models/m1", {"run_id": "abc"}, RUN_ID),  # no tracking store to find the run in
    ("mlflow-artifacts:/models", {}, RUN_ID),
    ("mlflow-artifacts:/models", {"run_id": "abc"}, RUN_ID),
    ("models://otherhost/m/1", {}, REGISTRY),
    ("models:/m-0123abc", {}, MODEL_ID),
    ("models:/m-0123abc", {"model_id": "m-other"}, MODEL_ID),
    ("runs:/abc/model", {"model_id": "m-1"}, MODEL_ID),
    ("https://storage.example.com/models/m1", {}, "'source' cannot use the 'https' scheme"),
    ("http://host:8080/api/2.0/mlflow-artifacts/artifacts/../../x", {},
     "'source' cannot use the 'http' scheme"),
    ("mlflow-artifacts://host/models", {}, "'source' cannot use the 'mlflow-artifacts' scheme"),
    ("ftp://files.example.com/m", {}, "'source' cannot use the 'ftp' scheme"),
]
ACCEPTED = [
    ("s3://bucket/models/m1", {}),
    ("gs://bucket/m", {}),
    ("dbfs:/databricks/models/m", {}),
    ("oci://bucket@namespace/models/m1", {}),
    ("runs:/abc/model", {"run_id": "abc"}),
    ("models:/m-0123abc", {"model_id": "m-0123abc"}),
    ("models:/m/1", {}),
]
FACES = {"mlflow": MLFLOW_ROOT, "oci": oci_root("ocid1.p..sources")}


@pytest.fixture(params=sorted(FACES))
def face(request, client):
    api = Api(client, FACES[request.param])
    api.model("m")
    api.version("m", "s3://bucket/first")
    return request.param, api


def _create(api, source, extra):
    return api.post("model-versions/create", json={"name": "m", "source": source, **extra})


@pytest.mark.parametrize(("source", "extra", "message"), REFUSED)
def test_sources_mlflow_refuses_are_refused_with_its_message(face, source, extra, message):
    name, api = face
    answer = _create(api, source, extra)
    assert answer.status_code == 400, answer.json
    assert answer.json["error_code"] == "INVALID_PARAMETER_VALUE"
    if name == "oci":
        assert answer.json["code"] == "InvalidParameter"
    assert message in answer.json["message"]
    # Nothing was stored: the next version is still number 2.
    assert api.version("m", "s3://bucket/next")["version"] == "2"


@pytest.mark.parametrize(("source", "extra"), ACCEPTED)
def test_sources_mlflow_accepts_are_stored(face, source, extra):
    _, api = face
    answer = _create(api, source, extra)
    assert answer.status_code == 200, answer.json
    stored = answer.json["model_version"]
    expected = "models:/m/1" if source == "models:/m/1" else source
    assert stored["source"] == expected


def test_the_message_is_mlflow_s_whole_message(api):
    api.model("m")
    answer = _create(api, "s3://x", {})
    assert answer.json["message"] == (
        "Invalid model version source: 's3://x'. If supplying a source as an http, https, local "
        "file path, ftp, objectstore, or mlflow-artifacts uri, " + ABSOLUTE)
    answer = _create(api, "/srv/models/m1", {})
    assert answer.json["message"] == f"Invalid model version source: '/srv/models/m1'. {LOCAL}"


def test_a_models_source_inherits_and_must_match_its_lineage(api):
    api.model("m")
    api.version("m", "s3://bucket/one", run_id="r1")
    copy = _create(api, "models:/m/1", {}).json["model_version"]
    assert (copy["source"], copy["run_id"]) == ("models:/m/1", "r1")
    for extra in ({"run_id": "other"}, {"run_id": ""}, {"model_id": "m-x"}):
        answer = _create(api, "models:/m/1", extra)
        assert answer.status_code == 400
        assert answer.json["message"].endswith(
            "The run_id and model_id request parameters must match the referenced model version.")
    assert _create(api, "models:/m/1", {"run_id": "r1"}).status_code == 200


def test_prompts_take_only_mlflow_s_placeholders_and_are_no_sources(api):
    prompt_tag = {"key": "mlflow.prompt.is_prompt", "value": "true"}
    api.model("p", tags=[prompt_tag])
    refused = api.post("model-versions/create", json={
        "name": "p", "source": "s3://bucket/p", "tags": [prompt_tag]})
    assert refused.status_code == 400
    assert refused.json["message"] == ("Invalid prompt source: 's3://bucket/p'. Prompt sources "
                                       "must use an MLflow placeholder.")
    assert api.post("model-versions/create", json={
        "name": "p", "source": "dummy-source", "tags": [prompt_tag]}).status_code == 200
    api.model("m")
    answer = _create(api, "models:/p/1", {})
    assert answer.status_code == 400 and "Prompt versions cannot be used" in answer.json["message"]


def test_host_addressed_sources_can_be_allowed_by_scheme_or_trusted_root(database_url):
    allowed = Api(make_app(database_url, ALLOWED_HOST_ADDRESSED_SCHEMES=["https"]).test_client())
    allowed.model("m")
    assert allowed.version("m", "https://storage.example.com/models/m1")["version"] == "1"
    assert _create(allowed, "ftp://files.example.com/m", {}).status_code == 400
    trusted = Api(make_app(database_url, TRUSTED_ARTIFACT_ROOTS=[
        "mlflow-artifacts://artifacts.internal/root"]).test_client())
    if _create(trusted, "s3://bucket/m", {}).status_code == 404:  # PostgreSQL was emptied
        trusted.model("m")
    # Trusted host, but an mlflow-artifacts source still needs a run to hold it (no store).
    answer = _create(trusted, "https://artifacts.internal/models/m1", {})
    assert answer.status_code == 200, answer.json
    assert _create(trusted, "https://elsewhere.example.com/m", {}).status_code == 400

"""The OCI face over real HTTP: the MLflow client through OCI URLs, OCI's own SDK, retry tokens."""
import hashlib
import os
from concurrent.futures import ThreadPoolExecutor

import mlflow
import oci
import pytest
import requests
from aidp_python_client.aidataplatform_dp import MLOpsClient
from aidp_python_client.aidataplatform_dp import models as aidp
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from mlflow import MlflowClient
from mlflow.exceptions import MlflowException

from tests.conftest import oci_root, serve

pytestmark = [
    pytest.mark.server,
    pytest.mark.filterwarnings("ignore:.*is deprecated since 2.9.0:FutureWarning"),
]


@pytest.fixture(scope="module")
def oci_server(tmp_path_factory):
    server = serve(tmp_path_factory, "oci", workers=4)
    yield server
    server.stop()


@pytest.fixture(autouse=True)
def no_client_retries(monkeypatch):
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "0")


def signing_config():
    """An OCI SDK config with a fresh API key, as a user would have in ~/.oci/config."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                            serialization.NoEncryption()).decode()
    der = key.public_key().public_bytes(serialization.Encoding.DER,
                                        serialization.PublicFormat.SubjectPublicKeyInfo)
    digest = hashlib.md5(der).hexdigest()
    return {"user": "ocid1.user.oc1..aaaatestuser", "tenancy": "ocid1.tenancy.oc1..aaaatest",
            "fingerprint": ":".join(digest[i:i + 2] for i in range(0, 32, 2)),
            "key_content": pem, "region": "us-ashburn-1"}


@pytest.fixture(scope="module")
def sdk(oci_server):
    return MLOpsClient(signing_config(), service_endpoint=oci_server.url,
                       retry_strategy=oci.retry.NoneRetryStrategy())


def mlops_uri(server, platform, workspace=None):
    """The tracking URI a user gives the MLflow client: the root before /api/2.0/mlflow."""
    return server.url + oci_root(platform, workspace).removesuffix("/api/2.0/mlflow")


@pytest.mark.parametrize("workspace", [None, "ws-a"])
def test_mlflow_client_every_registry_call_through_oci_urls(oci_server, unique, workspace):
    platform = f"ocid1.aidataplatform.oc1..{unique}"
    uri = mlops_uri(oci_server, platform, workspace)
    client = MlflowClient(tracking_uri=uri, registry_uri=uri)
    client.create_registered_model(unique, tags={"t": "1"}, description="d")
    assert client.get_registered_model(unique).tags == {"t": "1"}
    client.update_registered_model(unique, description="d2")
    client.set_registered_model_tag(unique, "k", "v")
    client.delete_registered_model_tag(unique, "k")
    version = client.create_model_version(unique, "s3://b/1", run_id="r1", tags={"vt": "1"})
    assert (version.version, version.status) == ("1", "READY")
    client.create_model_version(unique, "s3://b/2")
    client.update_model_version(unique, "1", description="v1")
    client.set_model_version_tag(unique, "1", "k", "v")
    client.delete_model_version_tag(unique, "1", "k")
    client.transition_model_version_stage(unique, "1", "Staging")
    assert [v.version for v in client.get_latest_versions(unique, ["staging"])] == ["1"]
    client.set_registered_model_alias(unique, "champ", "2")
    assert client.get_model_version_by_alias(unique, "champ").version == "2"
    client.delete_registered_model_alias(unique, "champ")
    assert client.get_model_version_download_uri(unique, "1") == "s3://b/1"
    assert len(client.search_model_versions(f"name = '{unique}'")) == 2
    assert [m.name for m in client.search_registered_models(f"name = '{unique}'")] == [unique]
    client.delete_model_version(unique, "2")
    client.rename_registered_model(unique, f"{unique}-r")
    assert client.get_model_version(f"{unique}-r", "1").description == "v1"
    client.delete_registered_model(f"{unique}-r")
    with pytest.raises(MlflowException) as error:
        client.get_registered_model(f"{unique}-r")
    assert error.value.error_code == "RESOURCE_DOES_NOT_EXIST"


def test_register_model_tolerates_the_409_duplicate(oci_server, unique, monkeypatch):
    uri = mlops_uri(oci_server, f"ocid1.p..{unique}", "ws-a")
    monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)
    mlflow.set_tracking_uri(uri)
    mlflow.set_registry_uri(uri)
    assert mlflow.register_model("s3://b/1", unique).version == "1"
    assert mlflow.register_model("s3://b/2", unique).version == "2"


def test_platform_model_gets_versions_through_two_workspaces(oci_server, unique):
    platform = f"ocid1.aidataplatform.oc1..{unique}"
    at_platform = MlflowClient(registry_uri=mlops_uri(oci_server, platform))
    at_platform.create_registered_model(unique)
    for key in ("ws-a", "ws-b"):
        MlflowClient(registry_uri=mlops_uri(oci_server, platform, key)
                     ).create_model_version(unique, f"s3://{key}/m")
    answer = requests.get(f"{oci_server.url}{oci_root(platform)}/model-versions/search",
                          params={"filter": f"name = '{unique}'"}).json()
    assert sorted((v["version"], v["workspace_key"]) for v in answer["model_versions"]) == [
        ("1", "ws-a"), ("2", "ws-b")]


def test_two_platforms_are_isolated(oci_server, unique):
    first = MlflowClient(registry_uri=mlops_uri(oci_server, f"ocid1.p1..{unique}", "ws"))
    second = MlflowClient(registry_uri=mlops_uri(oci_server, f"ocid1.p2..{unique}", "ws"))
    first.create_registered_model(unique, description="one")
    first.create_model_version(unique, "s3://one/m")
    second.create_registered_model(unique, description="two")
    assert second.get_registered_model(unique).description == "two"
    assert second.search_model_versions(f"name = '{unique}'") == []
    assert first.get_registered_model(unique).description == "one"


def test_oci_sdk_registry_calls(oci_server, sdk, unique):
    platform = f"ocid1.aidataplatform.oc1..{unique}"
    created = sdk.create_registered_model(platform, aidp.CreateRegisteredModelDetails(
        name=unique, description="via sdk", tags=[aidp.RegisteredModelTag(key="t", value="1")]))
    assert created.status == 200 and created.data.registered_model.name == unique
    assert created.headers["etag"] and created.headers["opc-request-id"]
    version = sdk.create_workspace_model_version(
        platform, "ws-a", aidp.CreateModelVersionDetails(
            name=unique, source="oci://bucket@ns/model", run_id="run1",
            tags=[aidp.ModelVersionTag(key="k", value="v")]),
        opc_request_id="sdk-test-1")
    assert version.request_id == "sdk-test-1"
    assert (version.data.model_version.version, version.data.model_version.status) == (
        "1", "READY")
    fetched = sdk.get_model_version(platform, unique, "1")
    assert fetched.data.model_version.source == "oci://bucket@ns/model"
    assert fetched.headers["etag"] == version.headers["etag"]
    sdk.update_model_version(platform, aidp.UpdateModelVersionDetails(
        name=unique, version="1", description="better"))
    sdk.set_registered_model_tag(platform, aidp.SetRegisteredModelTagDetails(
        name=unique, key="k2", value="v2"))
    models = sdk.list_registered_models(platform, filter=f"name = '{unique}'")
    assert [m.name for m in models.data.registered_models] == [unique]
    listed = sdk.list_model_versions(platform, filter=f"name = '{unique}'")
    assert [v.description for v in listed.data.model_versions] == ["better"]
    sdk.transition_model_version_stage(platform, aidp.TransitionModelVersionStageDetails(
        name=unique, version="1", stage="Production", archive_existing_versions=False))
    assert sdk.get_registered_model(platform, unique).data.registered_model.latest_versions[
        0].current_stage == "Production"
    sdk.rename_registered_model(platform, aidp.RenameRegisteredModelDetails(
        name=unique, new_name=f"{unique}-r"))
    sdk.delete_model_version(platform, aidp.DeleteModelVersionDetails(
        name=f"{unique}-r", version="1"))
    sdk.delete_registered_model(platform, aidp.DeleteRegisteredModelDetails(name=f"{unique}-r"))
    with pytest.raises(oci.exceptions.ServiceError) as error:
        sdk.get_registered_model(platform, f"{unique}-r")
    assert (error.value.status, error.value.code) == (404, "NotAuthorizedOrNotFound")
    assert error.value.request_id


def test_oci_sdk_sees_conflicts_and_bad_input(oci_server, sdk, unique):
    platform = f"ocid1.aidataplatform.oc1..{unique}"
    details = aidp.CreateRegisteredModelDetails(name=unique)
    sdk.create_registered_model(platform, details)
    with pytest.raises(oci.exceptions.ServiceError) as error:
        sdk.create_registered_model(platform, details)
    assert (error.value.status, error.value.code) == (409, "Conflict")
    with pytest.raises(oci.exceptions.ServiceError) as error:
        sdk.create_workspace_model_version(platform, "ws", aidp.CreateModelVersionDetails(
            name=unique, source="s3://a/m", tags=[aidp.ModelVersionTag(key=f"k{i}", value="v")
                                                for i in range(21)]))
    assert (error.value.status, error.value.code) == (400, "InvalidParameter")


def test_oci_sdk_retries_are_idempotent(oci_server, unique):
    # The SDK's default strategy adds its own opc-retry-token; replaying it must not duplicate.
    client = MLOpsClient(signing_config(), service_endpoint=oci_server.url)
    platform = f"ocid1.aidataplatform.oc1..{unique}"
    client.create_registered_model(platform, aidp.CreateRegisteredModelDetails(name=unique))
    details = aidp.CreateModelVersionDetails(name=unique, source="s3://a/m")
    first = client.create_workspace_model_version(platform, "ws", details, opc_retry_token="r1")
    again = client.create_workspace_model_version(platform, "ws", details, opc_retry_token="r1")
    assert first.data.model_version.version == again.data.model_version.version == "1"


def test_fifty_concurrent_requests_with_one_token_create_one_version(oci_server, unique):
    base = oci_server.url + oci_root(f"ocid1.aidataplatform.oc1..{unique}", "ws")
    requests.post(f"{base}/registered-models/create", json={"name": unique}).raise_for_status()

    def create(_):
        return requests.post(f"{base}/model-versions/create",
                             json={"name": unique, "source": "s3://a/m"},
                             headers={"opc-retry-token": f"tok-{unique}"}, timeout=60)

    with ThreadPoolExecutor(50) as pool:
        answers = list(pool.map(create, range(50)))
    statuses = sorted({a.status_code for a in answers})
    assert statuses == [200], [a.text for a in answers if a.status_code != 200][:3]
    assert {a.json()["model_version"]["version"] for a in answers} == {"1"}
    stored = requests.get(f"{base}/model-versions/search",
                          params={"filter": f"name = '{unique}'"}).json()
    assert [v["version"] for v in stored["model_versions"]] == ["1"]


def test_request_ids_over_http(oci_server):
    base = oci_server.url + oci_root("ocid1.p..ids")
    for method, path in (("get", "/registered-models/search"), ("get", "/nope"),
                         ("put", "/registered-models/create"),
                         ("get", "/registered-models/get?name=absent")):
        response = requests.request(method, base + path, headers={"opc-request-id": "abc-1"})
        assert response.headers["opc-request-id"] == "abc-1", (method, path)
    assert requests.get(base + "/nope").headers["opc-request-id"]
    assert os.environ.get("MLFLOW_HTTP_REQUEST_MAX_RETRIES") == "0"

"""The unmodified MLflow client (mlflow-skinny 3.17.2) against a real gunicorn gateway."""
import os

import mlflow
import pytest
from mlflow import MlflowClient
from mlflow.exceptions import MlflowException, RestException

pytestmark = [
    pytest.mark.server,
    # Stages are deprecated in MLflow since 2.9 but still part of its API, and of ours.
    pytest.mark.filterwarnings("ignore:.*is deprecated since 2.9.0:FutureWarning"),
]


@pytest.fixture(scope="module", autouse=True)
def no_client_retries():
    """Fail fast: the client would otherwise retry errors for minutes."""
    saved = {key: os.environ.get(key) for key in ("MLFLOW_HTTP_REQUEST_MAX_RETRIES",
                                                   "MLFLOW_TRACKING_URI")}
    os.environ["MLFLOW_HTTP_REQUEST_MAX_RETRIES"] = "0"
    yield
    for key, value in saved.items():
        os.environ.pop(key, None) if value is None else os.environ.__setitem__(key, value)


@pytest.fixture
def mlflow_client(server, monkeypatch):
    monkeypatch.setenv("MLFLOW_TRACKING_URI", server.url)
    mlflow.set_tracking_uri(server.url)
    mlflow.set_registry_uri(server.url)
    return MlflowClient(tracking_uri=server.url, registry_uri=server.url)


def error_code(call):
    with pytest.raises(MlflowException) as error:
        call()
    return error.value.error_code


def test_registered_model_lifecycle(mlflow_client, unique):
    client = mlflow_client
    created = client.create_registered_model(unique, tags={"team": "a"}, description="first")
    assert (created.name, created.description, created.tags) == (unique, "first", {"team": "a"})
    assert created.creation_timestamp > 0
    fetched = client.get_registered_model(unique)
    assert (fetched.name, fetched.tags, fetched.latest_versions) == (unique, {"team": "a"}, [])
    assert client.update_registered_model(unique, "second").description == "second"
    assert error_code(lambda: client.create_registered_model(unique)) == (
        "RESOURCE_ALREADY_EXISTS")
    client.delete_registered_model(unique)
    assert error_code(lambda: client.get_registered_model(unique)) == "RESOURCE_DOES_NOT_EXIST"


def test_versions_numbering_status_and_fields(mlflow_client, unique):
    client = mlflow_client
    client.create_registered_model(unique)
    first = client.create_model_version(unique, "s3://bucket/1", run_id="r1",
                                        tags={"k": "v"}, description="v1", run_link="http://l")
    assert (first.version, first.status, first.current_stage) == ("1", "READY", "None")
    assert (first.run_id, first.tags, first.description, first.run_link) == (
        "r1", {"k": "v"}, "v1", "http://l")
    assert client.create_model_version(unique, "s3://bucket/2").version == "2"
    client.delete_model_version(unique, "2")
    assert client.create_model_version(unique, "s3://bucket/3").version == "3"
    assert error_code(lambda: client.get_model_version(unique, "2")) == (
        "RESOURCE_DOES_NOT_EXIST")
    updated = client.update_model_version(unique, "1", description="better")
    assert updated.description == "better"
    assert client.get_model_version_download_uri(unique, "1") == "s3://bucket/1"
    assert error_code(lambda: client.create_model_version(f"{unique}-x", "s3://a/m")) == (
        "RESOURCE_DOES_NOT_EXIST")


def test_rename_carries_versions(mlflow_client, unique):
    client = mlflow_client
    client.create_registered_model(unique)
    client.create_model_version(unique, "s3://a/m")
    client.rename_registered_model(unique, f"{unique}-new")
    moved = client.get_model_version(f"{unique}-new", "1")
    assert (moved.name, moved.source) == (f"{unique}-new", "s3://a/m")
    assert error_code(lambda: client.get_registered_model(unique)) == "RESOURCE_DOES_NOT_EXIST"


def test_tags(mlflow_client, unique):
    client = mlflow_client
    client.create_registered_model(unique)
    client.create_model_version(unique, "s3://a/m")
    client.set_registered_model_tag(unique, "k", "v")
    client.set_model_version_tag(unique, "1", "vk", "vv")
    assert client.get_registered_model(unique).tags == {"k": "v"}
    assert client.get_model_version(unique, "1").tags == {"vk": "vv"}
    client.delete_registered_model_tag(unique, "k")
    client.delete_model_version_tag(unique, "1", "vk")
    assert client.get_registered_model(unique).tags == {}
    assert client.get_model_version(unique, "1").tags == {}
    assert error_code(lambda: client.set_registered_model_tag(unique, "k" * 251, "v")) == (
        "INVALID_PARAMETER_VALUE")


def test_aliases(mlflow_client, unique):
    client = mlflow_client
    client.create_registered_model(unique)
    client.create_model_version(unique, "s3://a/m")
    client.create_model_version(unique, "s3://b/m")
    client.set_registered_model_alias(unique, "champion", "1")
    client.set_registered_model_alias(unique, "challenger", "2")
    assert client.get_model_version_by_alias(unique, "champion").version == "1"
    assert client.get_model_version(unique, "2").aliases == ["challenger"]
    assert client.get_registered_model(unique).aliases == {"champion": "1", "challenger": "2"}
    client.set_registered_model_alias(unique, "champion", "2")
    assert sorted(client.get_model_version(unique, "2").aliases) == ["challenger", "champion"]
    client.delete_registered_model_alias(unique, "challenger")
    assert error_code(lambda: client.get_model_version_by_alias(unique, "challenger")) == (
        "INVALID_PARAMETER_VALUE")


def test_stages_and_latest_versions(mlflow_client, unique):
    client = mlflow_client
    client.create_registered_model(unique)
    for _ in range(3):
        client.create_model_version(unique, "s3://a/m")
    client.transition_model_version_stage(unique, "1", "Production")
    moved = client.transition_model_version_stage(unique, "2", "production",
                                                  archive_existing_versions=True)
    assert moved.current_stage == "Production"
    assert client.get_model_version(unique, "1").current_stage == "Archived"
    latest = {v.current_stage: v.version for v in client.get_latest_versions(unique)}
    assert latest == {"None": "3", "Production": "2", "Archived": "1"}
    assert [v.version for v in client.get_latest_versions(unique, stages=["PRODUCTION"])] == ["2"]
    assert error_code(lambda: client.transition_model_version_stage(unique, "3", "Bogus")) == (
        "INVALID_PARAMETER_VALUE")
    embedded = {v.current_stage for v in client.get_registered_model(unique).latest_versions}
    assert embedded == {"None", "Production", "Archived"}


def test_search_registered_models_filters_paging_and_order(mlflow_client, unique):
    client = mlflow_client
    for suffix in ("b", "a", "c", "d", "e"):
        client.create_registered_model(f"{unique}-{suffix}", tags={"grp": unique})
    found = client.search_registered_models(f"name LIKE '{unique}-%'")
    assert [m.name for m in found] == [f"{unique}-{s}" for s in "abcde"]
    page = client.search_registered_models(f"tags.grp = '{unique}'", max_results=2)
    names = [m.name for m in page]
    while page.token:
        page = client.search_registered_models(f"tags.grp = '{unique}'", max_results=2,
                                               page_token=page.token)
        names += [m.name for m in page]
    assert names == [f"{unique}-{s}" for s in "abcde"]
    ordered = client.search_registered_models(f"name ILIKE '{unique.upper()}-%'",
                                              order_by=["name DESC"])
    assert [m.name for m in ordered][:2] == [f"{unique}-e", f"{unique}-d"]
    in_list = client.search_registered_models(f"name IN ('{unique}-a', '{unique}-c')")
    assert [m.name for m in in_list] == [f"{unique}-a", f"{unique}-c"]
    assert error_code(lambda: client.search_registered_models("name = 'a' OR name = 'b'")) == (
        "INVALID_PARAMETER_VALUE")


def test_fluent_search_follows_every_page(mlflow_client, unique):
    for suffix in range(5):
        mlflow_client.create_registered_model(f"{unique}-{suffix}")
    found = mlflow.search_registered_models(filter_string=f"name LIKE '{unique}-%'",
                                            max_results=None)
    assert len(found) == 5


def test_search_model_versions(mlflow_client, unique):
    client = mlflow_client
    client.create_registered_model(unique)
    for index in range(4):
        client.create_model_version(unique, f"s3://{unique}/{index}", run_id=f"run{index % 2}",
                                    tags={"parity": str(index % 2)})
    versions = client.search_model_versions(f"name = '{unique}'")
    assert sorted(v.version for v in versions) == ["1", "2", "3", "4"]
    odd = client.search_model_versions(f"name = '{unique}' AND tags.parity = '1'")
    assert sorted(v.version for v in odd) == ["2", "4"]
    newer = client.search_model_versions(f"name = '{unique}' AND version_number >= 3")
    assert sorted(v.version for v in newer) == ["3", "4"]
    by_run = client.search_model_versions(f"run_id = 'run0' AND name = '{unique}'")
    assert sorted(v.version for v in by_run) == ["1", "3"]
    by_source = client.search_model_versions(f"source_path = 's3://{unique}/2'")
    assert [v.version for v in by_source] == ["3"]
    page = client.search_model_versions(f"name = '{unique}'", max_results=3,
                                        order_by=["version_number ASC"])
    assert [v.version for v in page] == ["1", "2", "3"] and page.token
    rest = client.search_model_versions(f"name = '{unique}'", max_results=3,
                                        order_by=["version_number ASC"], page_token=page.token)
    assert [v.version for v in rest] == ["4"] and not rest.token


def test_copy_model_version(mlflow_client, unique):
    client = mlflow_client
    client.create_registered_model(unique)
    client.create_model_version(unique, "s3://bucket/src", run_id="r1", tags={"t": "1"})
    copied = client.copy_model_version(f"models:/{unique}/1", f"{unique}-copy")
    assert (copied.name, copied.version, copied.source) == (
        f"{unique}-copy", "1", f"models:/{unique}/1")
    assert copied.tags == {"t": "1"} and copied.run_id == "r1"
    assert client.get_model_version_download_uri(f"{unique}-copy", "1") == "s3://bucket/src"


def test_register_model(mlflow_client, unique):
    first = mlflow.register_model("s3://bucket/model", unique)
    second = mlflow.register_model("s3://bucket/model2", unique)  # the model exists: tolerated
    assert (first.version, second.version) == ("1", "2")
    assert second.status == "READY"


def test_models_uris_download_artifacts(mlflow_client, server, unique, tmp_path):
    artifacts = tmp_path / "model"
    artifacts.mkdir()
    (artifacts / "MLmodel").write_text("flavors: {}\n")
    client = mlflow_client
    client.create_registered_model(unique)
    # Local sources are refused now, as MLflow 3.17.2 refuses them without a run; a version
    # stored before that (an older database) still resolves and downloads.
    with pytest.raises(RestException, match="To use a local path as a model version source"):
        client.create_model_version(unique, artifacts.as_uri())
    client.create_model_version(unique, "s3://placeholder/model")
    _set_source(server, unique, artifacts.as_uri())
    client.set_registered_model_alias(unique, "champ", "1")
    client.transition_model_version_stage(unique, "1", "Staging")
    for uri in (f"models:/{unique}/1", f"models:/{unique}@champ", f"models:/{unique}/Staging",
                f"models:/{unique}/latest"):
        local = mlflow.artifacts.download_artifacts(uri, dst_path=str(tmp_path / uri[-5:]))
        assert open(os.path.join(local, "MLmodel")).read() == "flavors: {}\n"


def _set_source(server, name, source):
    from gateway.db import database, open_database
    from gateway.models import ModelVersion, RegisteredModel
    database.initialize(open_database(server.env["GATEWAY_DATABASE_URL"]))
    try:
        model = RegisteredModel.get(RegisteredModel.name == name)
        ModelVersion.update(source=source).where(ModelVersion.registered_model == model.id
                                                 ).execute()
    finally:
        database.close()


def test_workspaces_isolate_models(mlflow_client, unique):
    client = mlflow_client
    name = unique.replace("t", "w", 1)
    client.create_workspace(name, description="tenant")
    assert client.get_workspace(name).description == "tenant"
    assert name in [w.name for w in client.list_workspaces()]
    client.create_registered_model(unique, description="default ws")
    mlflow.set_workspace(name)
    try:
        workspace_client = MlflowClient(tracking_uri=client._registry_uri,
                                        registry_uri=client._registry_uri)
        assert error_code(lambda: workspace_client.get_registered_model(unique)) == (
            "RESOURCE_DOES_NOT_EXIST")
        workspace_client.create_registered_model(unique, description="tenant ws")
        workspace_client.create_model_version(unique, "s3://tenant/m")
        assert workspace_client.get_registered_model(unique).description == "tenant ws"
    finally:
        mlflow.set_workspace(None)
    assert client.get_registered_model(unique).description == "default ws"
    assert client.get_registered_model(unique).latest_versions == []
    assert error_code(lambda: client.delete_workspace(name)) == "RESOURCE_CONFLICT"
    client.delete_workspace(name, mode="CASCADE")
    assert name not in [w.name for w in client.list_workspaces()]


def test_prompt_filter_is_applied_by_the_client(mlflow_client, unique):
    client = mlflow_client
    client.create_registered_model(unique)
    # A prompt is a model with this tag; the client refuses to create it directly, so we
    # tag an ordinary model, which the server must then hide from searches.
    client.create_registered_model(f"{unique}-p")
    client.set_registered_model_tag(f"{unique}-p", "mlflow.prompt.is_prompt", "true")
    names = [m.name for m in client.search_registered_models(f"name LIKE '{unique}%'")]
    assert names == [unique]


def test_rest_errors_carry_mlflow_codes(mlflow_client, unique):
    with pytest.raises(RestException) as error:
        mlflow_client.get_model_version(unique, "1")
    assert error.value.error_code == "RESOURCE_DOES_NOT_EXIST"
    assert f"Registered Model with name={unique} not found" in str(error.value) or (
        f"name={unique}" in str(error.value))

"""The model-version service, called directly."""
import time

import pytest

from gateway.exceptions import InvalidParameter, NotFound
from gateway.models import ModelVersion, ModelVersionTag
from gateway.services import model_versions, registered_models

WS = "default"


@pytest.fixture
def model(db):
    return registered_models.create(WS, "m")


def test_create_numbers_versions_and_never_reuses_deleted_numbers(model):
    assert [model_versions.create(WS, "m", f"s3://{i}/m").version for i in range(3)] == [1, 2, 3]
    model_versions.delete(WS, "m", "3")
    assert model_versions.create(WS, "m", "s3://again/m").version == 4


def test_create_defaults_match_mlflow(model):
    version = model_versions.create(WS, "m", "s3://a/m", tags=[{"key": "k", "value": "v"}])
    assert (version.status, version.current_stage) == ("READY", "None")
    assert (version.description, version.run_id, version.run_link) == ("", "", "")
    assert version.tags == [{"key": "k", "value": "v"}] and version.aliases == []


def test_create_bumps_model_last_updated(model):
    version = model_versions.create(WS, "m", "s3://a/m")
    assert registered_models.get(WS, "m").last_updated_timestamp == version.creation_timestamp


def test_create_for_missing_model_is_not_found_and_writes_nothing(db):
    with pytest.raises(NotFound, match="Registered Model with name=nope not found"):
        model_versions.create(WS, "nope", "s3://a/m")
    assert ModelVersion.select().count() == 0


@pytest.mark.parametrize("fields, message", [
    ({"source": ""}, "Missing value for required parameter 'source'"),
    ({"source": "s3://b/../etc"}, "Invalid model version source"),
    ({"source": "x" * 501}, "'source' exceeds the maximum length of 500"),
    ({"run_id": "r" * 33}, "'run_id' exceeds the maximum length of 32"),
    ({"tags": [{"key": "", "value": "v"}]}, "Missing value for required parameter 'key'"),
])
def test_create_rejects_bad_input_and_writes_nothing(model, fields, message):
    with pytest.raises(InvalidParameter, match=message):
        model_versions.create(WS, "m", **{"source": "s3://ok/m", **fields})
    assert ModelVersion.select().count() == 0
    assert registered_models.get(WS, "m").last_updated_timestamp == model.last_updated_timestamp


@pytest.mark.parametrize("version, error", [
    ("abc", "Parameter 'version' must be an integer, got 'abc'."),
    ("0", "must be a positive integer"),
    ("99999999999", "must be a positive integer"),
])
def test_get_rejects_non_integer_versions(model, version, error):
    with pytest.raises(InvalidParameter, match=error):
        model_versions.get(WS, "m", version)


def test_deleted_version_is_invisible(model):
    model_versions.create(WS, "m", "s3://a/m")
    registered_models.set_alias(WS, "m", "champ", "1")
    model_versions.delete(WS, "m", "1")
    with pytest.raises(NotFound, match=r"Model Version \(name=m, version=1\) not found"):
        model_versions.get(WS, "m", "1")
    assert model_versions.search(WS, "name = 'm'")[0] == []
    assert model_versions.latest(WS, "m") == []
    assert registered_models.get(WS, "m").aliases == []


def test_update_description(model):
    model_versions.create(WS, "m", "s3://a/m")
    assert model_versions.update(WS, "m", "1", "better").description == "better"


def test_transition_is_case_insensitive_and_archives_others(model):
    for _ in range(3):
        model_versions.create(WS, "m", "s3://a/m")
    model_versions.transition_stage(WS, "m", "1", "production")
    model_versions.transition_stage(WS, "m", "2", "Production")
    moved = model_versions.transition_stage(WS, "m", "3", "PRODUCTION", True)
    assert moved.current_stage == "Production"
    stages = {v.version: v.current_stage for v in model_versions.search(WS)[0]}
    assert stages == {1: "Archived", 2: "Archived", 3: "Production"}


@pytest.mark.parametrize("stage, archive, message", [
    ("Shipping", False, "Invalid Model Version stage: Shipping. Value must be one of None, "
                        "Staging, Production, Archived."),
    ("Archived", True, "'Archived' is not an Active stage"),
    ("None", True, "'None' is not an Active stage"),
])
def test_transition_rejects(model, stage, archive, message):
    model_versions.create(WS, "m", "s3://a/m")
    with pytest.raises(InvalidParameter, match=message):
        model_versions.transition_stage(WS, "m", "1", stage, archive)
    assert model_versions.get(WS, "m", "1").current_stage == "None"


def test_latest_is_highest_version_per_stage_in_first_seen_order(model):
    for _ in range(4):
        model_versions.create(WS, "m", "s3://a/m")
    model_versions.transition_stage(WS, "m", "1", "Staging")
    model_versions.transition_stage(WS, "m", "2", "Production")
    # As MLflow 3.17.2: each stage where its first version is, holding its highest version.
    latest = model_versions.latest(WS, "m")
    assert [(v.current_stage, v.version) for v in latest] == [
        ("Staging", 1), ("Production", 2), ("None", 4)]
    assert [v.version for v in model_versions.latest(WS, "m", ["production", "STAGING"])] == [1, 2]
    with pytest.raises(InvalidParameter, match="Invalid Model Version stage"):
        model_versions.latest(WS, "m", ["bogus"])


def test_by_alias_and_latest_alias(model):
    model_versions.create(WS, "m", "s3://a/m")
    model_versions.create(WS, "m", "s3://b/m")
    registered_models.set_alias(WS, "m", "champ", "1")
    found = model_versions.by_alias(WS, "m", "champ")
    assert (found.version, found.aliases) == (1, ["champ"])
    assert model_versions.by_alias(WS, "m", "Latest").version == 2
    with pytest.raises(InvalidParameter, match="Registered model alias nope not found."):
        model_versions.by_alias(WS, "m", "nope")
    with pytest.raises(NotFound):
        model_versions.by_alias(WS, "other", "champ")


def test_download_uri_and_models_uri_sources(model):
    model_versions.create(WS, "m", "s3://bucket/one", run_id="r1")
    registered_models.set_alias(WS, "m", "champ", "1")
    copy = model_versions.create(WS, "m", "models:/m@champ")
    assert (copy.source, copy.run_id) == ("models:/m/1", "r1")
    assert model_versions.download_uri(WS, "m", "2") == "s3://bucket/one"
    assert model_versions.create(WS, "m", "models:/m/latest").source == "models:/m/2"
    # A logged model's URI needs its model_id (MLflow 3.17.2).
    with pytest.raises(InvalidParameter, match="model_id request parameter must identify"):
        model_versions.create(WS, "m", "models:/m-0123abc")
    logged = model_versions.create(WS, "m", "models:/m-0123abc", model_id="m-0123abc")
    assert model_versions.download_uri(WS, "m", str(logged.version)) == "models:/m-0123abc"
    with pytest.raises(InvalidParameter, match="parameters must match the referenced model"):
        model_versions.create(WS, "m", "models:/m/1", run_id="other")


def test_tags_upsert_and_delete(model):
    model_versions.create(WS, "m", "s3://a/m")
    model_versions.set_tag(WS, "m", "1", "k", "1")
    model_versions.set_tag(WS, "m", "1", "k", "2")
    assert model_versions.get(WS, "m", "1").tags == [{"key": "k", "value": "2"}]
    model_versions.delete_tag(WS, "m", "1", "k")
    assert ModelVersionTag.select().count() == 0
    with pytest.raises(NotFound):
        model_versions.set_tag(WS, "m", "2", "k", "v")


def test_search_filters(model):
    registered_models.create(WS, "other")
    model_versions.create(WS, "m", "s3://a/1", run_id="r1")
    model_versions.create(WS, "m", "gs://b/2", run_id="r2", tags=[{"key": "t", "value": "x"}])
    model_versions.create(WS, "other", "s3://c/1", run_id="r1")
    pairs = lambda f: sorted((v.registered_model.name, v.version)  # noqa: E731
                             for v in model_versions.search(WS, f)[0])
    assert pairs("name = 'm'") == [("m", 1), ("m", 2)]
    assert pairs("run_id = 'r1'") == [("m", 1), ("other", 1)]
    assert pairs("run_id IN ('r2')") == [("m", 2)]
    assert pairs("source_path LIKE 's3://%'") == [("m", 1), ("other", 1)]
    assert pairs("name = 'm' AND version_number > 1") == [("m", 2)]
    assert pairs("tags.t = 'x'") == [("m", 2)]
    assert pairs("tags.t != 'y'") == [("m", 2)]  # a tag clause needs the tag


def test_search_default_order_and_paging(model):
    for _ in range(5):
        model_versions.create(WS, "m", "s3://a/m")
    time.sleep(0.005)  # a later millisecond than every create
    model_versions.update(WS, "m", "2", "touched last")
    rows, token = model_versions.search(WS, max_results=2)
    assert [v.version for v in rows] == [2, 5] and token
    rows, token = model_versions.search(WS, max_results=2, page_token=token)
    assert [v.version for v in rows] == [4, 3]
    rows, token = model_versions.search(WS, max_results=2, page_token=token)
    assert [v.version for v in rows] == [1] and token is None
    rows, _ = model_versions.search(WS, order_by=["version_number ASC"])
    assert [v.version for v in rows] == [1, 2, 3, 4, 5]
    assert all(v.aliases == [] for v in rows)

"""The registered-model service, called directly."""
import pytest

from gateway.exceptions import AlreadyExists, InvalidParameter, NotFound
from gateway.models import RegisteredModel, RegisteredModelTag
from gateway.services import model_versions, registered_models, workspaces

WS = "default"


def test_create_returns_model_with_tags(db):
    model = registered_models.create(WS, "m", "about m", [{"key": "a", "value": "1"}])
    assert (model.name, model.description) == ("m", "about m")
    assert model.tags == [{"key": "a", "value": "1"}]
    assert model.aliases == [] and model.latest_versions == []
    assert model.creation_timestamp == model.last_updated_timestamp


def test_create_duplicate_is_already_exists_and_writes_nothing(db):
    registered_models.create(WS, "m")
    with pytest.raises(AlreadyExists, match=r"Registered Model \(name=m\) already exists."):
        registered_models.create(WS, "m", tags=[{"key": "x", "value": "y"}])
    assert RegisteredModel.select().count() == 1
    assert RegisteredModelTag.select().count() == 0


@pytest.mark.parametrize("name, message", [
    ("", "Missing value for required parameter 'name'"),
    ("   ", "Missing value for required parameter 'name'"),
    ("a/b", "Names cannot contain '/' or ':'"),
    ("a:b", "Names cannot contain '/' or ':'"),
    ("..", "must not resolve to other names"),
    ("x" * 257, "'name' exceeds the maximum length of 256 characters"),
])
def test_create_rejects_bad_names(db, name, message):
    with pytest.raises(InvalidParameter, match=message):
        registered_models.create(WS, name)
    assert RegisteredModel.select().count() == 0


@pytest.mark.parametrize("tag, message", [
    ({"key": None, "value": "v"}, "Missing value for required parameter 'key'"),
    ({"key": "bad*key", "value": "v"}, "Names may only contain"),
    ({"key": "/abs", "value": "v"}, "must not resolve to other names"),
    ({"key": "k" * 251, "value": "v"}, "'key' exceeds the maximum length of 250 characters"),
    ({"key": "k", "value": "v" * 100001}, "'value' exceeds the maximum length of 100000"),
])
def test_create_rejects_bad_tags_and_writes_nothing(db, tag, message):
    with pytest.raises(InvalidParameter, match=message):
        registered_models.create(WS, "m", tags=[tag])
    assert RegisteredModel.select().count() == 0


def test_get_missing_is_not_found(db):
    with pytest.raises(NotFound, match="Registered Model with name=nope not found"):
        registered_models.get(WS, "nope")


def test_update_sets_and_clears_description(db):
    registered_models.create(WS, "m", "old")
    assert registered_models.update(WS, "m", "new").description == "new"
    assert registered_models.update(WS, "m", None).description == ""


def test_rename_carries_versions_and_frees_old_name(db):
    registered_models.create(WS, "old")
    model_versions.create(WS, "old", "s3://a/m")
    registered_models.set_alias(WS, "old", "champ", "1")
    renamed = registered_models.rename(WS, "old", "new")
    assert renamed.name == "new"
    assert [v.version for v in renamed.latest_versions] == [1]
    assert renamed.aliases == [{"alias": "champ", "version": "1"}]
    assert model_versions.get(WS, "new", "1").registered_model.name == "new"
    with pytest.raises(NotFound):
        registered_models.get(WS, "old")


def test_rename_onto_existing_name_fails_and_changes_nothing(db):
    registered_models.create(WS, "a")
    registered_models.create(WS, "b")
    with pytest.raises(AlreadyExists, match=r"name=b"):
        registered_models.rename(WS, "a", "b")
    assert registered_models.get(WS, "a").name == "a"


def test_delete_cascades_and_restarts_numbering(db):
    registered_models.create(WS, "m", tags=[{"key": "k", "value": "v"}])
    model_versions.create(WS, "m", "s3://a/m")
    model_versions.create(WS, "m", "s3://b/m")
    registered_models.delete(WS, "m")
    with pytest.raises(NotFound):
        registered_models.get(WS, "m")
    registered_models.create(WS, "m")
    assert model_versions.create(WS, "m", "s3://c/m").version == 1
    assert RegisteredModelTag.select().count() == 0


def test_tags_upsert_and_delete(db):
    registered_models.create(WS, "m")
    registered_models.set_tag(WS, "m", "k", "1")
    registered_models.set_tag(WS, "m", "k", "2")
    assert registered_models.get(WS, "m").tags == [{"key": "k", "value": "2"}]
    registered_models.delete_tag(WS, "m", "k")
    registered_models.delete_tag(WS, "m", "absent")  # silently fine
    assert registered_models.get(WS, "m").tags == []
    with pytest.raises(NotFound):
        registered_models.set_tag(WS, "nope", "k", "v")


def test_tag_and_alias_changes_do_not_bump_last_updated(db):
    created = registered_models.create(WS, "m")
    model_versions.create(WS, "m", "s3://a/m")
    before = registered_models.get(WS, "m").last_updated_timestamp
    registered_models.set_tag(WS, "m", "k", "v")
    registered_models.set_alias(WS, "m", "a", "1")
    assert registered_models.get(WS, "m").last_updated_timestamp == before
    assert before >= created.last_updated_timestamp


def test_alias_set_moves_and_rejects_reserved_names(db):
    registered_models.create(WS, "m")
    model_versions.create(WS, "m", "s3://a/m")
    model_versions.create(WS, "m", "s3://b/m")
    registered_models.set_alias(WS, "m", "champ", "1")
    registered_models.set_alias(WS, "m", "champ", "2")
    assert registered_models.get(WS, "m").aliases == [{"alias": "champ", "version": "2"}]
    for reserved in ("latest", "LATEST", "v1", "V22"):
        with pytest.raises(InvalidParameter, match="reserved"):
            registered_models.set_alias(WS, "m", reserved, "1")
    with pytest.raises(InvalidParameter, match="Invalid alias name"):
        registered_models.set_alias(WS, "m", "bad alias", "1")
    with pytest.raises(NotFound, match=r"Model Version \(name=m, version=9\) not found"):
        registered_models.set_alias(WS, "m", "x", "9")


def test_alias_delete_is_silent_for_absent_alias_but_not_absent_model(db):
    registered_models.create(WS, "m")
    registered_models.delete_alias(WS, "m", "never-set")
    with pytest.raises(NotFound):
        registered_models.delete_alias(WS, "nope", "a")


def test_search_filters_pages_and_orders(db):
    for name in ("b", "a", "c", "ab"):
        registered_models.create(WS, name)
    registered_models.set_tag(WS, "ab", "team", "x")
    rows, token = registered_models.search(WS, "name LIKE 'a%'")
    assert [r.name for r in rows] == ["a", "ab"] and token is None
    rows, _ = registered_models.search(WS, "tags.team = 'x'")
    assert [r.name for r in rows] == ["ab"]
    rows, token = registered_models.search(WS, max_results=3)
    assert [r.name for r in rows] == ["a", "ab", "b"] and token
    rows, token = registered_models.search(WS, max_results=3, page_token=token)
    assert [r.name for r in rows] == ["c"] and token is None
    rows, _ = registered_models.search(WS, order_by=["name DESC"])
    assert [r.name for r in rows] == ["c", "b", "ab", "a"]


def test_search_like_is_case_sensitive_and_ilike_is_not(db):
    registered_models.create(WS, "Model")
    assert registered_models.search(WS, "name LIKE 'model'")[0] == []
    assert [r.name for r in registered_models.search(WS, "name ILIKE 'model'")[0]] == ["Model"]


def test_search_hides_prompts_unless_asked(db):
    registered_models.create(WS, "model")
    registered_models.create(WS, "prompt", tags=[{"key": "mlflow.prompt.is_prompt",
                                                  "value": "true"}])
    names = lambda f: [r.name for r in registered_models.search(WS, f)[0]]  # noqa: E731
    assert names("") == ["model"]
    assert names("tag.`mlflow.prompt.is_prompt` != 'true'") == ["model"]
    assert names("tags.`mlflow.prompt.is_prompt` = 'true'") == ["prompt"]


@pytest.mark.parametrize("max_results", [0, -1, 1001])
def test_search_rejects_bad_page_sizes(db, max_results):
    with pytest.raises(InvalidParameter, match="max_results"):
        registered_models.search(WS, max_results=max_results)


def test_same_name_in_two_workspaces_is_two_models(db):
    workspaces.create("team-a")
    registered_models.create(WS, "m", "default one")
    registered_models.create("team-a", "m", "team one")
    model_versions.create("team-a", "m", "s3://a/m")
    assert registered_models.get(WS, "m").latest_versions == []
    assert registered_models.get("team-a", "m").description == "team one"
    assert [r.name for r in registered_models.search("team-a")[0]] == ["m"]

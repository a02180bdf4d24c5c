"""The model-entity service (NeMo's view of the registry), called directly."""
import time

import pytest

from gateway.exceptions import (AlreadyExists, InvalidFilter, InvalidParameter, NotFound,
                                PermissionDenied)
from gateway.services import adapters, model_entities, model_versions, registered_models
from gateway.services.model_entities import TrustPolicy

WS = "default"


def test_create_stores_details_and_defaults(db):
    row = model_entities.create(WS, "m", description="d", fileset="default/fs",
                                finetuning_type="lora", custom_fields={"k": [1, 2]})
    assert row.description == "d"
    assert row.entity["fileset"] == "default/fs" and row.entity["finetuning_type"] == "lora"
    assert row.entity["custom_fields"] == {"k": [1, 2]}
    assert row.entity["model_providers"] == [] and row.entity["trust_remote_code"] is False
    assert row.adapter_rows == []


def test_an_entity_is_a_registered_model(db):
    model_entities.create(WS, "m", description="entity")
    version = model_versions.create(WS, "m", "s3://a/m")
    assert version.version == 1
    assert registered_models.get(WS, "m").description == "entity"
    registered_models.create(WS, "plain")
    plain = model_entities.get(WS, "plain")
    assert plain.entity["fileset"] is None and plain.entity["custom_fields"] == {}


def test_duplicate_and_missing(db):
    model_entities.create(WS, "m")
    with pytest.raises(AlreadyExists, match="Model with workspace 'default' and name 'm' "
                                            "already exists"):
        model_entities.create(WS, "m")
    with pytest.raises(NotFound, match="name 'x' not found"):
        model_entities.get(WS, "x")
    with pytest.raises(NotFound):
        model_entities.delete(WS, "x")


def test_update_keeps_fields_left_out_clears_nulls_and_bumps_updated_at(db):
    created = model_entities.create(WS, "m", description="d", project="p/q", fileset="default/a",
                                    backend_format="OPENAI_CHAT", custom_fields={"k": "v"})
    time.sleep(0.005)
    updated = model_entities.update(WS, "m", {"description": "new", "fileset": None,
                                              "backend_format": None, "custom_fields": None})
    assert updated.description == "new"
    assert updated.entity["project"] == "p/q"
    assert (updated.entity["fileset"], updated.entity["backend_format"]) == (None, None)
    assert updated.entity["custom_fields"] == {}  # NeMo's default, not null
    assert updated.last_updated_timestamp > created.last_updated_timestamp
    assert model_entities.update(WS, "m", {"description": None}).description == ""


def test_trust_remote_code_is_granted_or_refused_never_downgraded(db):
    with pytest.raises(PermissionDenied, match="Insufficient permissions"):
        model_entities.create(WS, "m", trust_remote_code=True, fileset="default/x")
    assert registered_models.search(WS)[0] == []
    approved = TrustPolicy(approved_filesets=("hf-mirror/*",))
    assert model_entities.create(WS, "a", approved, trust_remote_code=True,
                                 fileset="hf-mirror/llama").entity["trust_remote_code"] is True
    assert model_entities.create(WS, "b", TrustPolicy(admin=True),
                                 trust_remote_code=True).entity["trust_remote_code"] is True
    with pytest.raises(PermissionDenied):
        model_entities.update(WS, "a", {"fileset": "other/place"}, approved)
    assert model_entities.get(WS, "a").entity["fileset"] == "hf-mirror/llama"
    assert model_entities.update(WS, "a", {"trust_remote_code": False}
                                 ).entity["trust_remote_code"] is False


def test_base_model_must_name_an_entity(db):
    model_entities.create(WS, "base")
    assert model_entities.create(WS, "child", base_model="base").entity["base_model"] == "base"
    assert model_entities.create(WS, "child2", base_model="default/base").entity["base_model"]
    with pytest.raises(InvalidParameter, match="does not name a model entity"):
        model_entities.create(WS, "orphan", base_model="ghost")


def test_search_filters_sorts_and_pages(db):
    for name, project in (("b-llama", "x"), ("a-mistral", "y"), ("c-llama", "x")):
        model_entities.create(WS, name, project=project)
        time.sleep(0.002)
    names = lambda **kw: [r.name for r in model_entities.search(WS, **kw)[0]]  # noqa: E731
    assert names() == ["b-llama", "a-mistral", "c-llama"]             # created_at ascending
    assert names(sort="-name") == ["c-llama", "b-llama", "a-mistral"]
    assert names(filter_by={"name": {"$like": "LLAMA"}}) == ["b-llama", "c-llama"]
    assert names(filter_by={"project": "y"}) == ["a-mistral"]
    assert names(filter_by={"name": {"$in": "a-mistral,c-llama"}}) == ["a-mistral", "c-llama"]
    assert names(filter_by={"name": {"$nin": ["a-mistral"]}}) == ["b-llama", "c-llama"]
    rows, total, pages = model_entities.search(WS, sort="name", page=2, page_size=2)
    assert ([r.name for r in rows], total, pages) == (["c-llama"], 3, 2)


def test_like_is_a_substring_match_where_underscore_and_percent_are_literal(db):
    for name in ("a_b", "axb", "a%b", "a\\b", "AXB-2"):
        model_entities.create(WS, name)
    names = lambda text: sorted(r.name for r in model_entities.search(  # noqa: E731
        WS, filter_by={"name": {"$like": text}})[0])
    assert names("a_b") == ["a_b"]
    assert names("a%b") == ["a%b"]
    assert names("axb") == ["AXB-2", "axb"]
    assert names("a\\b") == ["a\\b"]


def test_search_time_and_adapter_filters(db):
    model_entities.create(WS, "old")
    time.sleep(0.02)
    cutoff = time.time()
    time.sleep(0.02)
    model_entities.create(WS, "new")
    adapters.create(WS, "new", "a1", "default/a1", "lora")
    from datetime import datetime, timezone
    stamp = datetime.fromtimestamp(cutoff, tz=timezone.utc).isoformat()
    names = lambda f: [r.name for r in model_entities.search(WS, f)[0]]  # noqa: E731
    assert names({"created_at": {"$gte": stamp}}) == ["new"]
    assert names({"created_at": {"$lte": stamp}}) == ["old"]
    assert names({"adapters": "true"}) == ["new"]
    assert names({"adapters": False}) == ["old"]


@pytest.mark.parametrize("bad, message", [
    ({"color": "red"}, "Invalid filter field 'color'"),
    ({"name": {"$regex": "x"}}, "Invalid filter operator '$regex'"),
    ({"created_at": {"$like": "2026"}}, "Invalid filter operator '$like' for 'created_at'"),
    ({"created_at": {"$gte": "yesterday"}}, "ISO 8601"),
    ({"base_model": {"name": "x", "size": 1}}, "takes {name: ...}"),
    ({"finetuning_type": "lorax"}, "Invalid value 'lorax'"),
    ({"adapters": {"finetuning_type": {"$in": ["lora", "nope"]}}}, "Invalid value 'nope'"),
    ({"$or": []}, "non-empty list"),
    ({"$not": "name"}, "non-empty object"),
    ({"adapters": "maybe"}, "true or false"),
    ({"name": {"$in": [1, 2]}}, "list of strings"),
])
def test_search_rejects_bad_filters(db, bad, message):
    with pytest.raises(InvalidFilter, match=message.replace("$", r"\$")):
        model_entities.search(WS, bad)


def test_adapters_lifecycle(db):
    model_entities.create(WS, "m")
    model_entities.create(WS, "other")
    adapter = adapters.create(WS, "m", "a1", "default/a1", "lora", lora_config={"rank": 8})
    assert (adapter.name, adapter.enabled) == ("a1", True)
    with pytest.raises(AlreadyExists, match="Model adapter already exists: default/a1"):
        adapters.create(WS, "m", "a1", "default/a1", "lora")
    with pytest.raises(AlreadyExists):  # unique in the workspace, not per model
        adapters.create(WS, "other", "a1", "default/a1", "lora")
    assert adapters.update(WS, "a1", {"enabled": False}, model_name="m").enabled is False
    with pytest.raises(NotFound):  # a1 is not the other model's
        adapters.update(WS, "a1", {"enabled": True}, model_name="other")
    assert adapters.update(WS, "a1", {"description": "x"}).description == "x"
    assert adapters.update(WS, "a1", {"description": None, "fileset": None}).description is None
    assert adapters.get(WS, "a1").fileset == "default/a1"  # null leaves a required field be
    assert [a.name for a in model_entities.get(WS, "m").adapter_rows] == ["a1"]
    adapters.delete(WS, "a1", model_name="m")
    with pytest.raises(NotFound, match="Adapter a1 with workspace 'default'"):
        adapters.delete(WS, "a1", model_name="m")
    with pytest.raises(NotFound):
        adapters.create(WS, "ghost", "a1", "default/a1", "lora")

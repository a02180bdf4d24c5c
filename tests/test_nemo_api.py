"""The NeMo model-entity face over HTTP (Flask's test client): every rule of the seed."""
import json

import pytest

from gateway.db import database
from gateway.services import principals
from tests.conftest import make_app

ROOT = "/apis/models/v2/workspaces/default/models"


@pytest.fixture
def nemo(client):
    return client


def stored(nemo):
    return nemo.get(ROOT).json["pagination"]["total_results"]


def test_create_answers_201_with_the_full_entity(nemo):
    body = {"name": "llama-3.1-8b", "project": "team/proj", "description": "d",
            "fileset": "default/llama", "finetuning_type": "lora", "base_model": None,
            "api_endpoint": {"url": "https://nim.example.com/v1", "model_id": "meta/llama",
                             "format": "openai"},
            "backend_format": "ANTHROPIC_MESSAGES",
            "prompt": {"system_prompt": "be brief", "inference_params": {"temperature": 0.2,
                                                                         "max_tokens": 64}},
            "custom_fields": {"tier": "gold"}, "ownership": {"team": "ml"},
            "model_providers": ["default/nim"]}
    response = nemo.post(ROOT, json=body)
    assert response.status_code == 201
    entity = response.json
    assert entity["id"] and entity["workspace"] == "default"
    assert entity["created_at"].endswith("Z") and entity["updated_at"] == entity["created_at"]
    for key, value in body.items():
        if value is not None:
            assert entity[key] == value, key
    assert entity["trust_remote_code"] is False and entity["backend_format"] == (
        "ANTHROPIC_MESSAGES")


def test_get_update_delete(nemo):
    nemo.post(ROOT, json={"name": "m", "description": "d", "project": "p"})
    assert nemo.get(f"{ROOT}/m").json["description"] == "d"
    patched = nemo.patch(f"{ROOT}/m", json={"description": "new", "custom_fields": {"a": 1}})
    assert patched.status_code == 200
    assert (patched.json["description"], patched.json["project"]) == ("new", "p")
    assert patched.json["custom_fields"] == {"a": 1}
    deleted = nemo.delete(f"{ROOT}/m")
    assert (deleted.status_code, deleted.data) == (204, b"")
    missing = nemo.get(f"{ROOT}/m")
    assert missing.status_code == 404
    assert missing.json == {"detail": "Model with workspace 'default' and name 'm' not found"}


def test_duplicate_name_is_409(nemo):
    nemo.post(ROOT, json={"name": "m"})
    response = nemo.post(ROOT, json={"name": "m"})
    assert response.status_code == 409
    assert response.json == {"detail": "Model with workspace 'default' and name 'm' already exists"}


SPEC = {"checkpoint_model_name": "llama", "family": "llama", "num_layers": 32,
        "hidden_size": 4096, "num_attention_heads": 32, "num_kv_heads": 8,
        "ffn_hidden_size": 14336, "vocab_size": 128256, "tied_embeddings": False,
        "gated_mlp": True, "base_num_parameters": 8000000000, "precision": "bf16"}


def test_spec_is_stored_when_complete(nemo):
    response = nemo.post(ROOT, json={"name": "m", "spec": SPEC})
    assert response.status_code == 201 and response.json["spec"]["num_layers"] == 32


@pytest.mark.parametrize("body, location", [
    ({}, ["body", "name"]),
    ({"name": "bad name!"}, ["body", "name"]),
    ({"name": "x" * 256}, ["body", "name"]),
    ({"name": "m", "project": "bad project!"}, ["body", "project"]),
    ({"name": "m", "project": "p" * 256}, ["body", "project"]),
    ({"name": "m", "description": "d" * 1001}, ["body", "description"]),
    ({"name": "m", "fileset": "no-workspace"}, ["body", "fileset"]),
    ({"name": "m", "fileset": "a/b/c"}, ["body", "fileset"]),
    ({"name": "m", "finetuning_type": "magic"}, ["body", "finetuning_type"]),
    ({"name": "m", "backend_format": "GRPC"}, ["body", "backend_format"]),
    ({"name": "m", "spec": {"family": "llama"}}, ["body", "spec", "checkpoint_model_name"]),
    ({"name": "m", "spec": {**SPEC, "num_layers": "many"}}, ["body", "spec", "num_layers"]),
    ({"name": "m", "api_endpoint": {"url": "not a url"}}, ["body", "api_endpoint", "url"]),
    ({"name": "m", "prompt": {"inference_params": {"temperature": 5}}},
     ["body", "prompt", "inference_params", "temperature"]),
    ({"name": "m", "prompt": {"inference_params": {"max_tokens": 0}}},
     ["body", "prompt", "inference_params", "max_tokens"]),
    ({"name": "m", "custom_fields": ["not", "a", "map"]}, ["body", "custom_fields"]),
    ({"name": "m", "ownership": "alice"}, ["body", "ownership"]),
    ({"name": "m", "model_providers": ["no-slash"]}, ["body", "model_providers", 0]),
    ({"name": "m", "trust_remote_code": "perhaps"}, ["body", "trust_remote_code"]),
    ({"name": "m", "base_model": "a/b/c"}, ["body", "base_model"]),
])
def test_every_rule_answers_422_naming_the_field_and_stores_nothing(nemo, body, location):
    response = nemo.post(ROOT, json=body)
    assert response.status_code == 422
    assert location in [entry["loc"] for entry in response.json["detail"]]
    assert all({"loc", "msg", "type"} <= set(entry) for entry in response.json["detail"])
    assert stored(nemo) == 0


def test_base_model_must_exist(nemo):
    response = nemo.post(ROOT, json={"name": "child", "base_model": "ghost"})
    assert response.status_code == 422
    assert "does not name a model entity" in response.json["detail"]
    nemo.post(ROOT, json={"name": "base"})
    assert nemo.post(ROOT, json={"name": "child", "base_model": "default/base"}
                     ).json["base_model"] == "default/base"


def test_patch_rules_422_and_change_nothing(nemo):
    nemo.post(ROOT, json={"name": "m", "description": "kept"})
    response = nemo.patch(f"{ROOT}/m", json={"description": "x" * 1001, "fileset": "bad"})
    assert response.status_code == 422
    assert {tuple(e["loc"]) for e in response.json["detail"]} == {("body", "description"),
                                                                  ("body", "fileset")}
    assert nemo.get(f"{ROOT}/m").json["description"] == "kept"


def test_malformed_json_is_400(nemo):
    response = nemo.post(ROOT, data="{nope", content_type="application/json")
    assert response.status_code == 400 and isinstance(response.json["detail"], str)
    assert stored(nemo) == 0


def test_trust_remote_code_needs_an_approved_fileset_or_an_admin(database_url):
    app = make_app(database_url, TRUSTED_FILESETS=["hf-mirror/*"], AUTH="required")
    with app.app_context(), database.connection_context():
        for name, role in (("admin", "admin"), ("writer", "writer")):
            principals.create(name)
            principals.grant(name, "default", role)
        tokens = {name: principals.issue_token(name) for name in ("admin", "writer")}
    client = app.test_client()
    as_writer = {"Authorization": f"Bearer {tokens['writer']}"}
    refused = client.post(ROOT, json={"name": "a", "trust_remote_code": True,
                                      "fileset": "other/x"}, headers=as_writer)
    assert refused.status_code == 403
    assert refused.json == {"detail": "Insufficient permissions to set the trust_remote_code field"}
    approved = client.post(ROOT, json={"name": "b", "trust_remote_code": True,
                                       "fileset": "hf-mirror/llama"}, headers=as_writer)
    assert approved.json["trust_remote_code"] is True
    admin = client.post(ROOT, json={"name": "c", "trust_remote_code": True},
                        headers={"Authorization": f"Bearer {tokens['admin']}"})
    assert admin.json["trust_remote_code"] is True
    listed = client.get(ROOT, headers=as_writer).json["data"]
    assert sorted(m["name"] for m in listed) == ["b", "c"]


def test_adapters(nemo):
    nemo.post(ROOT, json={"name": "m"})
    created = nemo.post(f"{ROOT}/m/adapters", json={
        "name": "lora-1", "fileset": "default/lora-1", "finetuning_type": "lora",
        "lora_config": {"rank": 8, "alpha": 16}})
    assert created.status_code == 201
    assert created.json["model"] == "default/m" and created.json["enabled"] is True
    assert nemo.post(f"{ROOT}/m/adapters", json={
        "name": "lora-1", "fileset": "default/x", "finetuning_type": "lora"}).status_code == 409
    bad = nemo.post(f"{ROOT}/m/adapters", json={"name": "x", "finetuning_type": "lora",
                                                "lora_config": {"alpha": 1}})
    assert bad.status_code == 422
    assert {tuple(e["loc"]) for e in bad.json["detail"]} == {("body", "fileset"),
                                                            ("body", "lora_config", "rank")}
    assert [a["name"] for a in nemo.get(f"{ROOT}/m").json["adapters"]] == ["lora-1"]
    patched = nemo.patch(f"{ROOT}/m/adapters/lora-1", json={"enabled": False})
    assert patched.json["enabled"] is False
    assert nemo.delete(f"{ROOT}/m/adapters/lora-1").status_code == 204
    assert nemo.delete(f"{ROOT}/m/adapters/lora-1").status_code == 404
    assert nemo.get(f"{ROOT}/m").json["adapters"] is None


def make_models(nemo, *names):
    for name in names:
        assert nemo.post(ROOT, json={"name": name, "project": "p" if "llama" in name else "q"}
                         ).status_code == 201


def names(response):
    assert response.status_code == 200, response.json
    return [m["name"] for m in response.json["data"]]


def test_list_pages_and_sorts(nemo):
    make_models(nemo, "b", "a", "c", "d", "e")
    first = nemo.get(ROOT, query_string={"page_size": 2, "sort": "name"}).json
    assert [m["name"] for m in first["data"]] == ["a", "b"]
    assert first["pagination"] == {"page": 1, "page_size": 2, "current_page_size": 2,
                                   "total_pages": 3, "total_results": 5}
    last = nemo.get(ROOT, query_string={"page": 3, "page_size": 2, "sort": "name"}).json
    assert [m["name"] for m in last["data"]] == ["e"]
    assert names(nemo.get(ROOT, query_string={"sort": "-name"})) == ["e", "d", "c", "b", "a"]
    assert names(nemo.get(ROOT)) == ["b", "a", "c", "d", "e"]  # created_at by default
    assert "project" in nemo.get(ROOT).json["data"][0]
    assert "spec" not in nemo.get(ROOT).json["data"][0]  # nulls are left out of lists


def test_list_filters_json_and_bracket(nemo):
    make_models(nemo, "llama-a", "llama-b", "mistral")
    assert names(nemo.get(ROOT + '?filter={"name":{"$like":"LLAMA"}}')) == ["llama-a", "llama-b"]
    assert names(nemo.get(ROOT + "?filter[name][$like]=llama")) == ["llama-a", "llama-b"]
    assert names(nemo.get(ROOT + "?filter[name]=mistral")) == ["mistral"]
    assert names(nemo.get(ROOT + "?filter[name][$eq]=llama-b")) == ["llama-b"]
    assert names(nemo.get(ROOT + "?filter[name][$in]=llama-a,mistral")) == ["llama-a", "mistral"]
    assert names(nemo.get(ROOT + "?filter[name][$nin]=llama-a")) == ["llama-b", "mistral"]
    assert names(nemo.get(ROOT + '?filter={"project":"q"}')) == ["mistral"]
    stamp = nemo.get(f"{ROOT}/llama-b").json["created_at"]
    assert names(nemo.get(ROOT, query_string={"filter[created_at][$gte]": stamp})) == [
        "llama-b", "mistral"]
    assert names(nemo.get(ROOT, query_string={"filter[created_at][$lte]": stamp})) == [
        "llama-a", "llama-b"]


@pytest.mark.parametrize("query, status", [
    ("filter[colour]=red", 400), ('filter={"colour":"red"}', 400), ("filter={bad json", 400),
    ('filter=name:x', 400), ('filter=name:"x" OR', 400), ("filter[name][$regex]=x", 400), ("page=0", 422),
    ("page=abc", 422), ("page_size=0", 422), ("sort=size", 422),
])
def test_bad_list_queries(nemo, query, status):
    response = nemo.get(f"{ROOT}?{query}")
    assert response.status_code == status
    assert response.json["detail"]


def test_unknown_workspace_and_routes(nemo):
    response = nemo.get("/apis/models/v2/workspaces/ghost/models")
    assert (response.status_code, response.json) == (404, {"detail": "Workspace 'ghost' not found"})
    assert nemo.get("/apis/models/v2/nope").json == {"detail": "Not Found"}
    assert nemo.put(ROOT).json == {"detail": "Method Not Allowed"}


def test_entities_and_mlflow_share_one_registry(nemo, api):
    nemo.post(ROOT, json={"name": "shared", "description": "from nemo"})
    assert api.version("shared")["version"] == "1"
    api.model("from-mlflow", description="mlflow")
    listed = {m["name"]: m for m in nemo.get(ROOT).json["data"]}
    assert listed["from-mlflow"]["description"] == "mlflow"
    assert nemo.delete(f"{ROOT}/shared").status_code == 204
    assert api.get("registered-models/get", query_string={"name": "shared"}).status_code == 404


def test_retry_tokens_and_request_ids_work_here_too(nemo):
    headers = {"opc-retry-token": "nemo-1", "opc-request-id": "nemo-req"}
    first = nemo.post(ROOT, json={"name": "m"}, headers=headers)
    again = nemo.post(ROOT, json={"name": "m"}, headers=headers)
    assert (first.status_code, again.status_code) == (201, 201)
    assert again.json == first.json and again.headers["opc-request-id"] == "nemo-req"
    assert json.loads(nemo.get(ROOT).data)["pagination"]["total_results"] == 1


def test_auth_answers_in_nemo_format(database_url):
    app = make_app(database_url, AUTH="required")
    response = app.test_client().get(ROOT)
    assert (response.status_code, list(response.json)) == (401, ["detail"])
    assert response.headers["WWW-Authenticate"]

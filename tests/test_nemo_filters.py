"""NeMo's filter grammar on models.list (and adapters.list) over HTTP: every field of the SDK's
ModelEntityFilterParam, in JSON, bracket and text syntax, on a prepared set of models with the
exact names each filter must return."""
import json
import time
from datetime import datetime, timezone
from urllib.parse import quote

import pytest

ROOT = "/apis/models/v2/workspaces/default"
ALL = ["llama-base", "llama-lora", "llama_chat", "mistral", "phi"]


@pytest.fixture
def prepared(client):
    """Five models (in this order, a few ms apart) and their adapters:

    name        project  base_model  finetuning   prompt  adapters (type, enabled)
    llama-base  llm      -           -            -       -
    llama-lora  llm      llama-base  lora         yes     ad-lora (lora, on)
    llama_chat  chat     llama-base  all_weights  -       ad-dpo (dpo, on)
    mistral     other    -           -            -       ad-off (lora, off)
    phi         -        -           -            -       -
    """
    bodies = [
        {"name": "llama-base", "project": "llm", "fileset": "default/llama",
         "description": "Base Llama"},
        {"name": "llama-lora", "project": "llm", "base_model": "llama-base",
         "finetuning_type": "lora", "prompt": {"system_prompt": "be brief"}},
        {"name": "llama_chat", "project": "chat", "base_model": "default/llama-base",
         "finetuning_type": "all_weights", "description": "chat 100% tuned"},
        {"name": "mistral", "project": "other", "description": "Mistral 7B"},
        {"name": "phi"},
    ]
    stamps = {}
    for body in bodies:
        created = client.post(f"{ROOT}/models", json=body)
        assert created.status_code == 201, created.json
        stamps[body["name"]] = created.json["created_at"]
        time.sleep(0.005)
    for name, model, kind, enabled in (("ad-lora", "llama-lora", "lora", True),
                                       ("ad-dpo", "llama_chat", "dpo", True),
                                       ("ad-off", "mistral", "lora", False)):
        response = client.post(f"{ROOT}/adapters", json={
            "name": name, "model": model, "fileset": f"default/{name}", "finetuning_type": kind,
            "enabled": enabled})
        assert response.status_code == 201, response.json
    return client, stamps


def names(client, query, path="models"):
    response = client.get(f"{ROOT}/{path}?{query}&sort=created_at&page_size=1000")
    assert response.status_code == 200, (query, response.json)
    return [row["name"] for row in response.json["data"]]


def as_json(tree):
    return "filter=" + quote(json.dumps(tree))


def as_text(text):
    return "filter=" + quote(text)


CASES = [
    # base_model: true/false = has one or not; a string or {name: StringFilter} = matches it
    ({"base_model": True}, ["llama-lora", "llama_chat"]),
    ({"base_model": False}, ["llama-base", "mistral", "phi"]),
    ({"base_model": "llama-base"}, ["llama-lora"]),
    ({"base_model": {"name": "default/llama-base"}}, ["llama_chat"]),
    ({"base_model": {"name": {"$like": "BASE"}}}, ["llama-lora", "llama_chat"]),
    ({"base_model": {"name": {"$in": ["llama-base", "x"]}}}, ["llama-lora"]),
    ({"base_model": {"name": {"$like": "nothing"}}}, []),
    # finetuning_type: a value, or true/false = has one or not
    ({"finetuning_type": "lora"}, ["llama-lora"]),
    ({"finetuning_type": True}, ["llama-lora", "llama_chat"]),
    ({"finetuning_type": False}, ["llama-base", "mistral", "phi"]),
    ({"finetuning_type": {"$in": ["all_weights", "dpo"]}}, ["llama_chat"]),
    # adapters: true/false, or a FinetuningTypeFilter on them
    ({"adapters": True}, ["llama-lora", "llama_chat", "mistral"]),
    ({"adapters": False}, ["llama-base", "phi"]),
    ({"adapters": {"finetuning_type": "lora"}}, ["llama-lora", "mistral"]),
    ({"adapters": {"finetuning_type": "dpo"}}, ["llama_chat"]),
    # lora_enabled: an enabled LoRA adapter; prompt: has prompt data
    ({"lora_enabled": True}, ["llama-lora"]),
    ({"lora_enabled": False}, ["llama-base", "llama_chat", "mistral", "phi"]),
    ({"prompt": True}, ["llama-lora"]),
    ({"prompt": False}, ["llama-base", "llama_chat", "mistral", "phi"]),
    # plain and StringFilter fields
    ({"project": "llm"}, ["llama-base", "llama-lora"]),
    ({"project": {"$nin": ["llm"]}}, ["llama_chat", "mistral", "phi"]),
    ({"fileset": "default/llama"}, ["llama-base"]),
    ({"workspace": "default"}, ALL),
    ({"workspace": "elsewhere"}, []),
    ({"name": "phi"}, ["phi"]),
    ({"name": {"$like": "_"}}, ["llama_chat"]),  # "_" is a character, not a wildcard
    ({"name": {"$like": "LLAMA-"}}, ["llama-base", "llama-lora"]),
    ({"name": {"$in": ["phi", "mistral", "nope"]}}, ["mistral", "phi"]),
    ({"name": {"$nin": ["phi", "mistral"]}}, ["llama-base", "llama-lora", "llama_chat"]),
    ({"description": {"$like": "100%"}}, ["llama_chat"]),
    ({"description": {"$like": "%"}}, ["llama_chat"]),
    ({"description": "Mistral 7B"}, ["mistral"]),
    ({"description": {"$eq": "mistral 7b"}}, []),  # $eq is case-sensitive
    # logical operators
    ({"$or": [{"name": "phi"}, {"prompt": True}]}, ["llama-lora", "phi"]),
    ({"$and": [{"project": "llm"}, {"adapters": True}]}, ["llama-lora"]),
    ({"$not": {"adapters": True}}, ["llama-base", "phi"]),
    ({"$not": {"project": "llm"}}, ["llama_chat", "mistral", "phi"]),  # phi has no project
    ({"$or": [{"$and": [{"project": "llm"}, {"base_model": False}]}, {"name": "phi"}]},
     ["llama-base", "phi"]),
]


@pytest.mark.parametrize("tree, expected", CASES)
def test_json_filters(prepared, tree, expected):
    client, _ = prepared
    assert names(client, as_json(tree)) == expected


def _brackets(tree, prefix="filter"):
    """The SDK's encoding: nested keys in brackets, lists as a,b, booleans as true/false."""
    for key, value in tree.items():
        if isinstance(value, dict):
            yield from _brackets(value, f"{prefix}[{key}]")
        else:
            text = ",".join(value) if isinstance(value, list) else (
                str(value).lower() if isinstance(value, bool) else value)
            yield f"{prefix}[{key}]={quote(text)}"


@pytest.mark.parametrize("tree, expected", [case for case in CASES
                                            if not any(k.startswith("$") for k in case[0])])
def test_bracket_filters(prepared, tree, expected):
    client, _ = prepared
    assert names(client, "&".join(_brackets(tree))) == expected


@pytest.mark.parametrize("text, expected", [
    ('name:"phi"', ["phi"]),
    ('name~"LLAMA"', ["llama-base", "llama-lora", "llama_chat"]),
    ('name~"llama" AND -adapters:true', ["llama-base"]),
    ('name~"llama" -adapters:true', ["llama-base"]),  # a space is AND
    ('project IN ["llm", "chat"] OR name:"phi"', ["llama-base", "llama-lora", "llama_chat", "phi"]),
    ('name NOT IN ["phi", "mistral"]', ["llama-base", "llama-lora", "llama_chat"]),
    ('(base_model:true) prompt:false', ["llama_chat"]),
    ('base_model.name~"base" AND NOT finetuning_type:"lora"', ["llama_chat"]),
    ('adapters.finetuning_type:"lora" lora_enabled:false', ["mistral"]),
    ('description~"100%" OR (project:"other" AND description:"Mistral 7B")',
     ["llama_chat", "mistral"]),
    ('name:"say \\"hi\\""', []),
])
def test_text_filters(prepared, text, expected):
    client, _ = prepared
    assert names(client, as_text(text)) == expected


def test_time_filters_in_every_syntax(prepared):
    client, stamps = prepared
    mistral = stamps["mistral"]
    assert names(client, as_json({"created_at": {"$gte": mistral}})) == ["mistral", "phi"]
    assert names(client, as_json({"created_at": {"$gt": mistral}})) == ["phi"]
    assert names(client, as_json({"created_at": {"$lt": mistral}})) == [
        "llama-base", "llama-lora", "llama_chat"]
    assert names(client, as_json({"created_at": mistral})) == ["mistral"]
    assert names(client, f"filter[created_at][$lte]={quote(mistral)}")[-1] == "mistral"
    assert names(client, as_text(f'created_at>="{mistral}" AND name:"phi"')) == ["phi"]
    # A timestamp without a zone is UTC, as in NeMo's examples; a date is its midnight.
    naive = mistral.removesuffix("Z")
    assert names(client, as_json({"created_at": {"$gte": naive}})) == ["mistral", "phi"]
    today = datetime.now(timezone.utc).date().isoformat()
    assert names(client, as_json({"updated_at": {"$gte": today}})) == ALL
    assert names(client, as_json({"updated_at": {"$lt": "2000-01-01"}})) == []


def test_forms_combine_with_and(prepared):
    client, _ = prepared
    query = as_json({"project": "llm"}) + "&filter[adapters]=true"
    assert names(client, query) == ["llama-lora"]


@pytest.mark.parametrize("query", [
    "filter[colour]=red", as_json({"colour": "red"}), "filter[name][$regex]=x",
    "filter[base_model][size]=7", "filter[base_model][name][$regex]=x",
    "filter[adapters][kind]=lora", "filter[adapters]=maybe", "filter[prompt]=yes",
    "filter[finetuning_type]=lorax", "filter[lora_enabled][$in]=true",
    as_json({"created_at": {"$like": "2026"}}), as_json({"created_at": {"$gte": "yesterday"}}),
    as_json({"$or": {"name": "phi"}}), as_json({"$or": []}), as_json({"$nor": []}),
    as_json({"name": {"$in": [1]}}), as_json({"name": 5}), as_json(["name"]),
    "filter={bad json", as_text("name:phi"), as_text('name:"phi" OR'), as_text('name ? "x"'),
    as_text('(name:"phi"'), as_text('name IN "phi"'), as_text('colour:"red"'),
    "filter[name]=a&filter[name]=b", "filter[]=x", "filter[name]]=x",
])
def test_anything_unknown_is_400_never_ignored(prepared, query):
    client, _ = prepared
    response = client.get(f"{ROOT}/models?{query}")
    assert response.status_code == 400, query
    assert isinstance(response.json["detail"], str)


def test_adapter_list_filters(prepared):
    client, _ = prepared
    assert names(client, "", "adapters") == ["ad-lora", "ad-dpo", "ad-off"]
    assert names(client, "filter[enabled]=false", "adapters") == ["ad-off"]
    assert names(client, "filter[finetuning_type]=lora", "adapters") == ["ad-lora", "ad-off"]
    assert names(client, "filter[model]=default/mistral", "adapters") == ["ad-off"]
    assert names(client, "filter[model][$like]=llama", "adapters") == ["ad-lora", "ad-dpo"]
    assert names(client, as_text('name~"ad-" AND -enabled:true'), "adapters") == ["ad-off"]
    assert client.get(f"{ROOT}/adapters?filter[base_model]=x").status_code == 400

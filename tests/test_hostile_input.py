"""Every operation of /openapi.json fed the inputs that used to reach the database and fail
there: lone surrogates in strings, numbers past 64 bits, forged page offsets. None may be a 5xx;
each is a 4xx in the face's format."""
import base64
import json

import pytest

from tests.conftest import make_app

SURROGATE = "a\ud800b"
HUGE = 10**20
FORGED_TOKEN = base64.b64encode(json.dumps({"offset": HUGE}).encode()).decode()


@pytest.fixture
def prepared(database_url):
    client = make_app(database_url, ACCESS_LOG=False).test_client()
    client.post("/api/2.0/mlflow/registered-models/create", json={"name": "m"})
    client.post("/api/2.0/mlflow/model-versions/create", json={"name": "m",
                                                               "source": "s3://b/m"})
    client.post("/apis/models/v2/workspaces/default/models", json={"name": "e"})
    return client


def _resolve(document, schema):
    while "$ref" in schema:
        schema = document["components"]["schemas"][schema["$ref"].rsplit("/", 1)[1]]
    return schema


def _hostile_values(document, schema):
    """(field, value) pairs for every string and integer property of a schema."""
    for name, prop in _resolve(document, schema).get("properties", {}).items():
        prop = _resolve(document, prop)
        kind = prop.get("type")
        if name == "page_token":
            yield name, FORGED_TOKEN
        elif kind == "string":
            yield name, SURROGATE
        elif kind in ("integer", "number"):
            yield name, HUGE
            yield name, -HUGE
        elif kind == "array" and _resolve(document, prop.get("items", {})).get(
                "type") == "string":
            yield name, [SURROGATE]


def _concrete(path):
    return (path.replace("{platform_id}", "ocid1.p..hostile").replace("{workspace_key}", "k")
            .replace("{workspace}", "default").replace("{name}", "e")
            .replace("{adapter}", "a"))


def test_no_operation_answers_5xx_to_hostile_values(prepared):
    document = prepared.get("/openapi.json").json
    tried = 0
    for path, operations in document["paths"].items():
        for method, operation in operations.items():
            body = operation.get("requestBody", {}).get("content", {}).get(
                "application/json", {}).get("schema")
            query = next((p["schema"] for p in operation.get("parameters", [])
                          if p["in"] == "query"), None)
            for schema, where in ((body, "body"), (query, "query")):
                if schema is None:
                    continue
                for field, value in _hostile_values(document, schema):
                    payload = {field: value, "name": "m"} if field != "name" else {field: value}
                    if where == "body":
                        # json.dumps writes the lone surrogate as the escape "\ud800".
                        answer = prepared.open(_concrete(path), method=method.upper(),
                                               data=json.dumps(payload),
                                               content_type="application/json")
                    else:
                        answer = prepared.open(_concrete(path), method=method.upper(),
                                               query_string=payload)
                    tried += 1
                    assert answer.status_code < 500, (method, path, field, answer.data[:300])
                    assert answer.is_json, (method, path, field)
    assert tried > 150

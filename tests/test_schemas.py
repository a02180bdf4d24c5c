"""The compiled response dumpers answer exactly what the marshmallow schemas answer."""
from types import SimpleNamespace

import pytest
from marshmallow import fields

from gateway.faces.dumping import compiled_dump
from gateway.faces.mlflow_api import schemas
from gateway.services import model_versions, registered_models

WS = "default"
PAIRS = [(schemas.model_version_schema, schemas.dump_version),
         (schemas.registered_model_schema, schemas.dump_registered_model)]


def _registry_rows():
    registered_models.create(WS, "plain")
    registered_models.create(WS, "full", "about it", tags=[{"key": "k", "value": "v"}],
                             user_id="ann")
    model_versions.create(WS, "full", "s3://a/m", run_id="r1", description="first",
                          tags=[{"key": "t", "value": ""}], user_id="ann", workspace_key="wk")
    model_versions.create(WS, "full", "s3://b/m")
    model_versions.transition_stage(WS, "full", "2", "Staging")
    registered_models.set_alias(WS, "full", "champion", "1")
    versions = [model_versions.get(WS, "full", "1"), model_versions.get(WS, "full", "2")]
    versions += model_versions.search(WS, "name='full'")[0]  # flat list rows, no aliases
    versions += model_versions.latest(WS, "full")
    models = [registered_models.get(WS, "plain"), registered_models.get(WS, "full")]
    models += registered_models.search(WS)[0]
    return versions, models


def test_compiled_dumps_equal_marshmallow_on_rows_from_the_services(db):
    versions, models = _registry_rows()
    for (schema, dump), rows in zip(PAIRS, (versions, models)):
        for row in rows:
            assert dump(row) == schema.dump(row)
            assert list(dump(row)) == list(schema.dump(row))  # the same key order too
    # The answers carry what they should (so the comparison above is not of empty dicts).
    full = schemas.dump_registered_model(models[1])
    assert full["aliases"] == [{"alias": "champion", "version": "1"}]
    assert full["latest_versions"][0]["tags"] == [{"key": "t", "value": ""}]
    assert full["tags"] == [{"key": "k", "value": "v"}] and "description" in full
    assert schemas.dump_version(versions[0])["aliases"] == ["champion"]


@pytest.mark.parametrize("empty", [None, "", []])
def test_compiled_dumps_omit_what_marshmallow_omits(empty):
    row = SimpleNamespace(registered_model=SimpleNamespace(name="m"), version=3,
                          creation_timestamp=1, last_updated_timestamp=2, current_stage="None",
                          description=empty, source="s", run_id=empty, status="READY",
                          status_message=empty, tags=empty, run_link=empty, aliases=empty,
                          user_id=None, workspace_key=None)
    assert schemas.dump_version(row) == schemas.model_version_schema.dump(row)
    model = SimpleNamespace(name="m", creation_timestamp=1, last_updated_timestamp=2,
                            description=empty, latest_versions=[row], tags=empty,
                            aliases=empty, user_id="u")
    assert (schemas.dump_registered_model(model)
            == schemas.registered_model_schema.dump(model))


def test_compiled_dump_refuses_field_kinds_it_does_not_know():
    class WithDate(schemas.Response):
        when = fields.DateTime()

    with pytest.raises(TypeError, match="DateTime"):
        compiled_dump(WithDate())

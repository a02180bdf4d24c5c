"""Drives OpenMetadata's own client (openmetadata-ingestion 2.0.7.0, unmodified) against a
gateway, with plain asserts. It runs in the client's environment (built by
.ci/om_client_env.sh), not the gateway's: tests/test_openmetadata_client.py starts it as
`python om_client_driver.py HOST_PORT TOKEN SCENARIO [NAME_PREFIX]` and reads its exit status and output.
"""
import json
import sys
import warnings

warnings.filterwarnings("ignore")

from metadata.generated.schema.api.data.createMlModel import CreateMlModelRequest  # noqa: E402
from metadata.generated.schema.api.services.createMlModelService import (  # noqa: E402
    CreateMlModelServiceRequest)
from metadata.generated.schema.entity.data.mlmodel import (  # noqa: E402
    FeatureSource, MlFeature, MlHyperParameter, MlModel, MlStore)
from metadata.generated.schema.entity.services.connections.metadata.openMetadataConnection import (  # noqa: E402,E501
    AuthProvider, OpenMetadataConnection)
from metadata.generated.schema.entity.services.mlmodelService import MlModelService  # noqa: E402
from metadata.generated.schema.security.client.openMetadataJWTClientConfig import (  # noqa: E402
    OpenMetadataJWTClientConfig)
from metadata.generated.schema.type.tagLabel import TagLabel  # noqa: E402
from metadata.ingestion.ometa.client import APIError  # noqa: E402
from metadata.ingestion.ometa.ometa_api import OpenMetadata  # noqa: E402


def connect(host_port, token):
    return OpenMetadata(OpenMetadataConnection(
        hostPort=host_port, authProvider=AuthProvider.openmetadata,
        securityConfig=OpenMetadataJWTClientConfig(jwtToken=token)))


def raises(code, call):
    try:
        call()
    except APIError as error:
        assert error.code == code, (error.code, str(error))
        return
    raise AssertionError(f"expected an APIError {code}")


def value(field):
    return getattr(field, "root", field)


def lifecycle(host_port, token, prefix):
    """The classic client through the whole lifecycle."""
    om = connect(host_port, token)  # the handshake: /system/version
    service = om.create_or_update(CreateMlModelServiceRequest(
        name="churn-svc", serviceType="Mlflow", description="team models",
        connection={"config": {"type": "Mlflow", "trackingUri": "http://mlflow:5000",
                               "registryUri": "http://mlflow:5000"}}))
    assert value(service.fullyQualifiedName) == "churn-svc" and value(service.version) == 0.1
    again = om.create_or_update(CreateMlModelServiceRequest(
        name="churn-svc", serviceType="Mlflow", description="team models"))
    assert value(again.version) == 0.1  # no change, no new version

    request = CreateMlModelRequest(
        name="churn", service="churn-svc", algorithm="xgboost", displayName="Churn",
        description="predicts churn", target="churned", dashboard="superset.churn",
        mlFeatures=[MlFeature(name="age", dataType="numerical", featureSources=[
            FeatureSource(name="age", dataType="integer", fullyQualifiedName="db.s.users.age")]),
            MlFeature(name="plan", dataType="categorical")],
        mlHyperParameters=[MlHyperParameter(name="max_depth", value="6")],
        mlStore=MlStore(storage="s3://models/churn"), server="http://serving:8080",
        tags=[TagLabel(tagFQN="PII.Sensitive", source="Classification", labelType="Manual",
                       state="Confirmed")],
        extension={"team": "growth"}, domains=["Marketing"], sourceHash="abc")
    model = om.create_or_update(request)
    assert value(model.fullyQualifiedName) == "churn-svc.churn"
    assert value(model.version) == 0.1 and model.algorithm == "xgboost"
    assert [value(f.fullyQualifiedName) for f in model.mlFeatures] == [
        "churn-svc.churn.age", "churn-svc.churn.plan"]
    assert value(model.service.fullyQualifiedName) == "churn-svc"

    by_id = om.get_by_id(MlModel, model.id, fields=["owners", "tags", "followers"])
    by_name = om.get_by_name(MlModel, "churn-svc.churn", fields=["tags", "extension"])
    assert by_id.id == by_name.id == model.id
    assert [value(t.tagFQN) for t in by_name.tags] == ["PII.Sensitive"]
    assert om.get_by_name(MlModel, "churn-svc.ghost") is None
    raises(409, lambda: om.create(request))  # a duplicate POST

    minor = om.create_or_update(request.model_copy(update={"description": "v2"}))
    assert value(minor.version) == 0.2
    same = om.create_or_update(request.model_copy(update={"description": "v2"}))
    assert value(same.version) == 0.2
    major = om.create_or_update(request.model_copy(update={"description": "v2",
                                                           "algorithm": "lightgbm"}))
    assert value(major.version) == 1.2

    current = om.get_by_id(MlModel, model.id)
    wanted = current.model_copy(deep=True)
    wanted.description = "patched"
    patched = om.patch(entity=MlModel, source=current, destination=wanted)
    assert value(patched.description) == "patched" and value(patched.version) == 1.3
    history = om.list_versions(model.id, MlModel)
    assert [json.loads(v)["version"] for v in history.versions] == [1.3, 1.2, 0.2, 0.1]

    result = om.bulk_create_or_update([
        CreateMlModelRequest(name="bulk-1", service="churn-svc"),
        CreateMlModelRequest(name="bulk-2", service="no-such-service"),
        CreateMlModelRequest(name="bulk-3", service="churn-svc")])
    assert value(result.numberOfRowsProcessed) == 3 and value(result.numberOfRowsFailed) == 1

    names = [value(m.name) for m in om.list_all_entities(MlModel, limit=1)]
    assert names == ["bulk-1", "bulk-3", "churn"], names
    first = om.list_entities(MlModel, limit=2)
    second = om.list_entities(MlModel, limit=2, after=first.after)
    assert [value(m.name) for m in second.entities] == ["churn"] and second.after is None
    back = om.list_entities(MlModel, limit=2, before=second.before)
    assert [value(m.name) for m in back.entities] == ["bulk-1", "bulk-3"]
    in_service = om.list_entities(MlModel, params={"service": "churn-svc"}, limit=10)
    assert in_service.total == 3

    raises(400, lambda: om.client.post("/mlmodels", data=json.dumps(
        {"name": "bad::name", "service": "churn-svc"})))
    raises(400, lambda: om.client.post("/mlmodels", data=json.dumps(
        {"name": "x", "service": "churn-svc", "colour": "red"})))

    om.delete(MlModel, model.id)  # soft
    assert om.get_by_id(MlModel, model.id) is None
    restored = om.restore(MlModel, model.id)
    assert restored.deleted is False
    raises(400, lambda: om.delete(MlModelService, service.id))  # not empty
    om.delete(MlModelService, service.id, recursive=True, hard_delete=True)
    assert om.get_by_name(MlModelService, "churn-svc") is None
    assert om.get_by_id(MlModel, model.id) is None
    print("lifecycle ok")


def sdk(host_port, token, prefix):
    """The seed's SDK: metadata.sdk.configure + MLModels."""
    from metadata.sdk import configure
    from metadata.sdk.entities import MLModels
    configure(host=host_port, jwt_token=token)
    om = connect(host_port, token)
    om.create_or_update(CreateMlModelServiceRequest(name="sdk-svc", serviceType="Sklearn"))
    created = MLModels.create(CreateMlModelRequest(name="fraud", service="sdk-svc",
                                                   algorithm="logistic"))
    assert value(created.fullyQualifiedName) == "sdk-svc.fraud"
    assert MLModels.retrieve(created.id).id == created.id
    fetched = MLModels.retrieve_by_name("sdk-svc.fraud")
    fetched.description = "via the SDK"
    updated = MLModels.update(fetched)
    assert value(updated.description) == "via the SDK" and value(updated.version) == 0.2
    assert "fraud" in [value(m.name) for m in MLModels.list(limit=100).entities]
    assert len(MLModels.get_versions(created.id)) == 2
    MLModels.delete(created.id)
    assert MLModels.restore(created.id).deleted is False
    MLModels.delete(created.id, hard_delete=True)
    print("sdk ok")


def handoff(host_port, token, prefix):
    """A model made here, for the MLflow client to version (the test checks it)."""
    om = connect(host_port, token)
    om.create_or_update(CreateMlModelServiceRequest(name=f"{prefix}-svc", serviceType="Mlflow"))
    om.create_or_update(CreateMlModelRequest(name=f"{prefix}-shared", service=f"{prefix}-svc",
                                             algorithm="xgboost", description="from OM"))
    print("handoff ok")


def sees_mlflow(host_port, token, prefix):
    """A model registered through MLflow, seen here under the registry service."""
    om = connect(host_port, token)
    model = om.get_by_name(MlModel, f"registry.{prefix}-mlflow")
    assert model is not None and value(model.description) == "registered by MLflow"
    assert model.serviceType.value == "Mlflow"
    assert f"{prefix}-mlflow" in [value(m.name) for m in om.list_all_entities(
        MlModel, params={"service": "registry"})]
    shared = om.get_by_name(MlModel, f"{prefix}-svc.{prefix}-shared")
    assert value(shared.version) == 0.1  # MLflow's new version is not a catalog change
    print("sees mlflow ok")


def refused(host_port, token, prefix):
    """With authentication on, a wrong token stops the client at its first call."""
    try:
        om = connect(host_port, token)
        om.list_entities(MlModel, limit=1)
    except Exception as error:  # the client's own exception for a 401
        print(f"refused: {type(error).__name__}")
        return
    raise AssertionError("a wrong token was accepted")


if __name__ == "__main__":
    globals()[sys.argv[3]](sys.argv[1], sys.argv[2], sys.argv[4] if len(sys.argv) > 4 else "")

"""OpenMetadata's request shapes (openmetadata-ingestion 2.0.7's generated models, which forbid
unknown fields) in marshmallow: CreateMlModel, CreateMlModelService and what they nest."""
from marshmallow import RAISE, Schema, ValidationError, fields, validates
from marshmallow.validate import Length, OneOf

from gateway.exceptions import InvalidParameter
from gateway.faces.fields import Text
from gateway.services import catalog

# The names `fields=` may ask for.
FIELDS = {catalog.MODEL: {"owners", "dashboard", "followers", "tags", "usageSummary",
                          "extension", "domains", "dataProducts", "votes", "lifeCycle",
                          "sourceHash", "certification", "dataContract", "entityStatus"},
          catalog.SERVICE: {"pipelines", "owners", "tags", "domains", "followers",
                            "dataProducts", "ingestionRunner", "entityStatus"}}
# Every field of OpenMetadata's MlModel / MlModelService (a patch may touch no other).
ENTITY_FIELDS = {
    catalog.MODEL: {"id", "name", "fullyQualifiedName", "displayName", "description", "algorithm",
                    "mlFeatures", "mlHyperParameters", "target", "dashboard", "mlStore",
                    "server", "href", "owners", "followers", "tags", "usageSummary", "version",
                    "updatedAt", "updatedBy", "impersonatedBy", "service", "serviceType",
                    "changeDescription", "incrementalChangeDescription", "deleted",
                    "extension", "sourceUrl", "domains", "dataProducts", "dataContract", "votes",
                    "lifeCycle", "certification", "sourceHash", "entityStatus"},
    catalog.SERVICE: {"id", "name", "fullyQualifiedName", "serviceType", "description",
                      "displayName", "version", "updatedAt", "updatedBy", "impersonatedBy",
                      "pipelines", "connection", "testConnectionResult", "tags", "style",
                      "owners", "href", "changeDescription", "incrementalChangeDescription",
                      "deleted", "entityStatus", "dataProducts", "dataContract", "followers",
                      "domains", "ingestionRunner"}}
SERVICE_TYPES = ("Mlflow", "Sklearn", "CustomMlModel", "SageMaker", "VertexAI")
FQN = Length(1, 3072)


class Strict(Schema):
    class Meta:
        unknown = RAISE


def entity_name(required=False):
    return Text(required=required, validate=_entity_name)


def _entity_name(value):
    try:
        catalog.check_name(value)
    except InvalidParameter as error:
        raise ValidationError(error.message) from None


class EntityReference(Strict):
    id = fields.UUID(required=True)
    type = Text(required=True)
    name = Text()
    fullyQualifiedName = Text()
    description = Text()
    displayName = Text()
    deleted = fields.Boolean()
    inherited = fields.Boolean()
    href = fields.Url(require_tld=False)


class TagLabel(Strict):
    tagFQN = Text(required=True, validate=Length(max=3072))
    name = Text()
    displayName = Text()
    description = Text()
    style = fields.Dict()
    source = Text(required=True, validate=OneOf(("Classification", "Glossary")))
    labelType = Text(required=True, validate=OneOf(
        ("Manual", "Propagated", "Automated", "Derived", "Generated")))
    state = Text(required=True, validate=OneOf(("Suggested", "Confirmed")))
    href = fields.Url(require_tld=False)
    reason = Text()
    appliedAt = fields.AwareDateTime()
    appliedBy = Text()
    metadata = fields.Dict()


def tags():
    return fields.List(fields.Nested(TagLabel))


def references():
    return fields.List(fields.Nested(EntityReference))


class FeatureSource(Strict):
    name = entity_name()
    dataType = Text(validate=OneOf(("integer", "number", "string", "array", "date",
                                    "timestamp", "object", "boolean")))
    description = Text()
    fullyQualifiedName = Text(validate=FQN)
    dataSource = fields.Nested(EntityReference)
    tags = tags()


class MlFeature(Strict):
    name = entity_name()
    dataType = Text(validate=OneOf(("numerical", "categorical")))
    description = Text()
    fullyQualifiedName = Text(validate=FQN)
    featureSources = fields.List(fields.Nested(FeatureSource))
    featureAlgorithm = Text()
    tags = tags()


class MlHyperParameter(Strict):
    name = Text()
    value = Text()
    description = Text()


class MlStore(Strict):
    storage = Text()
    imageRepository = Text()


class CreateMlModel(Strict):
    name = entity_name(required=True)
    service = Text(required=True, validate=FQN)
    displayName = Text()
    description = Text(validate=Length(max=5000))  # the registered model's column size
    algorithm = Text()
    mlFeatures = fields.List(fields.Nested(MlFeature))
    target = entity_name()
    mlHyperParameters = fields.List(fields.Nested(MlHyperParameter))
    dashboard = Text(validate=FQN)
    mlStore = fields.Nested(MlStore)
    server = fields.Url(require_tld=False)
    tags = tags()
    owners = references()
    extension = fields.Raw()
    sourceUrl = fields.Url(require_tld=False)
    domains = fields.List(Text(validate=FQN))
    dataProducts = fields.List(Text(validate=FQN))
    lifeCycle = fields.Dict()
    sourceHash = Text(validate=Length(1, 32))


class Connection(Strict):
    config = fields.Dict(required=True)


class CreateMlModelService(Strict):
    name = entity_name(required=True)
    serviceType = Text(required=True, validate=OneOf(SERVICE_TYPES))
    displayName = Text()
    description = Text()
    connection = fields.Nested(Connection)
    tags = tags()
    style = fields.Dict()
    owners = references()
    dataProducts = fields.List(Text(validate=FQN))
    domains = fields.List(Text(validate=FQN))
    ingestionRunner = fields.Nested(EntityReference)

    @validates("connection")
    def _config_type(self, value, **kwargs):
        kind = value["config"].get("type")
        if kind is not None and not isinstance(kind, str):
            raise ValidationError("connection.config.type must be a string")


create_model = CreateMlModel()
create_service = CreateMlModelService()

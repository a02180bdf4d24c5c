"""Request and response schemas of the MLflow face, in MLflow's JSON shapes."""
from marshmallow import EXCLUDE, Schema, ValidationError, fields, post_dump
from marshmallow.validate import Length

from gateway.faces.dumping import compiled_dump
from gateway.faces.fields import Text


class Request(Schema):
    """Base of request schemas: like MLflow, ignore fields we do not know."""

    class Meta:
        unknown = EXCLUDE


def required():
    # MLflow treats an empty string like a missing value.
    return Text(required=True, validate=Length(min=1))


def optional(default=None):
    return Text(load_default=default, allow_none=True)


class Tag(Request):
    key = optional()
    value = optional("")


def tag_list():
    return fields.List(fields.Nested(Tag), load_default=list)


class CreateRegisteredModel(Request):
    name = required()
    tags = tag_list()
    description = optional("")


class ModelName(Request):
    name = required()


class RenameRegisteredModel(ModelName):
    new_name = optional()


class UpdateRegisteredModel(ModelName):
    description = optional("")


class Search(Request):
    filter_string = Text(data_key="filter", load_default="")
    order_by = fields.List(Text(), load_default=list)
    page_token = optional()


class SearchRegisteredModels(Search):
    max_results = fields.Integer(load_default=100)


class SearchModelVersions(Search):
    max_results = fields.Integer(load_default=200000)


class GetLatestVersions(ModelName):
    stages = fields.List(Text(), load_default=list)


class SetRegisteredModelTag(ModelName):
    key = required()
    value = optional("")


class DeleteRegisteredModelTag(ModelName):
    key = required()


class AliasRef(ModelName):
    alias = required()


class SetAlias(AliasRef):
    version = required()


class CreateModelVersion(ModelName):
    source = required()
    run_id = optional()  # None = not given (MLflow tells it from "" when resolving models:/)
    tags = tag_list()
    run_link = optional("")
    description = optional("")
    model_id = optional()


class VersionRef(ModelName):
    version = required()


class UpdateModelVersion(VersionRef):
    description = optional("")


class TransitionStage(VersionRef):
    stage = required()
    archive_existing_versions = fields.Boolean(load_default=False)


class SetModelVersionTag(VersionRef):
    key = required()
    value = optional("")


class DeleteModelVersionTag(VersionRef):
    key = required()


class CreateWorkspace(Request):
    name = required()
    description = optional()
    default_artifact_root = optional()


class UpdateWorkspace(Request):
    description = optional()
    default_artifact_root = optional()


class Response(Schema):
    """Base of response schemas: proto2 JSON omits unset fields and listed empty ones."""
    OMIT_EMPTY = ()

    @post_dump
    def omit(self, data, **kwargs):
        return {key: value for key, value in data.items()
                if value is not None and not (key in self.OMIT_EMPTY and value in ("", []))}


class ModelVersionSchema(Response):
    OMIT_EMPTY = ("status_message", "tags", "aliases")
    name = fields.Function(lambda row: row.registered_model.name)
    version = fields.Function(lambda row: str(row.version))
    creation_timestamp = fields.Integer()
    last_updated_timestamp = fields.Integer()
    current_stage = fields.String()
    description = fields.String()
    source = fields.String()
    run_id = fields.String()
    status = fields.String()
    status_message = fields.String()
    tags = fields.Raw()
    run_link = fields.String()
    aliases = fields.Raw()
    user_id = fields.String()
    workspace_key = fields.String()  # OCI: the workspace the version was created through


class RegisteredModelSchema(Response):
    OMIT_EMPTY = ("description", "latest_versions", "tags", "aliases")
    name = fields.String()
    creation_timestamp = fields.Integer()
    last_updated_timestamp = fields.Integer()
    description = fields.String()
    latest_versions = fields.List(fields.Nested(ModelVersionSchema))
    tags = fields.Raw()
    aliases = fields.Raw()
    user_id = fields.String()


class WorkspaceSchema(Response):
    name = fields.String()
    description = fields.String()
    default_artifact_root = fields.String()


create_registered_model = CreateRegisteredModel()
model_name = ModelName()
rename_registered_model = RenameRegisteredModel()
update_registered_model = UpdateRegisteredModel()
search_registered_models = SearchRegisteredModels()
search_model_versions = SearchModelVersions()
get_latest_versions = GetLatestVersions()
set_registered_model_tag = SetRegisteredModelTag()
delete_registered_model_tag = DeleteRegisteredModelTag()
alias_ref = AliasRef()
set_alias = SetAlias()
create_model_version = CreateModelVersion()
version_ref = VersionRef()
update_model_version = UpdateModelVersion()
transition_stage = TransitionStage()
set_model_version_tag = SetModelVersionTag()
delete_model_version_tag = DeleteModelVersionTag()
create_workspace = CreateWorkspace()
update_workspace = UpdateWorkspace()

model_version_schema = ModelVersionSchema()
registered_model_schema = RegisteredModelSchema()
workspace_schema = WorkspaceSchema()
workspaces_schema = WorkspaceSchema(many=True)


dump_version = compiled_dump(model_version_schema)
dump_registered_model = compiled_dump(registered_model_schema)


def page(key, rows, token, dump):
    """A search answer: the rows and the next page's token, each omitted when empty."""
    body = {key: [dump(row) for row in rows], "next_page_token": token}
    return {name: value for name, value in body.items() if value}


class EnumName(fields.Field):
    """A protobuf enum in MLflow's JSON: its name (or number), loaded as our lowercase word."""

    def __init__(self, names, **kwargs):
        super().__init__(**kwargs)
        self.names = names  # proto number -> name, in order

    def _deserialize(self, value, attr, data, **kwargs):
        if isinstance(value, bool):
            raise ValidationError("not an enum value")
        if isinstance(value, int) and 0 <= value < len(self.names):
            value = self.names[value]
        if not isinstance(value, str) or value not in self.names:
            raise ValidationError("not an enum value")
        return value

    def _serialize(self, value, attr, obj, **kwargs):
        return value


WEBHOOK_ENTITIES = ("ENTITY_UNSPECIFIED", "REGISTERED_MODEL", "MODEL_VERSION",
                    "MODEL_VERSION_TAG", "MODEL_VERSION_ALIAS", "PROMPT", "PROMPT_VERSION",
                    "PROMPT_TAG", "PROMPT_VERSION_TAG", "PROMPT_ALIAS", "BUDGET_POLICY")
WEBHOOK_ACTIONS = ("ACTION_UNSPECIFIED", "CREATED", "UPDATED", "DELETED", "SET", "EXCEEDED")
WEBHOOK_STATUSES = ("STATUS_UNSPECIFIED", "ACTIVE", "DISABLED")


class WebhookEvent(Request):
    entity = EnumName(WEBHOOK_ENTITIES, required=True)
    action = EnumName(WEBHOOK_ACTIONS, required=True)


def _events(**kwargs):
    return fields.List(fields.Nested(WebhookEvent), **kwargs)


class CreateWebhook(Request):
    name = required()
    description = optional()
    url = required()
    events = _events(required=True)
    secret = optional()
    status = EnumName(WEBHOOK_STATUSES, load_default=None, allow_none=True)


class UpdateWebhook(Request):
    name = optional()
    description = optional()
    url = optional()
    events = _events(load_default=None, allow_none=True)
    secret = optional()
    status = EnumName(WEBHOOK_STATUSES, load_default=None, allow_none=True)


class ListWebhooks(Request):
    max_results = fields.Integer(load_default=None, allow_none=True)
    page_token = optional()


class TestWebhook(Request):
    event = fields.Nested(WebhookEvent, load_default=None, allow_none=True)


create_webhook, update_webhook = CreateWebhook(), UpdateWebhook()
list_webhooks, test_webhook = ListWebhooks(), TestWebhook()


def dump_webhook(row):
    """MLflow's Webhook message: no secret, description only when set, enum names."""
    shown = {"webhook_id": row.webhook_id, "name": row.name}
    if row.description:
        shown["description"] = row.description
    shown.update(url=row.url, events=[{"entity": entity.upper(), "action": action.upper()}
                                      for entity, action in row.events],
                 status=row.status, creation_timestamp=row.creation_timestamp,
                 last_updated_timestamp=row.last_updated_timestamp)
    return shown

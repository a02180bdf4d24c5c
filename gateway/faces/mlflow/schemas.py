"""Request and response schemas of the MLflow face, in MLflow's JSON shapes."""
from marshmallow import EXCLUDE, Schema, fields, post_dump
from marshmallow.validate import Length

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
    run_id = optional("")
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
        return {key: value for key, value in data.items() if _kept(key, value, self.OMIT_EMPTY)}


def _kept(key, value, omit_empty):
    return value is not None and not (key in omit_empty and value in ("", []))


def compiled_dump(schema):
    """A function dumping one object as `schema.dump` does (a Response), several times faster.

    marshmallow spends ~15 us per version on its generic machinery, and a search page holds
    up to thousands of them; this reads each field directly. Fields of other kinds than
    those below are refused here, so a new one cannot be dumped differently by accident
    (tests/test_schemas.py compares both ways on every response schema).
    """
    steps = [(field.data_key or name, _reader(field, name))
             for name, field in schema.dump_fields.items()]
    omit_empty = schema.OMIT_EMPTY

    def dump(obj):
        data = {}
        for key, read in steps:
            value = read(obj)
            if value is not None and (key not in omit_empty or value not in ("", [])):
                data[key] = value  # as _kept, inline: this loop is the hot path
        return data
    return dump


def _reader(field, name):
    attribute = field.attribute or name
    kind = type(field)
    if kind is fields.Function:
        return field.serialize_func
    if kind is fields.Raw:
        return lambda obj: getattr(obj, attribute, None)
    if kind in (fields.String, fields.Integer):
        convert = str if kind is fields.String else int

        def read(obj):
            value = getattr(obj, attribute, None)
            return None if value is None else convert(value)
        return read
    if kind is fields.List and type(field.inner) is fields.Nested:
        inner = compiled_dump(field.inner.schema)

        def read_list(obj):
            values = getattr(obj, attribute, None)
            return None if values is None else [inner(value) for value in values]
        return read_list
    raise TypeError(f"compiled_dump does not know {kind.__name__} fields ({name})")


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

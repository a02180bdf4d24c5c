"""NeMo Platform's model-entity shapes (nemo-platform 0.3.0, seed 004) in marshmallow."""
import json
from datetime import datetime, timezone

import orjson
from flask import current_app
from marshmallow import EXCLUDE, INCLUDE, Schema, ValidationError, fields, post_dump
from marshmallow.validate import Length, OneOf, Range, Regexp

from gateway.faces.fields import Text
from gateway.services.model_entities import FINETUNING_TYPES

NAME = r"^[\w\-.]+$"
PROJECT = r"^[\w\-./]+$"
REFERENCE = r"^[\w\-.]+/[\w\-.]+$"          # {workspace}/{name}
MODEL_LINK = r"^([\w\-.]+/)?[\w\-.]+$"      # {name} or {workspace}/{name}
BACKEND_FORMATS = ("OPENAI_CHAT", "ANTHROPIC_MESSAGES")
SORTS = ("name", "-name", "created_at", "-created_at", "updated_at", "-updated_at")


def pattern(regex, limit=255):
    return [Regexp(regex, error=f"String should match pattern '{regex}'"),
            Length(max=limit, error=f"String should have at most {limit} characters")]


def description():
    return Text(allow_none=True, validate=Length(max=1000, error="String should have at most "
                                                                 "1000 characters"))


class Request(Schema):
    class Meta:
        unknown = EXCLUDE


class ModelSpec(Schema):
    """Required when a spec is given; the optional rest passes through."""

    class Meta:
        unknown = INCLUDE

    checkpoint_model_name = Text(required=True)
    family = Text(required=True)
    num_layers = fields.Integer(required=True, strict=True)
    hidden_size = fields.Integer(required=True, strict=True)
    num_attention_heads = fields.Integer(required=True, strict=True)
    num_kv_heads = fields.Integer(required=True, strict=True)
    ffn_hidden_size = fields.Integer(required=True, strict=True)
    vocab_size = fields.Integer(required=True, strict=True)
    tied_embeddings = fields.Boolean(required=True)
    gated_mlp = fields.Boolean(required=True)
    base_num_parameters = fields.Integer(required=True, strict=True)
    precision = Text(required=True)
    context_size = fields.Integer(allow_none=True, strict=True)
    is_chat = fields.Boolean(allow_none=True)
    head_type = Text(allow_none=True, validate=OneOf(("causal_lm", "embedding", "cross_encoder",
                                                      "unknown")))
    chat_template = Text(allow_none=True)


class APIEndpoint(Request):
    url = fields.Url(allow_none=True, require_tld=False)
    model_id = Text(allow_none=True)
    api_key = Text(allow_none=True)
    format = Text(allow_none=True)


class InferenceParams(Schema):
    class Meta:
        unknown = INCLUDE  # NeMo allows extra inference parameters

    temperature = fields.Float(allow_none=True, validate=Range(0, 2))
    top_p = fields.Float(allow_none=True, validate=Range(0, 1))
    max_tokens = fields.Integer(allow_none=True, strict=True, validate=Range(min=1))
    max_completion_tokens = fields.Integer(allow_none=True, strict=True, validate=Range(min=1))
    stop = fields.List(Text(), allow_none=True)
    model = Text(allow_none=True)


class Prompt(Request):
    system_prompt = Text(allow_none=True)
    icl_few_shot_examples = Text(allow_none=True)
    system_prompt_template = Text(allow_none=True)
    inference_params = fields.Nested(InferenceParams, allow_none=True)


def bounded_document(value):
    """Free-form JSON documents are stored whole: at most NEMO_MAX_DOCUMENT_BYTES (64 KiB)."""
    limit = int(current_app.config["NEMO_MAX_DOCUMENT_BYTES"])
    if value is not None and len(orjson.dumps(value, default=str)) > limit:
        raise ValidationError(f"Document too large: at most {limit} bytes of JSON.")


class EntityFields(Request):
    """What create and update share."""
    description = description()
    spec = fields.Nested(ModelSpec, allow_none=True, validate=bounded_document)
    finetuning_type = Text(allow_none=True, validate=OneOf(FINETUNING_TYPES))
    fileset = Text(allow_none=True, validate=pattern(REFERENCE, 511))
    base_model = Text(allow_none=True, validate=pattern(MODEL_LINK, 511))
    api_endpoint = fields.Nested(APIEndpoint, allow_none=True)
    backend_format = Text(allow_none=True, validate=OneOf(BACKEND_FORMATS))
    prompt = fields.Nested(Prompt, allow_none=True)
    custom_fields = fields.Dict(keys=fields.String(), allow_none=True, validate=bounded_document)
    ownership = fields.Dict(keys=fields.String(), allow_none=True, validate=bounded_document)
    model_providers = fields.List(Text(validate=pattern(REFERENCE, 511)), allow_none=True)
    trust_remote_code = fields.Boolean(allow_none=True)


class CreateModel(EntityFields):
    name = Text(required=True, validate=pattern(NAME))
    project = Text(allow_none=True, validate=pattern(PROJECT))


class UpdateModel(EntityFields):
    pass


class Paged(Request):
    """NeMo's page, page_size and sort of every list."""
    page = fields.Integer(load_default=1, validate=Range(min=1))
    page_size = fields.Integer(load_default=100, validate=Range(1, 1000))
    sort = Text(load_default="created_at", validate=OneOf(SORTS))


class ListModels(Paged):
    verbose = fields.Boolean(load_default=False)


class Lora(Request):
    rank = fields.Integer(required=True, strict=True, validate=Range(min=1))
    alpha = fields.Integer(allow_none=True, strict=True)


class CreateAdapter(Request):
    name = Text(required=True, validate=pattern(NAME))
    fileset = Text(required=True, validate=pattern(REFERENCE, 511))
    finetuning_type = Text(required=True, validate=OneOf(FINETUNING_TYPES))
    description = description()
    enabled = fields.Boolean(load_default=True)
    lora_config = fields.Nested(Lora, allow_none=True)


class CreateWorkspaceAdapter(CreateAdapter):
    """The workspace-level create names its model: "{name}" here, or "{workspace}/{name}"."""
    model = Text(required=True, validate=pattern(MODEL_LINK, 511))


class ListAdapters(ListModels):
    pass


class UpdateAdapter(Request):
    description = description()
    enabled = fields.Boolean(allow_none=True)
    fileset = Text(allow_none=True, validate=pattern(REFERENCE, 511))


def iso(millis):
    """Milliseconds since the epoch as NeMo's ISO 8601 UTC timestamp."""
    moment = datetime.fromtimestamp(millis / 1000, tz=timezone.utc)
    return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")


class AdapterSchema(Schema):
    name = fields.String()
    workspace = fields.String()
    fileset = fields.String()
    finetuning_type = fields.String()
    description = fields.String(allow_none=True)
    enabled = fields.Boolean()
    lora_config = fields.Function(lambda a: json.loads(a.lora_config) if a.lora_config else None)
    model = fields.Function(lambda a: f"{a.registered_model.workspace_id}/"
                                      f"{a.registered_model.name}")
    created_at = fields.Function(lambda a: iso(a.created_at))
    updated_at = fields.Function(lambda a: iso(a.updated_at))


def _entity(name):
    return fields.Function(lambda row: row.entity.get(name))


class ModelEntitySchema(Schema):
    id = fields.Function(lambda row: f"model-{row.id}")
    name = fields.String()
    workspace = fields.Function(lambda row: row.workspace_id)
    created_at = fields.Function(lambda row: iso(row.creation_timestamp))
    updated_at = fields.Function(lambda row: iso(row.last_updated_timestamp))
    project = _entity("project")
    description = fields.Function(lambda row: row.description or None)
    spec = _entity("spec")
    finetuning_type = _entity("finetuning_type")
    fileset = _entity("fileset")
    trust_remote_code = _entity("trust_remote_code")
    base_model = _entity("base_model")
    api_endpoint = _entity("api_endpoint")
    backend_format = _entity("backend_format")
    adapters = fields.Function(lambda row: AdapterSchema(many=True).dump(row.adapter_rows)
                               if row.adapter_rows else None)
    prompt = _entity("prompt")
    custom_fields = fields.Function(lambda row: row.entity.get("custom_fields") or {})
    ownership = _entity("ownership")
    model_providers = fields.Function(lambda row: row.entity.get("model_providers") or [])


class ListedModelEntitySchema(ModelEntitySchema):
    """Lists leave out null fields (NeMo's response_model_exclude_none)."""

    @post_dump
    def drop_nulls(self, data, **kwargs):
        return {key: value for key, value in data.items() if value is not None}


create_model = CreateModel()
update_model = UpdateModel()
list_models = ListModels()
create_adapter = CreateAdapter()
create_workspace_adapter = CreateWorkspaceAdapter()
list_adapters = ListAdapters()
update_adapter = UpdateAdapter()
model_entity_schema = ModelEntitySchema()
listed_model_entities_schema = ListedModelEntitySchema(many=True)
adapter_schema = AdapterSchema()
adapters_schema = AdapterSchema(many=True)

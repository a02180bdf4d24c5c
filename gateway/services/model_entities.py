"""Model entities (NeMo's view of the registry): a registered model, its details and adapters.

An entity is a registered model: one name space per workspace, so a model created as an entity
gets versions through MLflow or OCI, and a model registered through MLflow is listed here.
"""
import fnmatch
import json
from typing import NamedTuple

from peewee import JOIN, SQL, fn

from gateway import work
from gateway.exceptions import (AlreadyExists, InvalidFilter, InvalidParameter, NotFound,
                                PermissionDenied)
from gateway.models import ModelAdapter, ModelEntityDetails, RegisteredModel, now_ms
from gateway.services import entity_filters, filters, registered_models

FINETUNING_TYPES = (
    "lora_merged", "all_weights", "last_layer", "top_layers", "gradual_unfreezing", "bias_only",
    "attention_only", "lora", "qlora", "adalora", "dora", "lora_plus", "prompt_tuning",
    "prefix_tuning", "p_tuning", "p_tuning_v2", "soft_prompt", "ppo", "dpo", "cdpo", "ipo",
    "orpo", "kto", "rrhf", "grpo")
# The adapters a LoRA deployment serves (lora_merged is merged into the weights: no adapter).
LORA_TYPES = ("lora", "qlora", "adalora", "dora", "lora_plus")
COLUMNS = ("project", "fileset", "finetuning_type", "base_model", "backend_format")
DOCUMENT = ("spec", "api_endpoint", "prompt", "custom_fields", "ownership", "model_providers")
# NeMo's defaults, also for registered models that never had entity details.
DEFAULTS = {**{name: None for name in DOCUMENT}, "custom_fields": {}, "model_providers": []}
SORTS = {"name": RegisteredModel.name, "created_at": RegisteredModel.creation_timestamp,
         "updated_at": RegisteredModel.last_updated_timestamp}
ADAPTER_SORTS = {"name": ModelAdapter.name, "created_at": ModelAdapter.created_at,
                 "updated_at": ModelAdapter.updated_at}


def _everyone(workspace):
    return True


class TrustPolicy(NamedTuple):
    """What the caller may do: set trust_remote_code (an admin, or anyone for an approved
    fileset source), and which other workspaces' models it may name as a base model."""
    admin: bool = False
    approved_filesets: tuple = ()
    can_read: object = _everyone


def not_found(workspace, name):
    return NotFound(f"Model with workspace '{workspace}' and name '{name}' not found")


def _query(workspace):
    return (RegisteredModel.select(RegisteredModel, ModelEntityDetails)
            .join(ModelEntityDetails, JOIN.LEFT_OUTER,
                  on=(ModelEntityDetails.registered_model == RegisteredModel.id), attr="details")
            .where(RegisteredModel.workspace == workspace))


def _load(rows):
    """Give each model its `entity` mapping (details and document) and `adapter_rows`."""
    ids = [row.id for row in rows]
    adapters = {model_id: [] for model_id in ids}
    if ids:
        for adapter in (ModelAdapter.select().where(ModelAdapter.registered_model.in_(ids))
                        .order_by(ModelAdapter.created_at, ModelAdapter.id)):
            adapters[adapter.registered_model_id].append(adapter)
    for row in rows:
        # An adapter another workspace trained on this model is that workspace's business.
        adapters[row.id] = [a for a in adapters[row.id] if a.workspace == row.workspace_id]
        for adapter in adapters[row.id]:
            adapter.registered_model = row
        details = getattr(row, "details", None)
        known = details is not None and details.id is not None
        row.entity = {**DEFAULTS, "trust_remote_code": bool(known and details.trust_remote_code),
                      **{name: getattr(details, name) if known else None for name in COLUMNS},
                      **json.loads(details.document if known else "{}")}
        row.adapter_rows = adapters[row.id]
    return rows


def get(workspace, name):
    """One entity with its details and adapters."""
    row = _query(workspace).where(RegisteredModel.name == name).first()
    if row is None:
        raise not_found(workspace, name)
    return _load([row])[0]


def _trusted(desired, fileset, policy):
    # As NeMo: a request for true gets true or a 403, never a silent false.
    if not desired:
        return False
    if fileset and any(fnmatch.fnmatchcase(fileset, p) for p in policy.approved_filesets):
        return True
    if policy.admin:
        return True
    raise PermissionDenied("Insufficient permissions to set the trust_remote_code field")


def _check_base_model(workspace, base_model, policy):
    """A base model must exist, in a workspace the caller may read."""
    if base_model is not None and resolve_reference(workspace, base_model, policy) is None:
        raise InvalidParameter(f"base_model '{base_model}' does not name a model entity")


def resolve_reference(workspace, reference, policy):
    """The registered model a reference names ("{name}" in workspace, or "{workspace}/{name}"
    readable by the caller), else None: a missing model and another tenant's read the same,
    so other tenants' models cannot be probed."""
    model_workspace, _, name = reference.rpartition("/")
    model_workspace = model_workspace or workspace
    if model_workspace != workspace and not policy.can_read(model_workspace):
        return None
    return RegisteredModel.get_or_none(RegisteredModel.workspace == model_workspace,
                                       RegisteredModel.name == name)


def _save_details(model_id, entity):
    values = {name: entity.get(name) for name in COLUMNS}
    values["trust_remote_code"] = bool(entity.get("trust_remote_code"))
    values["has_prompt"] = entity.get("prompt") is not None
    values["document"] = json.dumps({name: entity.get(name) for name in DOCUMENT})
    (ModelEntityDetails.insert(registered_model=model_id, **values)
     .on_conflict(conflict_target=[ModelEntityDetails.registered_model], update=values)
     .execute())


def create(workspace, name, policy=TrustPolicy(), user_id=None, description=None, **fields):
    """Create an entity (a registered model with details); a taken name is AlreadyExists."""
    fields["trust_remote_code"] = _trusted(fields.get("trust_remote_code"),
                                           fields.get("fileset"), policy)
    fields.setdefault("custom_fields", {})
    fields["model_providers"] = fields.get("model_providers") or []
    _check_base_model(workspace, fields.get("base_model"), policy)
    with work.write():
        try:
            model = registered_models.create(workspace, name, description or "", user_id=user_id)
        except AlreadyExists:
            raise AlreadyExists(f"Model with workspace '{workspace}' and name '{name}' already "
                                "exists") from None
        _save_details(model.id, fields)
    return get(workspace, name)


def update(workspace, name, changes, policy=TrustPolicy()):
    """Change the fields given; fields left out keep their values, null clears one."""
    changes = {key: DEFAULTS.get(key) if value is None else value
               for key, value in changes.items()}
    with work.write():
        current = get(workspace, name)
        entity = {**current.entity, **changes}
        # As NeMo: re-check when asked for true or when the fileset moves; false just clears.
        if changes.get("trust_remote_code") or "fileset" in changes:
            entity["trust_remote_code"] = _trusted(
                changes.get("trust_remote_code") or current.entity["trust_remote_code"],
                entity.get("fileset"), policy)
        if "base_model" in changes:
            _check_base_model(workspace, changes["base_model"], policy)
        fields = {RegisteredModel.last_updated_timestamp: now_ms()}
        if "description" in changes:
            fields[RegisteredModel.description] = changes.pop("description") or ""
        RegisteredModel.update(fields).where(RegisteredModel.id == current.id).execute()
        _save_details(current.id, entity)
    return get(workspace, name)


def delete(workspace, name):
    """Delete an entity: the registered model with its versions, details and adapters."""
    try:
        registered_models.delete(workspace, name)
    except NotFound:
        raise not_found(workspace, name) from None


def search(workspace, filter_by=None, sort="created_at", page=1, page_size=100):
    """One page of entities and the totals: (rows, total_results, total_pages)."""
    query = _query(workspace).where(*filters.registered_model_conditions([]),
                                    *entity_filters.conditions(filter_by, FILTERS))
    rows, total, pages = entity_filters.page_of(query, SORTS, sort, RegisteredModel.id, page,
                                                page_size)
    return _load(rows), total, pages


def _adapters_of_model(*conditions):
    rows = ModelAdapter.select(SQL("1")).where(
        ModelAdapter.registered_model == RegisteredModel.id,
        ModelAdapter.workspace == RegisteredModel.workspace, *conditions)
    return fn.EXISTS(rows)


def _base_model(field, value):
    column = ModelEntityDetails.base_model
    if isinstance(entity_filters.plain(value), bool) or value in ("true", "false"):
        return entity_filters.is_set(column)(field, value)
    if isinstance(value, dict) and "name" in value:  # {name: StringFilter}
        if len(value) != 1:
            raise InvalidFilter("Filter 'base_model' takes {name: ...}, a name, or true/false.")
        return entity_filters.string(column)("base_model.name", value["name"])
    return entity_filters.string(column)(field, value)


def _finetuning_type(field, value):
    column = ModelEntityDetails.finetuning_type
    if isinstance(entity_filters.plain(value), bool) or value in ("true", "false"):
        return entity_filters.is_set(column)(field, value)
    return entity_filters.string(column, FINETUNING_TYPES)(field, value)


def _adapters(field, value):
    if isinstance(value, dict) and "finetuning_type" in value:  # FinetuningTypeFilter
        if len(value) != 1:
            raise InvalidFilter("Filter 'adapters' takes true/false or {finetuning_type: ...}.")
        kind = entity_filters.string(ModelAdapter.finetuning_type, FINETUNING_TYPES)(
            "adapters.finetuning_type", value["finetuning_type"])
        return _adapters_of_model(kind)
    return entity_filters.flag(_adapters_of_model)(field, value)


FILTERS = {
    "name": entity_filters.string(RegisteredModel.name),
    "description": entity_filters.string(RegisteredModel.description),
    "workspace": entity_filters.string(RegisteredModel.workspace),
    "project": entity_filters.string(ModelEntityDetails.project),
    "fileset": entity_filters.string(ModelEntityDetails.fileset),
    "base_model": _base_model,
    "finetuning_type": _finetuning_type,
    "adapters": _adapters,
    # Models served with LoRA: an enabled adapter of a LoRA kind.
    "lora_enabled": entity_filters.flag(lambda: _adapters_of_model(
        ModelAdapter.enabled == True, ModelAdapter.finetuning_type.in_(LORA_TYPES))),  # noqa: E712
    "prompt": entity_filters.flag(
        lambda: fn.COALESCE(ModelEntityDetails.has_prompt, False) == True),  # noqa: E712
    "created_at": entity_filters.timestamp(RegisteredModel.creation_timestamp),
    "updated_at": entity_filters.timestamp(RegisteredModel.last_updated_timestamp),
}

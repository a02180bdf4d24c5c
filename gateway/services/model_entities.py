"""Model entities (NeMo's view of the registry): a registered model, its details and adapters.

An entity is a registered model: one name space per workspace, so a model created as an entity
gets versions through MLflow or OCI, and a model registered through MLflow is listed here.
"""
import fnmatch
import json
import math
from typing import NamedTuple

from peewee import JOIN, IntegrityError

from gateway.db import database
from gateway.exceptions import AlreadyExists, InvalidParameter, NotFound, PermissionDenied
from gateway.models import ModelAdapter, ModelEntityDetails, RegisteredModel, now_ms
from gateway.services import entity_filters, filters, registered_models

COLUMNS = ("project", "fileset", "finetuning_type", "base_model", "backend_format")
DOCUMENT = ("spec", "api_endpoint", "prompt", "custom_fields", "ownership", "model_providers")
# NeMo's defaults, also for registered models that never had entity details.
DEFAULTS = {**{name: None for name in DOCUMENT}, "custom_fields": {}, "model_providers": []}
SORTS = {"name": RegisteredModel.name, "created_at": RegisteredModel.creation_timestamp,
         "updated_at": RegisteredModel.last_updated_timestamp}


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
    """A base model must exist, in a workspace the caller may read; both failures read the
    same, so another tenant's models cannot be probed."""
    if base_model is None:
        return
    base_workspace, _, base_name = base_model.rpartition("/")
    base_workspace = base_workspace or workspace
    if (base_workspace != workspace and not policy.can_read(base_workspace)) or not (
            RegisteredModel.select().where(RegisteredModel.workspace == base_workspace,
                                           RegisteredModel.name == base_name).exists()):
        raise InvalidParameter(f"base_model '{base_model}' does not name a model entity")


def _save_details(model_id, entity):
    values = {name: entity.get(name) for name in COLUMNS}
    values["trust_remote_code"] = bool(entity.get("trust_remote_code"))
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
    with database.atomic():
        try:
            model = registered_models.create(workspace, name, description or "", user_id=user_id)
        except AlreadyExists:
            raise AlreadyExists(f"Model with workspace '{workspace}' and name '{name}' already "
                                "exists") from None
        _save_details(model.id, fields)
    return get(workspace, name)


def update(workspace, name, changes, policy=TrustPolicy()):
    """Change the fields given; fields left out (or null) keep their values."""
    changes = {key: value for key, value in changes.items() if value is not None}
    with database.atomic():
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
            fields[RegisteredModel.description] = changes.pop("description")
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
    if page < 1 or page_size < 1:
        raise InvalidParameter("page and page_size must be positive integers.")
    column = SORTS[sort.removeprefix("-")]
    query = _query(workspace).where(*filters.registered_model_conditions([]),
                                    *entity_filters.conditions(filter_by or {}))
    total = query.count()
    order = column.desc() if sort.startswith("-") else column.asc()
    rows = list(query.order_by(order, RegisteredModel.id).paginate(page, page_size))
    return _load(rows), total, math.ceil(total / page_size)


def _find_adapter(workspace, model_name, adapter):
    model = get(workspace, model_name)
    row = next((a for a in model.adapter_rows if a.name == adapter), None)
    if row is None:
        raise NotFound(f"Adapter {adapter} with workspace '{workspace}' and model name "
                       f"'{model_name}' not found")
    return model, row


def _touch(model_id):
    RegisteredModel.update(last_updated_timestamp=now_ms()).where(
        RegisteredModel.id == model_id).execute()


def create_adapter(workspace, model_name, name, fileset, finetuning_type, description=None,
                   enabled=True, lora_config=None):
    """Add an adapter to an entity; names are unique per entity."""
    model = get(workspace, model_name)
    try:
        with database.atomic():
            adapter = ModelAdapter.create(
                registered_model=model.id, name=name, fileset=fileset,
                finetuning_type=finetuning_type, description=description, enabled=enabled,
                lora_config=json.dumps(lora_config) if lora_config else None)
            _touch(model.id)
    except IntegrityError:
        raise AlreadyExists(f"Model adapter already exists: {workspace}/{model_name}/{name}"
                            ) from None
    return adapter


def update_adapter(workspace, model_name, adapter, changes):
    """Change an adapter's description, enabled flag or fileset."""
    changes = {key: value for key, value in changes.items() if value is not None}
    with database.atomic():
        _, row = _find_adapter(workspace, model_name, adapter)
        ModelAdapter.update(updated_at=now_ms(), **changes).where(
            ModelAdapter.id == row.id).execute()
        _touch(row.registered_model_id)
    return ModelAdapter.get_by_id(row.id)


def delete_adapter(workspace, model_name, adapter):
    """Remove an adapter from an entity."""
    with database.atomic():
        _, row = _find_adapter(workspace, model_name, adapter)
        row.delete_instance()
        _touch(row.registered_model_id)

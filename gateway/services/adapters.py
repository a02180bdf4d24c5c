"""NeMo's fine-tuning adapters: named uniquely in a workspace, each trained on one model entity.

An adapter usually lives in its model's workspace (`/models/{name}/adapters`); the workspace
level API (`/adapters`) may also name a model of another workspace the caller may read, as
"{workspace}/{name}".
"""
import json

from peewee import IntegrityError

from gateway import work
from gateway.exceptions import AlreadyExists, InvalidParameter, NotFound
from gateway.models import ModelAdapter, RegisteredModel, now_ms
from gateway.services import entity_filters, model_entities

SORTS = {"name": ModelAdapter.name, "created_at": ModelAdapter.created_at,
         "updated_at": ModelAdapter.updated_at}
FILTERS = {
    "name": entity_filters.string(ModelAdapter.name),
    "description": entity_filters.string(ModelAdapter.description),
    "fileset": entity_filters.string(ModelAdapter.fileset),
    "model": entity_filters.string(
        RegisteredModel.workspace.concat("/").concat(RegisteredModel.name)),
    "finetuning_type": entity_filters.string(ModelAdapter.finetuning_type,
                                             model_entities.FINETUNING_TYPES),
    "enabled": entity_filters.flag(lambda: ModelAdapter.enabled == True),  # noqa: E712
    "created_at": entity_filters.timestamp(ModelAdapter.created_at),
    "updated_at": entity_filters.timestamp(ModelAdapter.updated_at),
}


def _query(workspace):
    return (ModelAdapter.select(ModelAdapter, RegisteredModel).join(RegisteredModel)
            .where(ModelAdapter.workspace == workspace))


def not_found(workspace, name, model_name=None):
    where = f" and model name '{model_name}'" if model_name else ""
    return NotFound(f"Adapter {name} with workspace '{workspace}'{where} not found")


def get(workspace, name, model_name=None):
    """One adapter of the workspace (of that model, if named), or NotFound."""
    query = _query(workspace).where(ModelAdapter.name == name)
    if model_name is not None:
        query = query.where(RegisteredModel.workspace == workspace,
                            RegisteredModel.name == model_name)
    row = query.first()
    if row is None:
        raise not_found(workspace, name, model_name)
    return row


def search(workspace, filter_by=None, sort="created_at", page=1, page_size=100):
    """One page of the workspace's adapters: (rows, total_results, total_pages)."""
    query = entity_filters.apply(_query(workspace), filter_by, FILTERS)
    return entity_filters.page_of(query, SORTS, sort, ModelAdapter.id, page, page_size)


def _model(workspace, reference, policy):
    """The model a reference names (see model_entities.resolve_reference)."""
    model = model_entities.resolve_reference(workspace, reference, policy)
    if model is None:
        if "/" not in reference or reference.rpartition("/")[0] == workspace:
            raise model_entities.not_found(workspace, reference.rpartition("/")[2])
        raise InvalidParameter(f"model '{reference}' does not name a model entity")
    return model


def create(workspace, model, name, fileset, finetuning_type, description=None, enabled=True,
           lora_config=None, policy=model_entities.TrustPolicy()):
    """Add an adapter to the workspace, trained on `model` (a reference); names are unique
    per workspace."""
    target = _model(workspace, model, policy)
    try:
        with work.write():
            row = ModelAdapter.create(
                registered_model=target.id, workspace=workspace, name=name, fileset=fileset,
                finetuning_type=finetuning_type, description=description, enabled=enabled,
                lora_config=json.dumps(lora_config) if lora_config else None)
            _touch(target.id)
    except IntegrityError:
        raise AlreadyExists(f"Model adapter already exists: {workspace}/{name}") from None
    return get(workspace, row.name)


def update(workspace, name, changes, model_name=None):
    """Change an adapter's description (null clears it), enabled flag or fileset."""
    changes = {key: value for key, value in changes.items()
               if value is not None or key == "description"}
    with work.write():
        row = get(workspace, name, model_name)
        ModelAdapter.update(updated_at=now_ms(), **changes).where(
            ModelAdapter.id == row.id).execute()
        _touch(row.registered_model_id)
    return get(workspace, name)


def delete(workspace, name, model_name=None):
    """Remove an adapter."""
    with work.write():
        row = get(workspace, name, model_name)
        ModelAdapter.delete().where(ModelAdapter.id == row.id).execute()
        _touch(row.registered_model_id)


def _touch(model_id):
    RegisteredModel.update(last_updated_timestamp=now_ms()).where(
        RegisteredModel.id == model_id).execute()

"""Workspaces: the tenant namespaces every registry row lives in."""
import hashlib

from peewee import IntegrityError

from peewee import fn

from gateway import validation, work
from gateway.db import prepared
from gateway.exceptions import AlreadyExists, Conflict, InvalidParameter, NotFound
from gateway.models import (DEFAULT_WORKSPACE, SYSTEM_WORKSPACE, Grant, ModelAdapter,
                            RegisteredModel, Workspace, now_ms)
from gateway.services import entity_filters, principals

DELETE_MODES = ("RESTRICT", "CASCADE", "SET_DEFAULT")
BUILT_IN = (DEFAULT_WORKSPACE, SYSTEM_WORKSPACE)
_UPDATED = fn.COALESCE(Workspace.last_updated_timestamp, Workspace.creation_timestamp)
SORTS = {"name": Workspace.name, "created_at": Workspace.creation_timestamp,
         "updated_at": _UPDATED}
FILTERS = {"name": entity_filters.string(Workspace.name),
           "description": entity_filters.string(Workspace.description),
           "created_by": entity_filters.string(Workspace.created_by),
           "created_at": entity_filters.timestamp(Workspace.creation_timestamp),
           "updated_at": entity_filters.timestamp(_UPDATED)}


def resolve(name, rule=validation.workspace_name):
    """The workspace a request names (default when none), or NotFound; `rule` checks the
    name first (MLflow's by default, a face may pass its own)."""
    if not name or name == DEFAULT_WORKSPACE:
        return DEFAULT_WORKSPACE
    rule(name)
    if not Workspace.select().where(Workspace.name == name).exists():
        raise NotFound(f"Workspace '{name}' not found")
    return name


def get(name, rule=validation.workspace_name):
    """One workspace, or NotFound."""
    if name != DEFAULT_WORKSPACE:
        rule(name)
    workspace = Workspace.get_or_none(Workspace.name == name)
    if workspace is None:
        raise NotFound(f"Workspace '{name}' not found")
    return workspace


def list_all():
    """Every workspace, by name."""
    return list(Workspace.select().order_by(Workspace.name))


def search(filter_by=None, sort="created_at", page=1, page_size=100, among=None):
    """One page of workspaces (of the names in `among`, if given): (rows, total, pages)."""
    query = entity_filters.apply(Workspace.select(), filter_by, FILTERS)
    if among is not None:
        query = query.where(Workspace.name.in_(list(among)))
    return entity_filters.page_of(query, SORTS, sort, Workspace.name, page, page_size)


def create(name, description=None, default_artifact_root=None, admin=None, created_by=None,
           rule=validation.workspace_name):
    """Create a workspace; `admin` (a principal's name) gets the admin role there."""
    if name == DEFAULT_WORKSPACE:  # MLflow's answer; `system` exists, so it is a conflict
        raise InvalidParameter(f"The '{DEFAULT_WORKSPACE}' workspace is reserved and cannot be "
                               "created")
    rule(name)
    try:
        with work.write():
            row = Workspace.create(name=name, description=description,
                                   default_artifact_root=default_artifact_root or None,
                                   created_by=created_by, updated_by=created_by)
            if admin is not None:
                principals.grant(admin, name, "admin", granted_by=admin)
            return row
    except IntegrityError:
        raise AlreadyExists(f"Workspace '{name}' already exists.") from None


def update(name, updated_by=None, rule=validation.workspace_name, **changes):
    """Change the fields given (None means "leave as is"); an empty string clears the root."""
    changes = {key: value for key, value in changes.items() if value is not None}
    if not changes:
        raise InvalidParameter("Workspace update must have at least one key")
    if "default_artifact_root" in changes:
        changes["default_artifact_root"] = changes["default_artifact_root"] or None
    with work.write():
        get(name, rule)
        Workspace.update(last_updated_timestamp=now_ms(), updated_by=updated_by,
                         **changes).where(Workspace.name == name).execute()
    return get(name, rule)


def delete(name, mode="RESTRICT", rule=validation.workspace_name, tracking_store=None):
    """Delete a workspace; mode decides what happens to its models (and, with a tracking
    store, to its experiments and runs upstream: deleted last, so a refusal there undoes
    everything here)."""
    if name in BUILT_IN:
        raise InvalidParameter(f"The '{name}' workspace is reserved and cannot be deleted")
    rule(name)
    if mode not in DELETE_MODES:
        raise InvalidParameter(f"Invalid deletion mode '{mode}'. "
                               f"Must be one of: {', '.join(DELETE_MODES)}")
    with work.write():
        get(name)
        models = RegisteredModel.select().where(RegisteredModel.workspace == name)
        if mode == "RESTRICT" and models.exists():
            # MLflow answers INVALID_STATE (a 500); this is a state conflict, so 409.
            raise Conflict(f"Cannot delete workspace '{name}': it still contains "
                           f"{models.count()} registered model(s). Remove or reassign them "
                           "before deleting the workspace.")
        if mode == "SET_DEFAULT":
            _move_to_default(name)
        ModelAdapter.delete().where(ModelAdapter.workspace == name).execute()
        Workspace.delete().where(Workspace.name == name).execute()
        Grant.delete().where(Grant.workspace == name).execute()  # a new namesake starts clean
        if tracking_store is not None:
            tracking_store.delete_workspace(mode)


def _move_to_default(name):
    clashes = (RegisteredModel.select(RegisteredModel.name)
               .where(RegisteredModel.workspace == name,
                      RegisteredModel.name.in_(RegisteredModel.select(RegisteredModel.name)
                                               .where(RegisteredModel.workspace == DEFAULT_WORKSPACE))))
    taken = [row.name for row in clashes]
    if taken:
        raise Conflict(f"Cannot reassign resources from workspace '{name}' to "
                       f"'{DEFAULT_WORKSPACE}': these registered models already exist there: "
                       f"{', '.join(taken)}")
    RegisteredModel.update(workspace=DEFAULT_WORKSPACE).where(
        RegisteredModel.workspace == name).execute()


_workspace_exists = prepared(lambda name: Workspace.select(Workspace.name)
                             .where(Workspace.name == name), rows="tuples")


def platform_workspace(platform_id, create=False):
    """The workspace holding an OCI AI Data Platform's registry (created on demand)."""
    name = "aidp-" + hashlib.sha256(platform_id.encode()).hexdigest()[:20]
    # Read first: an INSERT on every write would take SQLite's write lock once more per call.
    if create and not _workspace_exists(name):
        Workspace.insert(name=name, description=f"OCI AI Data Platform {platform_id}"
                         ).on_conflict_ignore().execute()
    return name


def ensure(name):
    """Create the workspace unless it exists (the CLI's `principal grant --create`)."""
    validation.workspace_name(name)
    Workspace.insert(name=name).on_conflict_ignore().execute()

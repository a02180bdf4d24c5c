"""Workspaces: the tenant namespaces every registry row lives in."""
import hashlib

from peewee import IntegrityError

from gateway import validation
from gateway.db import database, prepared
from gateway.exceptions import AlreadyExists, Conflict, InvalidParameter, NotFound
from gateway.models import DEFAULT_WORKSPACE, Grant, RegisteredModel, Workspace

DELETE_MODES = ("RESTRICT", "CASCADE", "SET_DEFAULT")


def resolve(name):
    """The workspace a request names (default when none), or NotFound."""
    if not name or name == DEFAULT_WORKSPACE:
        return DEFAULT_WORKSPACE
    validation.workspace_name(name)
    if not Workspace.select().where(Workspace.name == name).exists():
        raise NotFound(f"Workspace '{name}' not found")
    return name


def get(name):
    """One workspace, or NotFound."""
    if name != DEFAULT_WORKSPACE:
        validation.workspace_name(name)
    workspace = Workspace.get_or_none(Workspace.name == name)
    if workspace is None:
        raise NotFound(f"Workspace '{name}' not found")
    return workspace


def list_all():
    """Every workspace, by name."""
    return list(Workspace.select().order_by(Workspace.name))


def create(name, description=None, default_artifact_root=None):
    """Create a workspace; `default` is reserved."""
    if name == DEFAULT_WORKSPACE:
        raise InvalidParameter(f"The '{DEFAULT_WORKSPACE}' workspace is reserved and cannot be "
                               "created")
    validation.workspace_name(name)
    try:
        with database.atomic():
            return Workspace.create(name=name, description=description,
                                    default_artifact_root=default_artifact_root or None)
    except IntegrityError:
        raise AlreadyExists(f"Workspace '{name}' already exists.") from None


def update(name, **changes):
    """Change the fields given (None means "leave as is"); an empty string clears the root."""
    changes = {key: value for key, value in changes.items() if value is not None}
    if not changes:
        raise InvalidParameter("Workspace update must have at least one key")
    if "default_artifact_root" in changes:
        changes["default_artifact_root"] = changes["default_artifact_root"] or None
    with database.atomic():
        get(name)
        Workspace.update(**changes).where(Workspace.name == name).execute()
    return get(name)


def delete(name, mode="RESTRICT"):
    """Delete a workspace; mode decides what happens to its models."""
    if name == DEFAULT_WORKSPACE:
        raise InvalidParameter(f"The '{DEFAULT_WORKSPACE}' workspace is reserved and cannot be "
                               "deleted")
    validation.workspace_name(name)
    if mode not in DELETE_MODES:
        raise InvalidParameter(f"Invalid deletion mode '{mode}'. "
                               f"Must be one of: {', '.join(DELETE_MODES)}")
    with database.atomic():
        get(name)
        models = RegisteredModel.select().where(RegisteredModel.workspace == name)
        if mode == "RESTRICT" and models.exists():
            # MLflow answers INVALID_STATE (a 500); this is a state conflict, so 409.
            raise Conflict(f"Cannot delete workspace '{name}': it still contains "
                           f"{models.count()} registered model(s). Remove or reassign them "
                           "before deleting the workspace.")
        if mode == "SET_DEFAULT":
            _move_to_default(name)
        Workspace.delete().where(Workspace.name == name).execute()
        Grant.delete().where(Grant.workspace == name).execute()  # a new namesake starts clean


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

"""MLflow's workspace API (/api/3.0/mlflow/workspaces)."""
from flask import Blueprint, Response, request

from gateway import context, upstream
from gateway.faces.mlflow_api import schemas
from gateway.faces.mlflow_api.parsing import parse
from gateway.models import DEFAULT_WORKSPACE
from gateway.routes import Scope, from_path, requires, scoped
from gateway.services import principals, workspaces

bp = Blueprint("workspaces", __name__, url_prefix="/workspaces")
# The workspace in the path (none for the collection: only the caller's own limit counts).
bp.scope = Scope(find=from_path("workspace_name"))


def _workspace(row):
    return {"workspace": schemas.workspace_schema.dump(row)}


@bp.get("")
def list_all():
    """Every workspace the caller may read."""
    rows = workspaces.list_all()
    visible = set(context.caller().readable(w.name for w in rows))
    rows = [w for w in rows if w.name in visible]
    return {"workspaces": schemas.workspaces_schema.dump(rows)}


@bp.post("")
@scoped(Scope(find=lambda scope: principals.ALL_WORKSPACES, resolve=lambda name: None))
@requires("admin")
def create():
    """Create a workspace (201, as MLflow); needs the admin role on every workspace ("*")."""
    return _workspace(workspaces.create(**parse(schemas.create_workspace))), 201


@bp.get("/<workspace_name>")
def get(workspace_name):
    """One workspace."""
    return _workspace(workspaces.get(workspace_name))


@bp.patch("/<workspace_name>")
@requires("admin")
def update(workspace_name):
    """Change a workspace's description or artifact root."""
    return _workspace(workspaces.update(workspace_name, **parse(schemas.update_workspace)))


def _moving_models_into_default():
    if request.args.get("mode") == "SET_DEFAULT":  # its models move into default: a write there
        return [(DEFAULT_WORKSPACE, "writer")]
    return []


@bp.delete("/<workspace_name>")
@requires("admin", also=_moving_models_into_default)
def delete(workspace_name):
    """Delete a workspace (204, as MLflow); ?mode= RESTRICT, CASCADE or SET_DEFAULT."""
    mode = request.args.get("mode", "RESTRICT")
    workspaces.delete(workspace_name, mode, tracking_store=upstream.store(workspace_name))
    return Response(status=204)

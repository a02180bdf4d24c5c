"""MLflow's workspace API (/api/3.0/mlflow/workspaces) and the X-MLFLOW-WORKSPACE header."""
from flask import Blueprint, Response, request

from gateway import access, auth, retry_tokens, upstream
from gateway.faces.mlflow import schemas
from gateway.faces.mlflow.parsing import parse
from gateway.models import DEFAULT_WORKSPACE
from gateway.services import principals, workspaces

HEADER = "X-MLFLOW-WORKSPACE"

bp = Blueprint("workspaces", __name__, url_prefix="/workspaces")


def enter_from_header(role=None):
    """Enter the workspace the request's header names (default when absent)."""
    name = request.headers.get(HEADER, "").strip() or DEFAULT_WORKSPACE
    access.enter(name, role)
    return workspaces.resolve(name)


def _enter(workspace, role=None):
    """Authorize and count the caller, then claim its retry token: a replay of a stored
    answer is authorized and counted like any request. Returns the replay, if any."""
    access.enter(workspace, role)
    return retry_tokens.claim()


def _workspace(row):
    return {"workspace": schemas.workspace_schema.dump(row)}


@bp.get("")
def list_all():
    """Every workspace the caller may read."""
    access.count(None)
    rows = workspaces.list_all()
    visible = set(auth.readable(w.name for w in rows))
    rows = [w for w in rows if w.name in visible]
    return {"workspaces": schemas.workspaces_schema.dump(rows)}


@bp.post("")
def create():
    """Create a workspace (201, as MLflow); needs the admin role on every workspace ("*")."""
    if replay := _enter(principals.ALL_WORKSPACES, "admin"):
        return replay
    return _workspace(workspaces.create(**parse(schemas.create_workspace))), 201


@bp.get("/<workspace_name>")
def get(workspace_name):
    """One workspace."""
    access.enter(workspace_name)
    return _workspace(workspaces.get(workspace_name))


@bp.patch("/<workspace_name>")
def update(workspace_name):
    """Change a workspace's description or artifact root."""
    if replay := _enter(workspace_name, "admin"):
        return replay
    return _workspace(workspaces.update(workspace_name, **parse(schemas.update_workspace)))


@bp.delete("/<workspace_name>")
def delete(workspace_name):
    """Delete a workspace (204, as MLflow); ?mode= RESTRICT, CASCADE or SET_DEFAULT."""
    mode = request.args.get("mode", "RESTRICT")
    access.enter(workspace_name, "admin")
    if mode == "SET_DEFAULT":  # its models move into default: that is a write there
        auth.require(DEFAULT_WORKSPACE, "writer")
    if replay := retry_tokens.claim():
        return replay
    workspaces.delete(workspace_name, mode, tracking_store=upstream.store(workspace_name))
    return Response(status=204)

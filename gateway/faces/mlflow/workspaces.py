"""MLflow's workspace API (/api/3.0/mlflow/workspaces) and the X-MLFLOW-WORKSPACE header."""
from flask import Blueprint, Response, request

from gateway.faces.mlflow import schemas
from gateway.faces.mlflow.parsing import parse
from gateway.services import workspaces

HEADER = "X-MLFLOW-WORKSPACE"

bp = Blueprint("workspaces", __name__, url_prefix="/workspaces")


def from_header():
    """The workspace named by the request's header (default when absent)."""
    return workspaces.resolve(request.headers.get(HEADER, "").strip())


def _workspace(row):
    return {"workspace": schemas.workspace_schema.dump(row)}


@bp.get("")
def list_all():
    """Every workspace."""
    return {"workspaces": schemas.workspaces_schema.dump(workspaces.list_all())}


@bp.post("")
def create():
    """Create a workspace (201, as MLflow)."""
    return _workspace(workspaces.create(**parse(schemas.create_workspace))), 201


@bp.get("/<workspace_name>")
def get(workspace_name):
    """One workspace."""
    return _workspace(workspaces.get(workspace_name))


@bp.patch("/<workspace_name>")
def update(workspace_name):
    """Change a workspace's description or artifact root."""
    return _workspace(workspaces.update(workspace_name, **parse(schemas.update_workspace)))


@bp.delete("/<workspace_name>")
def delete(workspace_name):
    """Delete a workspace (204, as MLflow); ?mode= RESTRICT, CASCADE or SET_DEFAULT."""
    workspaces.delete(workspace_name, request.args.get("mode", "RESTRICT"))
    return Response(status=204)

"""NeMo's workspaces and their members: /apis/entities/v2/workspaces.

The same workspaces as MLflow's /api/3.0/mlflow/workspaces (one table); members are the
principals' grants, NeMo's Viewer/Editor/Admin being the gateway's reader/writer/admin.
As NeMo: any authenticated principal may create a workspace and becomes its admin; Editors
update it; Admins delete it and manage its members. Outsiders get 404, not 403.
"""
from flask import Blueprint
from werkzeug.exceptions import HTTPException

from gateway import context, upstream
from gateway.exceptions import AlreadyExists, GatewayError
from gateway.faces.bodies import json_body
from gateway.faces.nemo import workspace_schemas as schemas
from gateway.faces.nemo.filtering import from_request
from gateway.faces.nemo.parsing import body, query
from gateway.routes import Scope, from_path, requires, scoped
from gateway.services import members, workspaces
from gateway.validation import nemo_workspace_name

bp = Blueprint("nemo_workspaces", __name__, url_prefix="/apis/entities/v2/workspaces")
# The workspace in the path, hidden from outsiders (none for the collection: only the caller's
# own limit counts).
bp.scope = Scope(find=from_path("name"), hide=True)


def _name_to_create(scope):
    """The name a create asks for, if the body has one (the view checks the body)."""
    try:
        name = json_body().get("name")
    except (GatewayError, HTTPException):  # an unreadable body: the view answers it
        return None
    return name if isinstance(name, str) else None


def _who():
    """Who acts, for created_by/updated_by/granted_by: the principal, or the user it names."""
    return context.caller().name


# As NeMo: any authenticated principal may create a workspace (counted against its name).
@bp.post("")
@scoped(Scope(find=_name_to_create, authorize=False))
def create():
    """Create a workspace (201); the creator becomes its admin."""
    args = body(schemas.create_workspace)
    if args["name"] in workspaces.BUILT_IN:
        raise AlreadyExists(f"Workspace '{args['name']}' already exists.")
    principal = context.caller().principal
    row = workspaces.create(args["name"], args.get("description"),
                            admin=principal.name if principal else None, created_by=_who(),
                            rule=nemo_workspace_name)
    return schemas.workspace_schema.dump(row), 201


@bp.get("")
def list_all():
    """A page of the workspaces the caller may read, filtered and sorted."""
    args = query(schemas.list_workspaces)
    everything = [row.name for row in workspaces.list_all()]
    rows, total, pages = workspaces.search(from_request(), args["sort"], args["page"],
                                           args["page_size"],
                                           among=context.caller().readable(everything))
    return {"data": schemas.workspaces_schema.dump(rows),
            "pagination": {"page": args["page"], "page_size": args["page_size"],
                           "current_page_size": len(rows), "total_pages": pages,
                           "total_results": total},
            "sort": args["sort"]}


@bp.get("/<name>")
def get(name):
    """One workspace."""
    return schemas.workspace_schema.dump(workspaces.get(name, nemo_workspace_name))


@bp.put("/<name>")
def update(name):
    """Change a workspace's description (Editor)."""
    row = workspaces.update(name, updated_by=_who(), rule=nemo_workspace_name,
                            **body(schemas.update_workspace))
    return schemas.workspace_schema.dump(row)


@bp.delete("/<name>")
@requires("admin")
def delete(name):
    """Delete a workspace and everything in it (Admin); NeMo's DeleteResponse."""
    row = workspaces.get(name, nemo_workspace_name)
    workspaces.delete(name, "CASCADE", rule=nemo_workspace_name,
                      tracking_store=upstream.store(name))
    return {"id": row.uuid, "message": f"Workspace '{name}' deleted"}


@bp.get("/<name>/members")
@requires("admin")
def list_members(name):
    """The workspace's members and their roles (Admin)."""
    return {"data": schemas.members_schema.dump(members.list_all(name))}


@bp.post("/<name>/members")
@requires("admin")
def add_member(name):
    """Grant a principal roles in the workspace (201)."""
    args = body(schemas.create_member)
    grant = members.add(name, args["principal"], schemas.role_of(args["roles"]),
                        granted_by=_who())
    return schemas.member_schema.dump(grant), 201


@bp.put("/<name>/members/<path:principal>")
@requires("admin")
def update_member(name, principal):
    """Replace a member's roles."""
    roles = body(schemas.update_member)["roles"]
    return schemas.member_schema.dump(members.set_role(name, principal, schemas.role_of(roles)))


@bp.delete("/<name>/members/<path:principal>")
@requires("admin")
def remove_member(name, principal):
    """Remove a member; NeMo's DeleteResponse."""
    members.remove(name, principal)
    return {"id": principal, "message": f"Member '{principal}' removed from workspace '{name}'"}

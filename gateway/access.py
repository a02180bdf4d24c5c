"""A request's entry into a workspace: the caller's role there, then the tenant's rate limit."""
from gateway import auth, context, traffic
from gateway.models import SYSTEM_WORKSPACE
from gateway.services.principals import ALL_WORKSPACES


def enter(workspace, role=None, hide=False):
    """Authorize the caller in workspace (404 instead of 403 to outsiders if hide), then count.

    The built-in `system` workspace is read-only but to platform admins (admin of "*").
    """
    role = role or auth.needed_role()
    auth.require(workspace, role, hide)
    if workspace == SYSTEM_WORKSPACE and role != "reader":
        auth.require(ALL_WORKSPACES, "admin")
    count(workspace)


def count(workspace):
    """Count the request against the workspace's (None: no workspace) and the caller's rate
    limits."""
    principal = context.caller().principal
    traffic.admit(workspace, principal.name if principal else None)

"""A request's entry into a workspace: the caller's role there, then the tenant's rate limit."""
from flask import g

from gateway import auth, traffic


def enter(workspace, role=None, hide=False):
    """Authorize the caller in workspace (404 instead of 403 to outsiders if hide), then count."""
    auth.require(workspace, role or auth.needed_role(), hide)
    principal = g.get("principal")
    traffic.admit(workspace, principal.name if principal else None)

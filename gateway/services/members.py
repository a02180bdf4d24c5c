"""A workspace's members: the principals granted a role there (the same grants every face's
authorization reads, and `gateway principal grant` writes)."""
from gateway import work
from gateway.exceptions import AlreadyExists, NotFound
from gateway.models import Grant, Principal, Workspace
from gateway.services import principals


def _workspace(name):
    if not Workspace.select().where(Workspace.name == name).exists():
        raise NotFound(f"Workspace '{name}' not found")


def list_all(workspace):
    """The workspace's grants, by principal name (each with .principal loaded)."""
    _workspace(workspace)
    return list(Grant.select(Grant, Principal).join(Principal)
                .where(Grant.workspace == workspace).order_by(Principal.name))


def get(workspace, principal):
    """One member's grant, or NotFound."""
    grant = (Grant.select(Grant, Principal).join(Principal)
             .where(Grant.workspace == workspace, Principal.name == principal).first())
    if grant is None:
        _workspace(workspace)
        raise NotFound(f"Principal '{principal}' is not a member of workspace '{workspace}'")
    return grant


def add(workspace, principal, role, granted_by=None):
    """Make a principal a member with `role`; a principal the gateway has not seen yet is
    recorded (without credentials: it cannot sign in until an operator issues some)."""
    with work.write():
        _workspace(workspace)
        if Principal.get_or_none(Principal.name == principal) is None:
            principals.create(principal)
        elif Grant.select().join(Principal).where(Grant.workspace == workspace,
                                                  Principal.name == principal).exists():
            raise AlreadyExists(f"Principal '{principal}' is already a member of workspace "
                                f"'{workspace}'")
        principals.grant(principal, workspace, role, granted_by=granted_by)
    return get(workspace, principal)


def set_role(workspace, principal, role):
    """Replace a member's role."""
    with work.write():
        grant = get(workspace, principal)
        Grant.update(role=role).where(Grant.id == grant.id).execute()
    return get(workspace, principal)


def remove(workspace, principal):
    """Take a member's role away."""
    with work.write():
        grant = get(workspace, principal)
        Grant.delete().where(Grant.id == grant.id).execute()

"""Principals, their credentials and their roles per workspace."""
import functools
import hashlib
import secrets

from cryptography.hazmat.primitives.serialization import load_pem_public_key
from peewee import IntegrityError
from werkzeug.security import check_password_hash, generate_password_hash

from gateway import work
from gateway.db import prepared
from gateway.exceptions import AlreadyExists, InvalidParameter, NotFound
from gateway.models import ApiKey, ApiToken, Grant, Principal, Workspace, now_ms

ROLES = ("reader", "writer", "admin")
ALL_WORKSPACES = "*"


def token_digest(token):
    """Tokens are random and long, so a plain SHA-256 is a safe way to store them."""
    return hashlib.sha256(token.encode()).hexdigest()


def create(name, can_act_for_others=False):
    """Create a principal."""
    if not name or len(name) > 255:
        raise InvalidParameter("A principal's name must be 1 to 255 characters.")
    try:
        with work.write():
            return Principal.create(name=name, can_act_for_others=can_act_for_others)
    except IntegrityError:
        raise AlreadyExists(f"Principal '{name}' already exists.") from None


def list_all():
    """Every principal, by name."""
    return list(Principal.select().order_by(Principal.name))


def delete(name):
    """Delete a principal with its tokens, keys and grants."""
    with work.write():
        principal = get(name)
        for table in (ApiToken, ApiKey, Grant):
            table.delete().where(table.principal == principal.id).execute()
        principal.delete_instance()


def get(name):
    """A principal by name, or NotFound."""
    principal = Principal.get_or_none(Principal.name == name)
    if principal is None:
        raise NotFound(f"Principal '{name}' not found")
    return principal


def issue_token(name, expires_in_seconds=None, with_id=False):
    """A new bearer token for a principal (shown once, stored as a digest); with_id also
    returns the id that names it for revocation. Expires after expires_in_seconds if given."""
    token = "gw_" + secrets.token_urlsafe(32)
    expires_at = now_ms() + int(expires_in_seconds * 1000) if expires_in_seconds else None
    row = ApiToken.create(principal=get(name), digest=token_digest(token), expires_at=expires_at)
    return (token, row.id) if with_id else token


def tokens(name=None):
    """Issued tokens (never their value), oldest first, optionally of one principal."""
    query = ApiToken.select(ApiToken, Principal).join(Principal).order_by(ApiToken.id)
    return list(query.where(Principal.name == name) if name else query)


def revoke_token(token_id):
    """Revoke a token by its id."""
    if not ApiToken.delete().where(ApiToken.id == token_id).execute():
        raise NotFound(f"Token {token_id} not found")


def remove_key(key_id):
    """Remove a registered OCI API key."""
    if not ApiKey.delete().where(ApiKey.key_id == key_id).execute():
        raise NotFound(f"API key '{key_id}' not found")


def set_password(name, password):
    """Set a principal's password for HTTP Basic authentication."""
    if len(password) < 8:
        raise InvalidParameter("A password must have at least 8 characters.")
    Principal.update(password_hash=generate_password_hash(password)).where(
        Principal.name == name).execute()


def add_key(name, key_id, public_key_pem):
    """Register an OCI API signing key for a principal."""
    try:
        load_pem_public_key(public_key_pem.encode())
    except ValueError:
        raise InvalidParameter("The public key is not a PEM-encoded public key.") from None
    try:
        with work.write():
            return ApiKey.create(principal=get(name), key_id=key_id, public_key=public_key_pem)
    except IntegrityError:
        raise AlreadyExists(f"API key '{key_id}' is already registered.") from None


def grant(name, workspace, role, granted_by=None):
    """Give a principal a role in an existing workspace (replacing any role it had there).

    Grants live and die with their workspace (services.workspaces.delete removes them), so a
    workspace re-created under the same name starts with no grants.
    """
    if role not in ROLES:
        raise InvalidParameter(f"Unknown role '{role}'; roles are {', '.join(ROLES)}.")
    principal = get(name)
    if workspace != ALL_WORKSPACES and not Workspace.select().where(
            Workspace.name == workspace).exists():
        raise NotFound(f"Workspace '{workspace}' not found")
    (Grant.insert(principal=principal, workspace=workspace, role=role, granted_at=now_ms(),
                  granted_by=granted_by)
     .on_conflict(conflict_target=[Grant.principal, Grant.workspace], update={Grant.role: role})
     .execute())


def revoke(name, workspace):
    """Take away a principal's role in a workspace."""
    Grant.delete().where(Grant.principal == get(name), Grant.workspace == workspace).execute()


_principal_by_token = prepared(lambda digest, now: Principal.select().join(ApiToken).where(
    ApiToken.digest == digest, ApiToken.expires_at.is_null() | (ApiToken.expires_at > now)))


def by_token_digest(digest):
    """The principal holding the (unexpired) bearer token with this digest, or None."""
    return next(iter(_principal_by_token(digest, now_ms())), None)


def by_password(name, password):
    """The principal if the password is right, else None.

    An unknown user (or one without a password) costs the same hashing as a known one, so the
    answer's timing does not tell which user names exist.
    """
    principal = Principal.get_or_none(Principal.name == name)
    stored = principal.password_hash if principal and principal.password_hash else None
    if check_password_hash(stored or _dummy_hash(), password) and stored:
        return principal
    return None


@functools.cache
def _dummy_hash():
    return generate_password_hash(secrets.token_urlsafe(16))


def by_key_id(key_id):
    """(principal, public key PEM) for an OCI keyId, or (None, None)."""
    key = ApiKey.select(ApiKey, Principal).join(Principal).where(ApiKey.key_id == key_id).first()
    return (key.principal, key.public_key) if key else (None, None)


_roles = prepared(lambda principal_id, workspace, every: Grant.select(Grant.role).where(
    Grant.principal == principal_id, Grant.workspace.in_([workspace, every])), rows="tuples")


def role_in(principal_id, workspace):
    """The principal's role in a workspace (a "*" grant counts), or None."""
    roles = [role for role, in _roles(principal_id, workspace, ALL_WORKSPACES)]
    return max(roles, key=ROLES.index) if roles else None


def has_role(role, needed):
    """Whether a role includes what `needed` allows."""
    return role is not None and ROLES.index(role) >= ROLES.index(needed)

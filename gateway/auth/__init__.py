"""Who is calling (authentication) and what they may do in a workspace (authorization).

GATEWAY_AUTH=none trusts every caller (the embedded local default); GATEWAY_AUTH=required
accepts a bearer token, HTTP Basic credentials or an OCI API-key signature.
"""
import base64
import binascii
import hashlib
import time

from flask import current_app, g, request

from gateway.auth import signatures
from gateway.exceptions import NotFound, PermissionDenied, Unauthenticated
from gateway.models import Principal
from gateway.services import principals

USER_HEADER = "dh-user-principal"
MODES = ("none", "required")
# Liveness probes answer without credentials.
OPEN_ENDPOINTS = ("server.health", "server.version")
# POSTs that only read.
READ_ONLY_POSTS = ("registered_models.get_latest_versions",)
_BASIC_CACHE = {}  # digest of (name, password) -> (name, expiry); successes only
_BASIC_CACHE_SECONDS = 60
_BASIC_CACHE_SIZE = 10000


def init_app(app):
    """Check GATEWAY_AUTH and authenticate every request before anything else reads it."""
    if app.config["AUTH"] not in MODES:
        raise ValueError(f"GATEWAY_AUTH must be one of {MODES}, not {app.config['AUTH']!r}")
    app.before_request(_authenticate)


def _authenticate():
    g.principal = None
    g.user = request.headers.get(USER_HEADER) or None
    if current_app.config["AUTH"] == "none" or (request.endpoint or "").endswith(OPEN_ENDPOINTS):
        return
    principal = _verify(request.headers.get("Authorization", ""))
    g.principal = principal
    # dh-user-principal names the acting user only for principals trusted to act for others.
    if not (g.user and principal.can_act_for_others):
        g.user = principal.name


def _verify(authorization):
    scheme, _, value = authorization.partition(" ")
    scheme = scheme.lower()
    principal = None
    if scheme == "bearer":
        principal = principals.by_token(value.strip())
    elif scheme == "basic":
        principal = _basic(value.strip())
    elif scheme == "signature":
        return signatures.verify(value)
    elif not authorization:
        raise Unauthenticated("Authentication required: send a bearer token, HTTP Basic "
                              "credentials or an OCI request signature.")
    if principal is None:
        raise Unauthenticated("Invalid credentials.")
    return principal


def _basic(value):
    try:
        name, _, password = base64.b64decode(value, validate=True).decode().partition(":")
    except (binascii.Error, UnicodeDecodeError):
        raise Unauthenticated("Malformed Basic credentials.") from None
    # Password hashes are slow on purpose; remember a verified pair for a minute per worker
    # (so a changed password keeps working there for up to a minute).
    key = hashlib.sha256(f"{name}\0{password}".encode()).hexdigest()
    cached = _BASIC_CACHE.get(key)
    if cached and cached[1] > time.monotonic():
        return Principal.get_or_none(Principal.name == name)
    principal = principals.by_password(name, password)
    if principal is not None:
        if len(_BASIC_CACHE) >= _BASIC_CACHE_SIZE:
            _BASIC_CACHE.clear()
        _BASIC_CACHE[key] = (name, time.monotonic() + _BASIC_CACHE_SECONDS)
    return principal


def caller():
    """The identity retry tokens are scoped to: the principal, else the named user, else ""."""
    principal = g.get("principal")
    return principal.name if principal else (g.get("user") or "")


def needed_role():
    """reader for reads, writer for changes."""
    if request.method in ("GET", "HEAD") or (request.endpoint or "").endswith(READ_ONLY_POSTS):
        return "reader"
    return "writer"


def require(workspace, role, hide=False):
    """Refuse unless the caller has `role` in workspace; `hide` answers 404 to outsiders."""
    principal = g.get("principal")
    if principal is None:
        return
    held = principals.role_in(principal.id, workspace)
    if held is None and hide:
        raise NotFound("Not authorized or not found.")
    if not principals.has_role(held, role):
        raise PermissionDenied(f"Principal '{principal.name}' needs the {role} role in "
                               f"workspace '{workspace}'.")


def holds(workspace, role):
    """Whether an authenticated caller has `role` in workspace (False without authentication)."""
    principal = g.get("principal")
    return principal is not None and principals.has_role(principals.role_in(principal.id,
                                                                              workspace), role)


def readable(workspace_names):
    """The workspaces among these the caller may read."""
    if g.get("principal") is None:
        return list(workspace_names)
    return [name for name in workspace_names if holds(name, "reader")]

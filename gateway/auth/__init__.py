"""Who is calling (authentication) and what they may do in a workspace (authorization).

GATEWAY_AUTH=none trusts every caller (the embedded local default); GATEWAY_AUTH=required
accepts a bearer token, HTTP Basic credentials or an OCI API-key signature.
"""
import base64
import binascii
import functools
import hashlib
import hmac
import time

from flask import current_app, request

from gateway import context, traffic
from gateway.auth import signatures
from gateway.exceptions import NotFound, PermissionDenied, Unauthenticated
from gateway.models import SYSTEM_WORKSPACE, Principal
from gateway.services import principals

USER_HEADER = "dh-user-principal"
MODES = ("none", "required")
# Password hashes are slow on purpose: a verified pair is remembered for a minute per worker
# (so a changed password keeps working there for up to a minute).
_BASIC_CACHE_SECONDS = 60


class Remembered:
    """Answers a worker may reuse for `seconds` (at most `size` of them, then it starts over)."""

    def __init__(self, seconds, size=10000):
        self.seconds, self.size, self.items = seconds, size, {}

    def get(self, key, compute):
        """The remembered answer for key, else compute() (remembered unless told not to)."""
        hit = self.items.get(key)
        if hit is not None and hit[1] > time.monotonic():
            return hit[0]
        value, keep = compute()
        if keep and self.seconds > 0:
            if len(self.items) >= self.size:
                self.items.clear()
            self.items[key] = (value, time.monotonic() + self.seconds)
        return value


def init_app(app):
    """Check GATEWAY_AUTH and make the worker's caches (the pipeline calls authenticate())."""
    if app.config["AUTH"] not in MODES:
        raise ValueError(f"GATEWAY_AUTH must be one of {MODES}, not {app.config['AUTH']!r}")
    seconds = float(app.config["AUTH_CACHE_SECONDS"])
    app.extensions["auth"] = {"tokens": Remembered(seconds), "roles": Remembered(seconds),
                              "passwords": Remembered(_BASIC_CACHE_SECONDS)}


def authenticate(who, open_route):
    """Fill in who calls (a context.Caller), or raise Unauthenticated.

    Open routes need no credentials: they are counted against the caller's address, not a
    tenant, as are failed authentications (429 once an address floods).
    """
    who.user = request.headers.get(USER_HEADER) or None
    if current_app.config["AUTH"] == "none":
        return
    if open_route:
        traffic.admit_anonymous(traffic.client_address())
        return
    try:
        principal = _verify(request.headers.get("Authorization", ""))
    except Unauthenticated:
        traffic.admit_anonymous(traffic.client_address())
        raise
    who.principal = principal
    who.permits = functools.partial(_permits, principal)
    # dh-user-principal names the acting user only for principals trusted to act for others.
    if not (who.user and principal.can_act_for_others):
        who.user = principal.name


def _verify(authorization):
    scheme, _, value = authorization.partition(" ")
    scheme = scheme.lower()
    principal = None
    if scheme == "bearer":
        principal = _bearer(value.strip())
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


def _remembered(kind):
    return current_app.extensions["auth"][kind]


def _bearer(token):
    digest = principals.token_digest(token)

    def look_up():
        principal = principals.by_token_digest(digest)
        return principal, principal is not None  # unknown tokens are looked up every time
    return _remembered("tokens").get(digest, look_up)


def _basic(value):
    try:
        name, _, password = base64.b64decode(value, validate=True).decode().partition(":")
    except (binascii.Error, UnicodeDecodeError):
        raise Unauthenticated("Malformed Basic credentials.") from None

    address = traffic.client_address()

    def verify():
        traffic.check_login(address, name)  # before the (slow, on purpose) password hash
        principal = principals.by_password(name, password)
        if principal is None:
            traffic.failed_login(address, name)
        return principal is not None, principal is not None
    key = hashlib.sha256(f"{name}\0{password}".encode()).hexdigest()
    if _remembered("passwords").get(key, verify):
        return Principal.get_or_none(Principal.name == name)
    return None


def _role(principal, workspace):
    def look_up():
        # Only roles held are remembered: a grant (a workspace just created, a member just
        # added) applies at once everywhere; a revocation within AUTH_CACHE_SECONDS.
        role = principals.role_in(principal.id, workspace)
        return role, role is not None
    return _remembered("roles").get((principal.id, workspace), look_up)


def _permits(principal, workspace, role):
    return principals.has_role(_role(principal, workspace), role)


def require(who, workspace, role, hide=False):
    """Refuse unless the caller (a context.Caller) has `role` in workspace; `hide` answers 404
    to outsiders. The built-in `system` workspace is read-only but to platform admins (admin of
    "*")."""
    principal = who.principal
    if principal is None:
        return
    held = _role(principal, workspace)
    if held is None and hide:
        traffic.admit_anonymous(traffic.client_address())  # refused traffic has its own limit
        raise NotFound("Not authorized or not found.")
    if not principals.has_role(held, role):
        traffic.admit_anonymous(traffic.client_address())
        raise PermissionDenied(f"Principal '{principal.name}' needs the {role} role in "
                               f"workspace '{workspace}'.")
    if workspace == SYSTEM_WORKSPACE and role != "reader":
        require(who, principals.ALL_WORKSPACES, "admin")


def require_operator():
    """Operator views (/metrics): the configured scrape token, or an admin of every workspace.

    Metrics name every tenant's workspaces, so tenants' principals get 403.
    """
    if current_app.config["AUTH"] == "none":
        return
    given = request.headers.get("Authorization", "")
    token = current_app.config["METRICS_TOKEN"]
    if token and hmac.compare_digest(given.encode(), f"Bearer {token}".encode()):
        return
    who = context.caller()
    who.principal = _verify(given)
    require(who, principals.ALL_WORKSPACES, "admin")

"""What the request pipeline learns about one request, in one typed place.

Every request has one RequestContext, made at its first use; the pipeline's steps
(gateway.pipeline) fill it in order:

    request id      request_id      the opc-request-id (given or made)
    clock           started         when the request arrived
    who calls       caller          the principal and the user it acts as, and what it may do
    the face's      namespace       the face's own name for the tenant (an OCI platform, a NeMo
      URL values    workspace_key   or OpenMetadata workspace; the OCI workspace key)
    scope           workspace       the gateway workspace the request acts in
    retry token     retry_claim     the request's opc-retry-token, once claimed
    unit of work    work            the transaction a claimed request's writes go into

Views and services read it through current(); nothing about a request lives on flask.g. (It
is kept in the request's WSGI environ, not on flask.g: g belongs to the application context,
which several requests share when a caller, a test say, holds one open around them.)
"""
from dataclasses import dataclass, field

from flask import has_request_context, request


@dataclass(slots=True)
class Caller:
    """Who calls: the authenticated principal (None when authentication is off or the route is
    open) and the acting user's name (dh-user-principal, honoured when no principal is
    required or the principal may act for others; else the principal's own name)."""
    principal: object = None
    user: str | None = None
    # permits(workspace, role) -> bool, set with the principal by authentication.
    permits: object = None

    @property
    def name(self):
        """The name to record as the actor: the principal's, else the named user, else None."""
        return self.principal.name if self.principal is not None else self.user

    @property
    def identity(self):
        """What retry tokens are scoped to: the principal (and the user it acts for, if other),
        else the named user, else ""."""
        if self.principal is None:
            return self.user or ""
        if not self.user or self.user == self.principal.name:
            return self.principal.name
        return f"{self.principal.name} as {self.user}"

    def holds(self, workspace, role):
        """Whether an authenticated caller has `role` in workspace (False without one)."""
        return self.principal is not None and self.permits(workspace, role)

    def readable(self, workspace_names):
        """The workspaces among these the caller may read (all, without authentication)."""
        if self.principal is None:
            return list(workspace_names)
        return [name for name in workspace_names if self.permits(name, "reader")]


_KEY = "gateway.context"  # in the WSGI environ: dotted keys are for extensions (PEP 3333)


@dataclass(slots=True)
class RequestContext:
    request_id: str = "-"
    started: float = 0.0
    caller: Caller = field(default_factory=Caller)
    workspace: str | None = None
    namespace: str | None = None
    workspace_key: str | None = None
    retry_claim: object = None
    work: object = None


def current():
    """This request's context, made at its first use (the URL's values come before any
    before_request hook); a blank one outside a request."""
    if not has_request_context():
        return RequestContext()
    environ = request.environ
    context = environ.get(_KEY)
    if context is None:
        context = environ[_KEY] = RequestContext()
    return context


def workspace():
    """The gateway workspace the request acts in (set by the face's scope)."""
    return current().workspace


def caller():
    """Who calls (set by authentication)."""
    return current().caller

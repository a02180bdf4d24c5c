"""What the request pipeline learns about one request, in one typed place.

Every request has one RequestContext, made at its first use; the pipeline's steps fill it in
order:

    request_ids     request_id      the opc-request-id (given or made)
    observability   started         when the request arrived
    auth            caller          who calls: the principal and the user it acts as
    the face        workspace       the gateway workspace the request acts in, and the face's
                    namespace       own name for it (an OCI platform, a NeMo or OpenMetadata
                    workspace_key   workspace; the OCI workspace key the request came through)
    retry_tokens    retry_claim     the request's opc-retry-token, once claimed

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

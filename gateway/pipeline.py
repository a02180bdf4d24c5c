"""The request pipeline: what happens to every request, whatever its face, in this order.

    before the view                                           (enter)
      1. request id     request_ids.assign     the opc-request-id, given or made
      2. who calls      auth.authenticate      open routes need no credentials; they are
                                               counted against the client's address
      3. scope          the face's Scope       the workspace the request acts in (see
                                               gateway.routes: faces declare it as data)
      4. authorize      auth.require           the route's role there (hidden: 404, not 403)
      5. rate limit     traffic.admit          the workspace's and the principal's budgets
      6. face checks    Scope.prepare          the face's own, now the caller may act
      7. retry token    retry_tokens.claim     replay its stored answer, or claim it;
                                               a forwarding view reserves it instead
      8. unit of work   work.UnitOfWork        a claimed request's writes: one transaction
    the view: parse, call the domain, dump
    after the view                                            (answer)
      9. record         retry_tokens.record    the answer with the token; commit the unit
     10. echo and log   request_ids.echo, observability.finish
    after everything, errors included                         (close)
     11. roll back what the unit of work left, release an unanswered reservation, give the
         database connection back, wake the webhook deliverer: each step guarded, so one that
         fails never skips the next

A step that refuses raises a GatewayError; Flask renders it in the face's error format and the
after-view steps still run (the answer is echoed, logged and, if remembered, kept with the
token). The request's state lives in one typed place, gateway.context.
"""
import logging
import time

from flask import current_app, request

from gateway import auth, context, db, delivery, observability, request_ids, retry_tokens, traffic
from gateway.routes import route_of

log = logging.getLogger(__name__)


def init_app(app):
    """The pipeline's three hooks: the only request hooks the gateway registers."""
    app.before_request(enter)
    app.after_request(answer)
    app.teardown_request(close)


def enter():
    """Steps 1-8, before the view; a response returned here (a replay) is the answer."""
    scope = context.current()
    scope.started = time.perf_counter()
    request_ids.assign(scope)
    delivery.start(current_app)  # the webhook deliverer, at the first request if not before
    route = route_of(current_app, request.endpoint)
    auth.authenticate(scope.caller, route.open)
    declared = route.scope
    if declared is None:
        return None
    name = declared.find(scope)  # (checks the face's URL values, on open routes too)
    if route.open:
        return None
    scope.workspace = name  # (for the access log, even if the caller is refused)
    if name is not None and declared.authorize:
        hide = declared.hide(name) if callable(declared.hide) else declared.hide
        auth.require(scope.caller, name, route.needed_role(), hide)
        for workspace, role in (route.also() if route.also else ()):
            auth.require(scope.caller, workspace, role)
    principal = scope.caller.principal
    traffic.admit(name, principal.name if principal else None)
    if name is not None and declared.resolve is not None:
        scope.workspace = declared.resolve(name)
    if declared.prepare is not None:
        declared.prepare()
    if (replay := retry_tokens.claim(scope)) is not None:
        return replay
    if route.forwarding:  # its effect is upstream: hold the token before it acts
        return retry_tokens.reserve(scope)
    if scope.retry_claim is not None:
        scope.work = retry_tokens.unit()
    return None


def answer(response):
    """Steps 9-10, after the view (or after a step or the view refused)."""
    scope = context.current()
    response = retry_tokens.record(scope, response)
    response = request_ids.echo(scope, response)
    return observability.finish(scope, response)


def close(error=None):
    """Step 11, after everything: each part runs even if another fails."""
    scope = context.current()
    unit, scope.work = scope.work, None
    for step, what in ((lambda: unit is not None and unit.rollback(),
                        "rolling back a unit of work"),
                       (lambda: retry_tokens.release(scope), "releasing a retry-token reservation"),
                       (db.release, "giving the database connection back"),
                       (delivery.wake_if_queued, "waking the webhook deliverer")):
        try:
            step()
        except Exception:  # never raise from a teardown: the next step must run
            log.warning("%s failed", what, exc_info=True)

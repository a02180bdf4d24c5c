"""opc-retry-token: a retried mutating request runs once, and replays get its first answer.

Each face claims the token (`claim()`) at the end of its scope hook, once the caller is
authorized and counted against its rate limit. From there the request runs inside one database
transaction that holds the token's row, the action's writes and the stored answer, so they
commit together or not at all. A concurrent request with the same token blocks on the token's
unique key until the first one commits, then replays its answer; on PostgreSQL it waits at most RETRY_TOKEN_WAIT_MS and then gets a
retryable 409 IncorrectState.
"""
import hashlib
import json
import random

from flask import Response, current_app, g, has_request_context, request
from peewee import IntegrityError, OperationalError

from gateway import events
from gateway.db import database, is_sqlite, prepared
from gateway.exceptions import (Conflict, IncorrectState, InvalidatedRetryToken,
                                InvalidParameter)
from gateway.auth import caller
from gateway.models import DELETED_STAGE, ModelVersion, RegisteredModel, RetryToken, now_ms

HEADER = "opc-retry-token"
MUTATING = {"POST", "PUT", "PATCH", "DELETE"}
_REPLAYED_HEADERS = ("Content-Type", "etag")
# Refused before the action ran and likely to change on retry: not remembered.
_NOT_REMEMBERED = {401, 403, 429}


def init_app(app):
    """Store the answer after the view and finish the transaction last (faces call claim())."""
    app.after_request(_record)
    app.teardown_request(_finish)
    events.created.connect(_note_created)


def fingerprint():
    """What makes two requests "the same": method, path, query, workspace and body."""
    digest = hashlib.sha256()
    for part in (request.method, request.path, request.query_string.decode("latin-1"),
                 request.headers.get("X-MLFLOW-WORKSPACE", "")):
        digest.update(part.encode() + b"\n")
    digest.update(request.get_data(cache=True))
    return digest.hexdigest()


class _Claim:
    """This request's hold on a token, and the transaction around the whole request."""

    def __init__(self, token):
        self.token, self.caller, self.fingerprint = token, caller(), fingerprint()
        self.owned, self.created, self.commit = False, None, False
        self.transaction = database.atomic()


def claim():
    """Take the request's retry token, or return the answer of the request that took it."""
    token = request.headers.get(HEADER)
    if token is None or request.method not in MUTATING:
        return None
    if not 1 <= len(token) <= 64:
        raise InvalidParameter(f"Invalid {HEADER}: it must be 1 to 64 characters long.")
    claim = g.retry_claim = _Claim(token)
    try:
        claim.transaction.__enter__()
        _wait_at_most(current_app.config["RETRY_TOKEN_WAIT_MS"])
        earlier = _insert_or_get(claim)
    except OperationalError as error:
        raise IncorrectState("Another request with this retry token is still running; retry "
                             "later.") from error
    return None if earlier is None else _replay(earlier, claim)


def _wait_at_most(milliseconds):
    if not is_sqlite():  # SQLite waits for its write lock up to the busy timeout instead
        database.execute_sql(f"SET LOCAL lock_timeout = {int(milliseconds)}")


def _insert_or_get(claim):
    """Take the token (None), or return the row of the request that took it first."""
    now = now_ms()
    ttl = current_app.config["RETRY_TOKEN_TTL_SECONDS"] * 1000
    if random.random() < current_app.config["RETRY_TOKEN_PURGE_CHANCE"]:
        purge_expired(now)
    try:
        with database.atomic():  # a savepoint: a duplicate key must not abort the request
            _insert_token(claim.caller, claim.token, claim.fingerprint, now, now + ttl)
    except IntegrityError:
        earlier = RetryToken.get((RetryToken.caller == claim.caller)
                                 & (RetryToken.token == claim.token))
        if earlier.expires_at > now:
            return earlier
        earlier.delete_instance()
        return _insert_or_get(claim)
    claim.owned = True
    return None


# Prepared: on SQLite the write lock is held from the claim to the commit.
_insert_token = prepared(lambda caller, token, fingerprint, created, expires: RetryToken.insert(
    {RetryToken.caller: caller, RetryToken.token: token, RetryToken.fingerprint: fingerprint,
     RetryToken.created_at: created, RetryToken.expires_at: expires}
).returning(RetryToken.id).tuples())
_store_answer = prepared(lambda status, body, headers, kind, row_id, workspace, caller, token: (
    RetryToken.update({RetryToken.status: status, RetryToken.body: body,
                       RetryToken.headers: headers, RetryToken.resource_kind: kind,
                       RetryToken.resource_id: row_id, RetryToken.workspace: workspace})
    .where((RetryToken.caller == caller) & (RetryToken.token == token))
    .returning(RetryToken.id).tuples()))


def _replay(earlier, claim):
    if earlier.fingerprint != claim.fingerprint:
        raise Conflict(f"The {HEADER} was already used for a different request.")
    if earlier.resource_kind and not _still_exists(earlier.resource_kind, earlier.resource_id):
        raise InvalidatedRetryToken(
            f"The {HEADER} was used in an earlier request whose result has since been removed. "
            "To perform the action again, retry with a different retry token.")
    headers = json.loads(earlier.headers or "{}")
    events.retry_replayed.send("retry_token", workspace=earlier.workspace)
    return Response(earlier.body, status=earlier.status, headers=headers)


def _still_exists(kind, row_id):
    if kind == "registered_model":
        return RegisteredModel.select().where(RegisteredModel.id == row_id).exists()
    return ModelVersion.select().where(ModelVersion.id == row_id,
                                       ModelVersion.current_stage != DELETED_STAGE).exists()


def _note_created(kind, row_id):
    claim = g.get("retry_claim") if has_request_context() else None
    if claim is not None and claim.owned and claim.created is None:
        claim.created = (kind, row_id)


def _record(response):
    claim = g.get("retry_claim")
    if claim is None or not claim.owned:
        return response
    # A server error, like a refusal, leaves nothing behind: a retry with the token runs again.
    claim.commit = response.status_code < 500 and response.status_code not in _NOT_REMEMBERED
    if claim.commit:
        kind, row_id = claim.created or (None, None)
        headers = {k: response.headers[k] for k in _REPLAYED_HEADERS if k in response.headers}
        _store_answer(response.status_code, response.get_data(as_text=True),
                      json.dumps(headers), kind, row_id, g.get("workspace"), claim.caller,
                      claim.token)
    return response


def _finish(exc):
    claim = g.pop("retry_claim", None)
    if claim is None or database.transaction_depth() == 0:
        return
    if claim.commit and exc is None:
        claim.transaction.__exit__(None, None, None)
    else:
        claim.transaction.__exit__(_Rollback, _Rollback(), None)


class _Rollback(Exception):
    """Marks the request's transaction for rollback."""


def purge_expired(now=None):
    """Delete expired tokens; returns how many."""
    return RetryToken.delete().where(RetryToken.expires_at <= (now or now_ms())).execute()

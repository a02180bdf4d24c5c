"""opc-retry-token: a retried mutating request runs once, and replays get its first answer.

Each face calls `claim()` at the end of its scope hook, once the caller is authorized and
counted against its rate limit. A token already answered is replayed there. Otherwise the
claim waits for the request's first write: at its first `database.atomic()` the claim opens
the request's transaction and takes the token's row in it, so the action's writes and the
stored answer commit together with the token or not at all. Parsing and checks run before
that, outside SQLite's write lock. A concurrent request with the same token blocks on the
token's unique key until the first one commits, then replays its answer; on PostgreSQL it
waits at most RETRY_TOKEN_WAIT_MS and then gets a retryable 409 IncorrectState. An answer
given without any write (e.g. a 404) is remembered after the fact, in a transaction of its own.
"""
import hashlib
import json
import random

from flask import Response, current_app, g, has_request_context, request
from peewee import OperationalError

from gateway import events
from gateway.db import before_first_transaction, database, is_sqlite, prepared
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
    """Store the answer after the view and commit (faces call claim())."""
    app.after_request(_record)
    app.teardown_request(_finish)
    app.register_error_handler(Replayed, lambda replayed: replayed.response)
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
    """This request's hold on a token, and the transaction around the request's writes."""

    def __init__(self, token):
        self.token, self.caller, self.fingerprint = token, caller(), fingerprint()
        self.owned, self.created, self.commit = False, None, False
        self.transaction = None

    def open(self):
        """Open the request's transaction and take the token in it (or replay the winner's)."""
        self.transaction = database.atomic()
        try:
            self.transaction.__enter__()
            _wait_at_most(current_app.config["RETRY_TOKEN_WAIT_MS"])
            earlier = _insert_or_get(self)
        except OperationalError as error:
            raise IncorrectState("Another request with this retry token is still running; "
                                 "retry later.") from error
        if earlier is not None:  # a request with the same token committed in the meantime
            raise Replayed(_replay(earlier, self))


class Replayed(Exception):
    """Ends a request with the answer its retry token was first given."""

    def __init__(self, response):
        super().__init__("replayed")
        self.response = response


def claim():
    """Replay the answer the request's retry token was given, or claim it for this request."""
    token = request.headers.get(HEADER)
    if token is None or request.method not in MUTATING:
        return None
    if not 1 <= len(token) <= 64:
        raise InvalidParameter(f"Invalid {HEADER}: it must be 1 to 64 characters long.")
    claim = _Claim(token)
    earlier = next(iter(_find_token(claim.caller, token)), None)
    if earlier is not None and earlier.expires_at > now_ms():
        return _replay(earlier, claim)
    g.retry_claim = claim
    before_first_transaction(claim.open)
    return None


def _wait_at_most(milliseconds):
    if not is_sqlite():  # SQLite waits for its write lock up to the busy timeout instead
        database.execute_sql(f"SET LOCAL lock_timeout = {int(milliseconds)}")


def _insert_or_get(claim):
    """Take the token (None), or return the row of the request that took it first."""
    now = now_ms()
    ttl = current_app.config["RETRY_TOKEN_TTL_SECONDS"] * 1000
    if random.random() < current_app.config["RETRY_TOKEN_PURGE_CHANCE"]:
        purge_expired(now)
    # ON CONFLICT DO NOTHING: a duplicate key returns no row instead of aborting the request.
    if not _insert_token(claim.caller, claim.token, claim.fingerprint, now, now + ttl):
        [earlier] = _find_token(claim.caller, claim.token)
        if earlier.expires_at > now:
            return earlier
        earlier.delete_instance()
        return _insert_or_get(claim)
    claim.owned = True
    return None


# Prepared: these run while SQLite's write lock is held.
_insert_token = prepared(lambda caller, token, fingerprint, created, expires: RetryToken.insert(
    {RetryToken.caller: caller, RetryToken.token: token, RetryToken.fingerprint: fingerprint,
     RetryToken.created_at: created, RetryToken.expires_at: expires}
).on_conflict_ignore().returning(RetryToken.id), rows="tuples")
_find_token = prepared(lambda caller, token: RetryToken.select().where(
    (RetryToken.caller == caller) & (RetryToken.token == token)))
_store_answer = prepared(lambda status, body, headers, kind, row_id, workspace, caller, token: (
    RetryToken.update({RetryToken.status: status, RetryToken.body: body,
                       RetryToken.headers: headers, RetryToken.resource_kind: kind,
                       RetryToken.resource_id: row_id, RetryToken.workspace: workspace})
    .where((RetryToken.caller == caller) & (RetryToken.token == token))
    .returning(RetryToken.id)), rows="tuples")


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
    """Store the answer with the token and commit the request's transaction."""
    claim = g.get("retry_claim")
    if claim is None:
        return response
    before_first_transaction(None)
    # Refusals and server errors leave nothing behind: a retry with the token runs again.
    if response.status_code >= 500 or response.status_code in _NOT_REMEMBERED:
        return response
    if claim.transaction is None:  # nothing was written: remember the answer all the same
        try:
            claim.open()
        except (Replayed, IncorrectState, Conflict, InvalidatedRetryToken):
            return response  # another request with the token answered first; its answer stands
    if claim.owned:
        kind, row_id = claim.created or (None, None)
        headers = {k: response.headers[k] for k in _REPLAYED_HEADERS if k in response.headers}
        _store_answer(response.status_code, response.get_data(as_text=True),
                      json.dumps(headers), kind, row_id, g.get("workspace"), claim.caller,
                      claim.token)
        claim.commit = True
        claim.transaction.__exit__(None, None, None)  # commit now, not after the access log
    return response


def _finish(exc):
    claim = g.pop("retry_claim", None)
    if claim is None:
        return
    before_first_transaction(None)
    if claim.transaction is not None and not claim.commit and database.transaction_depth():
        claim.transaction.__exit__(_Rollback, _Rollback(), None)


class _Rollback(Exception):
    """Marks the request's transaction for rollback."""


def purge_expired(now=None):
    """Delete expired tokens; returns how many."""
    return RetryToken.delete().where(RetryToken.expires_at <= (now or now_ms())).execute()

"""opc-retry-token: a retried mutating request runs once, and replays get its first answer.

The pipeline (gateway.pipeline) calls `claim()` once the caller is authorized and counted
against its rate limit; a token that already has an answer is replayed there. Otherwise the
request gets a unit of work (gateway.work): its writes go into one transaction, begun at its
first write (so parsing and checks run outside SQLite's write lock). After the view, `record()`
inserts the token and its answer in that same transaction, which then commits: the action, the
token and the answer are stored together or not at all.

Two requests with one token at the same time: the database lets one insert the token first
(SQLite: one writer at a time; PostgreSQL: the second insert waits on the unique key, at
most RETRY_TOKEN_WAIT_MS, else a retryable 409 IncorrectState). The other finds the token
taken, rolls back everything it did, and answers with the first one's answer.

A request whose effect happens elsewhere (a call forwarded to the tracking upstream) cannot be
rolled back, so the pipeline `reserve()`s its token before it acts: a row without an answer,
committed at once. A concurrent duplicate finds it and waits for the answer (polling, within
the upstream's timeout), then replays it. A reservation whose request died is taken over once
it is older than that timeout.
"""
import hashlib
import json
import logging
import random
import time
from types import SimpleNamespace

from flask import Response, current_app, request
from peewee import InterfaceError, InternalError, OperationalError

from gateway import errors, events
from gateway.db import database, prepared, prepared_insert
from gateway.exceptions import (Conflict, GatewayError, IncorrectState,
                                InvalidatedRetryToken, InvalidParameter)
from gateway.models import DELETED_STAGE, ModelVersion, RegisteredModel, RetryToken, now_ms
from gateway.routes import MUTATING
from gateway.work import UnitOfWork

log = logging.getLogger(__name__)
HEADER = "opc-retry-token"
_REPLAYED_HEADERS = ("Content-Type", "etag")
# Refused before the action ran and likely to change on retry: not remembered.
_NOT_REMEMBERED = {401, 403, 429}


def fingerprint():
    """What makes two requests "the same": method, path, query, workspace and body."""
    parts = (request.method, request.path, request.query_string.decode("latin-1"),
             request.headers.get("X-MLFLOW-WORKSPACE", ""))
    head = "".join(part + "\n" for part in parts).encode()
    return hashlib.sha256(head + request.get_data(cache=True)).hexdigest()


class _Claim:
    """This request's retry token: whose, and what request it stands for; whether it was
    reserved (a forwarded call) and that reservation answered."""

    def __init__(self, token, caller):
        self.token, self.caller, self.fingerprint = token, caller, fingerprint()
        self.reserved, self.finished = False, False


def claim(scope):
    """Replay the answer the request's retry token was given (a Response), or take the token
    for this request (scope.retry_claim; the request then gets a unit of work, see unit()).
    None when the request has no token."""
    token = request.headers.get(HEADER)
    if token is None or request.method not in MUTATING:
        return None
    if not 1 <= len(token) <= 64:
        raise InvalidParameter(f"Invalid {HEADER}: it must be 1 to 64 characters long.")
    claim = _Claim(token, scope.caller.identity)
    earlier = _find_token(claim.caller, token)
    if earlier is not None and earlier.expires_at > now_ms():
        if earlier.status is not None:
            return _replay(earlier, claim)
        _check_fingerprint(earlier, claim)  # reserved: reserve() waits for its answer
    scope.retry_claim = claim
    return None


def unit():
    """The unit of work for a claimed request: its writes and its token commit together.
    (PostgreSQL: a write waits at most RETRY_TOKEN_WAIT_MS for a row another request with the
    same token holds.)"""
    return UnitOfWork(lock_timeout_ms=int(current_app.config["RETRY_TOKEN_WAIT_MS"]))


def reserve(scope):
    """Take the request's token now, for an action the gateway cannot roll back (a forwarded
    call): None, then the request acts; or the answer of the request that holds the token,
    once it has one."""
    claim = scope.retry_claim
    if claim is None:
        return None
    patience = float(current_app.config["TRACKING_TIMEOUT_SECONDS"]) + 5
    deadline = time.monotonic() + patience
    while True:
        now = now_ms()
        with database.atomic():
            taken = _insert_token(caller=claim.caller, token=claim.token,
                                  fingerprint=claim.fingerprint, created_at=now,
                                  expires_at=_expiry(now), workspace=scope.workspace)
        if taken:
            claim.reserved = True
            return None
        earlier = _find_token(claim.caller, claim.token)
        if earlier is None:
            continue  # released meanwhile: try again
        if earlier.status is not None and earlier.expires_at > now:
            scope.retry_claim = None
            return _replay(earlier, claim)
        _check_fingerprint(earlier, claim)
        if earlier.expires_at <= now or earlier.created_at < now - patience * 1000:
            _release(RetryToken.id == earlier.id)  # expired, or its request died: take it over
            continue
        if time.monotonic() >= deadline:
            raise IncorrectState(f"A request with this {HEADER} is still running; retry.")
        time.sleep(0.05)


def _release(*where):
    """Delete a reservation (a token row still without an answer)."""
    with database.atomic():
        RetryToken.delete().where(*where, RetryToken.status.is_null()).execute()


def _replayed_headers(response):
    return {k: response.headers[k] for k in _REPLAYED_HEADERS if k in response.headers}


def _record_reserved(claim, response):
    """Store the answer on the reservation, or release it if the answer is not kept."""
    claim.finished = True
    mine = (RetryToken.caller == claim.caller, RetryToken.token == claim.token)
    try:
        if _remembered(response):
            with database.atomic():
                RetryToken.update(status=response.status_code,
                                  headers=json.dumps(_replayed_headers(response)),
                                  body=response.get_data(as_text=True)).where(*mine).execute()
        else:
            _release(*mine)
    except (OperationalError, InterfaceError) as error:
        return errors.database_error(error)
    return response


def _remembered(response):
    """Refusals, server errors and answers that say "retry" (Retry-After: busy, unavailable)
    leave nothing behind: a retry runs again."""
    return not (response.status_code >= 500 or response.status_code in _NOT_REMEMBERED
                or "Retry-After" in response.headers)


def record(scope, response):
    """Insert the token with the answer, and commit the unit of work; or answer as the token's
    first request did (this one's writes rolled back)."""
    claim = scope.retry_claim
    if claim is None:
        return response
    if claim.reserved:
        return _record_reserved(claim, response)
    unit = scope.work
    if not _remembered(response):  # the pipeline's close() rolls back what it wrote
        return response
    try:
        if not unit.begun:  # nothing was written: remember the answer all the same
            unit.begin()
        earlier = _insert_or_get(claim, unit, response, scope.workspace)
        if earlier is None:
            unit.commit()  # now, not after the access log
            return response
    except (OperationalError, InterfaceError) as error:  # close() rolls back what is left
        return errors.database_error(error)
    except InternalError:  # PostgreSQL: the request's transaction failed earlier (a 4xx for
        return response    # a value out of range, say): its answer is not remembered
    unit.rollback()  # the token's first request won: undo what this one did
    try:
        return _replay(earlier, claim)
    except GatewayError as error:  # e.g. the same token on a different request
        return errors.render(error)


def _expiry(now):
    """When a token taken at `now` (ms) expires."""
    return now + current_app.config["RETRY_TOKEN_TTL_SECONDS"] * 1000


def _insert_or_get(claim, unit, response, workspace):
    """Insert the token with the answer (None), or return the row that has the token."""
    now = now_ms()
    if random.random() < current_app.config["RETRY_TOKEN_PURGE_CHANCE"]:
        purge_expired(now)
    kind, row_id = unit.created or (None, None)
    headers = _replayed_headers(response)
    # ON CONFLICT DO NOTHING: a taken token returns no row instead of aborting the transaction.
    if _insert_token(caller=claim.caller, token=claim.token, fingerprint=claim.fingerprint,
                     created_at=now, expires_at=_expiry(now), status=response.status_code, body=response.get_data(as_text=True),
                     headers=json.dumps(headers), resource_kind=kind, resource_id=row_id,
                     workspace=workspace):
        return None
    earlier = _find_token(claim.caller, claim.token)
    if earlier.expires_at > now:
        return earlier
    RetryToken.delete().where(RetryToken.id == earlier.id).execute()
    return _insert_or_get(claim, unit, response, workspace)


# Prepared: it runs while SQLite's write lock is held.
_insert_token = prepared_insert(RetryToken, on_conflict_ignore=True)
_select_token = prepared(lambda caller, token: RetryToken.select().where(
    (RetryToken.caller == caller) & (RetryToken.token == token)), rows="dicts")


def _find_token(caller, token):
    rows = _select_token(caller, token)
    return SimpleNamespace(**rows[0]) if rows else None


def _check_fingerprint(earlier, claim):
    if earlier.fingerprint != claim.fingerprint:
        raise Conflict(f"The {HEADER} was already used for a different request.")


def _replay(earlier, claim):
    _check_fingerprint(earlier, claim)
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


def release(scope):
    """After the request (whatever happened): a reservation the request never answered is
    released, so a retry runs again. (Raises if the database fails: the pipeline logs it.)"""
    claim, scope.retry_claim = scope.retry_claim, None
    if claim is not None and claim.reserved and not claim.finished:
        _release(RetryToken.caller == claim.caller, RetryToken.token == claim.token)


def purge_expired(now=None):
    """Delete expired tokens; returns how many."""
    return RetryToken.delete().where(RetryToken.expires_at <= (now or now_ms())).execute()

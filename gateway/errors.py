"""Every failure becomes an error body in the format of the face that was asked."""
import logging

from flask import current_app, jsonify, request
from peewee import DataError, InterfaceError, OperationalError
from werkzeug.exceptions import HTTPException

from gateway.exceptions import (AlreadyExists, Conflict, GatewayError, IncorrectState,
                                InvalidatedRetryToken, InvalidFilter, InvalidParameter,
                                MalformedRequest,
                                MissingParameter, NotFound, PermissionDenied, PreconditionFailed,
                                RateLimited, Unauthenticated, Unavailable, UpstreamTimeout)

log = logging.getLogger(__name__)

# Face-neutral kinds of failure and the HTTP status each gets unless a face says otherwise.
STATUSES = {"invalid": 400, "missing": 400, "unparseable": 400, "invalid_filter": 400,
            "not_found": 404,
            "already_exists": 409, "conflict": 409, "incorrect_state": 409,
            "invalidated_retry_token": 409, "precondition_failed": 412,
            "unauthenticated": 401, "permission_denied": 403, "too_many_requests": 429,
            "endpoint_not_found": 404, "method_not_allowed": 405, "too_large": 413,
            "unavailable": 503, "upstream_timeout": 504, "internal": 500}
_KINDS = {InvalidParameter: "invalid", MissingParameter: "missing", MalformedRequest: "unparseable",
          InvalidFilter: "invalid_filter",
          NotFound: "not_found", AlreadyExists: "already_exists", Conflict: "conflict",
          IncorrectState: "incorrect_state", InvalidatedRetryToken: "invalidated_retry_token",
          PreconditionFailed: "precondition_failed", Unauthenticated: "unauthenticated",
          PermissionDenied: "permission_denied", RateLimited: "too_many_requests",
          Unavailable: "unavailable", UpstreamTimeout: "upstream_timeout"}
_HTTP_KINDS = {404: "endpoint_not_found", 405: "method_not_allowed", 413: "too_large"}


def init_app(app):
    """Register the handlers; each face then registers itself with register_face."""
    app.extensions.setdefault("faces", {"prefixes": [], "default": None})
    app.register_error_handler(GatewayError, render)
    app.register_error_handler(HTTPException, _http_error)
    app.register_error_handler(OperationalError, database_error)
    app.register_error_handler(InterfaceError, database_error)
    # A value no column can hold (a number past 64 bits, ...) reached the database: whatever
    # field it came in, that is the caller's mistake, not the server's.
    app.register_error_handler(OverflowError, _out_of_range)
    app.register_error_handler(DataError, _out_of_range)
    app.register_error_handler(Exception, _unexpected_error)


def register_face(app, name, prefixes, formatter, default=False):
    """A face: the path prefixes it answers under, and its error format.

    formatter(kind, message, status) -> (body, status). The default face's format also
    answers paths of no face (/health, unknown paths); those count as face "gateway".
    """
    faces = app.extensions.setdefault("faces", {"prefixes": [], "default": None})
    faces["prefixes"] += [(prefix, name, formatter) for prefix in prefixes]
    faces["prefixes"].sort(key=lambda entry: -len(entry[0]))  # the longest prefix wins
    if default:
        faces["default"] = formatter


def face_of(path):
    """(name, error formatter) of the face a path belongs to."""
    faces = current_app.extensions["faces"]
    return next(((name, formatter) for prefix, name, formatter in faces["prefixes"]
                 if path.startswith(prefix)), ("gateway", faces["default"]))


def error_response(kind, message, status=None):
    """The error response of the face serving the current request."""
    body, status = face_of(request.path)[1](kind, message, status or STATUSES[kind])
    return jsonify(body), status


def render(error):
    """The response for a GatewayError, in the format of the face serving the request."""
    kind = next(_KINDS[cls] for cls in type(error).__mro__ if cls in _KINDS)
    response, status = error_response(kind, error.message)
    response.headers.update(error.headers)
    response.status_code = status
    return response


def _http_error(error):
    original = getattr(error, "original_exception", None)
    if isinstance(original, (OperationalError, InterfaceError)):  # e.g. a failed commit
        return database_error(original)
    kind = _HTTP_KINDS.get(error.code, "invalid" if error.code < 500 else "internal")
    response, status = error_response(kind, error.description, error.code)
    if error.code == 405:
        response.headers["Allow"] = error.get_response().headers.get("Allow", "")
    return response, status


def database_error(error):
    """The database failed us (unreachable, connection lost, locked, disk full): retryable."""
    if _lock_wait_expired(error):
        # Only retry-token requests bound their lock waits (lock_timeout): the request that
        # holds the token's rows is still running.
        log.warning("lock wait expired: %s", error)
        return render(IncorrectState("Another request with this retry token is still running; "
                                     "retry later."))
    log.warning("database unavailable: %s: %s", type(error).__name__, error)
    return render(Unavailable("The database is unavailable or busy; retry the request."))


def _lock_wait_expired(error):
    cause = error.__cause__ or error.__context__
    return getattr(cause, "pgcode", None) == LOCK_NOT_AVAILABLE


# PostgreSQL's SQLSTATE for a lock wait that passed lock_timeout.
LOCK_NOT_AVAILABLE = "55P03"


def _out_of_range(error):
    log.info("value out of range: %s", error)
    return error_response("invalid", "A value in the request is out of range.")


def _unexpected_error(error):
    log.exception("unhandled error on %s %s", request.method, request.path)
    return error_response("internal", "An internal error occurred.")

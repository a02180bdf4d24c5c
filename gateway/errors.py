"""Every failure becomes an error body in the format of the face that was asked."""
import logging

from flask import current_app, jsonify, request
from peewee import OperationalError
from werkzeug.exceptions import HTTPException

from gateway.exceptions import (AlreadyExists, Conflict, GatewayError, IncorrectState,
                                InvalidatedRetryToken, InvalidFilter, InvalidParameter,
                                MalformedRequest,
                                MissingParameter, NotFound, PermissionDenied, PreconditionFailed,
                                RateLimited, Unauthenticated)

log = logging.getLogger(__name__)

# Face-neutral kinds of failure and the HTTP status each gets unless a face says otherwise.
STATUSES = {"invalid": 400, "missing": 400, "unparseable": 400, "invalid_filter": 400,
            "not_found": 404,
            "already_exists": 409, "conflict": 409, "incorrect_state": 409,
            "invalidated_retry_token": 409, "precondition_failed": 412,
            "unauthenticated": 401, "permission_denied": 403, "too_many_requests": 429,
            "endpoint_not_found": 404, "method_not_allowed": 405, "too_large": 413,
            "unavailable": 503, "internal": 500}
_KINDS = {InvalidParameter: "invalid", MissingParameter: "missing", MalformedRequest: "unparseable",
          InvalidFilter: "invalid_filter",
          NotFound: "not_found", AlreadyExists: "already_exists", Conflict: "conflict",
          IncorrectState: "incorrect_state", InvalidatedRetryToken: "invalidated_retry_token",
          PreconditionFailed: "precondition_failed", Unauthenticated: "unauthenticated",
          PermissionDenied: "permission_denied", RateLimited: "too_many_requests"}
_HTTP_KINDS = {404: "endpoint_not_found", 405: "method_not_allowed", 413: "too_large"}


def init_app(app):
    """Register the handlers; faces add their formatters to app.extensions["error_formats"]."""
    app.extensions.setdefault("error_formats", {})
    app.register_error_handler(GatewayError, render)
    app.register_error_handler(HTTPException, _http_error)
    app.register_error_handler(OperationalError, _database_error)
    app.register_error_handler(Exception, _unexpected_error)


def register_format(app, prefix, formatter):
    """Answer errors under a path prefix with formatter(kind, message, status) -> (body, status).

    The longest matching prefix wins; the prefix "" is the default face.
    """
    app.extensions.setdefault("error_formats", {})[prefix] = formatter


def error_response(kind, message, status=None):
    """The error response of the face serving the current request."""
    formats = current_app.extensions["error_formats"]
    prefix = max((p for p in formats if request.path.startswith(p)), key=len)
    body, status = formats[prefix](kind, message, status or STATUSES[kind])
    return jsonify(body), status


def render(error):
    """The response for a GatewayError, in the format of the face serving the request."""
    kind = next(_KINDS[cls] for cls in type(error).__mro__ if cls in _KINDS)
    response, status = error_response(kind, error.message)
    response.headers.update(error.headers)
    response.status_code = status
    return response


def _http_error(error):
    kind = _HTTP_KINDS.get(error.code, "invalid" if error.code < 500 else "internal")
    response, status = error_response(kind, error.description, error.code)
    if error.code == 405:
        response.headers["Allow"] = error.get_response().headers.get("Allow", "")
    return response, status


def _database_error(error):
    if "locked" in str(error) or "could not serialize" in str(error):
        log.warning("database busy: %s", error)
        return error_response("unavailable", "The database is busy; retry the request.")
    return _unexpected_error(error)


def _unexpected_error(error):
    log.exception("unhandled error on %s %s", request.method, request.path)
    return error_response("internal", "An internal error occurred.")

"""opc-request-id: every request has an id, echoed on every answer and put in every log line."""
import logging
import re
import uuid

from flask import request

from gateway import context
from gateway.exceptions import InvalidParameter

HEADER = "opc-request-id"
_VALID = re.compile(r"[A-Za-z0-9_-]{1,255}")
LOG_FORMAT = "%(asctime)s %(levelname)s [%(request_id)s] %(name)s: %(message)s"


def init_app(app):
    """Stamp log records with the request's id (the pipeline calls assign() and echo())."""
    _install_log_records()
    _install_handler(logging.getLogger("gateway"))


def current():
    """The current request's id ("-" outside a request)."""
    return context.current().request_id


def assign(scope):
    """The request's id: the caller's opc-request-id (checked), else a new one."""
    scope.request_id = uuid.uuid4().hex.upper()
    given = request.headers.get(HEADER)
    if given is not None:
        if not _VALID.fullmatch(given):
            raise InvalidParameter(f"Invalid {HEADER}: only letters, digits, '_' and '-' are "
                                   "allowed, at most 255 characters.")
        scope.request_id = given


def echo(scope, response):
    """Every answer carries the request's id."""
    given = scope.request_id
    response.headers[HEADER] = given if given != "-" else uuid.uuid4().hex.upper()
    return response


def _install_log_records():
    # A record factory reaches every logger (ours, Flask's, peewee's), unlike a logger filter.
    factory = logging.getLogRecordFactory()
    if getattr(factory, "adds_request_id", False):
        return

    def record_with_request_id(*args, **kwargs):
        record = factory(*args, **kwargs)
        record.request_id = current()
        return record

    record_with_request_id.adds_request_id = True
    logging.setLogRecordFactory(record_with_request_id)


def _install_handler(logger):
    # Unless the deployment configured logging itself, print the gateway's records with their id.
    if not logger.handlers:
        handler = logging.StreamHandler()
        handler.setFormatter(logging.Formatter(LOG_FORMAT))
        logger.addHandler(handler)
        logger.setLevel(logging.INFO)

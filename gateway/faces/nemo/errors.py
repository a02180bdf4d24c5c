"""NeMo's error bodies: {"detail": "..."}, and FastAPI's 422 list for invalid requests."""
from flask import jsonify

from gateway.exceptions import InvalidParameter

# NeMo (FastAPI) answers invalid input with 422, but a bad filter or body with 400.
_STATUSES = {"invalid": 422, "missing": 422, "already_exists": 409}
_MESSAGES = {"endpoint_not_found": "Not Found", "method_not_allowed": "Method Not Allowed",
             "internal": "Internal Server Error"}


class RequestInvalid(InvalidParameter):
    """Schema validation failed; `details` are FastAPI-style {"loc", "msg", "type"} entries."""

    def __init__(self, details):
        super().__init__("; ".join(f"{'.'.join(map(str, d['loc']))}: {d['msg']}" for d in details))
        self.details = details


def format_error(kind, message, status):
    """{"detail": message} with NeMo's status for the kind."""
    return {"detail": _MESSAGES.get(kind, message)}, _STATUSES.get(kind, status)


def request_invalid(error):
    """422 {"detail": [{"loc", "msg", "type"}, ...]} naming each bad field."""
    return jsonify({"detail": error.details}), 422


def details_from(messages, where):
    """Flatten marshmallow's nested error messages into FastAPI's list."""
    details = []

    def walk(node, location):
        if isinstance(node, dict):
            for key, child in node.items():
                walk(child, location + [key])
        else:
            for message in node:
                missing = message == "Missing data for required field."
                details.append({"loc": location, "msg": "Field required" if missing else message,
                                "type": "missing" if missing else "value_error"})

    walk(messages, [where])
    return details

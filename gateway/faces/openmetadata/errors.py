"""OpenMetadata's error body: {"code": <the HTTP status>, "message": "..."}.

The client raises APIError only for a body with an integer `code`; anything else it turns into
a silent None, so every failure under this face answers in this shape.
"""
_MESSAGES = {"endpoint_not_found": "HTTP 404 Not Found",
             "method_not_allowed": "HTTP 405 Method Not Allowed",
             "unparseable": None}
# Dropwizard maps validation failures (422) to 400; the rest keep the gateway's statuses.
_STATUSES = {"invalid": 400, "missing": 400, "unparseable": 400, "invalid_filter": 400}


def format_error(kind, message, status):
    status = _STATUSES.get(kind, status)
    return {"code": status, "message": _MESSAGES.get(kind) or message}, status

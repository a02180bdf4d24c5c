"""MLflow's error body and status for each kind of failure."""

_CODES = {
    "invalid": "INVALID_PARAMETER_VALUE",
    "missing": "INVALID_PARAMETER_VALUE",
    "unparseable": "INVALID_PARAMETER_VALUE",
    "invalid_filter": "INVALID_PARAMETER_VALUE",
    "not_found": "RESOURCE_DOES_NOT_EXIST",
    "already_exists": "RESOURCE_ALREADY_EXISTS",
    "conflict": "RESOURCE_CONFLICT",
    "incorrect_state": "ABORTED",  # MLflow's retryable 409
    "invalidated_retry_token": "RESOURCE_CONFLICT",
    "precondition_failed": "RESOURCE_CONFLICT",
    "endpoint_not_found": "ENDPOINT_NOT_FOUND",
    # MLflow names an RPC by method and path, so a wrong method is an unknown endpoint.
    "method_not_allowed": "ENDPOINT_NOT_FOUND",
    "too_large": "INVALID_PARAMETER_VALUE",
    "unauthenticated": "UNAUTHENTICATED",
    "permission_denied": "PERMISSION_DENIED",
    "too_many_requests": "REQUEST_LIMIT_EXCEEDED",
    "unavailable": "TEMPORARILY_UNAVAILABLE",
    "upstream_timeout": "TEMPORARILY_UNAVAILABLE",
    "internal": "INTERNAL_ERROR",
}


def format_error(kind, message, status):
    """{"error_code", "message"}; MLflow answers RESOURCE_ALREADY_EXISTS with 400, not 409."""
    return {"error_code": _CODES[kind], "message": message}, 400 if kind == "already_exists" else status

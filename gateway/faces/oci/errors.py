"""OCI's error body: {"code", "message"}, plus MLflow's error_code for the MLflow client."""
from gateway.faces.mlflow_api.errors import format_error as mlflow_format

_CODES = {
    "invalid": "InvalidParameter",
    "missing": "MissingParameter",
    "unparseable": "CannotParseRequest",
    "invalid_filter": "InvalidParameter",
    "not_found": "NotAuthorizedOrNotFound",
    "already_exists": "Conflict",
    "conflict": "Conflict",
    "incorrect_state": "IncorrectState",
    "invalidated_retry_token": "InvalidatedRetryToken",
    "precondition_failed": "NoEtagMatch",
    "endpoint_not_found": "NotFound",
    "method_not_allowed": "MethodNotAllowed",
    "too_large": "PayloadTooLarge",
    "unauthenticated": "NotAuthenticated",
    "permission_denied": "NotAuthorized",
    "too_many_requests": "TooManyRequests",
    "unavailable": "ServiceUnavailable",
    "upstream_timeout": "GatewayTimeout",
    "internal": "InternalServerError",
}


def format_error(kind, message, status):
    """OCI's code for the status; a duplicate name is 409 here, unlike MLflow's 400."""
    mlflow_body, _ = mlflow_format(kind, message, status)
    return {"code": _CODES[kind], "message": message,
            "error_code": mlflow_body["error_code"]}, status

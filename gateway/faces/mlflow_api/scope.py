"""The workspace an MLflow call acts in: the one its X-MLFLOW-WORKSPACE header names."""
from flask import request

from gateway.models import DEFAULT_WORKSPACE
from gateway.routes import Scope
from gateway.services import workspaces

HEADER = "X-MLFLOW-WORKSPACE"


def _named_in_header(scope):
    return request.headers.get(HEADER, "").strip() or DEFAULT_WORKSPACE


# The registry's and the tracking pass-through's scope (default when the header is absent).
FROM_HEADER = Scope(find=_named_in_header, resolve=workspaces.resolve)

"""The OCI AI Data Platform face: MLflow's registry under a platform's mlops paths.

/20260430/aiDataPlatforms/{aiDataPlatformId}/mlops/...                         (platform level)
/20260430/aiDataPlatforms/{aiDataPlatformId}/workspaces/{workspaceKey}/mlops/... (workspace level)

A platform's model registry is one namespace shared by its workspaces: the gateway workspace
services.workspaces.platform_workspace(aiDataPlatformId). Versions remember the workspaceKey
they were created through. The rest of MLflow's API under these roots (experiments, runs,
artifacts) goes to the tracking upstream, in the platform's workspace.
"""
from flask import Blueprint, current_app, request
from marshmallow import ValidationError

from gateway import context
from gateway.errors import register_face
from gateway.exceptions import InvalidParameter
from gateway.faces.mlflow_api import (model_versions, registered_models, server, tracking,
                                      webhooks)
from gateway.faces.bodies import json_body
from gateway.faces.oci.errors import format_error
from gateway.faces.oci.schemas import create_model_version_details, plainly_within_limits
from gateway.routes import MUTATING, Scope
from gateway.services import workspaces

API_VERSION = "/20260430"
PLATFORM_ROOT = API_VERSION + "/aiDataPlatforms/<platform_id>/mlops"
WORKSPACE_ROOT = API_VERSION + "/aiDataPlatforms/<platform_id>/workspaces/<workspace_key>/mlops"

# OCI's SDK spells these MLflow PATCH/DELETE calls as POSTs.
POST_VERBS = {
    "/registered-models/update": registered_models.update,
    "/registered-models/delete": registered_models.delete,
    "/registered-models/delete-tag": registered_models.delete_tag,
    "/model-versions/update": model_versions.update,
    "/model-versions/delete": model_versions.delete,
    "/model-versions/delete-tag": model_versions.delete_tag,
}


def init_app(app):
    """Mount the registry under both OCI roots; errors under /20260430 speak OCI."""
    forward = _forward if app.config["TRACKING_UPSTREAM"] else tracking.not_configured
    app.register_blueprint(_mlops("oci_platform", forward), url_prefix=PLATFORM_ROOT)
    app.register_blueprint(_mlops("oci_workspace", forward), url_prefix=WORKSPACE_ROOT)
    register_face(app, "oci", (API_VERSION + "/",), format_error)


def _mlops(name, forward):
    registry = Blueprint("registry", __name__, url_prefix="/api/2.0/mlflow")
    registry.register_blueprint(registered_models.bp)
    registry.register_blueprint(model_versions.bp)
    registry.register_blueprint(webhooks.bp)
    for path, view in POST_VERBS.items():
        endpoint = f"post_{view.__module__.rsplit('.', 1)[-1]}_{view.__name__}"
        registry.add_url_rule(path, endpoint=endpoint, view_func=view, methods=["POST"])
    mlops = Blueprint(name, __name__)
    mlops.register_blueprint(registry)
    mlops.register_blueprint(server.bp)
    tracking.add_forwarding(mlops, forward)
    mlops.url_value_preprocessor(_take_path_values)
    mlops.scope = PLATFORM
    return mlops


@tracking.forwarding
def _forward(root, rest):
    """Experiments, runs and artifacts: the upstream's, in the platform's workspace."""
    return tracking.send(context.workspace(), root)


def _take_path_values(endpoint, values):
    scope = context.current()
    scope.namespace = values.pop("platform_id")
    scope.workspace_key = values.pop("workspace_key", None)


def _platform(scope):
    """The gateway workspace of the platform in the path (its path values checked first)."""
    _check_path_value("aiDataPlatformId", scope.namespace, 500)
    if scope.workspace_key is not None:
        _check_path_value("workspaceKey", scope.workspace_key, 255)
    return workspaces.platform_workspace(scope.namespace)


def _prepare():
    """Once the caller may write here: the platform's registry exists (reads, OPTIONS and
    HEAD of an unknown platform see an empty one), and OCI's own body limits hold."""
    if request.method in MUTATING:
        workspaces.platform_workspace(context.current().namespace, create=True)
    if check := BODY_CHECKS.get(current_app.view_functions.get(request.endpoint)):
        check()


def _check_path_value(name, value, limit):
    if not value.strip() or len(value) > limit or not value.isprintable():
        raise InvalidParameter(f"Invalid path parameter {name}: it must be 1 to {limit} "
                               "printable characters.")


def _check_create_model_version():
    body = json_body()
    if plainly_within_limits(body):
        return
    try:
        create_model_version_details.load(body)
    except ValidationError as error:
        field, problems = next(iter(error.messages.items()))
        raise InvalidParameter(f"Invalid CreateModelVersionDetails.{field}: {problems}") from None


# OCI's own limits on a request body, checked (by view) before MLflow's view runs.
BODY_CHECKS = {model_versions.create: _check_create_model_version}

# As OCI: a platform the caller cannot see is "not found", so its existence does not leak.
PLATFORM = Scope(find=_platform, hide=True, prepare=_prepare)

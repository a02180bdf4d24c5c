"""The MLflow face: the registry under /api/2.0/mlflow and /ajax-api/2.0/mlflow."""
from flask import Blueprint

from gateway.errors import register_face
from gateway.faces.mlflow import workspaces
from gateway.faces.mlflow_api import (model_versions, registered_models, server, tracking,
                                      webhooks)
from gateway.faces.mlflow_api.errors import format_error
from gateway.faces.mlflow_api.scope import FROM_HEADER
from gateway.services.sources import HostPolicy

REGISTRY_ROOTS = {"api": "/api/2.0/mlflow", "ajax": "/ajax-api/2.0/mlflow"}
WORKSPACE_ROOTS = {"api": "/api/3.0/mlflow", "ajax": "/ajax-api/3.0/mlflow"}

registry = Blueprint("registry", __name__)
registry.register_blueprint(registered_models.bp)
registry.register_blueprint(model_versions.bp)
registry.register_blueprint(webhooks.bp)
registry.scope = FROM_HEADER


def init_app(app):
    """Mount the registry under both MLflow roots; MLflow's error body is the default."""
    app.extensions["source_policy"] = HostPolicy(
        tuple(app.config["ALLOWED_HOST_ADDRESSED_SCHEMES"]),
        tuple(app.config["TRUSTED_ARTIFACT_ROOTS"]))
    for label, root in REGISTRY_ROOTS.items():
        app.register_blueprint(registry, name=f"mlflow_{label}", url_prefix=root)
    for label, root in WORKSPACE_ROOTS.items():
        app.register_blueprint(workspaces.bp, name=f"mlflow_{label}_workspaces",
                               url_prefix=root + workspaces.bp.url_prefix)
    app.register_blueprint(server.bp, name="mlflow_server")
    tracking.init_app(app)
    register_face(app, "mlflow", ("/api/", "/ajax-api/"), format_error, default=True)

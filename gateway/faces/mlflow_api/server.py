"""Server probes the MLflow client makes: /health, /version and server-info."""
from flask import Blueprint, current_app

from gateway.routes import open_route

bp = Blueprint("server", __name__)


@bp.get("/health")
@open_route
def health():
    """Liveness: the process answers."""
    return "OK", 200, {"Content-Type": "text/plain"}


@bp.get("/version")
@open_route
def version():
    """The MLflow version whose API this gateway speaks."""
    return current_app.config["MLFLOW_VERSION"], 200, {"Content-Type": "text/plain"}


@bp.get("/api/3.0/mlflow/server-info")
@bp.get("/ajax-api/3.0/mlflow/server-info")  # where MLflow's UI asks
def server_info():
    """Capabilities; the client needs workspaces_enabled before it sends a workspace."""
    return {"store_type": "SqlStore", "workspaces_enabled": True,
            "trace_archival_enabled": False, "multipart_uploads_enabled": False,
            "multipart_downloads_enabled": False, "artifact_serving_enabled": False,
            "artifacts_presigned_only": False}

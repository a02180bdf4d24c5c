"""The OpenMetadata face: ML models and ML model services (/api/v1/mlmodels,
/api/v1/services/mlmodelServices) on the shared registry.

A workspace is chosen with the client's hostPort: http://HOST/api is the `default` workspace,
http://HOST/workspaces/{workspace}/api any other.
"""
from gateway.errors import register_face
from gateway.faces.openmetadata import views
from gateway.faces.openmetadata.errors import format_error

ROOTS = ("/api/v1/", "/workspaces/")


def init_app(app):
    """Mount the routes under both roots; errors there answer in OpenMetadata's shape."""
    app.register_blueprint(views.bp, url_prefix="/api/v1")
    app.register_blueprint(views.bp, url_prefix="/workspaces/<workspace>/api/v1",
                           name="openmetadata_workspace")
    register_face(app, "openmetadata", ROOTS, format_error)

"""The NeMo Platform face: model entities under /apis/models/v2/workspaces/{workspace}."""
from gateway.errors import register_face
from gateway.faces.nemo import models
from gateway.faces.nemo.errors import RequestInvalid, format_error, request_invalid

ROOT = "/apis/models/"


def init_app(app):
    """Mount the model-entity routes; errors under /apis/models speak NeMo."""
    app.register_blueprint(models.bp)
    app.register_error_handler(RequestInvalid, request_invalid)
    register_face(app, "nemo", (ROOT,), format_error)

"""The NeMo Platform face: model entities and adapters under /apis/models/v2/workspaces/{ws},
workspaces and their members under /apis/entities/v2/workspaces."""
from gateway.errors import register_face
from gateway.faces.nemo import models, workspaces
from gateway.faces.nemo.errors import RequestInvalid, format_error, request_invalid

ROOTS = ("/apis/models/", "/apis/entities/")


def init_app(app):
    """Mount the model-entity routes; errors under /apis/models speak NeMo."""
    app.register_blueprint(models.bp)
    app.register_blueprint(workspaces.bp)
    app.register_error_handler(RequestInvalid, request_invalid)
    register_face(app, "nemo", ROOTS, format_error)

"""The application factory."""
import orjson
from flask import Flask
from flask.json.provider import DefaultJSONProvider

from gateway import (auth, db, delivery, errors, observability, openapi, pipeline, request_ids,
                     traffic, upstream)
from gateway.config import Config
from gateway.faces import mlflow, nemo, oci, openmetadata


def create_app(config=None):
    """Build the app; a `config` mapping overrides the defaults and GATEWAY_* variables."""
    app = Flask(__name__)
    app.config.from_object(Config)
    app.config.from_prefixed_env("GATEWAY")
    app.config.update(config or {})
    app.url_map.strict_slashes = False
    app.json = FastJSON(app)
    # The request hooks are the pipeline's alone (gateway/pipeline.py: every step, in order).
    for part in (request_ids, observability, db, errors, auth, traffic, delivery, upstream,
                 pipeline, mlflow, oci, nemo, openmetadata, openapi):
        part.init_app(app)
    return app


class FastJSON(DefaultJSONProvider):
    """Flask's JSON, written by orjson: keys in the order given (MLflow's field order)."""

    def dumps(self, obj, **kwargs):
        return orjson.dumps(obj, default=self.default).decode()

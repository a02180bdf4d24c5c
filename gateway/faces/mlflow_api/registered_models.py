"""MLflow's registered-model RPCs: /registered-models/*."""
from flask import Blueprint

from gateway import context
from gateway.faces.mlflow_api import schemas
from gateway.faces.mlflow_api.parsing import if_match, parse
from gateway.routes import read_only
from gateway.services import etags, model_versions, registered_models

bp = Blueprint("registered_models", __name__, url_prefix="/registered-models")


def _model(row):
    return ({"registered_model": schemas.dump_registered_model(row)}, 200,
            {"etag": etags.of_model(row)})


@bp.post("/create")
def create():
    """Create a registered model."""
    args = parse(schemas.create_registered_model)
    return _model(registered_models.create(context.workspace(), user_id=context.caller().user,
                                           **args))


@bp.get("/get")
def get():
    """Get a registered model with its latest versions."""
    return _model(registered_models.get(context.workspace(), **parse(schemas.model_name)))


@bp.patch("/update")
def update():
    """Change a registered model's description."""
    args = parse(schemas.update_registered_model)
    return _model(registered_models.update(context.workspace(), if_match=if_match(), **args))


@bp.post("/rename")
def rename():
    """Rename a registered model."""
    args = parse(schemas.rename_registered_model)
    return _model(registered_models.rename(context.workspace(), if_match=if_match(), **args))


@bp.delete("/delete")
def delete():
    """Delete a registered model and all its versions."""
    registered_models.delete(context.workspace(), if_match=if_match(), **parse(schemas.model_name))
    return {}


@bp.get("/search")
def search():
    """Search registered models with an MLflow filter."""
    args = parse(schemas.search_registered_models)
    rows, token = registered_models.search(context.workspace(), **args)
    return schemas.page("registered_models", rows, token, schemas.dump_registered_model)


@bp.route("/get-latest-versions", methods=["POST", "GET"])
@read_only
def get_latest_versions():
    """The newest version in each requested stage."""
    rows = model_versions.latest(context.workspace(), **parse(schemas.get_latest_versions))
    return {"model_versions": [schemas.dump_version(row) for row in rows]} if rows else {}


@bp.post("/set-tag")
def set_tag():
    """Set a tag on a registered model."""
    args = parse(schemas.set_registered_model_tag)
    registered_models.set_tag(context.workspace(), if_match=if_match(), **args)
    return {}


@bp.delete("/delete-tag")
def delete_tag():
    """Delete a tag of a registered model."""
    args = parse(schemas.delete_registered_model_tag)
    registered_models.delete_tag(context.workspace(), if_match=if_match(), **args)
    return {}


@bp.post("/alias")
def set_alias():
    """Point an alias at a version."""
    args = parse(schemas.set_alias)
    registered_models.set_alias(context.workspace(), if_match=if_match(), **args)
    return {}


@bp.delete("/alias")
def delete_alias():
    """Delete an alias."""
    args = parse(schemas.alias_ref)
    registered_models.delete_alias(context.workspace(), if_match=if_match(), **args)
    return {}


@bp.get("/alias")
def get_by_alias():
    """The version an alias points to."""
    row = model_versions.by_alias(context.workspace(), **parse(schemas.alias_ref))
    return ({"model_version": schemas.dump_version(row)}, 200,
            {"etag": etags.of_version(row)})

"""MLflow's model-version RPCs: /model-versions/*."""
from flask import Blueprint, current_app

from gateway import context, upstream
from gateway.faces.mlflow_api import schemas
from gateway.faces.mlflow_api.parsing import if_match, parse
from gateway.services import etags, model_versions

bp = Blueprint("model_versions", __name__, url_prefix="/model-versions")


def _version(row):
    return ({"model_version": schemas.dump_version(row)}, 200,
            {"etag": etags.of_version(row)})


@bp.post("/create")
def create():
    """Create the next version of a registered model."""
    args = parse(schemas.create_model_version)
    return _version(model_versions.create(
        context.workspace(), user_id=context.caller().user,
        workspace_key=context.current().workspace_key,
        source_policy=current_app.extensions["source_policy"],
        tracking_store=upstream.store(context.workspace()), **args))


@bp.get("/get")
def get():
    """Get one version."""
    return _version(model_versions.get(context.workspace(), **parse(schemas.version_ref)))


@bp.patch("/update")
def update():
    """Change a version's description."""
    args = parse(schemas.update_model_version)
    return _version(model_versions.update(context.workspace(), if_match=if_match(), **args))


@bp.post("/transition-stage")
def transition_stage():
    """Move a version to another stage."""
    args = parse(schemas.transition_stage)
    return _version(model_versions.transition_stage(context.workspace(), if_match=if_match(),
                                                    **args))


@bp.delete("/delete")
def delete():
    """Delete a version (its number is never reused)."""
    args = parse(schemas.version_ref)
    model_versions.delete(context.workspace(), if_match=if_match(), **args)
    return {}


@bp.get("/search")
def search():
    """Search versions with an MLflow filter."""
    rows, token = model_versions.search(context.workspace(), **parse(schemas.search_model_versions))
    return schemas.page("model_versions", rows, token, schemas.dump_version)


@bp.get("/get-download-uri")
def get_download_uri():
    """Where a version's artifacts are stored."""
    args = parse(schemas.version_ref)
    return {"artifact_uri": model_versions.download_uri(context.workspace(), **args)}


@bp.post("/set-tag")
def set_tag():
    """Set a tag on a version."""
    args = parse(schemas.set_model_version_tag)
    model_versions.set_tag(context.workspace(), if_match=if_match(), **args)
    return {}


@bp.delete("/delete-tag")
def delete_tag():
    """Delete a tag of a version."""
    args = parse(schemas.delete_model_version_tag)
    model_versions.delete_tag(context.workspace(), if_match=if_match(), **args)
    return {}

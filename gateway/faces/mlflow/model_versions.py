"""MLflow's model-version RPCs: /model-versions/*."""
from flask import Blueprint, g

from gateway.faces.mlflow import schemas
from gateway.faces.mlflow.parsing import parse
from gateway.services import model_versions

bp = Blueprint("model_versions", __name__, url_prefix="/model-versions")


def _version(row):
    return {"model_version": schemas.model_version_schema.dump(row)}


@bp.post("/create")
def create():
    """Create the next version of a registered model."""
    return _version(model_versions.create(g.workspace, **parse(schemas.create_model_version)))


@bp.get("/get")
def get():
    """Get one version."""
    return _version(model_versions.get(g.workspace, **parse(schemas.version_ref)))


@bp.patch("/update")
def update():
    """Change a version's description."""
    return _version(model_versions.update(g.workspace, **parse(schemas.update_model_version)))


@bp.post("/transition-stage")
def transition_stage():
    """Move a version to another stage."""
    return _version(model_versions.transition_stage(g.workspace,
                                                    **parse(schemas.transition_stage)))


@bp.delete("/delete")
def delete():
    """Delete a version (its number is never reused)."""
    model_versions.delete(g.workspace, **parse(schemas.version_ref))
    return {}


@bp.get("/search")
def search():
    """Search versions with an MLflow filter."""
    rows, token = model_versions.search(g.workspace, **parse(schemas.search_model_versions))
    return schemas.page("model_versions", rows, token, schemas.model_versions_schema)


@bp.get("/get-download-uri")
def get_download_uri():
    """Where a version's artifacts are stored."""
    return {"artifact_uri": model_versions.download_uri(g.workspace, **parse(schemas.version_ref))}


@bp.post("/set-tag")
def set_tag():
    """Set a tag on a version."""
    model_versions.set_tag(g.workspace, **parse(schemas.set_model_version_tag))
    return {}


@bp.delete("/delete-tag")
def delete_tag():
    """Delete a tag of a version."""
    model_versions.delete_tag(g.workspace, **parse(schemas.delete_model_version_tag))
    return {}

"""NeMo Platform's model entities: /apis/models/v2/workspaces/{workspace}/models."""
from flask import Blueprint, Response, current_app, g

from gateway import access, auth, retry_tokens
from gateway.faces.nemo import schemas
from gateway.faces.nemo.parsing import body, list_filter, query
from gateway.services import model_entities, workspaces

bp = Blueprint("nemo_models", __name__,
               url_prefix="/apis/models/v2/workspaces/<workspace>/models")


@bp.url_value_preprocessor
def _take_workspace(endpoint, values):
    g.nemo_workspace = values.pop("workspace")


@bp.before_request
def _scope():
    access.enter(g.nemo_workspace)
    g.workspace = workspaces.resolve(g.nemo_workspace)
    return retry_tokens.claim()


def _policy():
    return model_entities.TrustPolicy(
        admin=auth.holds(g.workspace, "admin"),
        approved_filesets=tuple(current_app.config["TRUSTED_FILESETS"]),
        can_read=lambda workspace: bool(auth.readable([workspace])))


@bp.post("")
def create():
    """Create a model entity (201)."""
    row = model_entities.create(g.workspace, policy=_policy(), user_id=g.user,
                                **body(schemas.create_model))
    return schemas.model_entity_schema.dump(row), 201


@bp.get("")
def list_all():
    """A page of model entities, filtered and sorted."""
    args = query(schemas.list_models)
    rows, total, pages = model_entities.search(g.workspace, list_filter(), args["sort"],
                                               args["page"], args["page_size"])
    return {"data": schemas.listed_model_entities_schema.dump(rows),
            "pagination": {"page": args["page"], "page_size": args["page_size"],
                           "current_page_size": len(rows), "total_pages": pages,
                           "total_results": total},
            "sort": args["sort"]}


@bp.get("/<name>")
def get(name):
    """One model entity."""
    return schemas.model_entity_schema.dump(model_entities.get(g.workspace, name))


@bp.patch("/<name>")
def update(name):
    """Change the fields given; the others keep their values."""
    row = model_entities.update(g.workspace, name, body(schemas.update_model), _policy())
    return schemas.model_entity_schema.dump(row)


@bp.delete("/<name>")
def delete(name):
    """Delete a model entity (204)."""
    model_entities.delete(g.workspace, name)
    return Response(status=204)


@bp.post("/<name>/adapters")
def create_adapter(name):
    """Add an adapter to a model (201)."""
    row = model_entities.create_adapter(g.workspace, name, **body(schemas.create_adapter))
    return schemas.adapter_schema.dump(row), 201


@bp.patch("/<name>/adapters/<adapter>")
def update_adapter(name, adapter):
    """Change an adapter's description, enabled flag or fileset."""
    row = model_entities.update_adapter(g.workspace, name, adapter,
                                        body(schemas.update_adapter))
    return schemas.adapter_schema.dump(row)


@bp.delete("/<name>/adapters/<adapter>")
def delete_adapter(name, adapter):
    """Remove an adapter (204)."""
    model_entities.delete_adapter(g.workspace, name, adapter)
    return Response(status=204)

"""NeMo Platform's model entities and adapters: /apis/models/v2/workspaces/{workspace}/..."""
import functools

from flask import Blueprint, Response, current_app

from gateway import context
from gateway.faces.nemo import schemas
from gateway.faces.nemo.filtering import from_request
from gateway.faces.nemo.parsing import body, query
from gateway.routes import Scope
from gateway.services import adapters, model_entities, workspaces
from gateway.validation import nemo_workspace_name

bp = Blueprint("nemo_models", __name__, url_prefix="/apis/models/v2/workspaces/<workspace>")


@bp.url_value_preprocessor
def _take_workspace(endpoint, values):
    context.current().namespace = values.pop("workspace")


bp.scope = Scope(find=lambda scope: scope.namespace,
                 resolve=functools.partial(workspaces.resolve, rule=nemo_workspace_name))


def _policy():
    caller = context.caller()
    return model_entities.TrustPolicy(
        admin=caller.holds(context.workspace(), "admin"),
        approved_filesets=tuple(current_app.config["TRUSTED_FILESETS"]),
        can_read=lambda workspace: bool(caller.readable([workspace])))


def _page(args, rows, total, pages, schema):
    return {"data": schema.dump(rows),
            "pagination": {"page": args["page"], "page_size": args["page_size"],
                           "current_page_size": len(rows), "total_pages": pages,
                           "total_results": total},
            "sort": args["sort"]}


@bp.post("/models")
def create():
    """Create a model entity (201)."""
    row = model_entities.create(context.workspace(), policy=_policy(),
                                user_id=context.caller().user, **body(schemas.create_model))
    return schemas.model_entity_schema.dump(row), 201


@bp.get("/models")
def list_all():
    """A page of model entities, filtered and sorted."""
    args = query(schemas.list_models)
    rows, total, pages = model_entities.search(context.workspace(), from_request(), args["sort"],
                                               args["page"], args["page_size"])
    return _page(args, rows, total, pages, schemas.listed_model_entities_schema)


@bp.get("/models/<name>")
def get(name):
    """One model entity."""
    return schemas.model_entity_schema.dump(model_entities.get(context.workspace(), name))


@bp.patch("/models/<name>")
def update(name):
    """Change the fields given (null clears one); the others keep their values."""
    row = model_entities.update(context.workspace(), name, body(schemas.update_model), _policy())
    return schemas.model_entity_schema.dump(row)


@bp.delete("/models/<name>")
def delete(name):
    """Delete a model entity (204)."""
    model_entities.delete(context.workspace(), name)
    return Response(status=204)


@bp.post("/models/<name>/adapters")
def create_model_adapter(name):
    """Add an adapter to a model of this workspace (201)."""
    row = adapters.create(context.workspace(), name, **body(schemas.create_adapter))
    return schemas.adapter_schema.dump(row), 201


@bp.patch("/models/<name>/adapters/<adapter>")
def update_model_adapter(name, adapter):
    """Change an adapter's description, enabled flag or fileset."""
    row = adapters.update(context.workspace(), adapter, body(schemas.update_adapter),
                          model_name=name)
    return schemas.adapter_schema.dump(row)


@bp.delete("/models/<name>/adapters/<adapter>")
def delete_model_adapter(name, adapter):
    """Remove an adapter (204)."""
    adapters.delete(context.workspace(), adapter, model_name=name)
    return Response(status=204)


@bp.post("/adapters")
def create_adapter():
    """Add an adapter to the workspace, trained on the model it names (201)."""
    args = body(schemas.create_workspace_adapter)
    row = adapters.create(context.workspace(), policy=_policy(), **args)
    return schemas.adapter_schema.dump(row), 201


@bp.get("/adapters")
def list_adapters():
    """A page of the workspace's adapters, filtered and sorted."""
    args = query(schemas.list_adapters)
    rows, total, pages = adapters.search(context.workspace(), from_request(), args["sort"],
                                         args["page"], args["page_size"])
    return _page(args, rows, total, pages, schemas.adapters_schema)


@bp.get("/adapters/<name>")
def get_adapter(name):
    """One adapter of the workspace."""
    return schemas.adapter_schema.dump(adapters.get(context.workspace(), name))


@bp.patch("/adapters/<name>")
def update_adapter(name):
    """Change an adapter's description, enabled flag or fileset."""
    return schemas.adapter_schema.dump(
        adapters.update(context.workspace(), name, body(schemas.update_adapter)))


@bp.delete("/adapters/<name>")
def delete_adapter(name):
    """Remove an adapter (204)."""
    adapters.delete(context.workspace(), name)
    return Response(status=204)

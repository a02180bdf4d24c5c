"""The OpenAPI 3 document of every face at /openapi.json, generated from the marshmallow schemas."""
from apispec import APISpec
from apispec.ext.marshmallow import MarshmallowPlugin
from flask import Blueprint, current_app
from marshmallow import Schema, fields

from gateway.faces.mlflow_api import schemas as mlflow
from gateway.faces.nemo import schemas as nemo
from gateway.faces.nemo import workspace_schemas as nemo_ws
from gateway.faces.openmetadata import schemas as om
from gateway.faces.oci import API_VERSION, PLATFORM_ROOT, POST_VERBS, WORKSPACE_ROOT

bp = Blueprint("openapi", __name__)

RM, MV = mlflow.RegisteredModelSchema, mlflow.ModelVersionSchema


def _envelope(name, **members):
    return Schema.from_dict(members, name=name)


EMPTY = _envelope("Empty")
ONE_MODEL = _envelope("RegisteredModelAnswer", registered_model=fields.Nested(RM))
ONE_VERSION = _envelope("ModelVersionAnswer", model_version=fields.Nested(MV))
MODEL_PAGE = _envelope("RegisteredModelPage", registered_models=fields.List(fields.Nested(RM)),
                       next_page_token=fields.String())
VERSION_LIST = _envelope("ModelVersionPage", model_versions=fields.List(fields.Nested(MV)),
                         next_page_token=fields.String())
DOWNLOAD_URI = _envelope("DownloadUri", artifact_uri=fields.String())
MLFLOW_ERROR = _envelope("MlflowError", error_code=fields.String(required=True),
                         message=fields.String(required=True))
OCI_ERROR = _envelope("OciError", code=fields.String(required=True),
                      message=fields.String(required=True), error_code=fields.String())

# The MLflow registry RPCs: (method, path under the root, request schema, answer schema).
RPCS = [
    ("post", "/registered-models/create", mlflow.CreateRegisteredModel, ONE_MODEL),
    ("get", "/registered-models/get", mlflow.ModelName, ONE_MODEL),
    ("patch", "/registered-models/update", mlflow.UpdateRegisteredModel, ONE_MODEL),
    ("post", "/registered-models/rename", mlflow.RenameRegisteredModel, ONE_MODEL),
    ("delete", "/registered-models/delete", mlflow.ModelName, EMPTY),
    ("get", "/registered-models/search", mlflow.SearchRegisteredModels, MODEL_PAGE),
    ("post", "/registered-models/get-latest-versions", mlflow.GetLatestVersions, VERSION_LIST),
    ("get", "/registered-models/get-latest-versions", mlflow.GetLatestVersions, VERSION_LIST),
    ("post", "/registered-models/set-tag", mlflow.SetRegisteredModelTag, EMPTY),
    ("delete", "/registered-models/delete-tag", mlflow.DeleteRegisteredModelTag, EMPTY),
    ("post", "/registered-models/alias", mlflow.SetAlias, EMPTY),
    ("delete", "/registered-models/alias", mlflow.AliasRef, EMPTY),
    ("get", "/registered-models/alias", mlflow.AliasRef, ONE_VERSION),
    ("post", "/model-versions/create", mlflow.CreateModelVersion, ONE_VERSION),
    ("get", "/model-versions/get", mlflow.VersionRef, ONE_VERSION),
    ("patch", "/model-versions/update", mlflow.UpdateModelVersion, ONE_VERSION),
    ("post", "/model-versions/transition-stage", mlflow.TransitionStage, ONE_VERSION),
    ("delete", "/model-versions/delete", mlflow.VersionRef, EMPTY),
    ("get", "/model-versions/search", mlflow.SearchModelVersions, VERSION_LIST),
    ("get", "/model-versions/get-download-uri", mlflow.VersionRef, DOWNLOAD_URI),
    ("post", "/model-versions/set-tag", mlflow.SetModelVersionTag, EMPTY),
    ("delete", "/model-versions/delete-tag", mlflow.DeleteModelVersionTag, EMPTY),
]

NEMO_ROOT = "/apis/models/v2/workspaces/{workspace}"
NEMO_WORKSPACES = "/apis/entities/v2/workspaces"
NEMO_ERROR = {"type": "object", "required": ["detail"],
              "properties": {"detail": {"oneOf": [{"type": "string"}, {"type": "array"}]}}}


def _page(name, item):
    return _envelope(name, data=fields.List(fields.Nested(item)), pagination=fields.Dict(),
                     sort=fields.String())


NEMO_PAGE = _page("ModelEntityPage", nemo.ModelEntitySchema)
DELETED = _envelope("DeleteResponse", id=fields.String(), message=fields.String())
# NeMo: (method, path, request schema or None, query schema or None, status, answer)
NEMO = [
    ("post", "/models", nemo.CreateModel, None, 201, nemo.ModelEntitySchema),
    ("get", "/models", None, nemo.ListModels, 200, NEMO_PAGE),
    ("get", "/models/{name}", None, None, 200, nemo.ModelEntitySchema),
    ("patch", "/models/{name}", nemo.UpdateModel, None, 200, nemo.ModelEntitySchema),
    ("delete", "/models/{name}", None, None, 204, None),
    ("post", "/models/{name}/adapters", nemo.CreateAdapter, None, 201, nemo.AdapterSchema),
    ("patch", "/models/{name}/adapters/{adapter}", nemo.UpdateAdapter, None, 200,
     nemo.AdapterSchema),
    ("delete", "/models/{name}/adapters/{adapter}", None, None, 204, None),
    ("post", "/adapters", nemo.CreateWorkspaceAdapter, None, 201, nemo.AdapterSchema),
    ("get", "/adapters", None, nemo.ListAdapters, 200, _page("AdapterPage", nemo.AdapterSchema)),
    ("get", "/adapters/{name}", None, None, 200, nemo.AdapterSchema),
    ("patch", "/adapters/{name}", nemo.UpdateAdapter, None, 200, nemo.AdapterSchema),
    ("delete", "/adapters/{name}", None, None, 204, None),
]
NEMO_WORKSPACE_OPERATIONS = [
    ("post", "", nemo_ws.CreateWorkspace, None, 201, nemo_ws.WorkspaceSchema),
    ("get", "", None, nemo_ws.ListWorkspaces, 200,
     _page("WorkspacesPage", nemo_ws.WorkspaceSchema)),
    ("get", "/{name}", None, None, 200, nemo_ws.WorkspaceSchema),
    ("put", "/{name}", nemo_ws.UpdateWorkspace, None, 200, nemo_ws.WorkspaceSchema),
    ("delete", "/{name}", None, None, 200, DELETED),
    ("get", "/{name}/members", None, None, 200,
     _envelope("WorkspaceMemberList", data=fields.List(fields.Nested(nemo_ws.MemberSchema)))),
    ("post", "/{name}/members", nemo_ws.CreateMember, None, 201, nemo_ws.MemberSchema),
    ("put", "/{name}/members/{principal}", nemo_ws.UpdateMember, None, 200,
     nemo_ws.MemberSchema),
    ("delete", "/{name}/members/{principal}", None, None, 200, DELETED),
]


OM_ERROR = {"type": "object", "required": ["code", "message"],
            "properties": {"code": {"type": "integer"}, "message": {"type": "string"}}}
OM_ENTITY = {"type": "object"}
OM_PAGE = {"type": "object", "properties": {"data": {"type": "array"},
                                            "paging": {"type": "object"}}}
PATCH_TYPE = "application/json-patch+json"
JSON_PATCH = {"type": "array", "items": {"type": "object", "required": ["op", "path"],
                                         "properties": {"op": {"type": "string"},
                                                        "path": {"type": "string"},
                                                        "value": {}}}}
OmList = _envelope("OmListQuery", limit=fields.Integer(), before=fields.String(),
                   after=fields.String(), fields=fields.String(), include=fields.String(),
                   service=fields.String())
OmGet = _envelope("OmGetQuery", fields=fields.String(), include=fields.String())
OmDelete = _envelope("OmDeleteQuery", hardDelete=fields.Boolean(), recursive=fields.Boolean())
OmRestore = _envelope("OmRestore", id=fields.UUID(required=True))


def _path(flask_path):
    return flask_path.replace("<", "{").replace(">", "}")


def _parameters(path):
    names = [part[1:-1] for part in path.split("/") if part.startswith("{")]
    return [{"in": "path", "name": name, "required": True, "schema": {"type": "string"}}
            for name in names]


def _json(schema):
    return {"content": {"application/json": {"schema": schema}}}


def _rpc(method, path, request, answer, error):
    operation = {"parameters": _parameters(path),
                 "responses": {"200": {"description": "OK", **_json(answer)},
                               "default": {"description": "Error", **_json(error)}}}
    if method == "get":
        operation["parameters"].append({"in": "query", "schema": request})
    else:
        operation["requestBody"] = {"required": True, **_json(request)}
    return operation


def _add_mlflow(spec):
    for root, error in (("/api/2.0/mlflow", MLFLOW_ERROR),
                        (_path(PLATFORM_ROOT) + "/api/2.0/mlflow", OCI_ERROR),
                        (_path(WORKSPACE_ROOT) + "/api/2.0/mlflow", OCI_ERROR)):
        operations = {}
        for method, path, request, answer in RPCS:
            operations.setdefault(root + path, {})[method] = _rpc(method, root + path, request,
                                                                  answer, error)
        if root.startswith(API_VERSION):
            for path, view in POST_VERBS.items():
                rpc = next(r for r in RPCS if r[1] == path)
                operations[root + path]["post"] = _rpc("post", root + path, rpc[2], rpc[3], error)
        for path, methods in operations.items():
            spec.path(path=path, operations=methods)


def _add_rest(spec, routes, error):
    """Routes as (method, path, body schema, query schema, status, answer schema)."""
    operations = {}
    for method, full, body, query, status, answer in routes:
        statuses = status if isinstance(status, tuple) else (status,)
        operation = {"parameters": _parameters(full),
                     "responses": {**{str(code): {"description": "OK",
                                                  **(_json(answer) if answer else {})}
                                      for code in statuses},
                                   "default": {"description": "Error", **_json(error)}}}
        if query:
            operation["parameters"].append({"in": "query", "schema": query})
        if body:
            content = PATCH_TYPE if body is JSON_PATCH else "application/json"
            operation["requestBody"] = {"required": True,
                                        "content": {content: {"schema": body}}}
        operations.setdefault(full, {})[method] = operation
    for path, methods in operations.items():
        spec.path(path=path, operations=methods)


def _add_nemo(spec):
    _add_rest(spec, [(m, NEMO_ROOT + p, *rest) for m, p, *rest in NEMO]
              + [(m, NEMO_WORKSPACES + p, *rest) for m, p, *rest in NEMO_WORKSPACE_OPERATIONS],
              NEMO_ERROR)


def _om_routes(collection, create):
    base = f"/api/v1/{collection}"
    return [
        ("post", base, create, None, 201, OM_ENTITY),
        ("put", base, create, None, (200, 201), OM_ENTITY),
        ("get", base, None, OmList, 200, OM_PAGE),
        ("put", base + "/bulk", {"type": "array", "items": {"type": "object"}}, None, 200,
         OM_ENTITY),
        ("put", base + "/restore", OmRestore, None, 200, OM_ENTITY),
        ("get", base + "/{id}", None, OmGet, 200, OM_ENTITY),
        ("patch", base + "/{id}", JSON_PATCH, None, 200, OM_ENTITY),
        ("delete", base + "/{id}", None, OmDelete, 200, OM_ENTITY),
        ("get", base + "/name/{fqn}", None, OmGet, 200, OM_ENTITY),
        ("patch", base + "/name/{fqn}", JSON_PATCH, None, 200, OM_ENTITY),
        ("delete", base + "/name/{fqn}", None, OmDelete, 200, OM_ENTITY),
        ("get", base + "/{id}/versions", None, None, 200, OM_ENTITY),
        ("get", base + "/{id}/versions/{version}", None, None, 200, OM_ENTITY),
    ]


def _add_openmetadata(spec):
    _add_rest(spec, [("get", "/api/v1/system/version", None, None, 200, OM_ENTITY)]
              + _om_routes("mlmodels", om.CreateMlModel)
              + _om_routes("services/mlmodelServices", om.CreateMlModelService), OM_ERROR)


def build():
    """The OpenAPI 3 document of the MLflow, OCI, NeMo and OpenMetadata faces."""
    spec = APISpec(title="Model-registry gateway", version="1.0.0", openapi_version="3.0.3",
                   plugins=[MarshmallowPlugin()])
    _add_mlflow(spec)
    _add_nemo(spec)
    _add_openmetadata(spec)
    return spec.to_dict()


@bp.get("/openapi.json")
def document():
    """The OpenAPI document (built once per app)."""
    extensions = current_app.extensions
    if "openapi" not in extensions:
        extensions["openapi"] = build()
    return extensions["openapi"]


def init_app(app):
    app.register_blueprint(bp)

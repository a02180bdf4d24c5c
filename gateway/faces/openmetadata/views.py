"""OpenMetadata's ML model and ML model service routes (/api/v1/..., and
/workspaces/{workspace}/api/v1/... for a workspace other than default).

Both collections have the same routes, so they are made by one function per route, for each.
"""
import functools
import json

import jsonpatch
from flask import Blueprint, jsonify, request

from gateway import context, work
from gateway.exceptions import (AlreadyExists, InvalidParameter, MalformedRequest, NotFound,
                                PermissionDenied)
from gateway.faces.bodies import json_body
from gateway.faces.openmetadata import schemas
from gateway.models import DEFAULT_WORKSPACE
from gateway.routes import Scope, open_route
from gateway.services import catalog, workspaces
from gateway.validation import nemo_workspace_name

SERVER_VERSION = "2.0.7"  # the client requires the same major.minor as its own
CHANGE_HEADER = "X-OpenMetadata-Change"
COLLECTIONS = {"mlmodels": catalog.MODEL, "services/mlmodelServices": catalog.SERVICE}
BULK_STATUSES = {InvalidParameter: 400, PermissionDenied: 403, NotFound: 404,
                 AlreadyExists: 409}

bp = Blueprint("openmetadata", __name__)


@bp.url_value_preprocessor
def _take_workspace(endpoint, values):
    context.current().namespace = (values or {}).pop("workspace", DEFAULT_WORKSPACE)


# A workspace named in the path is hidden from outsiders (404, as on OCI's and NeMo's).
bp.scope = Scope(find=lambda scope: scope.namespace,
                 resolve=functools.partial(workspaces.resolve, rule=nemo_workspace_name),
                 hide=lambda name: name != DEFAULT_WORKSPACE)


@bp.get("/system/version")
@open_route
def version():
    """The handshake every client makes first (no credentials needed)."""
    return {"version": SERVER_VERSION, "revision": "model-registry-gateway", "timestamp": 0}


def _who():
    return context.caller().name or "anonymous"


def _href(kind, body):
    root = request.host_url.rstrip("/") + request.script_root + request.path.split("/v1/")[0]
    collection = "mlmodels" if kind == catalog.MODEL else "services/mlmodelServices"
    body["href"] = f"{root}/v1/{collection}/{body['id']}"
    if kind == catalog.MODEL:
        body["service"]["href"] = f"{root}/v1/services/mlmodelServices/{body['service']['id']}"
    return body


def _answer(kind, body, status=200, change=None):
    response = _json_response(_href(kind, body), status)
    if change:
        response.headers[CHANGE_HEADER] = change
    return response


def _json_response(body, status):
    response = jsonify(body)
    response.status_code = status
    return response


def _validated(kind, data):
    schema = schemas.create_model if kind == catalog.MODEL else schemas.create_service
    if not isinstance(data, dict):
        raise MalformedRequest("Invalid request format: an object is expected")
    errors = schema.validate(data)
    if errors:
        raise InvalidParameter("[" + ", ".join(_messages(errors)) + "]")
    return data


def _messages(errors, path=""):
    for key, value in errors.items():
        where = f"{path}.{key}" if path else str(key)
        if isinstance(value, dict):
            yield from _messages(value, where)
        else:
            yield from (f"{where} {message.rstrip('.').lower()}" for message in value)


def _put(kind, data, create_only=False, replace=False):
    data = _validated(kind, data)
    if kind == catalog.MODEL:
        return catalog.put_model(context.workspace(), data, _who(), create_only, replace,
                                 user_id=context.caller().user)
    return catalog.put_service(context.workspace(), data, _who(), create_only, replace)


def _find(kind, entity_id=None, fqn=None, include="non-deleted"):
    finder = catalog.get_model if kind == catalog.MODEL else catalog.get_service
    return finder(context.workspace(), fqn=fqn, entity_id=entity_id, include=include)


def _fields(kind):
    wanted = [f.strip() for f in request.args.get("fields", "").split(",") if f.strip()]
    unknown = [f for f in wanted if f not in schemas.FIELDS[kind] and f != "*"]
    if unknown:
        raise InvalidParameter(f"Invalid field name {unknown[0]}")


def _flag(name):
    value = request.args.get(name, "false").lower()
    if value not in ("true", "false"):
        raise InvalidParameter(f"{name} must be true or false")
    return value == "true"


def _as_request(kind, current, patched):
    """The create request a patched entity stands for (server-kept fields are ignored)."""
    unknown = sorted(set(patched) - schemas.ENTITY_FIELDS[kind])
    if unknown:
        raise InvalidParameter(f"[{unknown[0]} unknown field]")
    for key in ("id", "name", "fullyQualifiedName"):
        if patched.get(key) != current.get(key):
            raise InvalidParameter(f"{key} cannot be changed by a patch")
    fields = catalog.MODEL_FIELDS + ("description",) if kind == catalog.MODEL else \
        catalog.SERVICE_FIELDS
    result = {key: patched[key] for key in fields if patched.get(key) is not None}
    result["name"] = current["name"]
    for key in ("domains", "dataProducts"):
        if key in result:
            result[key] = [ref.get("fullyQualifiedName") if isinstance(ref, dict) else ref
                           for ref in result[key]]
    if kind == catalog.MODEL:
        if (patched.get("service") or {}).get("id") != current["service"]["id"]:
            raise InvalidParameter("service cannot be changed by a patch")
        result["service"] = current["service"]["fullyQualifiedName"]
        if isinstance(result.get("dashboard"), dict):
            result["dashboard"] = result["dashboard"].get("fullyQualifiedName")
        for feature in result.get("mlFeatures") or []:
            if isinstance(feature, dict):
                feature.pop("fullyQualifiedName", None)
    elif patched.get("serviceType") != current.get("serviceType"):
        raise InvalidParameter("serviceType cannot be changed by a patch")
    return result


def _ids_as_text(view):
    """Routes take ids as UUIDs (so /bulk and /restore never read as ids); views get text."""
    @functools.wraps(view)
    def call(**values):
        if "entity_id" in values:
            values["entity_id"] = str(values["entity_id"])
        return view(**values)
    return call


def _patch_operations():
    """The body of a PATCH: a JSON Patch (RFC 6902) document."""
    if request.mimetype != "application/json-patch+json":
        raise MalformedRequest("PATCH needs Content-Type: application/json-patch+json")
    operations = json_body(list)
    if not operations or not all(isinstance(op, dict) and isinstance(op.get("op"), str)
                                 and isinstance(op.get("path"), str) for op in operations):
        raise InvalidParameter("Invalid JSON patch: a list of {op, path, ...} objects is "
                               "expected")
    return operations


def _collection_routes(collection, kind):
    """Register every route of one collection on the blueprint."""
    base = f"/{collection}"
    endpoint = collection.replace("/", "_")

    def add(rule, name, view, methods):
        bp.add_url_rule(base + rule, f"{endpoint}_{name}", _ids_as_text(view), methods=methods)

    def create():
        body, _ = _put(kind, json_body(), create_only=True)
        response = _answer(kind, body, 201)
        response.headers["Location"] = body["href"]
        return response

    def upsert():
        body, change = _put(kind, json_body())
        return _answer(kind, body, 201 if change == "entityCreated" else 200, change)

    def bulk():
        if request.args.get("async", "false").lower() == "true":
            raise InvalidParameter("async=true is not supported: use async=false")
        requests_ = json_body(list)
        if not requests_ or not all(isinstance(item, dict) for item in requests_):
            raise InvalidParameter("[request body must be a non-empty list of objects]")
        passed, failed = [], []
        for item in requests_:
            try:
                with work.write():  # a savepoint: a failed row leaves nothing behind
                    _, change = _put(kind, item)
                passed.append({"request": item, "status": 200 if change != "entityCreated"
                               else 201, "message": change})
            except (InvalidParameter, AlreadyExists, NotFound, PermissionDenied) as error:
                status = next(code for cls, code in BULK_STATUSES.items()
                              if isinstance(error, cls))
                failed.append({"request": item, "status": status, "message": error.message})
        status = "success" if not failed else "failure" if not passed else "partialSuccess"
        return {"dryRun": False, "status": status, "numberOfRowsProcessed": len(requests_),
                "numberOfRowsPassed": len(passed), "numberOfRowsFailed": len(failed),
                "successRequest": passed, "failedRequest": failed}

    def list_all():
        _fields(kind)
        try:
            limit = int(request.args.get("limit", "10"))
        except ValueError:
            raise InvalidParameter("limit must be an integer") from None
        page = dict(limit=limit, before=request.args.get("before"),
                    after=request.args.get("after"),
                    include=request.args.get("include", "non-deleted"))
        if kind == catalog.MODEL:
            rows, paging = catalog.list_models(context.workspace(),
                                               service=request.args.get("service"), **page)
        else:
            rows, paging = catalog.list_services(context.workspace(), **page)
        return {"data": [_href(kind, row) for row in rows], "paging": paging}

    def get_by_id(entity_id):
        _fields(kind)
        return _answer(kind, _find(kind, entity_id=entity_id,
                                   include=request.args.get("include", "non-deleted")))

    def get_by_name(fqn):
        _fields(kind)
        return _answer(kind, _find(kind, fqn=fqn,
                                   include=request.args.get("include", "non-deleted")))

    def patch(entity_id=None, fqn=None):
        operations = _patch_operations()
        current = _find(kind, entity_id=entity_id, fqn=fqn)
        try:
            patched = jsonpatch.JsonPatch(operations).apply(_href(kind, current))
        except (jsonpatch.JsonPatchException, jsonpatch.JsonPointerException, TypeError,
                ValueError, KeyError) as error:
            raise InvalidParameter(f"Invalid JSON patch: {error}") from None
        body, change = _put(kind, _as_request(kind, current, patched), replace=True)
        return _answer(kind, body, 200, change)

    def delete(entity_id=None, fqn=None):
        hard, recursive = _flag("hardDelete"), _flag("recursive")
        current = _find(kind, entity_id=entity_id, fqn=fqn, include="all")
        if hard:
            catalog.hard_delete(context.workspace(), kind, current, recursive)
            return _answer(kind, current)
        if current["deleted"]:
            raise NotFound(f"{kind} instance for {entity_id or fqn} not found")
        return _answer(kind, catalog.set_deleted(context.workspace(), kind, current, True, _who(),
                                                 recursive))

    def restore():
        entity_id = json_body().get("id")
        if not isinstance(entity_id, str):
            raise InvalidParameter("[id must not be null]")
        current = _find(kind, entity_id=entity_id, include="all")
        if not current["deleted"]:
            return _answer(kind, current)
        return _answer(kind, catalog.set_deleted(context.workspace(), kind, current, False, _who()))

    def list_versions(entity_id):
        bodies = catalog.versions(context.workspace(), kind, entity_id)
        return {"entityType": kind, "versions": [json.dumps(_href(kind, b)) for b in bodies]}

    def get_version(entity_id, number):
        return _answer(kind, catalog.version(context.workspace(), kind, entity_id, number))

    add("", "create", create, ["POST"])
    add("", "upsert", upsert, ["PUT"])
    add("", "list", list_all, ["GET"])
    add("/bulk", "bulk", bulk, ["PUT"])
    add("/restore", "restore", restore, ["PUT"])
    add("/<uuid:entity_id>", "get", get_by_id, ["GET"])
    add("/name/<path:fqn>", "get_by_name", get_by_name, ["GET"])
    add("/<uuid:entity_id>", "patch", patch, ["PATCH"])
    add("/name/<path:fqn>", "patch_by_name", patch, ["PATCH"])
    add("/<uuid:entity_id>", "delete", delete, ["DELETE"])
    add("/name/<path:fqn>", "delete_by_name", delete, ["DELETE"])
    add("/<uuid:entity_id>/versions", "versions", list_versions, ["GET"])
    add("/<uuid:entity_id>/versions/<number>", "version", get_version, ["GET"])


for _collection, _kind in COLLECTIONS.items():
    _collection_routes(_collection, _kind)

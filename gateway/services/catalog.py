"""OpenMetadata's catalog of ML model services and ML models, on the gateway's registry.

- An ML model IS a registered model of its workspace (name and description shared, one name
  space): a model created here gets versions through MLflow, and every model registered through
  MLflow is listed here. Its id is derived from the registered model's (never reused) id.
- A workspace's ML model services are rows of their own, plus one built-in service, `registry`
  (serviceType Mlflow), that stands for the gateway's registry: models registered through
  MLflow, OCI or NeMo belong to it. A model created here names its service; a model name is
  taken once per workspace, whatever the service.
- Versions as OpenMetadata keeps them: 0.1 at creation, +0.1 per change, +1.0 when an ML model's
  algorithm changes, unchanged when nothing changes; each version is stored as it was answered,
  with its changeDescription. Soft delete and restore are changes too.

Entities are answered as OpenMetadata's JSON (dicts); the face adds hrefs.
"""
import base64
import copy
import json
import uuid

from peewee import JOIN, fn

from gateway import work
from gateway.exceptions import AlreadyExists, InvalidParameter, NotFound
from gateway.models import CatalogEntity, CatalogVersion, RegisteredModel, Workspace, now_ms
from gateway.services import registered_models

SERVICE, MODEL = "mlmodelService", "mlmodel"
REGISTRY = "registry"
_ID_PREFIX = "6d6c666c-0000-4000-8000-"  # model ids: this prefix + the registered model id
# Fields a request sets (the rest is computed); models' name and description live in the
# registered model.
MODEL_FIELDS = ("displayName", "algorithm", "mlFeatures", "mlHyperParameters", "target",
                "dashboard", "mlStore", "server", "tags", "owners", "extension", "sourceUrl",
                "domains", "dataProducts", "lifeCycle", "sourceHash")
SERVICE_FIELDS = ("displayName", "description", "serviceType", "connection", "tags", "style",
                  "owners", "dataProducts", "domains", "ingestionRunner")
INCLUDE = ("non-deleted", "deleted", "all")


# Names ------------------------------------------------------------------------------------

def check_name(name, what="name"):
    """OpenMetadata's entityName: 1-256 characters, no "::", no quote inside."""
    if not isinstance(name, str) or not 1 <= len(name) <= 256:
        raise InvalidParameter(f"[{what} size must be between 1 and 256]")
    if "::" in name:
        raise InvalidParameter(f'[{what} must match "^((?!::).)*$"]')
    if '"' in name:
        raise InvalidParameter(f"[{what} must not contain a double quote]")


def quote(name):
    """A name as one FQN part: quoted when it holds a dot."""
    return f'"{name}"' if "." in name else name


def split_fqn(fqn):
    """An FQN's parts, quotes respected: 'svc."a.b"' -> ['svc', 'a.b']."""
    parts, current, quoted = [], "", False
    for char in fqn:
        if char == '"':
            quoted = not quoted
        elif char == "." and not quoted:
            parts.append(current)
            current = ""
        else:
            current += char
    if quoted:
        raise InvalidParameter(f"Invalid fully qualified name {fqn}")
    return parts + [current]


def model_id(registered_model_id):
    return f"{_ID_PREFIX}{registered_model_id:012x}"


def _registered_model_id(entity_id):
    if not entity_id.startswith(_ID_PREFIX):
        return None
    try:
        return int(entity_id[len(_ID_PREFIX):], 16)
    except ValueError:
        return None


def registry_id(workspace):
    return str(uuid.uuid5(uuid.NAMESPACE_URL, f"gateway:{_workspace_uuid(workspace)}:registry"))


def _workspace_uuid(workspace):
    row = Workspace.get_or_none(Workspace.name == workspace)
    return row.uuid if row else workspace


def reference(fqn, kind):
    """An EntityReference for a name the gateway does not keep as an entity (a dashboard,
    a domain): its id is derived from the name, so it is stable."""
    return {"id": str(uuid.uuid5(uuid.NAMESPACE_URL, f"om:{kind}:{fqn}")), "type": kind,
            "name": split_fqn(fqn)[-1], "fullyQualifiedName": fqn}


# Rendering --------------------------------------------------------------------------------

def _version(tenths):
    return round(tenths / 10, 1)


def _registry_service(workspace):
    return {"id": registry_id(workspace), "name": REGISTRY, "fullyQualifiedName": REGISTRY,
            "serviceType": "Mlflow",
            "description": "The gateway's model registry (models registered through MLflow, "
                           "OCI or NeMo).",
            "version": 0.1, "updatedAt": 0, "updatedBy": "gateway", "owners": [], "tags": [],
            "followers": [], "domains": [], "deleted": False}


def _service_json(row):
    document = json.loads(row.document)
    body = {"id": row.id, "name": row.name, "fullyQualifiedName": quote(row.name),
            **{k: document[k] for k in SERVICE_FIELDS if document.get(k) is not None},
            "version": _version(row.version), "updatedAt": row.updated_at,
            "updatedBy": row.updated_by or "anonymous", "deleted": row.deleted}
    body.setdefault("owners", [])
    body.setdefault("tags", [])
    body["followers"] = []
    body["domains"] = [reference(d, "domain") for d in document.get("domains") or []]
    if document.get("dataProducts"):
        body["dataProducts"] = [reference(d, "dataProduct") for d in document["dataProducts"]]
    if row.change_description:
        body["changeDescription"] = body["incrementalChangeDescription"] = json.loads(
            row.change_description)
    return body


def _service_reference(service):
    return {"id": service["id"], "type": SERVICE, "name": service["name"],
            "fullyQualifiedName": service["fullyQualifiedName"], "deleted": service["deleted"]}


def _model_json(model, row, service):
    """An ML model: registered model `model`, its catalog row (or None), its service JSON."""
    document = json.loads(row.document) if row else {}
    fqn = f"{service['fullyQualifiedName']}.{quote(model.name)}"
    body = {"id": model_id(model.id), "name": model.name, "fullyQualifiedName": fqn,
            **{k: document[k] for k in MODEL_FIELDS if document.get(k) is not None}}
    if model.description:
        body["description"] = model.description
    body.setdefault("algorithm", "mlmodel")
    for feature in body.get("mlFeatures") or []:
        if feature.get("name"):
            feature["fullyQualifiedName"] = f"{fqn}.{quote(feature['name'])}"
    if "dashboard" in body:
        body["dashboard"] = reference(body["dashboard"], "dashboard")
    body["domains"] = [reference(d, "domain") for d in body.get("domains") or []]
    if "dataProducts" in body:
        body["dataProducts"] = [reference(d, "dataProduct") for d in body["dataProducts"]]
    body.setdefault("owners", [])
    body.setdefault("tags", [])
    body.update({"followers": [], "votes": {"upVotes": 0, "downVotes": 0},
                 "version": _version(row.version) if row else 0.1,
                 "updatedAt": row.updated_at if row else model.last_updated_timestamp,
                 "updatedBy": (row.updated_by if row else model.user_id) or "anonymous",
                 "service": _service_reference(service), "serviceType": service["serviceType"],
                 "deleted": bool(row and row.deleted)})
    if row and row.change_description:
        body["changeDescription"] = body["incrementalChangeDescription"] = json.loads(
            row.change_description)
    return body


# Reading ----------------------------------------------------------------------------------

def _visible(deleted, include):
    return include == "all" or deleted == (include == "deleted")


def _check_include(include):
    if include not in INCLUDE:
        raise InvalidParameter(f"include must be one of {', '.join(INCLUDE)}")


def _service_rows(workspace):
    return CatalogEntity.select().where(CatalogEntity.workspace == workspace,
                                        CatalogEntity.kind == SERVICE)


def _service_row(workspace, name=None, entity_id=None):
    query = _service_rows(workspace)
    query = query.where(CatalogEntity.name == name) if name is not None else query.where(
        CatalogEntity.id == entity_id)
    return query.first()


def _not_found(kind, key):
    return NotFound(f"{kind} instance for {key} not found")


def get_service(workspace, fqn=None, entity_id=None, include="non-deleted"):
    """A service by FQN (its quoted name) or id."""
    _check_include(include)
    name = None if fqn is None else _single_name(fqn, SERVICE)
    if name == REGISTRY or entity_id == registry_id(workspace):
        service = _registry_service(workspace)
    else:
        row = _service_row(workspace, name=name, entity_id=entity_id)
        service = _service_json(row) if row else None
    if service is None or not _visible(service["deleted"], include):
        raise _not_found(SERVICE, fqn or entity_id)
    return service


def _single_name(fqn, kind):
    parts = split_fqn(fqn)
    if len(parts) != 1:
        raise _not_found(kind, fqn)
    return parts[0]


def _models(workspace):
    return (RegisteredModel.select(RegisteredModel, CatalogEntity)
            .join(CatalogEntity, JOIN.LEFT_OUTER,
                  on=(CatalogEntity.registered_model == RegisteredModel.id), attr="catalog")
            .where(RegisteredModel.workspace == workspace))


def _catalog_row(model):
    row = getattr(model, "catalog", None)
    return row if row is not None and row.id is not None else None


def _service_of(workspace, row, services=None):
    if row is None or row.service_id is None:
        return _registry_service(workspace)
    if services is not None and row.service_id in services:
        return services[row.service_id]
    return _service_json(CatalogEntity.get_by_id(row.service_id))


def _model_by(workspace, fqn=None, entity_id=None):
    """(registered model, catalog row or None, service JSON), or NotFound."""
    if entity_id is not None:
        number = _registered_model_id(entity_id)
        model = _models(workspace).where(RegisteredModel.id == number).first() if number else None
    else:
        parts = split_fqn(fqn)
        if len(parts) != 2:
            raise _not_found(MODEL, fqn)
        model = _models(workspace).where(RegisteredModel.name == parts[1]).first()
        if model is not None and _service_of(workspace, _catalog_row(model))["name"] != parts[0]:
            model = None
    if model is None:
        raise _not_found(MODEL, fqn or entity_id)
    row = _catalog_row(model)
    return model, row, _service_of(workspace, row)


def get_model(workspace, fqn=None, entity_id=None, include="non-deleted"):
    """An ML model by FQN (service.model) or id."""
    _check_include(include)
    model, row, service = _model_by(workspace, fqn, entity_id)
    body = _model_json(model, row, service)
    if not _visible(body["deleted"], include):
        raise _not_found(MODEL, fqn or entity_id)
    return body


def _cursor(name):
    return base64.urlsafe_b64encode(json.dumps({"name": name}).encode()).decode()


def _uncursor(text):
    try:
        return json.loads(base64.urlsafe_b64decode(text.encode()))["name"]
    except (ValueError, KeyError, TypeError):
        raise InvalidParameter(f"Invalid cursor: {text}") from None


def _check_page(limit, before, after):
    if not 0 <= limit <= 1000000:
        raise InvalidParameter("[query param limit must be between 0 and 1000000]")
    if before is not None and after is not None:
        raise InvalidParameter("Only one of before or after query parameter allowed")


def _page(items, limit, before, after):
    """One page of `items` (sorted by name) and OpenMetadata's paging."""
    _check_page(limit, before, after)
    names = [item["name"] for item in items]
    start = 0
    if after is not None:
        mark = _uncursor(after)
        start = next((i for i, name in enumerate(names) if name > mark), len(names))
    elif before is not None:
        mark = _uncursor(before)
        end = next((i for i, name in enumerate(names) if name >= mark), len(names))
        start = max(0, end - limit)
        page = items[start:end]
    if before is None:
        page = items[start:start + limit]
    paging = {"total": len(items)}
    if limit == 0:
        return [], paging
    if page and start > 0:
        paging["before"] = _cursor(page[0]["name"])
    if page and start + len(page) < len(items):
        paging["after"] = _cursor(page[-1]["name"])
    return page, paging


def list_services(workspace, limit=10, before=None, after=None, include="non-deleted"):
    """A page of the workspace's services, by name: (services, paging)."""
    _check_include(include)
    services = [_registry_service(workspace)] + [_service_json(r) for r in _service_rows(workspace)]
    services = sorted((s for s in services if _visible(s["deleted"], include)),
                      key=lambda s: s["name"])
    return _page(services, limit, before, after)


def list_models(workspace, limit=10, before=None, after=None, include="non-deleted",
                service=None):
    """A page of the workspace's models (of one service, if named), by name, paged in SQL
    (so the order and the cursors follow the database's collation)."""
    _check_include(include)
    _check_page(limit, before, after)
    query = _models(workspace)
    if include != "all":
        wanted_deleted = include == "deleted"
        query = query.where(fn.COALESCE(CatalogEntity.deleted, False) == wanted_deleted)
    if service is not None:
        owner = get_service(workspace, service, include="all")
        query = query.where(CatalogEntity.service.is_null() if owner["name"] == REGISTRY
                            else CatalogEntity.service == owner["id"])
    name = RegisteredModel.name
    if before is not None:
        rows = list(query.where(name < _uncursor(before)).order_by(name.desc()).limit(limit))
        rows.reverse()
    else:
        narrowed = query.where(name > _uncursor(after)) if after is not None else query
        rows = list(narrowed.order_by(name).limit(limit))
    paging = {"total": query.count()}
    if rows and query.where(name < rows[0].name).exists():
        paging["before"] = _cursor(rows[0].name)
    if rows and query.where(name > rows[-1].name).exists():
        paging["after"] = _cursor(rows[-1].name)
    services = {row.id: _service_json(row) for row in _service_rows(workspace)}
    return [_model_json(model, _catalog_row(model),
                        _service_of(workspace, _catalog_row(model), services))
            for model in rows], paging


# Changes ----------------------------------------------------------------------------------

def _field_value(value):
    return value if isinstance(value, str) else json.dumps(value, sort_keys=True)


# Fields the server keeps: a change to them alone is no change of the entity.
SERVER_KEPT = frozenset({"version", "updatedAt", "updatedBy", "changeDescription",
                         "incrementalChangeDescription", "href"})


def _change(old, new, previous):
    """OpenMetadata's changeDescription from one answered body to the next."""
    added, updated, deleted = [], [], []
    for key in sorted((set(old) | set(new)) - SERVER_KEPT):
        before, after = old.get(key), new.get(key)
        if before == after or (before in (None, [], {}) and after in (None, [], {})):
            continue
        if before in (None, [], {}):
            added.append({"name": key, "newValue": _field_value(after)})
        elif after in (None, [], {}):
            deleted.append({"name": key, "oldValue": _field_value(before)})
        else:
            updated.append({"name": key, "oldValue": _field_value(before),
                            "newValue": _field_value(after)})
    return {"fieldsAdded": added, "fieldsUpdated": updated, "fieldsDeleted": deleted,
            "previousVersion": previous}


def _record_version(row, body):
    (CatalogVersion.insert(entity=row.id, version=row.version, body=json.dumps(body))
     .on_conflict(conflict_target=[CatalogVersion.entity, CatalogVersion.version],
                  update={CatalogVersion.body: json.dumps(body)}).execute())


def _save(row, old_body, render, who, major=False):
    """Store a change to row (already applied to its fields): bump the version and record it,
    unless the answer is the same as before. Returns (body, "entityUpdated"|"entityNoChange")."""
    if old_body is not None:
        candidate = render()
        if _same(old_body, candidate):
            return old_body, "entityNoChange"
        row.change_description = json.dumps(_change(old_body, candidate, old_body["version"]))
        row.version += 10 if major else 1
    row.updated_at, row.updated_by = now_ms(), who
    row.save(force_insert=old_body is None)
    body = render()
    _record_version(row, body)
    return body, "entityCreated" if old_body is None else "entityUpdated"


def _same(old, new):
    return {k: v for k, v in old.items() if k not in SERVER_KEPT} == {
        k: v for k, v in new.items() if k not in SERVER_KEPT}


def _merge(document, request, fields, replace):
    """The document after a request: PUT keeps fields it leaves out, PATCH (replace) does not."""
    merged = {} if replace else dict(document)
    for key in fields:
        if key in request:
            merged[key] = request[key]
    return {k: v for k, v in merged.items() if v is not None}


def put_service(workspace, request, who, create_only=False, replace=False):
    """Create or update a service by name: (body, change)."""
    name = request["name"]
    check_name(name)
    if name == REGISTRY:
        raise AlreadyExists(f"Entity already exists: '{REGISTRY}' is the gateway's own "
                            "registry service")
    with work.write():
        row = _service_row(workspace, name=name)
        if row is not None and create_only:
            raise AlreadyExists("Entity already exists")
        old_body = None if row is None else _service_json(row)
        if row is None:
            row = CatalogEntity(id=str(uuid.uuid4()), workspace=workspace, kind=SERVICE,
                                name=name, version=1)
        row.document = json.dumps(_merge(json.loads(row.document or "{}"), request,
                                         SERVICE_FIELDS, replace))
        return _save(row, old_body, lambda: _service_json(row), who)


def put_model(workspace, request, who, create_only=False, replace=False, user_id=None):
    """Create or update a model by service and name: (body, change)."""
    name, service_fqn = request["name"], request["service"]
    check_name(name)
    with work.write():
        service = get_service(workspace, service_fqn)
        model = _models(workspace).where(RegisteredModel.name == name).first()
        row = _catalog_row(model) if model is not None else None
        if model is not None and (create_only or _service_of(workspace, row)["id"] != service["id"]):
            raise AlreadyExists("Entity already exists" + ("" if create_only else
                                f": '{name}' is a model of another service of this workspace"))
        if model is None:
            model = registered_models.create(workspace, name, request.get("description") or "",
                                             user_id=user_id)
            old_body = None
        else:
            old_body = _model_json(model, row, service)
            if "description" in request or replace:
                RegisteredModel.update(description=request.get("description") or "").where(
                    RegisteredModel.id == model.id).execute()
                model.description = request.get("description") or ""
        existing = row is not None
        if row is None:
            row = CatalogEntity(id=model_id(model.id), workspace=workspace, kind=MODEL,
                                name=name, registered_model=model.id, version=1,
                                service=None if service["name"] == REGISTRY else service["id"])
        before = json.loads(row.document or "{}")
        row.document = json.dumps(_merge(before, request, MODEL_FIELDS, replace))
        major = old_body is not None and (
            json.loads(row.document).get("algorithm", "mlmodel") != old_body["algorithm"])
        if not existing and old_body is not None:  # a registry model's first catalog write
            row.save(force_insert=True)
            _record_version_if_missing(row, old_body)
        return _save(row, old_body, lambda: _model_json(model, row, service), who, major)


def _record_version_if_missing(row, body):
    if not CatalogVersion.select().where(CatalogVersion.entity == row.id,
                                         CatalogVersion.version == 1).exists():
        CatalogVersion.insert(entity=row.id, version=1, body=json.dumps(body)).execute()


def set_deleted(workspace, kind, body, deleted, who, recursive=False):
    """Soft delete (or restore) an entity; a service's models go with it when recursive
    (deleting) or always (restoring). Returns the new body."""
    with work.write():
        if kind == SERVICE:
            if body["name"] == REGISTRY:
                raise InvalidParameter(f"'{REGISTRY}' is the gateway's own registry service; "
                                       "it cannot be deleted")
            members = [m for m in list_models(workspace, limit=1000000, include="all",
                                              service=body["fullyQualifiedName"])[0]
                       if m["deleted"] != deleted]
            if deleted and members and not recursive:
                raise InvalidParameter(f"Entity {SERVICE} is not empty: delete its models first "
                                       "or pass recursive=true")
            for member in members:
                set_deleted(workspace, MODEL, member, deleted, who)
            row = _service_row(workspace, entity_id=body["id"])
            row.deleted = deleted
            return _save(row, body, lambda: _service_json(row), who)[0]
        model, row, service = _model_by(workspace, entity_id=body["id"])
        if row is None:
            row = CatalogEntity(id=body["id"], workspace=workspace, kind=MODEL, name=model.name,
                                registered_model=model.id, version=1)
            row.save(force_insert=True)
            _record_version_if_missing(row, body)
        row.deleted = deleted
        return _save(row, body, lambda: _model_json(model, row, service), who)[0]


def hard_delete(workspace, kind, body, recursive=False):
    """Remove an entity for good (a model: its registered model and versions too)."""
    with work.write():
        if kind == SERVICE:
            if body["name"] == REGISTRY:
                raise InvalidParameter(f"'{REGISTRY}' is the gateway's own registry service; "
                                       "it cannot be deleted")
            members = list_models(workspace, limit=1000000, include="all",
                                  service=body["fullyQualifiedName"])[0]
            if members and not recursive:
                raise InvalidParameter(f"Entity {SERVICE} is not empty: delete its models first "
                                       "or pass recursive=true")
            for member in members:
                hard_delete(workspace, MODEL, member)
            CatalogEntity.delete().where(CatalogEntity.id == body["id"]).execute()
            return
        registered_models.delete(workspace, body["name"])


def versions(workspace, kind, entity_id):
    """Every version's body, newest first (a registry model never written here: its one)."""
    current = (get_service if kind == SERVICE else get_model)(
        workspace, entity_id=entity_id, include="all")
    rows = (CatalogVersion.select().where(CatalogVersion.entity == entity_id)
            .order_by(CatalogVersion.version.desc()))
    bodies = [json.loads(r.body) for r in rows]
    return bodies or [current]


def version(workspace, kind, entity_id, text):
    """One version's body ("0.2")."""
    try:
        tenths = round(float(text) * 10)
    except ValueError:
        raise InvalidParameter(f"Invalid version {text}") from None
    for body in versions(workspace, kind, entity_id):
        if round(body["version"] * 10) == tenths:
            return copy.deepcopy(body)
    raise NotFound(f"{kind} instance for {entity_id} and version {text} not found")

"""Model versions: create, read, update, stage transitions, delete, search, tags, aliases."""

from gateway import validation, work
from gateway.search import (MODEL_VERSIONS, make_page_token, parse_filter, parse_order_by,
                            parse_page_token)
from gateway.db import dict_rows, is_sqlite, prepared, prepared_insert
from gateway.exceptions import InvalidParameter, MissingParameter, NotFound
from gateway.models import (DELETED_STAGE, ModelAlias, ModelVersion, ModelVersionTag,
                            RegisteredModel, now_ms)
from gateway.services import (etags, filters, loading, registered_models, sources,
                              webhooks)

MAX_RESULTS = 200000


def _query():
    return ModelVersion.select(ModelVersion, RegisteredModel).join(RegisteredModel)


def _live_version(workspace, name, number):
    return loading.version_select().where(
        RegisteredModel.workspace == workspace, RegisteredModel.name == name,
        ModelVersion.version == number, ModelVersion.current_stage != DELETED_STAGE)


_find_live_version = prepared(_live_version, rows="dicts")


def find(workspace, name, version, lock=False):
    """The live version row (shaped like one joined to its model), or NotFound."""
    number = validation.version_number(version)
    if lock and not is_sqlite():
        rows = dict_rows(_live_version(workspace, name, number).for_update(of=ModelVersion))
    else:
        rows = _find_live_version(workspace, name, number)
    row = next(iter(loading.flat_versions(rows)), None)
    if row is None:
        raise NotFound(f"Model Version (name={name}, version={number}) not found")
    return row


def find_current(workspace, name, version, if_match):
    """The version row, after checking the caller's if-match etag against it (when given)."""
    row = find(workspace, name, version, lock=if_match is not None)
    if if_match is not None:
        etags.check(etags.of_version(loading.versions([row])[0]), if_match)
    return row


def get(workspace, name, version):
    """A version with its tags and aliases."""
    return loading.versions([find(workspace, name, version)])[0]


def _check_create(name, source, run_id, run_link, description, model_id):
    validation.model_name(name)
    if not source:
        raise MissingParameter(validation.missing_value("source"))
    for path, value, limit in (("source", source, validation.MAX_SOURCE_LENGTH),
                               ("run_id", run_id, validation.MAX_RUN_ID_LENGTH),
                               ("run_link", run_link, validation.MAX_SOURCE_LENGTH),
                               ("description", description, validation.MAX_DESCRIPTION_LENGTH),
                               ("model_id", model_id, 64)):
        validation.check_length(path, value, limit)


def _resolve_source(workspace, source, run_id, model_id):
    """MLflow's `_resolve_registered_model_source_lineage`: a `models:/` reference to a
    registered model becomes `models:/<name>/<version>` of the version it names, whose run_id
    and model_id the request inherits unless it gives its own (which must then match).
    Returns (source, storage location or None, run_id, model_id); None means "not given"."""
    reference = sources.registry_reference(source)
    if reference is None:
        return source, None, run_id, model_id
    name, number, stage, alias = reference
    model = registered_models.find(workspace, name)
    if registered_models.is_prompt(model):
        raise sources.prompt_as_source(source)
    if alias is not None:
        origin = by_alias(workspace, name, alias)
    elif number is not None:
        origin = find(workspace, name, number)
    else:
        found = latest(workspace, name, None if stage is None else [validation.stage(stage)])
        if not found:
            raise NotFound(f"No versions of model with name '{name}' and stage '{stage}' found")
        origin = max(found, key=lambda row: row.version)
    if ((run_id is not None and run_id != (origin.run_id or ""))
            or (model_id is not None and model_id != (origin.model_id or ""))):
        raise sources.lineage_mismatch(source)
    return (f"models:/{name}/{origin.version}", origin.storage_location or origin.source,
            origin.run_id if run_id is None else run_id,
            origin.model_id if model_id is None else model_id)


_bump_last_version = prepared(lambda workspace, name, now: (
    RegisteredModel.update(last_version=RegisteredModel.last_version + 1,
                           last_updated_timestamp=now)
    .where(RegisteredModel.workspace == workspace, RegisteredModel.name == name)
    .returning(RegisteredModel.id, RegisteredModel.last_version)), rows="tuples")
_insert_version = prepared_insert(ModelVersion)


def create(workspace, name, source, run_id=None, tags=(), run_link="", description="",
           model_id=None, user_id=None, workspace_key=None, source_policy=sources.HostPolicy(),
           tracking_store=None):
    """Create the next version of a model; numbers are never reused, even across workers.

    run_id and model_id are None when the request did not give them (MLflow tells "absent"
    from "empty" when it resolves a `models:/` source). The source is checked as MLflow 3.17.2
    checks it (services/sources.py), under the deployment's host policy, asking the tracking
    store (if any) about the runs and logged models it names. Those questions are asked before
    the write transaction: it never waits on the network.
    """
    _check_create(name, source, run_id, run_link, description, model_id)
    tags = registered_models.unique_tags(tags)
    is_prompt = (tags.get(filters.PROMPT_TAG) or "false").lower() == "true"
    storage = None
    if not is_prompt:
        source, storage, run_id, model_id = _resolve_source(workspace, source, run_id, model_id)
    sources.validate(source, run_id, model_id, is_prompt, source_policy, tracking_store)
    if not is_prompt:
        tracked_storage, run_id = sources.tracked_lineage(source, run_id, model_id,
                                                          tracking_store)
        storage = storage or tracked_storage
    now = now_ms()
    with work.write():
        # The UPDATE takes the model's row lock (PostgreSQL) or the write lock (SQLite), so
        # concurrent creates are serialised here and each gets its own number. The statements
        # are prepared, so the lock is held as briefly as possible.
        bumped = _bump_last_version(workspace, name, now)
        if not bumped:
            raise registered_models.not_found(name)
        registered_model_id, number = bumped[0]
        fields = {"registered_model": registered_model_id, "version": number,
                  "creation_timestamp": now, "last_updated_timestamp": now,
                  "description": description or "", "source": source,
                  "storage_location": storage, "run_id": run_id or "",
                  "run_link": run_link or "", "model_id": model_id, "user_id": user_id,
                  "workspace_key": workspace_key, "current_stage": "None", "status": "READY"}
        [(version_id,)] = _insert_version(**fields)
        if tags:
            ModelVersionTag.insert_many([{"model_version": version_id, "key": k, "value": v}
                                         for k, v in tags.items()]).execute()
        webhooks.version_created(workspace, name, number, source, run_id, tags, description)
    work.created("model_version", version_id)
    if tracking_store is not None and model_id and not is_prompt:
        tracking_store.record_model_version(model_id, name, number)
    version = ModelVersion(id=version_id, **fields)
    version.registered_model = RegisteredModel(id=registered_model_id, name=name,
                                               workspace=workspace)
    version.tags = [{"key": k, "value": v} for k, v in sorted(tags.items())]
    version.aliases = []
    return version


def update(workspace, name, version, description, if_match=None):
    """Replace a version's description."""
    validation.check_length("description", description, validation.MAX_DESCRIPTION_LENGTH)
    with work.write():
        row = find_current(workspace, name, version, if_match)
        ModelVersion.update(description=description or "", last_updated_timestamp=now_ms()
                            ).where(ModelVersion.id == row.id).execute()
    return get(workspace, name, version)


def transition_stage(workspace, name, version, stage, archive_existing_versions=False,
                     if_match=None):
    """Move a version to a stage, optionally archiving the others in that stage."""
    stage = validation.stage(stage)
    if archive_existing_versions and stage not in validation.ACTIVE_STAGES:
        # MLflow answers this with a 500; it is the caller's mistake, so we say 400.
        raise InvalidParameter(
            "Model version transition cannot archive existing model versions because "
            f"'{stage}' is not an Active stage. Valid stages are "
            f"{list(validation.ACTIVE_STAGES)}")
    now = now_ms()
    with work.write():
        row = find_current(workspace, name, version, if_match)
        if archive_existing_versions:
            ModelVersion.update(current_stage="Archived", last_updated_timestamp=now).where(
                ModelVersion.registered_model == row.registered_model_id,
                ModelVersion.current_stage == stage, ModelVersion.id != row.id).execute()
        ModelVersion.update(current_stage=stage, last_updated_timestamp=now
                            ).where(ModelVersion.id == row.id).execute()
        RegisteredModel.update(last_updated_timestamp=now
                               ).where(RegisteredModel.id == row.registered_model_id).execute()
    return get(workspace, name, version)


def delete(workspace, name, version, if_match=None):
    """Soft-delete a version: its number stays taken, its aliases and tags go."""
    now = now_ms()
    with work.write():
        row = find_current(workspace, name, version, if_match)
        ModelAlias.delete().where(ModelAlias.model_version == row.id).execute()
        ModelVersionTag.delete().where(ModelVersionTag.model_version == row.id).execute()
        ModelVersion.update(current_stage=DELETED_STAGE, last_updated_timestamp=now,
                            source="REDACTED-SOURCE-PATH", storage_location=None,
                            run_id="REDACTED-RUN-ID", run_link="REDACTED-RUN-LINK",
                            description="").where(ModelVersion.id == row.id).execute()
        RegisteredModel.update(last_updated_timestamp=now
                               ).where(RegisteredModel.id == row.registered_model_id).execute()


def latest(workspace, name, stages=None):
    """The newest version per stage (all four stages when none are named), in the order of
    each stage's first version, as MLflow lists them whatever order the stages are asked in."""
    canonical = [validation.stage(stage) for stage in stages or ()]
    model = registered_models.find(workspace, name)
    return loading.versions(loading.latest_versions([model.id], canonical or None))


def download_uri(workspace, name, version):
    """Where a version's artifacts are."""
    row = find(workspace, name, version)
    return row.storage_location or row.source


def by_alias(workspace, name, alias):
    """The version an alias points to; `latest` is the newest live version."""
    validation.alias(alias)
    model = registered_models.find(workspace, name)
    live = _query().where(ModelVersion.registered_model == model.id,
                          ModelVersion.current_stage != DELETED_STAGE)
    if alias.lower() == "latest":
        row = live.order_by(ModelVersion.version.desc()).first()
        if row is None:
            raise NotFound(f"No model versions found for registered model '{name}'.")
    else:
        row = live.join_from(ModelVersion, ModelAlias).where(ModelAlias.alias == alias).first()
        if row is None:
            # MLflow answers a missing alias with 400, not 404.
            raise InvalidParameter(f"Registered model alias {alias} not found.")
    return loading.versions([row])[0]


_search = filters.SearchQueries(lambda workspace, limit, offset, clauses, prompts, order: (
    loading.version_select()
    .where(RegisteredModel.workspace == workspace, ModelVersion.current_stage != DELETED_STAGE,
           *filters.model_version_conditions(clauses, prompts))
    .order_by(*filters.ordering(order, "model_version")).offset(offset).limit(limit)),
    rows="dicts")


def search(workspace, filter_string="", max_results=MAX_RESULTS, order_by=(), page_token=None):
    """One page of versions matching an MLflow filter, and the next page's token (or None)."""
    filters.check_max_results(max_results, MAX_RESULTS)
    clauses = parse_filter(filter_string, MODEL_VERSIONS)
    order = parse_order_by(order_by, MODEL_VERSIONS)
    offset = parse_page_token(page_token)
    rows = loading.flat_versions(_search(workspace, clauses, order, max_results + 1, offset))
    token = make_page_token(offset + max_results) if len(rows) > max_results else None
    # MLflow does not populate aliases in search results.
    return loading.versions(rows[:max_results], aliases=False), token


def set_tag(workspace, name, version, key, value="", if_match=None):
    """Set (insert or replace) a tag on a version."""
    validation.tag(key, value)
    with work.write():
        row = find_current(workspace, name, version, if_match)
        registered_models.check_tag_room(ModelVersionTag, ModelVersionTag.model_version, row.id,
                                         key)
        (ModelVersionTag.insert(model_version=row.id, key=key, value=value)
         .on_conflict(conflict_target=[ModelVersionTag.model_version, ModelVersionTag.key],
                      update={ModelVersionTag.value: value})
         .execute())
        _version_tag_event(workspace, row, "set", {"name": name, "version": str(version),
                                                   "key": key, "value": value})


def delete_tag(workspace, name, version, key, if_match=None):
    """Remove a tag from a version; removing an absent key succeeds."""
    if not key:
        raise MissingParameter(validation.missing_value("key"))
    with work.write():
        row = find_current(workspace, name, version, if_match)
        ModelVersionTag.delete().where(ModelVersionTag.model_version == row.id,
                                       ModelVersionTag.key == key).execute()
        _version_tag_event(workspace, row, "deleted", {"name": name, "version": str(version),
                                                       "key": key})


def _version_tag_event(workspace, row, action, data):
    model = RegisteredModel(id=row.registered_model_id)
    entity = "prompt_version_tag" if registered_models.is_prompt(model) else "model_version_tag"
    webhooks.emit(workspace, entity, action, data)

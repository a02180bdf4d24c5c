"""Registered models: create, read, update, rename, delete, search, tags and aliases."""
from peewee import IntegrityError

from gateway import validation, work
from gateway.search import (REGISTERED_MODELS, make_page_token, parse_filter, parse_order_by,
                            parse_page_token)
from gateway.db import is_sqlite, prepared
from gateway.exceptions import AlreadyExists, InvalidParameter, MissingParameter, NotFound
from gateway.models import (DELETED_STAGE, ModelAlias, ModelVersion, RegisteredModel,
                            RegisteredModelTag, Workspace, now_ms)
from gateway.services import etags, filters, loading, webhooks

MAX_RESULTS = 1000


def not_found(name):
    return NotFound(f"Registered Model with name={name} not found")


def _named(workspace, name):
    return RegisteredModel.select().where(RegisteredModel.workspace == workspace,
                                          RegisteredModel.name == name)


# The lookup behind every call naming a model: compiled once (see db.prepared).
_find_named = prepared(_named)


def find(workspace, name, lock=False):
    """The registered model row, or NotFound; lock holds its row until the transaction ends."""
    if not name:
        raise MissingParameter(validation.missing_value("name"))
    # SQLite has no row locks; its transactions already hold the database's write lock.
    if lock and not is_sqlite():
        model = _named(workspace, name).for_update().first()
    else:
        model = next(iter(_find_named(workspace, name)), None)
    if model is None:
        raise not_found(name)
    return model


def find_current(workspace, name, if_match):
    """The model row, after checking the caller's if-match etag against it (when given)."""
    model = find(workspace, name, lock=if_match is not None)
    if if_match is not None:
        etags.check(etags.of_model(loading.registered_models([model])[0]), if_match)
    return model


def is_prompt(model):
    """Whether a registered model is a prompt (MLflow's `mlflow.prompt.is_prompt` tag)."""
    value = (RegisteredModelTag.select(RegisteredModelTag.value)
             .where(RegisteredModelTag.registered_model == model.id,
                    RegisteredModelTag.key == filters.PROMPT_TAG).scalar())
    return (value or "").lower() == "true"


# MLflow takes at most 100 tags in one batch (MAX_PARAMS_TAGS_PER_BATCH); a model or version
# keeps at most MAX_TAGS in all.
MAX_TAGS_PER_REQUEST, MAX_TAGS = 100, 1000


def check_tag_room(table, owner_column, owner_id, key):
    """Refuse a new tag key once its owner has MAX_TAGS (replacing a value is always fine)."""
    tags = table.select().where(owner_column == owner_id)
    if tags.count() >= MAX_TAGS and not tags.where(table.key == key).exists():
        raise InvalidParameter(f"At most {MAX_TAGS} tags may be set on one model or version.")


def unique_tags(tags):
    """Validate tags and keep the last value given for each key."""
    if tags and len(tags) > MAX_TAGS_PER_REQUEST:
        raise InvalidParameter(f"A request may carry at most {MAX_TAGS_PER_REQUEST} tags, not "
                               f"{len(tags)}.")
    merged = {}
    for tag in tags or ():
        validation.tag(tag.get("key"), tag.get("value", ""))
        merged[tag["key"]] = tag.get("value", "")
    return merged


def get(workspace, name):
    """A registered model with its tags, aliases and latest versions."""
    return loading.registered_models([find(workspace, name)])[0]


def create(workspace, name, description="", tags=(), user_id=None):
    """Create a registered model; the unique index decides duplicates."""
    validation.model_name(name)
    validation.check_length("description", description, validation.MAX_DESCRIPTION_LENGTH)
    tags = unique_tags(tags)
    now = now_ms()
    try:
        with work.write():
            model = RegisteredModel.create(workspace=workspace, name=name,
                                           description=description or "", user_id=user_id,
                                           creation_timestamp=now, last_updated_timestamp=now)
            if tags:
                RegisteredModelTag.insert_many([{"registered_model": model, "key": k, "value": v}
                                                for k, v in tags.items()]).execute()
            webhooks.model_created(workspace, name, tags, description or "")
    except IntegrityError:
        if not Workspace.get_or_none(Workspace.name == workspace):
            raise NotFound(f"Workspace '{workspace}' not found") from None
        raise AlreadyExists(f"Registered Model (name={name}) already exists.") from None
    work.created("registered_model", model.id)
    return get(workspace, name)


def update(workspace, name, description="", if_match=None):
    """Replace the description (MLflow clears it when none is given)."""
    validation.check_length("description", description, validation.MAX_DESCRIPTION_LENGTH)
    with work.write():
        model = find_current(workspace, name, if_match)
        RegisteredModel.update(description=description or "", last_updated_timestamp=now_ms()
                               ).where(RegisteredModel.id == model.id).execute()
    return get(workspace, name)


def rename(workspace, name, new_name, if_match=None):
    """Rename a model; its versions, tags and aliases follow it."""
    if not new_name or not new_name.strip():
        raise MissingParameter(validation.missing_value("new_name"))
    validation.model_name(new_name, path="new_name")
    now = now_ms()
    try:
        with work.write():
            model = find_current(workspace, name, if_match)
            RegisteredModel.update(name=new_name, last_updated_timestamp=now
                                   ).where(RegisteredModel.id == model.id).execute()
            ModelVersion.update(last_updated_timestamp=now
                                ).where(ModelVersion.registered_model == model.id).execute()
    except IntegrityError:
        raise AlreadyExists(f"Registered Model (name={new_name}) already exists.") from None
    return get(workspace, new_name)


def delete(workspace, name, if_match=None):
    """Delete a model with its versions, tags and aliases (numbering restarts at 1)."""
    with work.write():
        model = find_current(workspace, name, if_match)
        RegisteredModel.delete().where(RegisteredModel.id == model.id).execute()


_search = filters.SearchQueries(lambda workspace, limit, offset, clauses, prompts, order: (
    RegisteredModel.select()
    .where(RegisteredModel.workspace == workspace,
           *filters.registered_model_conditions(clauses, prompts))
    .order_by(*filters.ordering(order, "registered_model")).offset(offset).limit(limit)))


def search(workspace, filter_string="", max_results=100, order_by=(), page_token=None):
    """One page of models matching an MLflow filter, and the next page's token (or None)."""
    filters.check_max_results(max_results, MAX_RESULTS)
    clauses = parse_filter(filter_string, REGISTERED_MODELS)
    order = parse_order_by(order_by, REGISTERED_MODELS)
    offset = parse_page_token(page_token)
    rows = _search(workspace, clauses, order, max_results + 1, offset)
    token = make_page_token(offset + max_results) if len(rows) > max_results else None
    return loading.registered_models(rows[:max_results], latest_by_stage_name=True), token


def set_tag(workspace, name, key, value="", if_match=None):
    """Set (insert or replace) a tag on a model."""
    validation.tag(key, value)
    with work.write():
        model = find_current(workspace, name, if_match)
        check_tag_room(RegisteredModelTag, RegisteredModelTag.registered_model, model.id, key)
        (RegisteredModelTag.insert(registered_model=model, key=key, value=value)
         .on_conflict(conflict_target=[RegisteredModelTag.registered_model, RegisteredModelTag.key],
                      update={RegisteredModelTag.value: value})
         .execute())
        if is_prompt(model):
            webhooks.emit(workspace, "prompt_tag", "set", {"name": name, "key": key,
                                                           "value": value})


def delete_tag(workspace, name, key, if_match=None):
    """Remove a tag; removing an absent key succeeds."""
    if not key:
        raise MissingParameter(validation.missing_value("key"))
    with work.write():
        model = find_current(workspace, name, if_match)
        RegisteredModelTag.delete().where(RegisteredModelTag.registered_model == model.id,
                                          RegisteredModelTag.key == key).execute()
        if is_prompt(model):
            webhooks.emit(workspace, "prompt_tag", "deleted", {"name": name, "key": key})


def set_alias(workspace, name, alias, version, if_match=None):
    """Point an alias at a live version, moving it if it already exists."""
    validation.alias(alias, reserved=True)
    number = validation.version_number(version)
    with work.write():
        model = find_current(workspace, name, if_match)
        target = ModelVersion.get_or_none(ModelVersion.registered_model == model.id,
                                          ModelVersion.version == number,
                                          ModelVersion.current_stage != DELETED_STAGE)
        if target is None:
            raise NotFound(f"Model Version (name={name}, version={number}) not found")
        (ModelAlias.insert(registered_model=model, alias=alias, model_version=target)
         .on_conflict(conflict_target=[ModelAlias.registered_model, ModelAlias.alias],
                      update={ModelAlias.model_version: target.id})
         .execute())
        entity = "prompt_alias" if is_prompt(model) else "model_version_alias"
        webhooks.emit(workspace, entity, "created", {"name": name, "alias": alias,
                                                     "version": str(version)})


def delete_alias(workspace, name, alias, if_match=None):
    """Remove an alias; removing an absent alias succeeds."""
    validation.alias(alias)
    with work.write():
        model = find_current(workspace, name, if_match)
        ModelAlias.delete().where(ModelAlias.registered_model == model.id,
                                  ModelAlias.alias == alias).execute()
        entity = "prompt_alias" if is_prompt(model) else "model_version_alias"
        webhooks.emit(workspace, entity, "deleted", {"name": name, "alias": alias})

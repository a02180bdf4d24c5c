"""Attach tags, aliases and latest versions to rows, a few queries per page, never per row."""
from types import SimpleNamespace

from peewee import fn

from gateway.db import dict_rows, prepared_many
from gateway.models import (DELETED_STAGE, ModelAlias, ModelVersion, ModelVersionTag,
                            RegisteredModel, RegisteredModelTag)


def _tags_query(tag_model, owner_column):
    return lambda ids: (tag_model.select(owner_column, tag_model.key, tag_model.value)
                        .where(owner_column.in_(ids)).order_by(tag_model.key))


# Prepared per number of ids: compiling these costs more than running them. Rows come as the
# driver's tuples and dicts: Peewee's row objects cost more than the queries.
_version_tags = prepared_many(_tags_query(ModelVersionTag, ModelVersionTag.model_version),
                              rows="tuples")
_model_tags = prepared_many(_tags_query(RegisteredModelTag, RegisteredModelTag.registered_model),
                            rows="tuples")
_version_aliases = prepared_many(lambda ids: (
    ModelAlias.select(ModelAlias.model_version, ModelAlias.alias)
    .where(ModelAlias.model_version.in_(ids)).order_by(ModelAlias.alias)), rows="tuples")
_model_aliases = prepared_many(lambda ids: (
    ModelAlias.select(ModelAlias.registered_model, ModelAlias.alias, ModelVersion.version)
    .join(ModelVersion).where(ModelAlias.registered_model.in_(ids))
    .order_by(ModelAlias.alias)), rows="tuples")


def _tags_by_owner(query, ids):
    tags = {owner_id: [] for owner_id in ids}
    if ids:
        for owner, key, value in query(ids):
            tags[owner].append({"key": key, "value": value})
    return tags


def versions(rows, aliases=True):
    """Give each version its `tags` and (unless told not to) its `aliases`."""
    ids = [row.id for row in rows]
    tags = _tags_by_owner(_version_tags, ids)
    names = {}
    if aliases and ids:
        for version_id, alias in _version_aliases(ids):
            names.setdefault(version_id, []).append(alias)
    for row in rows:
        row.tags, row.aliases = tags[row.id], names.get(row.id, [])
    return rows


def registered_models(rows, latest_by_stage_name=False):
    """Give each registered model its `tags`, `aliases` and `latest_versions`.

    Latest versions come in the order of their stage's first version (MLflow's get); searches
    list them by stage name instead, as MLflow's window-function query returns them.
    """
    ids = [row.id for row in rows]
    tags = _tags_by_owner(_model_tags, ids)
    aliases = {model_id: [] for model_id in ids}
    latest = {model_id: [] for model_id in ids}
    if ids:
        for model_id, alias, number in _model_aliases(ids):
            aliases[model_id].append({"alias": alias, "version": str(number)})
        # MLflow embeds latest versions with their tags but without their aliases.
        found = versions(latest_versions(ids), aliases=False)
        if latest_by_stage_name:
            found = sorted(found, key=lambda version: version.current_stage)
        for version in found:
            latest[version.registered_model_id].append(version)
    for row in rows:
        row.tags, row.aliases, row.latest_versions = tags[row.id], aliases[row.id], latest[row.id]
    return rows


def _latest_query(model_ids, stages=None):
    # MLflow 3.17.2 (SQLite) lists a model's latest versions stage by stage in the order each
    # stage first appears among its versions, i.e. by the stage's lowest version number.
    newest = (ModelVersion.select(ModelVersion.registered_model,
                                  fn.MAX(ModelVersion.version).alias("top"),
                                  fn.MIN(ModelVersion.version).alias("first"))
              .where(ModelVersion.registered_model.in_(model_ids),
                     ModelVersion.current_stage != DELETED_STAGE)
              .group_by(ModelVersion.registered_model, ModelVersion.current_stage))
    if stages:
        newest = newest.where(ModelVersion.current_stage.in_(stages))
    return (version_select()
            .join(newest, on=((ModelVersion.registered_model == newest.c.registered_model_id)
                              & (ModelVersion.version == newest.c.top)))
            .order_by(ModelVersion.registered_model, newest.c.first))


_latest_of_models = prepared_many(_latest_query, rows="dicts")


def latest_versions(model_ids, stages=None):
    """The highest-numbered live version in each stage of each model (joined to its model)."""
    if stages:
        return flat_versions(dict_rows(_latest_query(model_ids, stages)))
    return flat_versions(_latest_of_models(model_ids))


def version_select():
    """Versions with their model's name, for lists (see flat_versions)."""
    return (ModelVersion.select(ModelVersion, RegisteredModel.name.alias("model_name"))
            .join(RegisteredModel).switch(ModelVersion))


def flat_versions(rows):
    """Rows of version_select() (as dicts by column) as plain objects shaped like joined models.

    Peewee builds joined model objects far more slowly than plain rows, and a search page
    holds up to thousands of versions that are only read and dumped.
    """
    result, models = [], {}
    for data in rows:
        row = SimpleNamespace(**data)
        model_id = data["registered_model_id"]
        row.registered_model = models.get(model_id)
        if row.registered_model is None:  # one per model, shared by its versions on the page
            row.registered_model = models[model_id] = SimpleNamespace(id=model_id,
                                                                      name=data["model_name"])
        result.append(row)
    return result

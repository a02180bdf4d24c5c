"""Attach tags, aliases and latest versions to rows, a few queries per page, never per row."""
from types import SimpleNamespace

from peewee import fn

from gateway.db import prepared

from gateway.models import (DELETED_STAGE, ModelAlias, ModelVersion, ModelVersionTag,
                            RegisteredModel, RegisteredModelTag)


def _tags_by_owner(tag_model, owner_column, ids):
    tags = {owner_id: [] for owner_id in ids}
    if ids:
        rows = (tag_model.select(owner_column.alias("owner"), tag_model.key, tag_model.value)
                .where(owner_column.in_(ids)).order_by(tag_model.key).dicts())
        for row in rows:
            tags[row["owner"]].append({"key": row["key"], "value": row["value"]})
    return tags


# One version (the common case: get, update, by alias) takes the prepared queries.
_tags_of_version = prepared(lambda version_id: (
    ModelVersionTag.select(ModelVersionTag.key, ModelVersionTag.value)
    .where(ModelVersionTag.model_version == version_id).order_by(ModelVersionTag.key).dicts()))
_aliases_of_version = prepared(lambda version_id: (
    ModelAlias.select(ModelAlias.alias).where(ModelAlias.model_version == version_id)
    .order_by(ModelAlias.alias).tuples()))


def versions(rows, aliases=True):
    """Give each version its `tags` and (unless told not to) its `aliases`."""
    if len(rows) == 1:
        row = rows[0]
        row.tags = _tags_of_version(row.id)
        row.aliases = [alias for (alias,) in _aliases_of_version(row.id)] if aliases else []
        return rows
    ids = [row.id for row in rows]
    tags = _tags_by_owner(ModelVersionTag, ModelVersionTag.model_version, ids)
    names = {version_id: [] for version_id in ids}
    if aliases and ids:
        query = (ModelAlias.select(ModelAlias.model_version, ModelAlias.alias)
                 .where(ModelAlias.model_version.in_(ids)).order_by(ModelAlias.alias).tuples())
        for version_id, alias in query:
            names[version_id].append(alias)
    for row in rows:
        row.tags, row.aliases = tags[row.id], names[row.id]
    return rows


def registered_models(rows):
    """Give each registered model its `tags`, `aliases` and `latest_versions`."""
    ids = [row.id for row in rows]
    tags = _tags_by_owner(RegisteredModelTag, RegisteredModelTag.registered_model, ids)
    aliases = {model_id: [] for model_id in ids}
    latest = {model_id: [] for model_id in ids}
    if ids:
        query = (ModelAlias.select(ModelAlias.registered_model, ModelAlias.alias,
                                   ModelVersion.version)
                 .join(ModelVersion).where(ModelAlias.registered_model.in_(ids))
                 .order_by(ModelAlias.alias).tuples())
        for model_id, alias, number in query:
            aliases[model_id].append({"alias": alias, "version": str(number)})
        # MLflow embeds latest versions with their tags but without their aliases.
        for version in versions(latest_versions(ids), aliases=False):
            latest[version.registered_model_id].append(version)
    for row in rows:
        row.tags, row.aliases, row.latest_versions = tags[row.id], aliases[row.id], latest[row.id]
    return rows


def latest_versions(model_ids, stages=None):
    """The highest-numbered live version in each stage of each model (joined to its model)."""
    newest = (ModelVersion.select(ModelVersion.registered_model,
                                  fn.MAX(ModelVersion.version).alias("top"))
              .where(ModelVersion.registered_model.in_(model_ids),
                     ModelVersion.current_stage != DELETED_STAGE)
              .group_by(ModelVersion.registered_model, ModelVersion.current_stage))
    if stages:
        newest = newest.where(ModelVersion.current_stage.in_(stages))
    return flat_versions(version_select()
                         .join(newest, on=((ModelVersion.registered_model
                                            == newest.c.registered_model_id)
                                           & (ModelVersion.version == newest.c.top)))
                         .order_by(ModelVersion.version))


def version_select():
    """Versions with their model's name, for lists (see flat_versions)."""
    return (ModelVersion.select(ModelVersion, RegisteredModel.name.alias("model_name"))
            .join(RegisteredModel).switch(ModelVersion))


def flat_versions(query):
    """Rows of version_select() as plain objects shaped like joined models.

    Peewee builds joined model objects far more slowly than plain rows, and a search page
    holds up to thousands of versions that are only read and dumped.
    """
    rows = []
    for data in query.dicts():
        row = SimpleNamespace(**data, registered_model_id=data["registered_model"])
        row.registered_model = SimpleNamespace(id=data["registered_model"],
                                               name=data["model_name"])
        rows.append(row)
    return rows

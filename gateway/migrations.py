"""Schema migrations, run once by `gateway db upgrade` before any worker starts."""
import json
import uuid

from playhouse.migrate import SchemaMigrator, migrate

from gateway.db import database, is_sqlite
from gateway.models import (AUTH_MODELS, CATALOG_MODELS, DEFAULT_WORKSPACE, ENTITY_MODELS, REGISTRY_MODELS,
                            SYSTEM_WORKSPACE, WEBHOOK_MODELS, ApiToken, Grant, ModelAdapter,
                            ModelEntityDetails, ModelVersion, RegisteredModel, RetryToken,
                            SchemaVersion, Workspace)


def _initial_schema():
    database.create_tables(REGISTRY_MODELS)
    Workspace.insert(name=DEFAULT_WORKSPACE, description="The default workspace").execute()


def _add_columns(*fields):
    # Earlier steps build tables from today's models, so on a new database these already exist.
    migrator = SchemaMigrator.from_database(database.obj)
    for field in fields:
        table = field.model._meta.table_name
        if field.column_name not in {c.name for c in database.get_columns(table)}:
            migrate(migrator.add_column(table, field.column_name, field))


def _oci_columns_and_retry_tokens():
    _add_columns(ModelVersion.workspace_key, RegisteredModel.user_id)
    database.create_tables([RetryToken])


def _principals_and_grants():
    database.create_tables(AUTH_MODELS)


def _model_entities():
    database.create_tables(ENTITY_MODELS)


def _retry_token_workspace():
    _add_columns(RetryToken.workspace)


def _ids_never_reused():
    # SQLite only (PostgreSQL's sequences never reuse): tables made before the ids were
    # AUTOINCREMENT are rebuilt with it; new databases already have it.
    if not is_sqlite():
        return
    for model in (RegisteredModel, ModelVersion):
        rebuild_sqlite_table(model, lambda sql: sql.replace(
            '"id" INTEGER NOT NULL PRIMARY KEY,', '"id" INTEGER NOT NULL PRIMARY KEY AUTOINCREMENT,',
            1))


def rebuild_sqlite_table(model, change_sql):
    """SQLite's way to change a table's definition: a copy under the new definition.

    change_sql(create_table_sql) -> the new CREATE TABLE; nothing happens if it is the same.
    Runs in the upgrade's transaction with foreign keys off (see upgrade), so dropping the
    old table cascades nothing; its indexes are created again from the model.
    """
    table = model._meta.table_name
    (sql,) = database.execute_sql("SELECT sql FROM sqlite_master WHERE type = 'table' AND "
                                  "name = ?", (table,)).fetchone()
    changed = change_sql(sql)
    if changed == sql:
        return
    database.execute_sql(changed.replace(f'"{table}"', f'"{table}__new"', 1))
    database.execute_sql(f'INSERT INTO "{table}__new" SELECT * FROM "{table}"')
    database.execute_sql(f'DROP TABLE "{table}"')
    database.execute_sql(f'ALTER TABLE "{table}__new" RENAME TO "{table}"')
    model._schema.create_indexes(safe=True)


def _webhooks():
    database.create_tables(WEBHOOK_MODELS)


def _token_expiry():
    _add_columns(ApiToken.expires_at)


def _nemo_workspaces():
    """NeMo's workspace API: ids and audit fields on workspaces and grants, the built-in
    `system` workspace, a `prompt` flag for filters, and adapter names unique per workspace."""
    _add_columns(Workspace.uuid, Workspace.last_updated_timestamp, Workspace.created_by,
                 Workspace.updated_by, Grant.granted_at, Grant.granted_by,
                 ModelEntityDetails.has_prompt, ModelAdapter.workspace)
    for (name,) in Workspace.select(Workspace.name).where(Workspace.uuid.is_null()).tuples():
        Workspace.update(uuid=str(uuid.uuid4())).where(Workspace.name == name).execute()
    Workspace.insert(name=SYSTEM_WORKSPACE, description="Platform-provided resources"
                     ).on_conflict_ignore().execute()
    for row in ModelEntityDetails.select(ModelEntityDetails.id, ModelEntityDetails.document):
        if json.loads(row.document or "{}").get("prompt") is not None:
            ModelEntityDetails.update(has_prompt=True).where(
                ModelEntityDetails.id == row.id).execute()
    _adapters_unique_per_workspace()


def _adapters_unique_per_workspace():
    # Names were unique per model; two models of one workspace may share one. The later ones
    # are renamed "<name>-<id>" (printed), since the unique index cannot be built otherwise.
    taken = set()
    rows = (ModelAdapter.select(ModelAdapter.id, ModelAdapter.name, RegisteredModel.workspace)
            .join(RegisteredModel).order_by(ModelAdapter.id).tuples())
    for adapter_id, name, workspace in rows:
        if (workspace, name) in taken:
            print(f"migration: adapter {name!r} in workspace {workspace!r} renamed "
                  f"{name}-{adapter_id} (adapter names are now unique per workspace)")
            name = f"{name}-{adapter_id}"
        taken.add((workspace, name))
        ModelAdapter.update(workspace=workspace, name=name).where(
            ModelAdapter.id == adapter_id).execute()
    table = ModelAdapter._meta.table_name
    for index in database.get_indexes(table):
        if index.columns == ["registered_model_id", "name"]:
            database.execute_sql(f'DROP INDEX "{index.name}"')
    ModelAdapter._schema.create_indexes(safe=True)


def _catalog():
    database.create_tables(CATALOG_MODELS)


# Append only: each entry runs once, in order, inside the upgrade transaction.
MIGRATIONS = [_initial_schema, _oci_columns_and_retry_tokens, _principals_and_grants,
              _model_entities, _retry_token_workspace, _ids_never_reused, _webhooks,
              _token_expiry, _nemo_workspaces, _catalog]


def current_version():
    """The schema version of the bound database (0 for an empty one)."""
    if not SchemaVersion.table_exists():
        return 0
    row = SchemaVersion.select().order_by(SchemaVersion.version.desc()).first()
    return row.version if row else 0


def upgrade():
    """Apply pending migrations; safe to run concurrently, returns the versions applied."""
    # SQLite rebuilds tables to change them; with foreign keys on, dropping the old copy
    # would cascade. The pragma cannot change inside a transaction, so it is set around it,
    # and the keys are checked before the commit.
    foreign_keys(False)
    try:
        with database.atomic():
            _lock()
            database.create_tables([SchemaVersion])
            start = current_version()
            for number, step in enumerate(MIGRATIONS[start:], start + 1):
                step()
                SchemaVersion.insert(version=number).execute()
            if is_sqlite() and database.execute_sql("PRAGMA foreign_key_check").fetchall():
                raise RuntimeError("the upgrade would break foreign keys; nothing was changed")
    finally:
        foreign_keys(True)
    return list(range(start + 1, len(MIGRATIONS) + 1))


def foreign_keys(on):
    """Turn SQLite's foreign-key enforcement on or off for this connection."""
    if is_sqlite():
        database.execute_sql(f"PRAGMA foreign_keys = {int(on)}")


def _lock():
    # SQLite's BEGIN IMMEDIATE already serialises writers; PostgreSQL needs an explicit lock
    # so two upgraders never both run CREATE TABLE.
    if not is_sqlite():
        database.execute_sql("SELECT pg_advisory_xact_lock(7215001)")

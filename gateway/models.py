"""Peewee models of the registry; constraints live in the database, not in Python."""
import time
import uuid

from peewee import (SQL, AutoField, BigIntegerField, BooleanField, CharField, ForeignKeyField,
                    IntegerField, Model, NodeList, SqliteDatabase, TextField)

from gateway.db import database

DEFAULT_WORKSPACE = "default"
# NeMo's built-in workspace for platform-provided resources: read-only but to platform admins.
SYSTEM_WORKSPACE = "system"
# MLflow keeps deleted versions as rows in this pseudo-stage, so numbers are never reused.
DELETED_STAGE = "Deleted_Internal"


def now_ms():
    """The current time in integer milliseconds, MLflow's timestamp unit."""
    return int(time.time() * 1000)


class NeverReusedId(AutoField):
    """An integer key never handed out twice, even after its row is deleted.

    PostgreSQL's sequences never reuse a value; SQLite reuses the largest rowid once its row
    is gone unless the key is AUTOINCREMENT. Retry tokens remember what they created by id,
    so a reused id would make a deleted model's token replay as if it still existed.
    """

    def ddl(self, ctx):
        nodes = super().ddl(ctx)
        if isinstance(self.model._meta.database.obj, SqliteDatabase):
            return NodeList((nodes, SQL("AUTOINCREMENT")))
        return nodes


class BaseModel(Model):
    class Meta:
        database = database
        legacy_table_names = False


class SchemaVersion(BaseModel):
    """The schema version the migrations have reached."""
    version = IntegerField()


class Workspace(BaseModel):
    """A tenant namespace; every registry row belongs to exactly one."""
    name = CharField(primary_key=True, max_length=63)
    description = TextField(null=True)
    default_artifact_root = TextField(null=True)
    creation_timestamp = BigIntegerField(default=now_ms)
    # What NeMo's workspace API adds (null on rows from before it: see services.workspaces).
    uuid = CharField(max_length=36, null=True, default=lambda: str(uuid.uuid4()))
    last_updated_timestamp = BigIntegerField(null=True)
    created_by = CharField(max_length=255, null=True)
    updated_by = CharField(max_length=255, null=True)


class RegisteredModel(BaseModel):
    """A named model; `last_version` is the highest version number ever handed out."""
    id = NeverReusedId()
    workspace = ForeignKeyField(Workspace, field=Workspace.name, column_name="workspace",
                                on_delete="CASCADE")
    name = CharField(max_length=256)
    description = TextField(default="")
    creation_timestamp = BigIntegerField(default=now_ms)
    last_updated_timestamp = BigIntegerField(default=now_ms)
    last_version = IntegerField(default=0)
    user_id = CharField(max_length=256, null=True)

    class Meta:
        indexes = ((("workspace", "name"), True),)


class ModelVersion(BaseModel):
    """One version of a registered model; deleted versions stay as DELETED_STAGE rows."""
    id = NeverReusedId()
    registered_model = ForeignKeyField(RegisteredModel, on_delete="CASCADE", backref="versions")
    version = IntegerField()
    creation_timestamp = BigIntegerField(default=now_ms)
    last_updated_timestamp = BigIntegerField(default=now_ms)
    description = TextField(default="")
    user_id = CharField(max_length=256, null=True)
    current_stage = CharField(max_length=20, default="None")
    source = TextField(default="")
    storage_location = TextField(null=True)
    run_id = CharField(max_length=32, default="")
    run_link = TextField(default="")
    model_id = CharField(max_length=64, null=True)
    status = CharField(max_length=20, default="READY")
    status_message = TextField(null=True)
    # The OCI workspace key a version was created through, if any.
    workspace_key = CharField(max_length=255, null=True)

    class Meta:
        indexes = (
            (("registered_model", "version"), True),
            (("last_updated_timestamp",), False),
        )


class RegisteredModelTag(BaseModel):
    registered_model = ForeignKeyField(RegisteredModel, on_delete="CASCADE", backref="tag_rows")
    key = CharField(max_length=250)
    value = TextField(default="")

    class Meta:
        indexes = ((("registered_model", "key"), True), (("key", "value"), False))


class ModelVersionTag(BaseModel):
    model_version = ForeignKeyField(ModelVersion, on_delete="CASCADE", backref="tag_rows")
    key = CharField(max_length=250)
    value = TextField(default="")

    class Meta:
        indexes = ((("model_version", "key"), True), (("key", "value"), False))


class ModelAlias(BaseModel):
    """An alias of a registered model pointing at exactly one of its versions."""
    registered_model = ForeignKeyField(RegisteredModel, on_delete="CASCADE", backref="alias_rows")
    alias = CharField(max_length=256)
    model_version = ForeignKeyField(ModelVersion, on_delete="CASCADE", backref="alias_rows")

    class Meta:
        indexes = ((("registered_model", "alias"), True),)


class ModelEntityDetails(BaseModel):
    """What a NeMo model entity adds to its registered model (one row at most per model)."""
    registered_model = ForeignKeyField(RegisteredModel, unique=True, on_delete="CASCADE",
                                       backref="details_rows")
    project = CharField(max_length=255, null=True)
    fileset = CharField(max_length=511, null=True)
    finetuning_type = CharField(max_length=32, null=True)
    base_model = CharField(max_length=511, null=True)
    backend_format = CharField(max_length=32, null=True)
    trust_remote_code = BooleanField(default=False)
    has_prompt = BooleanField(default=False)  # for NeMo's `prompt` filter
    # JSON: spec, api_endpoint, prompt, custom_fields, ownership, model_providers.
    document = TextField(default="{}")


class ModelAdapter(BaseModel):
    """A fine-tuning adapter trained against a model entity, named uniquely in its workspace
    (usually its model's; NeMo lets it name a model in another workspace it may read)."""
    registered_model = ForeignKeyField(RegisteredModel, on_delete="CASCADE", backref="adapters")
    workspace = CharField(max_length=63, null=True)  # null only before migration 9 fills it
    name = CharField(max_length=255)
    fileset = CharField(max_length=511)
    finetuning_type = CharField(max_length=32)
    description = TextField(null=True)
    enabled = BooleanField(default=True)
    lora_config = TextField(null=True)  # JSON {rank, alpha}
    created_at = BigIntegerField(default=now_ms)
    updated_at = BigIntegerField(default=now_ms)

    class Meta:
        indexes = ((("workspace", "name"), True),)


ENTITY_MODELS = [ModelEntityDetails, ModelAdapter]


class CatalogEntity(BaseModel):
    """An OpenMetadata entity of a workspace: an ML model service, or an ML model (then the
    gateway's registered model, whose name and description it shares). `document` holds the
    fields the caller set (JSON), the rest is computed; versions are tenths (0.1 = 1)."""
    id = CharField(primary_key=True, max_length=36)  # a UUID
    workspace = ForeignKeyField(Workspace, field=Workspace.name, column_name="workspace",
                                on_delete="CASCADE")
    kind = CharField(max_length=32)  # "mlmodelService" or "mlmodel"
    name = CharField(max_length=256)
    service = ForeignKeyField("self", null=True, on_delete="CASCADE", backref="members")
    registered_model = ForeignKeyField(RegisteredModel, null=True, unique=True,
                                       on_delete="CASCADE", backref="catalog_rows")
    document = TextField(default="{}")
    version = IntegerField(default=1)
    updated_at = BigIntegerField(default=now_ms)
    updated_by = CharField(max_length=255, null=True)
    deleted = BooleanField(default=False)
    change_description = TextField(null=True)  # JSON

    class Meta:
        indexes = ((("workspace", "kind", "name"), False),)


class CatalogVersion(BaseModel):
    """Every version of a catalog entity, as it was answered (JSON)."""
    entity = ForeignKeyField(CatalogEntity, on_delete="CASCADE", backref="versions")
    version = IntegerField()
    body = TextField()

    class Meta:
        indexes = ((("entity", "version"), True),)


CATALOG_MODELS = [CatalogEntity, CatalogVersion]


class RetryToken(BaseModel):
    """An opc-retry-token's claim and the answer its first request got."""
    caller = CharField(max_length=255)
    token = CharField(max_length=64)
    fingerprint = CharField(max_length=64)
    status = IntegerField(null=True)
    body = TextField(null=True)
    headers = TextField(null=True)
    resource_kind = CharField(max_length=32, null=True)
    resource_id = IntegerField(null=True)
    workspace = CharField(max_length=63, null=True)  # of the first request, for metrics
    created_at = BigIntegerField(default=now_ms)
    expires_at = BigIntegerField(index=True)

    class Meta:
        indexes = ((("caller", "token"), True),)


class Principal(BaseModel):
    """Someone (or something) that authenticates: a user or a service."""
    name = CharField(max_length=255, unique=True)
    # May name another acting user with dh-user-principal.
    can_act_for_others = BooleanField(default=False)
    password_hash = TextField(null=True)
    created_at = BigIntegerField(default=now_ms)


class ApiToken(BaseModel):
    """A bearer token; only its SHA-256 is kept. Its id names it for `gateway token revoke`."""
    principal = ForeignKeyField(Principal, on_delete="CASCADE", backref="tokens")
    digest = CharField(max_length=64, unique=True)
    created_at = BigIntegerField(default=now_ms)
    expires_at = BigIntegerField(null=True)  # None: never


class ApiKey(BaseModel):
    """An OCI API signing key: keyId is "<tenancy>/<user>/<fingerprint>"."""
    principal = ForeignKeyField(Principal, on_delete="CASCADE", backref="keys")
    key_id = CharField(max_length=512, unique=True)
    public_key = TextField()


class Grant(BaseModel):
    """A principal's role in a workspace ("*" for every workspace)."""
    principal = ForeignKeyField(Principal, on_delete="CASCADE", backref="grants")
    workspace = CharField(max_length=63)
    role = CharField(max_length=10)
    granted_at = BigIntegerField(null=True)
    granted_by = CharField(max_length=255, null=True)

    class Meta:
        indexes = ((("principal", "workspace"), True),)


class SeenSignature(BaseModel):
    """Signatures already accepted, so a captured signed request cannot be replayed."""
    digest = CharField(max_length=64, primary_key=True)
    expires_at = BigIntegerField(index=True)


AUTH_MODELS = [Principal, ApiToken, ApiKey, Grant, SeenSignature]

class Webhook(BaseModel):
    """A registry webhook (MLflow's), owned by a workspace; deleted ones are kept (soft)."""
    webhook_id = CharField(primary_key=True, max_length=36)
    workspace = ForeignKeyField(Workspace, field=Workspace.name, column_name="workspace",
                                on_delete="CASCADE")
    name = CharField(max_length=63)
    description = TextField(null=True)
    url = TextField()
    # Fernet-encrypted with WEBHOOK_SECRET_ENCRYPTION_KEY; never returned by the API.
    secret = TextField(null=True)
    status = CharField(max_length=20, default="ACTIVE")
    creation_timestamp = BigIntegerField(default=now_ms)
    last_updated_timestamp = BigIntegerField(default=now_ms)
    deleted_timestamp = BigIntegerField(null=True)


class WebhookSubscription(BaseModel):
    """One event (entity, action) a webhook is subscribed to."""
    webhook = ForeignKeyField(Webhook, on_delete="CASCADE", backref="subscriptions")
    entity = CharField(max_length=32)
    action = CharField(max_length=16)

    class Meta:
        indexes = ((("entity", "action"), False),)


class WebhookDelivery(BaseModel):
    """The outbox: one delivery of one event to one webhook, written in the same transaction as
    the change that raised it, and delivered at least once from here (gateway/delivery.py)."""
    delivery_id = CharField(primary_key=True, max_length=36)
    webhook = ForeignKeyField(Webhook, on_delete="CASCADE", backref="deliveries")
    workspace = CharField(max_length=63)
    event = CharField(max_length=64)  # "model_version.created"
    body = TextField()  # the exact JSON that is sent (and signed)
    status = CharField(max_length=16, default="pending")  # pending, delivered, failed
    attempts = IntegerField(default=0)
    next_attempt_at = BigIntegerField(default=now_ms)
    created_at = BigIntegerField(default=now_ms)
    delivered_at = BigIntegerField(null=True)
    last_status = IntegerField(null=True)
    last_error = TextField(null=True)

    class Meta:
        indexes = ((("status", "next_attempt_at"), False),)


WEBHOOK_MODELS = [Webhook, WebhookSubscription, WebhookDelivery]

REGISTRY_MODELS = [Workspace, RegisteredModel, ModelVersion, RegisteredModelTag,
                   ModelVersionTag, ModelAlias, RetryToken]

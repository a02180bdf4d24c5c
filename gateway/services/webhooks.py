"""Registry webhooks as MLflow 3.17.2 keeps them, and the events every face's changes raise.

CRUD, validation and messages follow MLflow's `sqlalchemy_store.py` (webhook section),
`entities/webhook.py` and `utils/validation.py`. Unlike MLflow, which hands deliveries to an
in-process thread pool after the change committed (a restart loses them), `emit` writes each
delivery to the outbox table in the transaction of the change that raised it: no event for a
rolled-back change, no change without its event. gateway/delivery.py sends them.
"""
import ipaddress
import json
import re
import socket
import threading
import uuid
from urllib.parse import urlparse
from dataclasses import dataclass, field
from datetime import datetime, timezone

from cryptography.fernet import Fernet, InvalidToken

from gateway import work
from gateway.db import prepared
from gateway.exceptions import InvalidParameter, NotFound
from gateway.models import Webhook, WebhookDelivery, WebhookSubscription, now_ms
from gateway.search import make_page_token, parse_page_token

# entities/webhook.py VALID_ENTITY_ACTIONS.
VALID_ACTIONS = {
    "registered_model": ("created",), "model_version": ("created",),
    "model_version_tag": ("set", "deleted"), "model_version_alias": ("created", "deleted"),
    "prompt": ("created",), "prompt_version": ("created",), "prompt_tag": ("set", "deleted"),
    "prompt_version_tag": ("set", "deleted"), "prompt_alias": ("created", "deleted"),
    "budget_policy": ("exceeded",),
}
ACTIONS = ("created", "updated", "deleted", "set", "exceeded")
STATUSES = ("ACTIVE", "DISABLED")
_NAME = re.compile(r"^(?=.{1,63}$)[a-z0-9]([a-z0-9._-]*[a-z0-9])?$", re.IGNORECASE)
_NAT64 = ipaddress.IPv6Network("64:ff9b::/96")


@dataclass(frozen=True)
class Settings:
    """The deployment's webhook policy (MLflow's MLFLOW_WEBHOOK_* settings)."""
    encryption_key: str | None = None
    allowed_schemes: tuple = ("https",)
    allow_private_ips: bool = False
    resolve: object = field(default=socket.getaddrinfo, compare=False)

    def cipher(self):
        return Fernet(self.encryption_key) if self.encryption_key else None


def event_name(entity, action):
    return f"{entity}.{action}"


def check_events(events):
    """[(entity, action)] in MLflow's lowercase spelling, or InvalidParameter."""
    if not events:
        raise InvalidParameter(f"Webhook events must be a non-empty list of WebhookEvent "
                               f"objects: {events}.")
    checked = []
    for entity, action in events:
        if entity not in VALID_ACTIONS:
            raise InvalidParameter(f"Invalid webhook event entity: {entity!r}.")
        if action not in ACTIONS:
            raise InvalidParameter(f"Invalid webhook event action: {action!r}.")
        if action not in VALID_ACTIONS[entity]:
            raise InvalidParameter(f"Invalid action '{action}' for entity '{entity}'. Valid "
                                   f"actions are: {sorted(VALID_ACTIONS[entity])}")
        if (entity, action) not in checked:
            checked.append((entity, action))
    return checked


def check_name(name):
    if not _NAME.fullmatch(name or ""):
        raise InvalidParameter(
            f"Webhook name {name!r} is invalid. It must start and end with a letter or digit, "
            "be less than 63 characters long, and contain only letters, digits, dots (.), "
            "underscores (_), and hyphens (-).")


def check_url(url, settings):
    """MLflow's `_validate_webhook_url`: an allowed scheme, a host, public addresses only."""
    if not (url or "").strip():
        raise InvalidParameter(f"Webhook URL cannot be empty or just whitespace: {url!r}")
    try:
        parsed = urlparse(url)
        hostname = parsed.hostname
    except ValueError as error:
        raise InvalidParameter(f"Invalid webhook URL {url!r}: {error!r}") from None
    if parsed.scheme not in settings.allowed_schemes:
        raise InvalidParameter(f"Invalid webhook URL scheme: {parsed.scheme!r}. Allowed schemes "
                               f"are: {', '.join(settings.allowed_schemes)}.")
    if not hostname:
        raise InvalidParameter(f"Webhook URL must include a hostname: {url!r}")
    if not settings.allow_private_ips:
        resolve_public(hostname, settings.resolve, "Webhook URL")


def resolve_public(hostname, resolve=socket.getaddrinfo, what="Webhook URL"):
    """The addresses a hostname resolves to; InvalidParameter if any is not public."""
    try:
        infos = resolve(hostname, None)
    except (OSError, UnicodeError, ValueError) as error:
        raise InvalidParameter(f"Cannot resolve {what} hostname {hostname!r}: {error}") from None
    addresses = []
    for info in infos:
        address = ipaddress.ip_address(info[4][0].split("%")[0])
        if not is_public(address):
            raise InvalidParameter(f"{what} must not resolve to a non-public IP address. "
                                   f"{hostname!r} resolves to {address}.")
        addresses.append(address)
    return addresses


def is_public(address):
    """MLflow's `_is_public_ip`: IPv6 forms that carry an IPv4 address are judged by it."""
    if isinstance(address, ipaddress.IPv6Address):
        embedded = address.ipv4_mapped or address.sixtofour
        if embedded is None and address in _NAT64:
            embedded = ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)
        address = embedded or address
    return address.is_global


def _encrypt(secret, settings):
    if secret is None:
        return None
    cipher = settings.cipher()
    if cipher is None:
        raise InvalidParameter("Webhook secrets are stored encrypted: set "
                               "GATEWAY_WEBHOOK_SECRET_ENCRYPTION_KEY (a Fernet key) on the "
                               "gateway to create a webhook with a secret.")
    return cipher.encrypt(secret.encode()).decode()


def secret_of(webhook, settings):
    """The plain secret of a webhook (for signing), or None."""
    if not webhook.secret:
        return None
    cipher = settings.cipher()
    if cipher is None:
        raise RuntimeError("GATEWAY_WEBHOOK_SECRET_ENCRYPTION_KEY is not set")
    try:
        return cipher.decrypt(webhook.secret.encode()).decode()
    except InvalidToken:
        raise RuntimeError("the webhook secret was encrypted with another key") from None


def not_found(webhook_id):
    return NotFound(f"Webhook with ID {webhook_id} not found.")


def find(workspace, webhook_id):
    webhook = Webhook.get_or_none(Webhook.webhook_id == webhook_id, Webhook.workspace == workspace,
                                  Webhook.deleted_timestamp.is_null())
    if webhook is None:
        raise not_found(webhook_id)
    webhook.events = [(s.entity, s.action) for s in
                      WebhookSubscription.select().where(WebhookSubscription.webhook == webhook_id)
                      .order_by(WebhookSubscription.id)]
    return webhook


def create(workspace, name, url, events, settings, description=None, secret=None,
           status=None):
    check_name(name)
    check_url(url, settings)
    events = check_events(events)
    status = _status(status) or "ACTIVE"
    now = now_ms()
    webhook_id = str(uuid.uuid4())
    with work.write():
        Webhook.create(webhook_id=webhook_id, workspace=workspace, name=name,
                       description=description or None, url=url,
                       secret=_encrypt(secret or None, settings), status=status,
                       creation_timestamp=now, last_updated_timestamp=now)
        _subscribe(webhook_id, events)
    return find(workspace, webhook_id)


def _subscribe(webhook_id, events):
    WebhookSubscription.insert_many([{"webhook": webhook_id, "entity": entity, "action": action}
                                     for entity, action in events]).execute()


def _status(status):
    if status is None:
        return None
    if status not in STATUSES:
        raise InvalidParameter(f"Invalid webhook status: {status!r}. Valid statuses are: "
                               f"{', '.join(STATUSES)}.")
    return status


def list_page(workspace, max_results=None, page_token=None):
    """A page of live webhooks, newest first, and the next page's token."""
    max_results = max_results or 100
    if max_results < 1 or max_results > 1000:
        raise InvalidParameter("max_results must be between 1 and 1000.")
    offset = parse_page_token(page_token)
    ids = [row.webhook_id for row in Webhook.select(Webhook.webhook_id).where(
        Webhook.workspace == workspace, Webhook.deleted_timestamp.is_null())
        .order_by(Webhook.creation_timestamp.desc(), Webhook.webhook_id)
        .offset(offset).limit(max_results + 1)]
    token = make_page_token(offset + max_results) if len(ids) > max_results else None
    return [find(workspace, webhook_id) for webhook_id in ids[:max_results]], token


def update(workspace, webhook_id, settings, name=None, description=None, url=None,
           events=None, secret=None, status=None):
    """Change what is given (None = leave as is), as MLflow's update_webhook."""
    with work.write():
        webhook = find(workspace, webhook_id)
        changes = {}
        if name is not None:
            check_name(name)
            changes["name"] = name
        if url is not None:
            check_url(url, settings)
            changes["url"] = url
        if events is not None:
            events = check_events(events)
            WebhookSubscription.delete().where(
                WebhookSubscription.webhook == webhook_id).execute()
            _subscribe(webhook_id, events)
        if description is not None:
            changes["description"] = description
        if secret is not None:
            changes["secret"] = _encrypt(secret, settings) if secret else None
        if status is not None:
            changes["status"] = _status(status)
        changes["last_updated_timestamp"] = now_ms()
        Webhook.update(changes).where(Webhook.webhook_id == webhook.webhook_id).execute()
    return find(workspace, webhook_id)


def delete(workspace, webhook_id):
    """Soft delete, as MLflow; its pending deliveries are dropped."""
    with work.write():
        find(workspace, webhook_id)
        now = now_ms()
        Webhook.update(deleted_timestamp=now, last_updated_timestamp=now).where(
            Webhook.webhook_id == webhook_id).execute()
        WebhookDelivery.delete().where(WebhookDelivery.webhook == webhook_id,
                                       WebhookDelivery.status == "pending").execute()


def body(workspace, entity, action, data):
    """The JSON body MLflow's delivery sends (workspaces on: the workspace is named)."""
    return json.dumps({"entity": entity, "action": action,
                       "timestamp": datetime.now(timezone.utc).isoformat(), "data": data,
                       "workspace": workspace})


_queued = threading.local()
# Runs inside every registry write: compiled once (see db.prepared), not per call.
_subscribed = prepared(lambda workspace, entity, action: (
    Webhook.select(Webhook.webhook_id).join(WebhookSubscription)
    .where(Webhook.workspace == workspace, Webhook.deleted_timestamp.is_null(),
           Webhook.status == "ACTIVE", WebhookSubscription.entity == entity,
           WebhookSubscription.action == action)), rows="tuples")


def take_queued():
    """Whether this thread queued deliveries since the last call (then the deliverer is woken)."""
    queued = getattr(_queued, "flag", False)
    _queued.flag = False
    return queued


def emit(workspace, entity, action, data):
    """Queue the event for every active webhook of the workspace subscribed to it.

    Call inside the transaction of the change: the deliveries commit (or roll back) with it.
    Returns how many deliveries were queued.
    """
    hooks = [webhook_id for webhook_id, in _subscribed(workspace, entity, action)]
    if not hooks:
        return 0
    text = body(workspace, entity, action, data)
    now = now_ms()
    WebhookDelivery.insert_many([
        {"delivery_id": str(uuid.uuid4()), "webhook": webhook_id, "workspace": workspace,
         "event": event_name(entity, action), "body": text, "created_at": now,
         "next_attempt_at": now} for webhook_id in hooks]).execute()
    _queued.flag = True
    return len(hooks)


PROMPT_TAG, PROMPT_TYPE_TAG, PROMPT_TEXT_TAG = ("mlflow.prompt.is_prompt", "_mlflow_prompt_type",
                                                "mlflow.prompt.text")


def is_prompt_request(tags):
    """MLflow's `_is_prompt_request`: the request's own is_prompt tag says "true"."""
    return (tags.get(PROMPT_TAG) or "false").lower() == "true"


def _prompt_tags(tags):
    """A prompt's tags as MLflow's prompt payloads show them: without the marker tags."""
    return {k: v for k, v in tags.items() if k not in (PROMPT_TAG, PROMPT_TYPE_TAG)}


def model_created(workspace, name, tags, description):
    """registered_model.created, or prompt.created for a prompt (as MLflow's handler)."""
    if is_prompt_request(tags):
        return emit(workspace, "prompt", "created",
                    {"name": name, "tags": _prompt_tags(tags), "description": description})
    return emit(workspace, "registered_model", "created",
                {"name": name, "tags": dict(tags), "description": description})


def version_created(workspace, name, version, source, run_id, tags, description):
    """model_version.created, or prompt_version.created with the prompt's template."""
    if is_prompt_request(tags):
        shown = _prompt_tags(tags)
        template = shown.pop(PROMPT_TEXT_TAG, None)
        return emit(workspace, "prompt_version", "created",
                    {"name": name, "version": str(version), "template": template, "tags": shown,
                     "description": description or None})
    return emit(workspace, "model_version", "created",
                {"name": name, "version": str(version), "source": source,
                 "run_id": run_id or None, "tags": dict(tags),
                 "description": description or None})


# mlflow/webhooks/types.py: the example payload `test_webhook` sends for each event.
EXAMPLES = {
    ("registered_model", "created"): {"name": "example_model",
                                      "tags": {"example_key": "example_value"},
                                      "description": "An example registered model"},
    ("model_version", "created"): {"name": "example_model", "version": "1",
                                   "source": "models:/123", "run_id": "abcd1234abcd5678",
                                   "tags": {"example_key": "example_value"},
                                   "description": "An example model version"},
    ("model_version_tag", "set"): {"name": "example_model", "version": "1",
                                   "key": "example_key", "value": "example_value"},
    ("model_version_tag", "deleted"): {"name": "example_model", "version": "1",
                                       "key": "example_key"},
    ("model_version_alias", "created"): {"name": "example_model", "alias": "example_alias",
                                         "version": "1"},
    ("model_version_alias", "deleted"): {"name": "example_model", "alias": "example_alias"},
    ("prompt", "created"): {"name": "example_prompt", "tags": {"example_key": "example_value"},
                            "description": "An example prompt"},
    ("prompt_version", "created"): {"name": "example_prompt", "version": "1",
                                    "template": "Hello {{name}}!",
                                    "tags": {"example_key": "example_value"},
                                    "description": "An example prompt version"},
    ("prompt_tag", "set"): {"name": "example_prompt", "key": "example_key",
                            "value": "example_value"},
    ("prompt_tag", "deleted"): {"name": "example_prompt", "key": "example_key"},
    ("prompt_version_tag", "set"): {"name": "example_prompt", "version": "1",
                                    "key": "example_key", "value": "example_value"},
    ("prompt_version_tag", "deleted"): {"name": "example_prompt", "version": "1",
                                        "key": "example_key"},
    ("prompt_alias", "created"): {"name": "example_prompt", "alias": "example_alias",
                                  "version": "1"},
    ("prompt_alias", "deleted"): {"name": "example_prompt", "alias": "example_alias"},
    ("budget_policy", "exceeded"): {
        "budget_policy_id": "bp-abc123", "budget_unit": "USD", "budget_amount": 100.0,
        "current_spend": 105.5, "duration_unit": "MONTHS", "duration_value": 1,
        "target_scope": "ENDPOINT", "workspace": "default", "target_value": "ep-abc123",
        "window_start": 1704067200000},
}


def deliveries(status=None, workspace=None, limit=100):
    """The outbox, newest first (for `gateway webhooks deliveries`)."""
    query = WebhookDelivery.select().order_by(WebhookDelivery.created_at.desc()).limit(limit)
    if status:
        query = query.where(WebhookDelivery.status == status)
    if workspace:
        query = query.where(WebhookDelivery.workspace == workspace)
    return list(query)


def retry(delivery_id):
    """Queue a delivery again (a failed one, after the receiver was fixed)."""
    with work.write():
        updated = WebhookDelivery.update(status="pending", attempts=0, next_attempt_at=now_ms(),
                                         last_error=None).where(
            WebhookDelivery.delivery_id == delivery_id).execute()
    if not updated:
        raise NotFound(f"Webhook delivery {delivery_id} not found.")

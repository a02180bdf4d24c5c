"""Webhook delivery from the outbox: at least once, across restarts, kill -9 and nodes.

Every gateway worker runs one delivery thread (`init_app`). A pass claims due deliveries in
a short transaction (PostgreSQL: `FOR UPDATE SKIP LOCKED`, so workers and nodes never take the
same row; SQLite: the write lock), by moving their next attempt a lease into the future, then
sends each outside any transaction and records the outcome. A worker that dies mid-send leaves
its rows to come due again when the lease ends: they are sent again with the same delivery id,
which receivers use as their idempotency key. Failures back off exponentially and, after
WEBHOOK_MAX_ATTEMPTS, stay in the outbox as `failed` for inspection
(`gateway webhooks deliveries`).

What is sent is what MLflow 3.17.2's `mlflow/webhooks/delivery.py` sends: the stored JSON
body, `X-MLflow-Delivery-Id`, `X-MLflow-Timestamp` and, with a secret, `X-MLflow-Signature`
(`v1,` + base64 HMAC-SHA256 of "<delivery id>.<timestamp>.<body>"). Connections are made with
requests, through an adapter that refuses non-public peers at connect time (SSRF, DNS
rebinding) unless WEBHOOK_ALLOW_PRIVATE_IPS is set.
"""
import base64
import hashlib
import hmac
import ipaddress
import logging
import threading
import time
import uuid

import requests
from flask import current_app
from requests.adapters import HTTPAdapter
from urllib3.connection import HTTPConnection, HTTPSConnection
from urllib3.connectionpool import HTTPConnectionPool, HTTPSConnectionPool

from gateway.db import database, is_sqlite
from gateway.models import Webhook, WebhookDelivery, now_ms
from gateway.services import webhooks

log = logging.getLogger(__name__)
_CLAIM_BATCH = 20


def init_app(app):
    """Prepare this process's delivery thread (unless WEBHOOK_DELIVERY is off, as in tests).

    create_app never touches the database, so the thread is started by the server entry
    points (`start`: wsgi.py, `gateway serve`, gateway/asgi.py) or else at the first request.
    """
    settings = settings_of(app.config)
    app.extensions["webhook_settings"] = settings
    app.extensions["webhook_deliverer"] = None
    if _flag(app.config["WEBHOOK_DELIVERY"]):
        app.extensions["webhook_deliverer"] = Deliverer(app, settings)


def start(app):
    """Start the app's delivery thread if it has one and it is not running yet."""
    worker = app.extensions.get("webhook_deliverer")
    if worker is not None and not worker.started:
        with worker.starting:
            if not worker.started:
                worker.started = True
                worker.start()


def wake_if_queued():
    """After the request's transaction ended: deliver what it queued without waiting a poll."""
    if webhooks.take_queued():
        wake(current_app)


def settings_of(config):
    return webhooks.Settings(
        encryption_key=config["WEBHOOK_SECRET_ENCRYPTION_KEY"] or None,
        allowed_schemes=tuple(config["WEBHOOK_ALLOWED_SCHEMES"]),
        allow_private_ips=_flag(config["WEBHOOK_ALLOW_PRIVATE_IPS"]))


def _flag(value):
    return value is True or str(value).lower() in ("1", "true", "yes")


def wake(app):
    """Ask this process's delivery thread to look at the outbox now (after a commit)."""
    worker = app.extensions.get("webhook_deliverer")
    if worker is not None:
        worker.wake.set()


class Deliverer(threading.Thread):
    """One process's delivery loop: a pass when woken, and at least every POLL seconds."""

    def __init__(self, app, settings):
        super().__init__(daemon=True, name="webhook-delivery")
        self.app, self.settings = app, settings
        self.wake, self.stopped = threading.Event(), threading.Event()
        self.started, self.starting = False, threading.Lock()

    def run(self):
        poll = float(self.app.config["WEBHOOK_POLL_SECONDS"])
        while not self.stopped.is_set():
            try:
                with self.app.app_context():
                    deliver_due(self.app.config, self.settings)
            except Exception:  # the database is down, say: try again at the next poll
                log.warning("webhook delivery pass failed", exc_info=True)
            finally:
                _close_quietly()
            self.wake.wait(poll)
            self.wake.clear()

    def stop(self):
        self.stopped.set()
        self.wake.set()


def _close_quietly():
    try:
        if not database.is_closed():
            database.close()
    except Exception:  # nothing to keep
        pass


def deliver_due(config, settings, session=None):
    """One pass: claim what is due, send it, record what happened. Returns how many were sent."""
    lease_ms = int((float(config["WEBHOOK_REQUEST_TIMEOUT"]) * 2 + 10) * 1000)
    claimed = _claim(lease_ms)
    if not claimed:
        return 0
    session = session or public_session(settings)
    for delivery in claimed:
        _attempt(delivery, config, settings, session)
    return len(claimed)


def _claim(lease_ms):
    now = now_ms()
    with database.atomic():
        due = (WebhookDelivery.select(WebhookDelivery.delivery_id)
               .where(WebhookDelivery.status == "pending", WebhookDelivery.next_attempt_at <= now)
               .order_by(WebhookDelivery.next_attempt_at).limit(_CLAIM_BATCH))
        if not is_sqlite():
            due = due.for_update(skip_locked=True)
        ids = [row.delivery_id for row in due]
        if not ids:
            return []
        WebhookDelivery.update(next_attempt_at=now + lease_ms,
                               attempts=WebhookDelivery.attempts + 1).where(
            WebhookDelivery.delivery_id.in_(ids)).execute()
        return list(WebhookDelivery.select().where(WebhookDelivery.delivery_id.in_(ids)))


def _attempt(delivery, config, settings, session):
    webhook = Webhook.get_or_none(Webhook.webhook_id == delivery.webhook_id)
    if webhook is None or webhook.deleted_timestamp is not None:
        _record(delivery, "failed", error="the webhook was deleted")
        return
    try:
        response = send(webhook, delivery.delivery_id, delivery.body, settings, session,
                        float(config["WEBHOOK_REQUEST_TIMEOUT"]))
    except Exception as error:  # connection refused, timeout, refused peer, bad secret key
        retryable = not isinstance(error, (NonPublicPeer, RuntimeError))
        _fail(delivery, config, None, f"{type(error).__name__}: {error}", retryable)
        return
    if response.status_code < 400:
        _record(delivery, "delivered", status_code=response.status_code,
                delivered_at=now_ms())
    else:
        retryable = response.status_code in (408, 429) or response.status_code >= 500
        _fail(delivery, config, response.status_code, response.text[:1000], retryable)


def _fail(delivery, config, status, error, retryable):
    if retryable and delivery.attempts < int(config["WEBHOOK_MAX_ATTEMPTS"]):
        backoff = min(float(config["WEBHOOK_BACKOFF_SECONDS"]) * 2 ** (delivery.attempts - 1),
                      float(config["WEBHOOK_MAX_BACKOFF_SECONDS"]))
        _record(delivery, "pending", status_code=status, error=error,
                next_attempt_at=now_ms() + int(backoff * 1000))
    else:
        _record(delivery, "failed", status_code=status, error=error)
    log.warning("webhook delivery %s to %s failed (attempt %d): %s", delivery.delivery_id,
                delivery.webhook_id, delivery.attempts, error)


def _record(delivery, state, status_code=None, error=None, **fields):
    fields.update(status=state, last_error=error)
    if status_code is not None:
        fields["last_status"] = status_code
    with database.atomic():
        WebhookDelivery.update(fields).where(
            WebhookDelivery.delivery_id == delivery.delivery_id).execute()


def signature(secret, delivery_id, timestamp, body):
    """MLflow's `_generate_hmac_signature`."""
    digest = hmac.new(secret.encode(), f"{delivery_id}.{timestamp}.{body}".encode(),
                      hashlib.sha256).digest()
    return "v1," + base64.b64encode(digest).decode()


def send(webhook, delivery_id, body, settings, session, timeout):
    """POST one delivery as MLflow does; returns the response."""
    webhooks.check_url(webhook.url, settings)
    timestamp = str(int(time.time()))
    headers = {"Content-Type": "application/json", "X-MLflow-Delivery-Id": delivery_id,
               "X-MLflow-Timestamp": timestamp}
    secret = webhooks.secret_of(webhook, settings)
    if secret:
        headers["X-MLflow-Signature"] = signature(secret, delivery_id, timestamp, body)
    return session.post(webhook.url, data=body.encode(), headers=headers, timeout=timeout)


def test(webhook, event, config, settings):
    """MLflow's `test_webhook`: send the event's example payload now; a result dict."""
    entity, action = event or webhook.events[0]
    try:
        response = send(webhook, str(uuid.uuid4()),
                        webhooks.body(webhook.workspace_id, entity, action,
                                      webhooks.EXAMPLES[(entity, action)]),
                        settings, public_session(settings),
                        float(config["WEBHOOK_REQUEST_TIMEOUT"]))
    except Exception as error:  # reported to the caller, as MLflow does
        return {"success": False, "error_message": f"Failed to test webhook: {error!r}"}
    return {"success": response.status_code < 400, "response_status": response.status_code,
            "response_body": response.text}


class NonPublicPeer(Exception):
    """The connection reached an address that is not public (never retried)."""


def _check_peer(sock, allow_private):
    if allow_private:
        return
    try:
        address = ipaddress.ip_address(sock.getpeername()[0].split("%")[0])
    except (OSError, ValueError) as error:
        sock.close()
        raise NonPublicPeer(f"Could not determine webhook connection peer address: {error}")
    if not webhooks.is_public(address):
        sock.close()
        raise NonPublicPeer(f"Webhook connection blocked: {address} is not a public IP "
                            "address. This may indicate a DNS rebinding attempt.")


def public_session(settings):
    """A requests session whose connections are checked at connect time (as MLflow's)."""
    allow = settings.allow_private_ips

    class Checked(HTTPConnection):
        def _new_conn(self):
            sock = super()._new_conn()
            _check_peer(sock, allow)
            return sock

    class CheckedTLS(HTTPSConnection):
        def _new_conn(self):
            sock = super()._new_conn()
            _check_peer(sock, allow)
            return sock

    class Pool(HTTPConnectionPool):
        ConnectionCls = Checked

    class TLSPool(HTTPSConnectionPool):
        ConnectionCls = CheckedTLS

    class Adapter(HTTPAdapter):
        def init_poolmanager(self, *args, **kwargs):
            super().init_poolmanager(*args, **kwargs)
            self.poolmanager.pool_classes_by_scheme = {"http": Pool, "https": TLSPool}

    session = requests.Session()
    session.trust_env = False  # a proxy would be the peer checked, not the receiver
    session.mount("http://", Adapter())
    session.mount("https://", Adapter())
    return session

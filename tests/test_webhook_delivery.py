"""Webhook delivery from the outbox: kill -9, leases, back-off, the rolled-back change,
encryption at rest and request validation. (Apart from tests/test_webhooks.py, whose shared
server would otherwise deliver this module's events on a shared PostgreSQL database.)"""
import sys
import time

import pytest

from gateway import delivery
from gateway.db import database
from gateway.models import WebhookDelivery
from gateway.services import registered_models, webhooks
from mlflow import MlflowClient
from tests import processes
from tests.conftest import POSTGRES_URL, Api, Server, make_app, oci_root
from tests.test_webhooks import KEY, SERVER_ENV
from tests.webhook_receiver import SECRET

pytestmark = pytest.mark.server


def test_a_delivery_queued_before_kill_9_is_sent_after_the_restart(tmp_path, receiver):
    url = POSTGRES_URL or f"sqlite:///{tmp_path / 'crash.db'}"
    command = [sys.executable, "-m", "gunicorn", "-w", "2", "-b", "127.0.0.1:{port}", "wsgi:app"]
    # Delivery off: the change and its queued event are committed, and nothing is sent yet.
    first = Server(url, env={**SERVER_ENV, "GATEWAY_WEBHOOK_DELIVERY": "false"}, command=command)
    try:
        client = MlflowClient(tracking_uri=first.url, registry_uri=first.url)
        client.create_webhook(name="crash-hook", url=f"{receiver.url}/crash",
                              events=["registered_model.created"], secret=SECRET)
        client.create_registered_model("survivor")
    finally:
        first.kill()
    assert receiver.events("/crash") == []
    second = Server(url, env=SERVER_ENV, command=command)
    try:
        got = receiver.wait_for(1, "/crash")
        time.sleep(1)
        assert len(receiver.events("/crash")) == 1
        assert got[0]["signed"] and got[0]["body"]["data"]["name"] == "survivor"
    finally:
        second.stop()


# In-process: the outbox's transaction, leases, back-off, validation.

SETTINGS = webhooks.Settings(encryption_key=KEY, allowed_schemes=("http", "https"),
                             allow_private_ips=True)
CONFIG = {"WEBHOOK_REQUEST_TIMEOUT": 5, "WEBHOOK_MAX_ATTEMPTS": 2,
          "WEBHOOK_BACKOFF_SECONDS": 0.05, "WEBHOOK_MAX_BACKOFF_SECONDS": 1}


@pytest.fixture
def outbox(db):
    return db


def test_no_event_for_a_rolled_back_change(outbox, receiver):
    webhooks.create("default", "h", f"{receiver.url}/x", [("registered_model", "created")],
                    SETTINGS)
    with pytest.raises(RuntimeError), database.atomic():
        registered_models.create("default", "rolled-back")
        raise RuntimeError("the request failed after the change")
    assert WebhookDelivery.select().count() == 0
    registered_models.create("default", "kept")
    assert WebhookDelivery.select().count() == 1


def test_a_claim_that_never_finished_is_sent_again_with_the_same_id(outbox, receiver):
    webhooks.create("default", "h", f"{receiver.url}/lease", [("registered_model", "created")],
                    SETTINGS)
    registered_models.create("default", "m")
    [claimed] = delivery._claim(lease_ms=200)  # a worker took it, then died
    assert delivery._claim(lease_ms=200) == []  # nobody else takes it during the lease
    time.sleep(0.3)
    assert delivery.deliver_due({**CONFIG}, SETTINGS) == 1
    [sent] = receiver.wait_for(1, "/lease")
    assert sent["id"] == claimed.delivery_id
    assert WebhookDelivery.get().status == "delivered"


def test_failed_deliveries_back_off_and_are_kept_for_inspection(outbox, receiver):
    receiver.status = 500
    webhooks.create("default", "h", f"{receiver.url}/down", [("registered_model", "created")],
                    SETTINGS)
    registered_models.create("default", "m")
    assert delivery.deliver_due(CONFIG, SETTINGS) == 1
    row = WebhookDelivery.get()
    assert (row.status, row.attempts, row.last_status) == ("pending", 1, 500)
    assert delivery.deliver_due(CONFIG, SETTINGS) == 0  # backing off
    processes.wait_for(lambda: delivery.deliver_due(CONFIG, SETTINGS), 10, "the retry")
    row = WebhookDelivery.get()
    assert (row.status, row.attempts) == ("failed", 2)
    assert [d.delivery_id for d in webhooks.deliveries("failed")] == [row.delivery_id]
    assert len(receiver.events("/down")) == 2
    webhooks.retry(row.delivery_id)
    receiver.status = 200
    assert delivery.deliver_due(CONFIG, SETTINGS) == 1
    assert WebhookDelivery.get().status == "delivered"


def test_secrets_are_encrypted_at_rest(outbox):
    hook = webhooks.create("default", "h", "https://example.com/x",
                           [("registered_model", "created")], SETTINGS, secret=SECRET)
    assert SECRET not in hook.secret and webhooks.secret_of(hook, SETTINGS) == SECRET


def test_webhook_requests_are_checked_as_mlflow_checks_them(database_url):
    api = Api(make_app(database_url, WEBHOOK_SECRET_ENCRYPTION_KEY=KEY).test_client())

    def create(**fields):
        # A public address literal: nothing to resolve (the test machine has no DNS).
        body = {"name": "h", "url": "https://93.184.216.34/hook",
                "events": [{"entity": "MODEL_VERSION", "action": "CREATED"}], **fields}
        return api.post("webhooks", json=body)

    for fields, message in (
            ({"url": "http://93.184.216.34/hook"},
             "Invalid webhook URL scheme: 'http'. Allowed schemes are: https."),
            ({"url": "https://127.0.0.1/hook"}, "must not resolve to a non-public IP address"),
            ({"url": "https://10.1.2.3/hook"}, "must not resolve to a non-public IP address"),
            ({"url": "https://[::ffff:169.254.169.254]/hook"},
             "must not resolve to a non-public IP address"),
            ({"name": "-bad"}, "Webhook name '-bad' is invalid."),
            ({"events": []}, "Webhook events must be a non-empty list"),
            ({"events": [{"entity": "MODEL_VERSION", "action": "SET"}]},
             "Invalid action 'set' for entity 'model_version'."),
            ({"events": [{"entity": "NOT_AN_ENTITY", "action": "SET"}]}, "events"),
            ({"status": "PAUSED"}, "status")):
        answer = create(**fields)
        assert answer.status_code == 400, (fields, answer.json)
        assert answer.json["error_code"] == "INVALID_PARAMETER_VALUE"
        assert message in answer.json["message"], answer.json
    missing = api.get("webhooks/nope")
    assert missing.status_code == 404
    assert missing.json == {"error_code": "RESOURCE_DOES_NOT_EXIST",
                            "message": "Webhook with ID nope not found."}
    assert api.get("webhooks", query_string={"max_results": 1001}).json["message"] == (
        "max_results must be between 1 and 1000.")


def test_webhooks_belong_to_their_workspace_and_every_root_serves_them(database_url):
    client = make_app(database_url, WEBHOOK_ALLOW_PRIVATE_IPS=True).test_client()
    api, oci = Api(client), Api(client, oci_root("ocid1.p..hooks"))
    body = {"name": "h", "url": "https://example.com/hook",
            "events": [{"entity": "REGISTERED_MODEL", "action": "CREATED"}]}
    made = api.post("webhooks", json=body).json["webhook"]
    assert set(made) == {"webhook_id", "name", "url", "events", "status", "creation_timestamp",
                         "last_updated_timestamp"}
    assert made["events"] == [{"entity": "REGISTERED_MODEL", "action": "CREATED"}]
    assert oci.get(f"webhooks/{made['webhook_id']}").status_code == 404  # another tenant
    assert oci.post("webhooks", json=body).status_code == 200
    assert len(api.get("webhooks").json["webhooks"]) == 1
    assert Api(client, "/ajax-api/2.0/mlflow").get(f"webhooks/{made['webhook_id']}"
                                                   ).status_code == 200


def test_the_cli_lists_deliveries(database_url, monkeypatch, receiver):
    from click.testing import CliRunner

    from gateway.cli import main
    app = make_app(database_url)
    with app.app_context(), database.connection_context():
        webhooks.create("default", "h", f"{receiver.url}/cli", [("registered_model", "created")],
                        SETTINGS)
        registered_models.create("default", "m")
    monkeypatch.setenv("GATEWAY_DATABASE_URL", database_url)
    listed = CliRunner().invoke(main, ["webhooks", "deliveries", "--status", "pending"])
    assert listed.exit_code == 0, listed.output
    assert "registered_model.created" in listed.output and "pending" in listed.output


def test_prompt_changes_raise_prompt_events(database_url):
    import json as jsonlib
    client = make_app(database_url, WEBHOOK_SECRET_ENCRYPTION_KEY=KEY,
                      WEBHOOK_ALLOW_PRIVATE_IPS=True).test_client()
    api = Api(client)
    events = [{"entity": entity, "action": action} for entity, action in (
        ("PROMPT", "CREATED"), ("PROMPT_VERSION", "CREATED"), ("PROMPT_TAG", "SET"),
        ("PROMPT_VERSION_TAG", "SET"), ("PROMPT_ALIAS", "CREATED"),
        ("REGISTERED_MODEL", "CREATED"), ("MODEL_VERSION", "CREATED"))]
    assert api.post("webhooks", json={"name": "p", "url": "https://93.184.216.34/hook",
                                      "events": events}).status_code == 200
    prompt = [{"key": "mlflow.prompt.is_prompt", "value": "true"}]
    api.post("registered-models/create", json={"name": "greeting", "tags": prompt})
    api.post("model-versions/create", json={
        "name": "greeting", "source": "dummy-source",
        "tags": prompt + [{"key": "mlflow.prompt.text", "value": "Hello {{name}}!"}]})
    api.post("registered-models/set-tag", json={"name": "greeting", "key": "k", "value": "v"})
    api.post("model-versions/set-tag", json={"name": "greeting", "version": "1", "key": "k",
                                             "value": "v"})
    api.post("registered-models/alias", json={"name": "greeting", "alias": "live",
                                              "version": "1"})
    with client.application.app_context(), database.connection_context():
        bodies = {(b["entity"], b["action"]): b["data"] for b in
                  (jsonlib.loads(row.body) for row in WebhookDelivery.select())}
    assert sorted(bodies) == [("prompt", "created"), ("prompt_alias", "created"),
                              ("prompt_tag", "set"), ("prompt_version", "created"),
                              ("prompt_version_tag", "set")]
    assert bodies[("prompt", "created")] == {"name": "greeting", "tags": {}, "description": ""}
    assert bodies[("prompt_version", "created")] == {
        "name": "greeting", "version": "1", "template": "Hello {{name}}!", "tags": {},
        "description": None}

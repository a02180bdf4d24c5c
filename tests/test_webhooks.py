"""Registry webhooks: the unmodified MLflow client drives the API over real HTTP, a real
receiver checks MLflow's signature, and deliveries survive kill -9 (the outbox)."""
import sys
import time
from concurrent.futures import ThreadPoolExecutor

import pytest
import requests
from cryptography.fernet import Fernet
from mlflow import MlflowClient
from mlflow.entities.webhook import WebhookEvent, WebhookStatus
from mlflow.exceptions import MlflowException

from tests.webhook_receiver import SECRET
from tests.conftest import MLFLOW_ROOT, POSTGRES_URL, Server

pytestmark = pytest.mark.server
KEY = Fernet.generate_key().decode()
SERVER_ENV = {"GATEWAY_WEBHOOK_SECRET_ENCRYPTION_KEY": KEY,
              "GATEWAY_WEBHOOK_ALLOWED_SCHEMES": '["http", "https"]',
              "GATEWAY_WEBHOOK_ALLOW_PRIVATE_IPS": "true", "GATEWAY_WEBHOOK_POLL_SECONDS": "0.2"}


@pytest.fixture(scope="module")
def hook_server(tmp_path_factory):
    url = POSTGRES_URL or f"sqlite:///{tmp_path_factory.mktemp('hooks') / 'gateway.db'}"
    server = Server(url, workers=2, env=SERVER_ENV,
                    command=[sys.executable, "-m", "gunicorn", "-w", "2", "-b",
                             "127.0.0.1:{port}", "wsgi:app"])
    yield server
    server.stop()


def test_the_mlflow_client_drives_every_webhook_method(hook_server, receiver, unique):
    client = MlflowClient(tracking_uri=hook_server.url, registry_uri=hook_server.url)
    hook = client.create_webhook(name=f"{unique}-hook", url=f"{receiver.url}/a",
                                 events=["model_version.created", "registered_model.created"],
                                 description="to the receiver", secret=SECRET)
    assert hook.status == WebhookStatus.ACTIVE and hook.secret is None
    assert [str(e) for e in hook.events] == ["model_version.created", "registered_model.created"]
    got = client.get_webhook(hook.webhook_id)
    assert (got.name, got.url, got.description) == (f"{unique}-hook", f"{receiver.url}/a",
                                                    "to the receiver")
    assert hook.webhook_id in [w.webhook_id for w in client.list_webhooks()]
    updated = client.update_webhook(hook.webhook_id, description="changed",
                                    events=[WebhookEvent("model_version_tag", "set")],
                                    status="DISABLED")
    assert updated.description == "changed" and updated.status == WebhookStatus.DISABLED
    assert [str(e) for e in updated.events] == ["model_version_tag.set"]
    client.update_webhook(hook.webhook_id, status="ACTIVE",
                          events=["model_version.created", "registered_model.created"])
    result = client.test_webhook(hook.webhook_id, event="registered_model.created")
    assert result.success and result.response_status == 200 and result.response_body == "received"
    tested = receiver.wait_for(1, "/a")[0]
    assert tested["signed"] and tested["body"]["data"]["name"] == "example_model"
    client.delete_webhook(hook.webhook_id)
    with pytest.raises(MlflowException, match=f"Webhook with ID {hook.webhook_id} not found."):
        client.get_webhook(hook.webhook_id)
    # The raw answer never carries the secret.
    raw = requests.get(f"{hook_server.url}{MLFLOW_ROOT}/webhooks", timeout=30).text
    assert SECRET not in raw


def test_events_from_every_face_are_delivered_signed_to_their_workspace_only(
        hook_server, receiver, unique):
    client = MlflowClient(tracking_uri=hook_server.url, registry_uri=hook_server.url)
    events = ["registered_model.created", "model_version.created", "model_version_tag.set",
              "model_version_tag.deleted", "model_version_alias.created",
              "model_version_alias.deleted"]
    client.create_webhook(name=f"{unique}-all", url=f"{receiver.url}/{unique}", events=events,
                          secret=SECRET)
    base = f"{hook_server.url}{MLFLOW_ROOT}"
    client.create_registered_model(unique, tags={"team": "a"}, description="d")
    client.create_model_version(unique, "s3://bucket/model", run_id="r1")
    client.set_model_version_tag(unique, "1", "k", "v")
    client.delete_model_version_tag(unique, "1", "k")
    client.set_registered_model_alias(unique, "champ", "1")
    client.delete_registered_model_alias(unique, "champ")
    # A model made through NeMo, and another workspace's model: one event, none.
    requests.post(f"{hook_server.url}/apis/models/v2/workspaces/default/models",
                  json={"name": f"{unique}-nemo"}, timeout=30).raise_for_status()
    other = unique.replace("t", "w", 1)
    client.create_workspace(other)
    requests.post(f"{base}/registered-models/create", json={"name": unique},
                  headers={"X-MLFLOW-WORKSPACE": other}, timeout=30).raise_for_status()
    got = receiver.wait_for(7, f"/{unique}")
    time.sleep(1)  # nothing more arrives
    got = receiver.events(f"/{unique}")
    names = [(d["body"]["entity"], d["body"]["action"]) for d in got]
    assert sorted(names) == sorted([("registered_model", "created"), ("model_version", "created"),
                                    ("model_version_tag", "set"), ("model_version_tag", "deleted"),
                                    ("model_version_alias", "created"),
                                    ("model_version_alias", "deleted"),
                                    ("registered_model", "created")])
    assert all(d["signed"] for d in got) and len({d["id"] for d in got}) == 7
    assert all(d["body"]["workspace"] == "default" for d in got)
    by_event = {(d["body"]["entity"], d["body"]["action"]): d["body"]["data"] for d in got}
    assert by_event[("model_version", "created")] == {
        "name": unique, "version": "1", "source": "s3://bucket/model", "run_id": "r1",
        "tags": {}, "description": None}
    assert by_event[("model_version_alias", "created")] == {"name": unique, "alias": "champ",
                                                            "version": "1"}
    created = sorted(d["body"]["data"]["name"] for d in got
                     if d["body"]["entity"] == "registered_model")
    assert created == [unique, f"{unique}-nemo"]


def test_several_workers_deliver_each_event_once(hook_server, receiver, unique):
    client = MlflowClient(tracking_uri=hook_server.url, registry_uri=hook_server.url)
    client.create_webhook(name=f"{unique}-once", url=f"{receiver.url}/{unique}",
                          events=["model_version.created"])
    client.create_registered_model(unique)
    with ThreadPoolExecutor(8) as pool:
        list(pool.map(lambda i: requests.post(
            f"{hook_server.url}{MLFLOW_ROOT}/model-versions/create",
            json={"name": unique, "source": f"s3://b/{i}"}, timeout=60).raise_for_status(),
            range(30)))
    receiver.wait_for(30, f"/{unique}")
    time.sleep(1)
    got = receiver.events(f"/{unique}")
    assert len(got) == 30 and len({d["id"] for d in got}) == 30
    assert sorted(int(d["body"]["data"]["version"]) for d in got) == list(range(1, 31))

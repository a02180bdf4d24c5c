"""MLflow's registry webhooks API: /webhooks (create, list), /webhooks/<id> (get, update,
delete) and /webhooks/<id>/test, per workspace. Managing webhooks needs the admin role in the
workspace: a webhook sends the workspace's events (and its secret's signatures) to a URL."""
from flask import Blueprint, current_app

from gateway import context
from gateway.delivery import test as send_test
from gateway.faces.mlflow_api import schemas
from gateway.faces.mlflow_api.parsing import parse
from gateway.routes import requires
from gateway.services import webhooks

bp = requires("admin")(Blueprint("webhooks", __name__, url_prefix="/webhooks"))


def _settings():
    return current_app.extensions["webhook_settings"]


def _events(items):
    return None if items is None else [(e["entity"].lower(), e["action"].lower())
                                       for e in items]


def _webhook(row):
    return {"webhook": schemas.dump_webhook(row)}


@bp.post("")
def create():
    """Create a webhook in the request's workspace."""
    args = parse(schemas.create_webhook)
    return _webhook(webhooks.create(
        context.workspace(), args["name"], args["url"], _events(args["events"]), _settings(),
        description=args["description"], secret=args["secret"], status=args["status"]))


@bp.get("")
def list_all():
    """The workspace's webhooks, newest first."""
    args = parse(schemas.list_webhooks)
    rows, token = webhooks.list_page(context.workspace(), args["max_results"], args["page_token"])
    answer = {"webhooks": [schemas.dump_webhook(row) for row in rows]}
    if token:
        answer["next_page_token"] = token
    return answer


@bp.get("/<webhook_id>")
def get(webhook_id):
    """One webhook."""
    return _webhook(webhooks.find(context.workspace(), webhook_id))


@bp.patch("/<webhook_id>")
def update(webhook_id):
    """Change a webhook's fields (those given)."""
    args = parse(schemas.update_webhook)
    args["events"] = _events(args["events"]) or None
    return _webhook(webhooks.update(context.workspace(), webhook_id, _settings(), **args))


@bp.delete("/<webhook_id>")
def delete(webhook_id):
    """Delete a webhook (its undelivered events are dropped)."""
    webhooks.delete(context.workspace(), webhook_id)
    return {}


@bp.post("/<webhook_id>/test")
def test(webhook_id):
    """Send the example payload of an event (the webhook's first unless named) now."""
    event = parse(schemas.test_webhook)["event"]
    webhook = webhooks.find(context.workspace(), webhook_id)
    if event is not None:
        event = webhooks.check_events(_events([event]))[0]
    return {"result": send_test(webhook, event, current_app.config, _settings())}

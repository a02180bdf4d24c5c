"""The request's typed context: one per request, filled by the pipeline in order."""
from types import SimpleNamespace

from gateway import context
from gateway.context import Caller
from gateway.services import principals
from gateway.db import database


def test_each_request_has_its_own_context_even_within_one_application_context(app):
    with app.app_context():  # several requests under one application context (one flask.g)
        with app.test_request_context("/api/2.0/mlflow/registered-models/get"):
            first = context.current()
            first.workspace, first.caller.user = "team-a", "ann"
            assert context.current() is first and context.workspace() == "team-a"
        with app.test_request_context("/api/2.0/mlflow/registered-models/get"):
            assert context.current() is not first
            assert (context.workspace(), context.caller().user) == (None, None)
    assert context.current().request_id == "-"  # outside a request: a blank one


def test_the_caller_is_one_notion_with_a_name_and_an_identity():
    ann = SimpleNamespace(name="ann")
    assert (Caller().name, Caller().identity) == (None, "")
    assert (Caller(user="bob").name, Caller(user="bob").identity) == ("bob", "bob")
    assert Caller(ann, "ann").identity == "ann"
    # A principal acting for another user: recorded as itself, its retry tokens its own.
    assert (Caller(ann, "bob").name, Caller(ann, "bob").identity) == ("ann", "ann as bob")


def test_the_pipeline_fills_the_context_of_a_request(database_url):
    from tests.conftest import make_app
    app = make_app(database_url, AUTH="required", AUTH_CACHE_SECONDS=0)
    with app.app_context(), database.connection_context():
        principals.create("ann")
        token = principals.issue_token("ann")
        principals.grant("ann", "default", "writer")
    seen = {}

    @app.after_request
    def look(response):
        scope = context.current()
        seen.update(request_id=scope.request_id, principal=scope.caller.principal.name,
                    user=scope.caller.user, workspace=scope.workspace,
                    namespace=scope.namespace, key=scope.workspace_key,
                    started=scope.started > 0)
        return response
    answer = app.test_client().get(
        "/20260430/aiDataPlatforms/p1/workspaces/w1/mlops/api/2.0/mlflow/registered-models/"
        "search", headers={"Authorization": f"Bearer {token}", "opc-request-id": "req-1"})
    assert answer.status_code in (200, 404), answer.json  # a platform ann cannot see: hidden
    assert seen["request_id"] == "req-1" and seen["started"]
    assert (seen["principal"], seen["user"]) == ("ann", "ann")
    assert (seen["namespace"], seen["key"]) == ("p1", "w1")
    assert seen["workspace"].startswith("aidp-")

"""The request pipeline (gateway/pipeline.py) and what faces may depend on."""
import ast
import logging
import pathlib

from gateway import db, retry_tokens
from gateway.routes import route_of
from gateway.work import UnitOfWork
from tests.conftest import MLFLOW_ROOT

FACES = pathlib.Path(__file__).parent.parent / "gateway" / "faces"
# The request machinery: faces declare what they need (gateway.routes) and never call it.
MACHINERY = ("gateway.auth.", "gateway.access.", "gateway.traffic.", "gateway.retry_tokens.",
             "gateway.db.", "gateway.pipeline.")
# Wire tools more than one face mounts: MLflow's REST API is also OCI's mlops API.
SHARED = {"mlflow_api"}


def _imports(path):
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            yield from (alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            yield node.module
            yield from (f"{node.module}.{alias.name}" for alias in node.names)


def test_faces_import_no_machinery_and_no_other_face():
    faces = [path.name for path in FACES.iterdir() if (path / "__init__.py").exists()
             and path.name not in SHARED]
    assert {"mlflow", "oci", "nemo", "openmetadata"} <= set(faces)
    found = []
    for face in faces:
        others = tuple(f"gateway.faces.{other}." for other in faces if other != face)
        for path in (FACES / face).rglob("*.py"):
            for name in _imports(path):
                if f"{name}.".startswith(MACHINERY + others):
                    found.append(f"{path.relative_to(FACES)}: {name}")
    assert found == []


def test_each_face_declares_its_routes_as_data(app):
    with app.test_request_context():
        for endpoint, rule in ((e, r.rule) for r in app.url_map.iter_rules()
                               for e in [r.endpoint]):
            route = route_of(app, endpoint)
            if rule.startswith(("/api/2.0/mlflow/webhooks", "/20260430/")) and "webhooks" in rule:
                assert route.role == "admin", rule  # on both faces that mount the registry
            if rule.endswith(("/health", "/version")) and rule.startswith(("/20260430/", "/api")):
                assert route.open, rule
    oci_creates = [r.endpoint for r in app.url_map.iter_rules() if r.rule.startswith("/20260430/")
                   and r.rule.endswith("/mlflow/model-versions/create")]
    assert len(oci_creates) == 2  # the platform's root and a workspace's
    for endpoint in oci_creates:
        declared = route_of(app, endpoint)
        assert declared.scope.hide is True and declared.scope.prepare is not None


def test_a_failing_teardown_step_never_skips_the_next(app, client, monkeypatch, caplog):
    def broken(*args):
        raise RuntimeError("the connection is gone")

    released = []
    release = db.release
    monkeypatch.setattr(UnitOfWork, "rollback", broken)
    monkeypatch.setattr(retry_tokens, "release", broken)
    monkeypatch.setattr(db, "release", lambda: released.append(True) or release())
    with caplog.at_level(logging.WARNING, logger="gateway.pipeline"):
        # A claimed request whose view refuses after it wrote nothing: its unit of work is
        # rolled back at teardown (broken here), and so is the token's step (broken too).
        answer = client.post(f"{MLFLOW_ROOT}/registered-models/create",
                             json={"name": "bad/name"}, headers={"opc-retry-token": "t-1"})
    assert answer.status_code == 400, answer.json
    assert released == [True]  # the database step ran all the same
    assert [r.getMessage() for r in caplog.records] == [
        "rolling back a unit of work failed", "releasing a retry-token reservation failed"]
    # The worker's connection is fine: the next request works.
    monkeypatch.undo()
    assert client.post(f"{MLFLOW_ROOT}/registered-models/create",
                       json={"name": "good"}).status_code == 200


def test_a_view_failing_after_a_write_leaves_nothing_behind_with_a_token(app, api, monkeypatch):
    # The unit of work is the request's: a failure after the service wrote rolls it all back.
    from gateway.faces.mlflow_api import registered_models as views

    def dump_fails(row):
        raise ValueError("dump failed")
    monkeypatch.setattr(views, "_model", dump_fails)
    answer = api.post("registered-models/create", json={"name": "half"},
                      headers={"opc-retry-token": "t-2"})
    assert answer.status_code == 500 and answer.json["error_code"] == "INTERNAL_ERROR"
    monkeypatch.undo()
    assert api.get("registered-models/get", query_string={"name": "half"}).status_code == 404

"""opc-request-id on every answer, of every face, and in log lines."""
import logging

import pytest

from tests.conftest import oci_root


@pytest.mark.parametrize("method, path", [
    ("get", "/api/2.0/mlflow/registered-models/search"),               # success
    ("get", "/api/2.0/mlflow/registered-models/get?name=nope"),        # domain error
    ("get", "/api/2.0/mlflow/nope"),                                    # 404
    ("put", "/api/2.0/mlflow/registered-models/create"),               # 405
    ("get", "/health"),
    ("get", oci_root() + "/registered-models/get?name=nope"),
    ("get", "/20260430/nope"),
])
def test_client_request_id_is_echoed_everywhere(client, method, path):
    response = getattr(client, method)(path, headers={"opc-request-id": "req-42_A"})
    assert response.headers["opc-request-id"] == "req-42_A"


def test_request_id_is_generated_when_absent(client):
    first = client.get("/health").headers["opc-request-id"]
    second = client.get("/health").headers["opc-request-id"]
    assert first and second and first != second


@pytest.mark.parametrize("bad", ["has space", "semi;colon", "x" * 256, ""])
def test_invalid_request_ids_are_400_with_a_fresh_id(client, bad):
    response = client.get(oci_root() + "/registered-models/search",
                          headers={"opc-request-id": bad})
    assert (response.status_code, response.json["code"]) == (400, "InvalidParameter")
    assert response.headers["opc-request-id"] not in ("", bad)


def test_log_lines_carry_the_request_id(app, client, caplog, monkeypatch):
    from gateway.faces.mlflow_api import server

    def explode():
        raise RuntimeError("boom")

    monkeypatch.setitem(app.view_functions, "mlflow_server.health", explode)
    with caplog.at_level(logging.ERROR):
        response = client.get("/health", headers={"opc-request-id": "trace-me"})
    assert response.status_code == 500 and response.json["error_code"] == "INTERNAL_ERROR"
    assert "boom" not in response.get_data(as_text=True)
    assert [r.request_id for r in caplog.records] == ["trace-me"]
    assert server.health  # the real view is untouched


def test_gateway_log_lines_print_the_request_id(app, client, caplog, monkeypatch):
    monkeypatch.setitem(app.view_functions, "mlflow_server.health", lambda: 1 / 0)
    with caplog.at_level(logging.ERROR):
        client.get("/health", headers={"opc-request-id": "printed-id"})
    handler = logging.getLogger("gateway").handlers[0]
    line = handler.format(caplog.records[0])
    assert "ERROR [printed-id] gateway.errors: unhandled error on GET /health" in line

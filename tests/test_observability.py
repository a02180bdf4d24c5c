"""Access log lines, Prometheus metrics and readiness."""
import json
import logging

import requests

from tests.conftest import MLFLOW_ROOT, Api, make_app, oci_root, serve


def _check_line(text):
    line = json.loads(text)
    assert {k: line[k] for k in ("request_id", "workspace", "face", "method", "route", "status")
            } == {"request_id": "log-me", "workspace": "default", "face": "mlflow",
                  "method": "POST", "route": "/api/2.0/mlflow/registered-models/create",
                  "status": 200}
    assert line["latency_ms"] > 0 and line["time"].endswith("Z") and "principal" in line


def _create(client):
    client.post(f"{MLFLOW_ROOT}/registered-models/create", json={"name": "m"},
                headers={"opc-request-id": "log-me"})


def test_access_log_is_one_json_line_per_request_on_stdout(client, capfd):
    capfd.readouterr()
    _create(client)
    lines = capfd.readouterr().out.splitlines()
    assert len(lines) == 1
    _check_line(lines[0])


def test_access_log_can_go_through_logging_or_be_off(database_url, caplog, capfd):
    through_logging = make_app(database_url, ACCESS_LOG="logging").test_client()
    with caplog.at_level(logging.INFO, logger="gateway.access"):
        _create(through_logging)
    _check_line(caplog.records[-1].getMessage())
    capfd.readouterr()
    _create(make_app(database_url, ACCESS_LOG=False).test_client())
    assert capfd.readouterr().out == ""


def test_metrics_count_requests_429s_and_replays(database_url):
    app = make_app(database_url, RATE_LIMIT="3/minute")
    client = app.test_client()
    oci = Api(client, oci_root("ocid1.p..metrics"))
    oci.post("registered-models/create", json={"name": "m"}, headers={"opc-retry-token": "r"})
    oci.post("registered-models/create", json={"name": "m"}, headers={"opc-retry-token": "r"})
    # A replay is a request too: it counts against the limit before it is answered.
    assert [oci.get("registered-models/search").status_code for _ in range(2)] == [200, 429]
    text = client.get("/metrics").data.decode()
    assert 'gateway_requests_total{face="oci",method="POST"' in text
    assert "gateway_request_duration_seconds_bucket" in text
    assert "gateway_retry_token_replays_total{workspace=\"aidp-" in text
    assert "gateway_rate_limited_total{workspace=\"aidp-" in text


def test_readiness_touches_the_database(client):
    assert client.get("/health/ready").json == {"status": "ready"}


def test_metrics_sum_every_gunicorn_worker(tmp_path_factory, tmp_path):
    server = serve(tmp_path_factory, "metrics", workers=3,
                   env={"PROMETHEUS_MULTIPROC_DIR": str(tmp_path)})
    try:
        for _ in range(30):
            requests.get(f"{server.url}{MLFLOW_ROOT}/registered-models/search")
        text = requests.get(f"{server.url}/metrics").text
    finally:
        server.stop()
    counts = [float(line.rsplit(" ", 1)[1]) for line in text.splitlines()
              if line.startswith('gateway_requests_total{face="mlflow",method="GET",'
                                 'route="/api/2.0/mlflow/registered-models/search"')]
    assert sum(counts) == 30


def test_a_broken_stdout_loses_the_log_line_not_the_answer(client, monkeypatch):
    import os
    read_end, write_end = os.pipe()
    os.close(read_end)  # nobody reads: writes fail with EPIPE

    class BrokenStdout:
        def fileno(self):
            return write_end

    monkeypatch.setattr("sys.stdout", BrokenStdout())
    try:
        assert client.get("/health").status_code == 200
    finally:
        os.close(write_end)

"""What an operator watches: JSON access log lines, Prometheus metrics, health and readiness.

Metrics use prometheus-client's multiprocess mode when PROMETHEUS_MULTIPROC_DIR is set (as
`gateway serve` does), so /metrics counts every gunicorn worker, not only the one answering.
"""
import json
import logging
import os
import sys
import time

from flask import Blueprint, Response, current_app, g, request
from prometheus_client import (CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Histogram,
                               generate_latest)
from prometheus_client import multiprocess

from gateway import events
from gateway.db import database

access_log = logging.getLogger("gateway.access")

REQUESTS = Counter("gateway_requests_total", "Requests answered",
                   ["face", "method", "route", "status"])
LATENCY = Histogram("gateway_request_duration_seconds", "Time to answer a request",
                    ["face", "route"],
                    buckets=(.001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5))
RATE_LIMITED = Counter("gateway_rate_limited_total", "Requests refused with 429", ["workspace"])
REPLAYS = Counter("gateway_retry_token_replays_total", "Retried requests answered from a "
                  "retry token's first answer", ["workspace"])
FACES = (("/20260430/", "oci"), ("/apis/models/", "nemo"), ("/api/", "mlflow"),
         ("/ajax-api/", "mlflow"))

bp = Blueprint("observability", __name__)


def init_app(app):
    """Time every request, then count it and (if ACCESS_LOG) log it as one JSON line."""
    app.before_request(_start)
    app.after_request(_finish)
    app.register_blueprint(bp)
    if not access_log.handlers:  # one JSON object per line, nothing around it
        handler = logging.StreamHandler(sys.stdout)
        handler.setFormatter(logging.Formatter("%(message)s"))
        access_log.addHandler(handler)
        access_log.propagate = False
    events.retry_replayed.connect(_count_replay)
    events.rate_limited.connect(_count_rate_limited)


def face_of(path):
    """The API face a path belongs to."""
    return next((face for prefix, face in FACES if path.startswith(prefix)), "gateway")


def _start():
    g.started = time.perf_counter()


def _finish(response):
    elapsed = time.perf_counter() - g.get("started", time.perf_counter())
    route = request.url_rule.rule if request.url_rule else "unmatched"
    face = face_of(request.path)
    REQUESTS.labels(face, request.method, route, response.status_code).inc()
    LATENCY.labels(face, route).observe(elapsed)
    if current_app.config["ACCESS_LOG"]:
        principal = g.get("principal")
        access_log.info(json.dumps({
            "time": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime()) + "Z",
            "request_id": g.get("request_id"), "workspace": g.get("workspace"),
            "principal": principal.name if principal else None, "face": face,
            "method": request.method, "route": route, "path": request.path,
            "status": response.status_code, "latency_ms": round(elapsed * 1000, 3)}))
    return response


def _count_replay(sender, workspace=None):
    REPLAYS.labels(workspace or "unknown").inc()


def _count_rate_limited(sender, workspace=None):
    RATE_LIMITED.labels(workspace or "unknown").inc()


@bp.get("/metrics")
def metrics():
    """Prometheus metrics of every worker."""
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)
    else:
        from prometheus_client import REGISTRY as registry
    return Response(generate_latest(registry), mimetype=CONTENT_TYPE_LATEST)


@bp.get("/health/ready")
def ready():
    """Readiness: the database answers (503 otherwise)."""
    try:
        database.execute_sql("SELECT 1").fetchone()
    except Exception as error:  # any database failure means "not ready"
        return {"status": "unavailable", "reason": type(error).__name__}, 503
    return {"status": "ready"}

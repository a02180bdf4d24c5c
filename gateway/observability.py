"""What an operator watches: JSON access log lines, Prometheus metrics, health and readiness.

Metrics use prometheus-client's multiprocess mode when PROMETHEUS_MULTIPROC_DIR is set (as
`gateway serve` does), so /metrics counts every gunicorn worker, not only the one answering.
"""
import functools
import logging
import os
import sys
import time

import orjson
from flask import Blueprint, Response, current_app, request
from prometheus_client import (CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Histogram,
                               generate_latest)
from prometheus_client import multiprocess

from gateway import auth, events
from gateway.routes import open_route
from gateway.errors import face_of
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

bp = Blueprint("observability", __name__)


def init_app(app):
    """Serve the operator's routes; the pipeline calls finish() after every request (count it,
    and per ACCESS_LOG log it as one JSON line)."""
    app.register_blueprint(bp)
    app.extensions["access_log"] = _access_writer(app.config["ACCESS_LOG"])
    events.retry_replayed.connect(_count_replay)
    events.rate_limited.connect(_count_rate_limited)


def finish(scope, response):
    """Count the answered request and write its access line."""
    now = time.perf_counter()
    req = request._get_current_object()  # once, not per read
    elapsed = now - (scope.started or now)
    route = req.url_rule.rule if req.url_rule else "unmatched"
    face = face_of(req.path)[0]
    count, latency = _series(face, req.method, route, response.status_code)
    count.inc()
    latency.observe(elapsed)
    write = current_app.extensions["access_log"]
    if write is not None:
        principal = scope.caller.principal
        write(orjson.dumps({
            "time": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime()) + "Z",
            "request_id": scope.request_id,
            "workspace": scope.workspace,
            "principal": principal.name if principal else None, "face": face,
            "method": req.method, "route": route, "path": req.path,
            "status": response.status_code, "latency_ms": round(elapsed * 1000, 3)}))
    return response


def _access_writer(setting):
    """How access lines leave: None (off), through the gateway.access logger, or to stdout.

    The default writes each line to stdout itself, in one write() of the whole line (so the
    lines of several workers never interleave): through `logging` a line cost 24 us of CPU
    per request, a seventh of a get. ACCESS_LOG="logging" makes them INFO records of the
    `gateway.access` logger instead, for a deployment's own logging configuration.
    """
    if setting in (False, None, "", "false", "off"):
        return None
    if setting == "logging":
        if access_log.level == logging.NOTSET:
            access_log.setLevel(logging.INFO)
        return lambda line: access_log.info(line.decode())
    return _to_stdout


def _to_stdout(line):
    line += b"\n"
    stream = sys.stdout  # looked up each time: a test runner may swap it
    try:
        try:
            fd = stream.fileno()
        except (AttributeError, OSError, ValueError):  # not a file (e.g. captured)
            stream.write(line.decode())
            stream.flush()
            return
        while line:
            written = os.write(fd, line)
            line = line[written:] if written else b""
    except (OSError, ValueError):  # stdout closed or its reader gone: lose the line, not the answer
        pass


@functools.lru_cache(maxsize=4096)
def _series(face, method, route, status):
    # prometheus-client's labels() costs a lock and a lookup per call; routes are few.
    return REQUESTS.labels(face, method, route, status), LATENCY.labels(face, route)


def _count_replay(sender, workspace=None):
    REPLAYS.labels(workspace or "unknown").inc()


def _count_rate_limited(sender, workspace=None):
    RATE_LIMITED.labels(workspace or "unknown").inc()


@bp.get("/metrics")
@open_route  # authenticated in the view: the scrape token or an admin of every workspace
def metrics():
    """Prometheus metrics of every worker (operators only when AUTH=required)."""
    auth.require_operator()
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)
    else:
        from prometheus_client import REGISTRY as registry
    return Response(generate_latest(registry), content_type=CONTENT_TYPE_LATEST)


@bp.get("/health/ready")
def ready():
    """Readiness: the database answers (503 otherwise)."""
    try:
        database.execute_sql("SELECT 1").fetchone()
    except Exception as error:  # any database failure means "not ready"
        return {"status": "unavailable", "reason": type(error).__name__}, 503
    return {"status": "ready"}

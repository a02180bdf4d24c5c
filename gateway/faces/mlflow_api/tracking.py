"""Tracking pass-through: MLflow routes the gateway does not own go to a real MLflow tracking
server (GATEWAY_TRACKING_UPSTREAM), under the gateway's rules.

The registry, workspaces and webhooks stay the gateway's. Everything else under MLflow's roots
(experiments, runs, metrics, artifacts, traces, the UI) is forwarded: the caller is
authenticated, authorized in its workspace (reads need reader, writes writer) and counted
against its rate limit; the workspace goes upstream as X-MLFLOW-WORKSPACE (a caller's own header
is replaced, never trusted); the caller's credentials stay here (the upstream may get
GATEWAY_TRACKING_UPSTREAM_TOKEN). Bodies stream both ways. An unreachable upstream is 503 with
Retry-After, a slow one 504; the upstream's own answers (its MLflow errors too) pass through.

A write with an opc-retry-token is sent upstream once: the pipeline reserves the token first (the
views are declared `forwarding`), a retry gets the stored answer and a concurrent duplicate
waits for it. (A crash after the upstream answered
and before the answer was stored cannot be covered: once the reservation is older than the
upstream timeout, a retry runs again.)

The same forwarding serves the OCI face's mlops roots, in that face's scope: its view calls
send().
"""
import re
from urllib.parse import quote

from flask import Blueprint, Response, current_app, request, stream_with_context
from werkzeug.exceptions import NotFound
from werkzeug.routing import PathConverter

from gateway import context, request_ids, routes, upstream
from gateway.faces.mlflow_api.scope import FROM_HEADER, HEADER

ROOTS = ("/api/2.0/mlflow", "/api/3.0/mlflow", "/ajax-api/2.0/mlflow", "/ajax-api/3.0/mlflow",
         "/api/2.0/mlflow-artifacts", "/ajax-api/2.0/mlflow-artifacts")
PAGES = ("/get-artifact", "/model-versions/get-artifact", "/static-files/<path:rest>", "/")
# POSTs that only read (MLflow searches with POST bodies).
READS = ("/search", "/get-history-bulk-interval", "/search-datasets", "/batch-get")
ARTIFACTS = "/mlflow-artifacts/"
METHODS = ["GET", "POST", "PUT", "PATCH", "DELETE", "HEAD"]
_HOP_BY_HOP = {"connection", "keep-alive", "proxy-authenticate", "proxy-authorization", "te",
               "trailers", "transfer-encoding", "upgrade", "host", "content-length",
               "authorization", "cookie", HEADER.lower(), "dh-user-principal"}
_CHUNK = 64 * 1024
NO_UPSTREAM = ("This gateway serves MLflow's model registry; experiments, runs, artifacts and "
               "the UI are served by an MLflow tracking server behind it. Set "
               "GATEWAY_TRACKING_UPSTREAM=http://host:port (an MLflow 3.17 server started with "
               "--enable-workspaces) or run `gateway serve --tracking`.")


# What the gateway owns under MLflow's roots: never forwarded, so a wrong method or an unknown
# path there answers as the gateway's routes do (405 with Allow, 404).
OWNED = ("registered-models", "model-versions", "webhooks", "workspaces", "server-info")


_OWNED_UNDER_ROOT = re.compile(rf"/mlflow/(?:{'|'.join(OWNED)})(?:/|$)")
_PAGE_PREFIXES = tuple(page.split("<")[0] for page in PAGES if page != "/")


def might_forward(path):
    """False when path is surely not forwarded (a cheap test before matching the URL map)."""
    if "mlflow" in path:  # (an artifact's own path may look like anything)
        return "/mlflow-artifacts/" in path or not _OWNED_UNDER_ROOT.search(path)
    return path == "/" or path.startswith(_PAGE_PREFIXES)


class ForwardedPath(PathConverter):
    """A path under an MLflow root that is not one of the gateway's own families."""
    regex = rf"(?!(?:{'|'.join(OWNED)})(?:/|$))[^/].*?"


def init_app(app):
    """Forward the routes the gateway does not own; without an upstream, say how to set one."""
    app.url_map.converters["forwarded"] = ForwardedPath
    bp = Blueprint("tracking", __name__)  # made per app: its routes depend on the config
    bp.scope = FROM_HEADER
    view = forward if app.config["TRACKING_UPSTREAM"] else not_configured
    add_forwarding(bp, view)
    for number, page in enumerate(PAGES):
        bp.add_url_rule(page, f"page_{number}", view, methods=["GET", "HEAD"])
    app.register_blueprint(bp)


def add_forwarding(bp, view):
    """Catch-all rules under every MLflow root of bp for view (which must be forwarding)."""
    for number, root in enumerate(ROOTS):
        bp.add_url_rule(f"{root}/<forwarded:rest>", f"forward_{number}", view, methods=METHODS,
                        defaults={"root": root})


def _is_search():
    return request.path.endswith(READS)


def forwarding(view):
    """Mark view as a forwarding catch-all: its POST searches only read, its retry token is
    reserved before it acts (and gateway.asgi runs it in its forwarding threads)."""
    view.read_only = _is_search
    return routes.forwarding(view)


@forwarding
def forward(root=None, rest=None):
    """Send the request upstream, into the workspace the MLflow header names."""
    return send(context.workspace())


@routes.scoped(routes.UNSCOPED)  # the same 404 in every workspace
def not_configured(root=None, rest=None):
    raise NotFound(NO_UPSTREAM)  # 404 ENDPOINT_NOT_FOUND, as for any unknown route


def send(workspace, root=None):
    """Send the request upstream into workspace and stream its answer back; a face mounting
    MLflow's roots under its own prefix names the root, and the prefix is not sent."""
    path = quote(request.path[request.path.index(root + "/"):] if root else request.path,
                 safe="/:@!$&'()*+,;=~")
    if request.query_string:
        path += "?" + request.query_string.decode("latin-1")
    target = upstream.current()
    headers = {k: v for k, v in request.headers.items() if k.lower() not in _HOP_BY_HOP}
    headers[request_ids.HEADER] = request_ids.current()  # one id here, upstream and in logs
    request.max_content_length = body_limit(current_app.config, request.path)
    length = request.content_length
    chunked = length is None and request.headers.get("Transfer-Encoding")
    if context.current().retry_claim is not None or (not chunked and (length or 0) <= _CHUNK):
        # Whole (as read for a retry token's fingerprint): it can be sent again if need be.
        body = request.get_data() or None
        if body is not None:
            headers["Content-Length"] = str(len(body))
    elif chunked:
        body = _body_chunks()  # sent on chunked
    else:  # streamed, with its length (WSGI servers upstream need it)
        body = request.stream
        headers["Content-Length"] = str(length)
    answer = target.send(request.method, path, workspace, headers, body, stream=True)
    # The answer's bytes as the upstream sent them (never decoded here), with its length.
    kept = [(k, v) for k, v in answer.headers.items()
            if k.lower() not in _HOP_BY_HOP or k.lower() == "content-length"]
    small = answer.length_remaining is not None and answer.length_remaining <= _CHUNK
    if request.method != "GET" or small:  # answered in one piece (every answer to a write)
        try:
            content = answer.read(decode_content=False)
        finally:
            upstream.finish(answer)
        return Response(content, status=answer.status, headers=kept)
    return Response(stream_with_context(_answer_chunks(answer)), status=answer.status,
                    headers=kept)


def body_limit(config, path):
    """The most bytes a forwarded request to path may send (None: no limit); gateway.asgi
    reads bodies up to it. Artifact uploads have GATEWAY_TRACKING_MAX_UPLOAD_BYTES, the rest
    GATEWAY_MAX_CONTENT_LENGTH."""
    if ARTIFACTS in path:
        return int(config["TRACKING_MAX_UPLOAD_BYTES"]) or None
    return int(config["MAX_CONTENT_LENGTH"])


def _body_chunks():
    while chunk := request.stream.read(_CHUNK):
        yield chunk


def _answer_chunks(answer):
    try:
        yield from answer.stream(_CHUNK, decode_content=False)
    finally:
        upstream.finish(answer)

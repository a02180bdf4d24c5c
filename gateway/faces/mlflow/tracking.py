"""Tracking pass-through: MLflow routes the gateway does not own go to a real MLflow tracking
server (GATEWAY_TRACKING_UPSTREAM), under the gateway's rules.

The registry, workspaces and webhooks stay the gateway's. Everything else under MLflow's roots
(experiments, runs, metrics, artifacts, traces, the UI) is forwarded: the caller is
authenticated, authorized in its workspace (reads need reader, writes writer) and counted
against its rate limit; the workspace goes upstream as X-MLFLOW-WORKSPACE (a caller's own header
is replaced, never trusted); the caller's credentials stay here (the upstream may get
GATEWAY_TRACKING_UPSTREAM_TOKEN). Bodies stream both ways. An unreachable upstream is 503 with
Retry-After, a slow one 504; the upstream's own answers (its MLflow errors too) pass through.

A write with an opc-retry-token is sent upstream once: a retry gets the stored answer. (A crash
after the upstream answered and before the answer was stored cannot be covered: the retry runs
again.)

Not built yet (issue 16): the OCI roots, the UI test, `gateway serve --tracking`, run-based
source rules, benchmarks.
"""
import requests
from flask import Blueprint, Response, current_app, g, request, stream_with_context
from requests.adapters import HTTPAdapter
from requests.structures import CaseInsensitiveDict
from werkzeug.exceptions import MethodNotAllowed, NotFound as RouteNotFound

from gateway import request_ids, retry_tokens
from gateway.exceptions import Unavailable, UpstreamTimeout
from gateway.faces.mlflow.workspaces import HEADER, enter_from_header

ROOTS = ("/api/2.0/mlflow", "/api/3.0/mlflow", "/ajax-api/2.0/mlflow", "/ajax-api/3.0/mlflow",
         "/api/2.0/mlflow-artifacts", "/ajax-api/2.0/mlflow-artifacts")
PAGES = ("/get-artifact", "/model-versions/get-artifact", "/static-files/<path:rest>", "/")
# POSTs that only read (MLflow searches with POST bodies).
READS = ("/search", "/get-history-bulk-interval", "/search-datasets", "/batch-get")
_HOP_BY_HOP = {"connection", "keep-alive", "proxy-authenticate", "proxy-authorization", "te",
               "trailers", "transfer-encoding", "upgrade", "host", "content-length",
               "authorization", "cookie", HEADER.lower(), "dh-user-principal"}
_CHUNK = 64 * 1024


def init_app(app):
    """Forward the routes the gateway does not own, when an upstream is configured."""
    if not app.config["TRACKING_UPSTREAM"]:
        return
    session = requests.Session()
    session.mount("http://", HTTPAdapter(pool_connections=4, pool_maxsize=32))
    session.mount("https://", HTTPAdapter(pool_connections=4, pool_maxsize=32))
    app.extensions["tracking_session"] = session
    bp = Blueprint("tracking", __name__)  # made per app: its routes depend on the config
    for number, root in enumerate(ROOTS):
        bp.add_url_rule(f"{root}/<path:rest>", f"forward_{number}", forward,
                        methods=["GET", "POST", "PUT", "PATCH", "DELETE", "HEAD"])
    for number, page in enumerate(PAGES):
        bp.add_url_rule(page, f"page_{number}", forward, methods=["GET", "HEAD"])
    app.register_blueprint(bp)


def _owned(path):
    """Whether a path belongs to a route of the gateway's own (then a wrong method is 405)."""
    adapter = current_app.url_map.bind("localhost")
    for method in ("GET", "POST", "PATCH", "DELETE", "PUT"):
        try:
            endpoint, _ = adapter.match(path, method=method)
        except (MethodNotAllowed, RouteNotFound):
            continue
        if not endpoint.startswith("tracking."):
            return True
    return False


def forward(rest=None):
    """Send the request upstream and stream its answer back."""
    if _owned(request.path):
        raise MethodNotAllowed()
    role = "reader" if request.method in ("GET", "HEAD") or request.path.endswith(READS) \
        else "writer"
    workspace = enter_from_header(role)
    g.workspace = workspace
    if replay := retry_tokens.claim():  # a retried write is answered, not sent again
        return replay
    upstream = current_app.config["TRACKING_UPSTREAM"].rstrip("/")
    headers = CaseInsensitiveDict(
        (k, v) for k, v in request.headers.items() if k.lower() not in _HOP_BY_HOP)
    headers.update(_upstream_auth())
    headers[HEADER] = workspace
    headers[request_ids.HEADER] = request_ids.current()  # one id here, upstream and in logs
    timeout = float(current_app.config["TRACKING_TIMEOUT_SECONDS"])
    _call(lambda: _ensure_workspace(upstream, workspace, timeout))
    request.max_content_length = current_app.config["TRACKING_MAX_UPLOAD_BYTES"] or None
    body = None
    if g.get("retry_claim") is not None:  # its fingerprint read the body: send what was read
        body = request.get_data()
    elif request.content_length:  # streamed with its length (WSGI servers upstream need it)
        body = _Body(request.stream, request.content_length)
    elif request.headers.get("Transfer-Encoding"):
        body = _body_chunks()
    answer = _call(lambda: _session().request(
        request.method, upstream + request.full_path.rstrip("?"), headers=headers, data=body,
        stream=True, timeout=(min(timeout, 5), timeout), allow_redirects=False))
    kept = [(k, v) for k, v in answer.raw.headers.items() if k.lower() not in _HOP_BY_HOP]
    if request.method not in ("GET", "HEAD"):  # small answers to writes are read whole
        content = answer.content
        return Response(content, status=answer.status_code, headers=kept)
    return Response(stream_with_context(_answer_chunks(answer)), status=answer.status_code,
                    headers=kept)


def _session():
    return current_app.extensions["tracking_session"]


def _upstream_auth():
    token = current_app.config["TRACKING_UPSTREAM_TOKEN"]
    return {"Authorization": f"Bearer {token}"} if token else {}


def _call(send):
    """send() an upstream request; its failures as the gateway's (503, 504)."""
    try:
        return send()
    except requests.Timeout:
        raise UpstreamTimeout("The MLflow tracking server did not answer in time.") from None
    except requests.ConnectionError:
        raise Unavailable("The MLflow tracking server is unreachable; retry the request.",
                          retry_after=2) from None


def _ensure_workspace(upstream, workspace, timeout):
    """The gateway owns workspaces; the upstream gets each one the first time this worker
    forwards into it (MLflow's server refuses calls into a workspace it does not know)."""
    known = current_app.extensions.setdefault("tracking_workspaces", {"default"})
    if workspace in known:
        return
    url = f"{upstream}/api/3.0/mlflow/workspaces"
    found = _session().get(f"{url}/{workspace}", headers=_upstream_auth(), timeout=timeout)
    if found.status_code == 404:
        made = _session().post(url, json={"name": workspace}, headers=_upstream_auth(),
                               timeout=timeout)
        if made.status_code >= 400 and "RESOURCE_ALREADY_EXISTS" not in made.text:
            raise Unavailable(f"The MLflow tracking server refused workspace '{workspace}': "
                              f"{made.text[:200]}", retry_after=2)
    elif found.status_code >= 400:
        raise Unavailable(f"The MLflow tracking server answered {found.status_code} for "
                          f"workspace '{workspace}'", retry_after=2)
    known.add(workspace)


class _Body:
    """The request body as a file of known length, read upstream piece by piece."""

    def __init__(self, stream, length):
        self.stream, self.length = stream, length

    def __len__(self):
        return self.length

    def __iter__(self):
        return _body_chunks()

    def read(self, size=-1):
        return self.stream.read(size if size and size > 0 else _CHUNK)


def _body_chunks():
    while chunk := request.stream.read(_CHUNK):
        yield chunk


def _answer_chunks(answer):
    try:
        yield from answer.iter_content(_CHUNK)
    finally:
        answer.close()

"""The MLflow tracking server behind the gateway (GATEWAY_TRACKING_UPSTREAM): one pool of
keep-alive connections, its failures as the gateway's (503, 504), and the few reads the registry
needs from a tracking store (a run's artifact root, a logged model).

urllib3's connection pool is used directly (requests' session layer cost about a millisecond
of Python per forwarded call: preparing the request, merging settings, its adapter), with no
retries and no redirects: what the upstream answers is what the caller gets.

The gateway owns workspaces: each is created upstream the first time a worker calls into it
(MLflow's server refuses calls into a workspace it does not know).
"""
import io
import json
import logging
from dataclasses import dataclass, field
from urllib.parse import quote, urlencode, urlsplit

import urllib3
from flask import current_app
from urllib3.exceptions import (HTTPError, NewConnectionError, ProtocolError,
                                TimeoutError as Timeout)

from gateway.exceptions import Conflict, GatewayError, Unavailable, UpstreamTimeout

WORKSPACE_HEADER = "X-MLFLOW-WORKSPACE"
MODEL_VERSIONS_TAG = "mlflow.modelVersions"  # mlflow/utils/mlflow_tags.py
BLOCK = 64 * 1024  # bytes of a streamed body per write
_ERROR_SIZE = 4096  # at most this long, a 404 may be MLflow's "Workspace '...' not found"
POOL_SIZE = 32  # kept connections per worker (more are opened when needed, then dropped)
log = logging.getLogger(__name__)


def init_app(app):
    """Open the connection pool when an upstream is configured."""
    if app.config["TRACKING_UPSTREAM"]:
        app.extensions["upstream"] = Upstream(
            app.config["TRACKING_UPSTREAM"], app.config["TRACKING_UPSTREAM_TOKEN"],
            float(app.config["TRACKING_TIMEOUT_SECONDS"]))


def current():
    """The configured upstream, or None (the embedded default has none)."""
    return current_app.extensions.get("upstream")


@dataclass
class Upstream:
    url: str
    token: str
    timeout: float
    known_workspaces: set = field(default_factory=lambda: {"default"})

    def __post_init__(self):
        self.url = self.url.rstrip("/")
        self.prefix = urlsplit(self.url).path  # an upstream mounted under a path
        self.pool = urllib3.connection_from_url(
            self.url, maxsize=POOL_SIZE, block=False, retries=False, blocksize=BLOCK,
            timeout=urllib3.Timeout(connect=min(self.timeout, 5), read=self.timeout))
        self.auth = {"Authorization": f"Bearer {self.token}"} if self.token else {}

    def send(self, method, path, workspace, headers=None, body=None, stream=False):
        """One call into workspace upstream; the caller's headers are its own business. A
        streamed answer must be read to its end or closed (gateway.upstream.finish)."""
        known = self.ensure_workspace(workspace)
        headers = {**(headers or {}), **self.auth, WORKSPACE_HEADER: workspace}
        answer = self.call(method, path, headers, body, stream)
        small = not stream or (answer.length_remaining or _ERROR_SIZE + 1) <= _ERROR_SIZE
        if known and answer.status == 404 and small:
            # The workspace may have gone since this worker made sure of it (deleted with the
            # gateway's, perhaps by another worker): make sure again, then send once more if
            # the body can be sent again (a streamed one cannot: its caller gets the 404).
            content = answer.read(decode_content=False) if stream else answer.data
            finish(answer)
            if _missing_workspace(content, workspace):
                self.known_workspaces.discard(workspace)
                self.ensure_workspace(workspace)
                if body is None or isinstance(body, bytes):
                    return self.call(method, path, headers, body, stream)
            answer = urllib3.HTTPResponse(io.BytesIO(content), answer.headers, answer.status,
                                          preload_content=not stream, decode_content=False)
        return answer

    def call(self, method, path, headers, body=None, stream=False):
        """The upstream's answer to one request; its failures as the gateway's (503, 504)."""
        try:
            return self.pool.urlopen(method, self.prefix + path, body=body, headers=headers,
                                     redirect=False, assert_same_host=False,
                                     preload_content=not stream, decode_content=False)
        except NewConnectionError:  # refused, no route (a ConnectTimeoutError by descent)
            raise Unavailable("The MLflow tracking server is unreachable; retry the request.",
                              retry_after=2) from None
        except Timeout:
            raise UpstreamTimeout("The MLflow tracking server did not answer in time.") from None
        except (ProtocolError, HTTPError, OSError):  # dropped mid-answer, reset, ...
            raise Unavailable("The MLflow tracking server is unreachable; retry the request.",
                              retry_after=2) from None

    def ensure_workspace(self, workspace):
        """Create workspace upstream unless this worker knows it is there; True if known."""
        if workspace in self.known_workspaces:
            return True
        found = self.call("GET", _workspace_path(workspace), self.auth)
        if found.status == 404:
            made = self.call("POST", _WORKSPACES, {**self.auth, "Content-Type": "application/json"},
                             json.dumps({"name": workspace}).encode())
            code, message = _error_of(made.data)
            if made.status >= 400 and code != "RESOURCE_ALREADY_EXISTS":
                raise Unavailable(f"The MLflow tracking server refused workspace "
                                  f"'{workspace}': {message}", retry_after=2)
        elif found.status >= 400:
            raise Unavailable(f"The MLflow tracking server answered {found.status} for "
                              f"workspace '{workspace}'", retry_after=2)
        self.known_workspaces.add(workspace)
        return False

    def delete_workspace(self, workspace, mode):
        """Delete workspace upstream as the gateway deletes its own (the same mode: its
        experiments and runs go, or move to default, or a RESTRICT refuses while any remain).
        A workspace the upstream never had is fine."""
        self.known_workspaces.discard(workspace)
        answer = self.call("DELETE", f"{_workspace_path(workspace)}?{urlencode({'mode': mode})}",
                           self.auth)
        if answer.status in (200, 204, 404):
            return
        code, message = _error_of(answer.data)
        # MLflow refuses a RESTRICT (or a SET_DEFAULT clash) with INVALID_STATE, a 500.
        if answer.status < 500 or code == "INVALID_STATE":
            raise Conflict(f"Cannot delete workspace '{workspace}': the MLflow tracking server "
                           f"refused: {message}")
        raise Unavailable(f"The MLflow tracking server answered {answer.status} deleting "
                          f"workspace '{workspace}': {message}", retry_after=2)


_WORKSPACES = "/api/3.0/mlflow/workspaces"


def _workspace_path(workspace):
    return f"{_WORKSPACES}/{quote(workspace, safe='')}"


def _missing_workspace(content, workspace):
    """Whether an upstream 404 says that workspace does not exist (MLflow's answer to a call
    into a workspace it does not know)."""
    code, message = _error_of(content)
    return code is not None and message == f"Workspace '{workspace}' not found"


def _error_of(content):
    """(error_code, message) of an MLflow error body; (None, its first 200 characters) when
    it is not one."""
    try:
        error = json.loads(content)
        return error["error_code"], error["message"]
    except (ValueError, KeyError, TypeError):
        return None, content[:200].decode(errors="replace")


def finish(answer):
    """Done with a streamed answer: a fully read one has gone back to the pool already; one
    left halfway (the client went away) is closed, never reused with bytes unread."""
    answer.close()


def store(workspace):
    """The tracking store a registry write in workspace may consult (None without upstream)."""
    target = current()
    return target and TrackingStore(target, workspace)


@dataclass
class TrackingStore:
    """The upstream's runs and logged models within one workspace (a tenant never sees
    another's); a lookup is None when the upstream does not have it."""
    upstream: Upstream
    workspace: str

    def __post_init__(self):
        self._found = {}  # one request's lookups: each asked of the upstream once

    def run_artifact_uri(self, run_id):
        found = self._get("/api/2.0/mlflow/runs/get", {"run_id": run_id})
        return found and found["run"]["info"].get("artifact_uri")

    def logged_model(self, model_id):
        """(artifact_location, source_run_id) of a logged model."""
        info = self._model_info(model_id)
        return info and (info.get("artifact_uri", ""), info.get("source_run_id") or "")

    def record_model_version(self, model_id, name, version):
        """As MLflow's server after a create with a model_id: the logged model's
        `mlflow.modelVersions` tag lists the version. The version exists whatever happens
        here, so a failure is logged, not raised."""
        try:
            info = self._fetch(self._model_path(model_id), None)
            info = info["model"]["info"] if info else {}
            tags = {tag["key"]: tag["value"] for tag in info.get("tags", [])}
            versions = json.loads(tags.get(MODEL_VERSIONS_TAG) or "[]")
            entry = {"name": name, "version": str(version)}
            if entry not in versions:
                versions.append(entry)
            body = {"tags": [{"key": MODEL_VERSIONS_TAG, "value": json.dumps(versions)}]}
            answer = self.upstream.send(
                "PATCH", f"{self._model_path(model_id)}/tags", self.workspace,
                {"Content-Type": "application/json"}, json.dumps(body).encode())
            if answer.status >= 400:
                raise ValueError(f"answered {answer.status}")
        except (GatewayError, ValueError) as error:
            log.warning("could not tag logged model %s with version %s/%s: %s", model_id,
                        name, version, error)

    def delete_workspace(self, mode):
        """Delete the workspace upstream (in the gateway's transaction, which a refusal undoes:
        the two never disagree about what was deleted)."""
        self.upstream.delete_workspace(self.workspace, mode)

    def _model_info(self, model_id):
        found = self._get(self._model_path(model_id), None)
        return found and found["model"]["info"]

    @staticmethod
    def _model_path(model_id):
        return f"/api/2.0/mlflow/logged-models/{quote(model_id, safe='')}"

    def _get(self, path, params):
        key = (path, tuple(sorted((params or {}).items())))
        if key not in self._found:
            self._found[key] = self._fetch(path, params)
        return self._found[key]

    def _fetch(self, path, params):
        query = f"?{urlencode(params)}" if params else ""
        answer = self.upstream.send("GET", path + query, self.workspace)
        if answer.status in (400, 404):  # MLflow: RESOURCE_DOES_NOT_EXIST / bad id
            return None
        if answer.status >= 400:
            raise Unavailable(f"The MLflow tracking server answered {answer.status} to "
                              f"{path}", retry_after=2)
        return json.loads(answer.data)

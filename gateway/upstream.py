"""The MLflow tracking server behind the gateway (GATEWAY_TRACKING_UPSTREAM): one pooled HTTP
session, its failures as the gateway's (503, 504), and the few reads the registry needs from a
tracking store (a run's artifact root, a logged model).

The gateway owns workspaces: each is created upstream the first time a worker calls into it
(MLflow's server refuses calls into a workspace it does not know).
"""
import json
import logging
from dataclasses import dataclass

import requests
from flask import current_app
from requests.adapters import HTTPAdapter

from gateway.exceptions import GatewayError, Unavailable, UpstreamTimeout

WORKSPACE_HEADER = "X-MLFLOW-WORKSPACE"
MODEL_VERSIONS_TAG = "mlflow.modelVersions"  # mlflow/utils/mlflow_tags.py
log = logging.getLogger(__name__)


def init_app(app):
    """Open the pooled session when an upstream is configured."""
    if not app.config["TRACKING_UPSTREAM"]:
        return
    session = requests.Session()
    # The upstream is reached directly: no proxy or netrc from the environment (reading them
    # on every call cost a third of a millisecond).
    session.trust_env = False
    # Answers are passed on as sent: ask for an encoding only when the caller did.
    del session.headers["Accept-Encoding"]
    for scheme in ("http://", "https://"):
        session.mount(scheme, HTTPAdapter(pool_connections=4, pool_maxsize=32))
    app.extensions["upstream"] = Upstream(
        app.config["TRACKING_UPSTREAM"].rstrip("/"), app.config["TRACKING_UPSTREAM_TOKEN"],
        float(app.config["TRACKING_TIMEOUT_SECONDS"]), session)


def current():
    """The configured upstream, or None (the embedded default has none)."""
    return current_app.extensions.get("upstream")


@dataclass
class Upstream:
    url: str
    token: str
    timeout: float
    session: requests.Session

    def __post_init__(self):
        self.known_workspaces = {"default"}

    def auth(self):
        return {"Authorization": f"Bearer {self.token}"} if self.token else {}

    def send(self, method, path, workspace, headers=None, **kwargs):
        """One call into workspace upstream; the caller's headers are its own business."""
        self.ensure_workspace(workspace)
        headers = {**(headers or {}), **self.auth(), WORKSPACE_HEADER: workspace}
        return call(lambda: self.session.request(
            method, self.url + path, headers=headers, allow_redirects=False,
            timeout=(min(self.timeout, 5), self.timeout), **kwargs))

    def ensure_workspace(self, workspace):
        if workspace in self.known_workspaces:
            return
        url = f"{self.url}/api/3.0/mlflow/workspaces"
        found = call(lambda: self.session.get(f"{url}/{workspace}", headers=self.auth(),
                                              timeout=self.timeout))
        if found.status_code == 404:
            made = call(lambda: self.session.post(url, json={"name": workspace},
                                                  headers=self.auth(), timeout=self.timeout))
            if made.status_code >= 400 and "RESOURCE_ALREADY_EXISTS" not in made.text:
                raise Unavailable(f"The MLflow tracking server refused workspace "
                                  f"'{workspace}': {made.text[:200]}", retry_after=2)
        elif found.status_code >= 400:
            raise Unavailable(f"The MLflow tracking server answered {found.status_code} for "
                              f"workspace '{workspace}'", retry_after=2)
        self.known_workspaces.add(workspace)



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
            answer = self.upstream.send(
                "PATCH", f"{self._model_path(model_id)}/tags", self.workspace,
                json={"tags": [{"key": MODEL_VERSIONS_TAG, "value": json.dumps(versions)}]})
            answer.raise_for_status()
        except (GatewayError, requests.RequestException, ValueError) as error:
            log.warning("could not tag logged model %s with version %s/%s: %s", model_id,
                        name, version, error)

    def _model_info(self, model_id):
        found = self._get(self._model_path(model_id), None)
        return found and found["model"]["info"]

    @staticmethod
    def _model_path(model_id):
        return f"/api/2.0/mlflow/logged-models/{requests.utils.quote(model_id, safe='')}"

    def _get(self, path, params):
        key = (path, tuple(sorted((params or {}).items())))
        if key not in self._found:
            self._found[key] = self._fetch(path, params)
        return self._found[key]

    def _fetch(self, path, params):
        answer = self.upstream.send("GET", path, self.workspace, params=params)
        if answer.status_code in (400, 404):  # MLflow: RESOURCE_DOES_NOT_EXIST / bad id
            return None
        if answer.status_code >= 400:
            raise Unavailable(f"The MLflow tracking server answered {answer.status_code} to "
                              f"{path}", retry_after=2)
        return answer.json()


def call(send):
    """send() an upstream request; its failures as the gateway's (503, 504)."""
    try:
        return send()
    except requests.Timeout:
        raise UpstreamTimeout("The MLflow tracking server did not answer in time.") from None
    except requests.ConnectionError:
        raise Unavailable("The MLflow tracking server is unreachable; retry the request.",
                          retry_after=2) from None

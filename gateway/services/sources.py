"""Model-version sources, checked as MLflow 3.17.2's server checks them.

The rules and messages are those of `mlflow/server/handlers.py` (`_create_model_version`,
`_validate_source_run`, `_validate_source_model`,
`_validate_non_local_source_contains_relative_paths`, `_validate_prompt_source`) and
`mlflow/store/artifact/host_policy.py`. They are a security boundary as much as a format
check: local paths and `..` segments are how MLflow's path-traversal CVEs worked, and a source
naming a host is one a server would be made to connect to.

The rules that need a run or a logged model (a local path inside a run's artifact directory,
an `mlflow-artifacts` source under a run's or a model's artifact location) ask the tracking
store: the MLflow tracking server behind the gateway (gateway/upstream.py), within the
request's workspace. Without one they cannot be confirmed, and such sources are refused with
the message MLflow gives when the run or model does not exist. `runs:/<id>/...` sources need no
store: they are accepted when the request's run_id names the same run, as in MLflow.

A store is anything with `run_artifact_uri(run_id)` and `logged_model(model_id)` ->
(artifact_location, source_run_id), each None when the upstream does not have it.
"""
import posixpath
import re
import urllib.parse
from dataclasses import dataclass

from gateway.exceptions import InvalidParameter, NotFound

# mlflow/prompt/constants.py: the only sources a prompt version may have.
PROMPT_SOURCE_PLACEHOLDERS = frozenset({"dummy-source", "prompt-template"})
# host_policy.HOST_ADDRESSED_ARTIFACT_SCHEMES: schemes whose repositories connect to the host
# named in the URI.
HOST_ADDRESSED_SCHEMES = frozenset({"ftp", "sftp", "hdfs", "viewfs", "http", "https",
                                    "mlflow-artifacts", "r2", "b2", "abfss"})
_SCHEME_FAMILIES = {"viewfs": "hdfs", "https": "http", "mlflow-artifacts": "http"}
_DEFAULT_PORTS = {"ftp": (21,), "sftp": (22,), "http": (80,), "https": (443,),
                  "mlflow-artifacts": (80, 443), "r2": (443,), "b2": (443,), "abfss": (443,)}
_MLFLOW_ARTIFACTS_ROUTE = ("api", "2.0", "mlflow-artifacts", "artifacts")


@dataclass(frozen=True)
class HostPolicy:
    """Which host-addressed sources are accepted (MLflow's defaults: none).

    allowed_schemes: as MLFLOW_ALLOWED_HOST_ADDRESSED_ARTIFACT_SCHEMES; trusted_roots: artifact
    roots whose hosts may be named (MLflow trusts its --default-artifact-root and
    --artifacts-destination).
    """
    allowed_schemes: tuple = ()
    trusted_roots: tuple = ()


def validate(source, run_id, model_id, is_prompt=False, policy=HostPolicy(), store=None):
    """Refuse a source MLflow 3.17.2 refuses for a create with this run_id and model_id.

    `models:/name/...` registry references are resolved (and their lineage checked) by the
    caller before this runs, as MLflow does.
    """
    if is_prompt:
        if source not in PROMPT_SOURCE_PLACEHOLDERS:
            raise InvalidParameter(f"Invalid prompt source: '{source}'. Prompt sources must use "
                                   "an MLflow placeholder.")
    _check_host(source, policy)
    if is_prompt:
        return
    if model_id:
        _validate_source_model(source, model_id, store)
    else:
        _validate_source_run(source, run_id, store)


def tracked_lineage(source, run_id, model_id, store):
    """(storage location or None, run_id) as MLflow's registry store sets them with a tracking
    store: a `models:/<model id>` source is stored at the logged model's artifact location, and
    a version without a run takes its logged model's source run."""
    if store is None:
        return None, run_id
    storage = None
    parsed = urllib.parse.urlparse(source)
    source_model_id = _parse_model_uri(source)[4] if parsed.scheme == "models" else None
    if source_model_id is not None:
        artifact_location, source_run_id = _logged_model(store, source_model_id)
        storage, run_id = artifact_location, run_id or source_run_id
    if not run_id and model_id:
        run_id = _logged_model(store, model_id)[1]
    return storage, run_id


def _logged_model(store, model_id):
    found = store.logged_model(model_id)
    if found is None:
        raise NotFound(f"Logged model with ID '{model_id}' not found.")
    return found


def registry_reference(source):
    """(name, version, stage, alias) of a `models:/` source naming a registered model, None for
    any other source; refuses what MLflow refuses before resolving one."""
    parsed = urllib.parse.urlparse(source)
    if parsed.scheme != "models":
        return None
    if parsed.netloc:
        raise InvalidParameter(f"Invalid model version source: '{source}'. Registered model "
                               "sources must use the active model registry.")
    name, version, stage, alias, model_id = _parse_model_uri(source)
    if model_id is not None:
        return None
    return name, version, stage, alias


def lineage_mismatch(source):
    return InvalidParameter(f"Invalid model version source: '{source}'. The run_id and model_id "
                            "request parameters must match the referenced model version.")


def prompt_as_source(source):
    return InvalidParameter(f"Invalid model version source: '{source}'. Prompt versions cannot "
                            "be used as model version sources.")


def _not_contained(source, id_name):
    return InvalidParameter(f"Invalid model version source: '{source}'. The {id_name} request "
                            "parameter must identify the resource that contains the source.")


def _validate_source_run(source, run_id, store):
    if _is_local(source):
        # With a run_id MLflow looks the run up; without a store to ask, the gateway answers as
        # MLflow does for a run that does not exist.
        if run_id:
            root = _source_root(store and store.run_artifact_uri(run_id), source, "run_id")
            if _local_within(source, root):
                return
            source = _local_path(source)
        raise InvalidParameter(
            f"Invalid model version source: '{source}'. To use a local path as a model version "
            "source, the run_id request parameter has to be specified and the local path has to "
            "be contained within the artifact directory of the run specified by the run_id.")
    _check_relative_paths(source)
    parsed = urllib.parse.urlparse(source)
    if parsed.scheme == "runs":
        if parsed.netloc:
            raise _not_contained(source, "run_id")
        if run_id and _runs_uri_run_id(source) == run_id:
            return
        raise _not_contained(source, "run_id")
    if parsed.scheme == "models":
        if parsed.netloc or _parse_model_uri(source)[4] is not None:
            raise _not_contained(source, "model_id")
    if _is_mlflow_artifact_source(source):  # only a run's artifact root may hold it
        if run_id and _within_root(source, _source_root(
                store and store.run_artifact_uri(run_id), source, "run_id")):
            return
        raise _not_contained(source, "run_id")


def _validate_source_model(source, model_id, store):
    if _is_local(source):  # MLflow looks the logged model up
        root = _model_root(store, model_id, source)
        if _local_within(source, root):
            return
        raise InvalidParameter(
            f"Invalid model version source: '{_local_path(source)}'. To use a local path as a "
            "model version source, the model_id request parameter has to be specified and the "
            "local path has to be contained within the artifact directory of the run specified "
            "by the model_id.")
    _check_relative_paths(source)
    parsed = urllib.parse.urlparse(source)
    if parsed.scheme == "models":
        if parsed.netloc:
            raise _not_contained(source, "model_id")
        source_model_id = _parse_model_uri(source)[4]
        if source_model_id is not None:
            if source_model_id == model_id:
                return
            raise _not_contained(source, "model_id")
    if parsed.scheme == "runs":
        raise _not_contained(source, "model_id")
    if _is_mlflow_artifact_source(source):
        if _within_root(source, _model_root(store, model_id, source)):
            return
        raise _not_contained(source, "model_id")


def _source_root(root, source, id_name):
    """The artifact root the store found (None: missing, or no store: refused as missing)."""
    if root is None:
        raise _not_contained(source, id_name)
    return root


def _model_root(store, model_id, source):
    found = store and store.logged_model(model_id)
    return _source_root(found and found[0], source, "model_id")


def _local_path(uri):
    """MLflow's local_file_uri_to_path, normalised as text (the gateway does not resolve
    symlinks: the path is the upstream's, not on this machine)."""
    path = urllib.parse.unquote(urllib.parse.urlparse(uri).path) if uri.startswith("file:") \
        else uri
    return posixpath.normpath(path) if path else path


def _local_within(source, root):
    """Whether local source lies in the local artifact root (MLflow: root in [source,
    *source.parents])."""
    if not _is_local(root):
        return False
    source, root = _local_path(source), _local_path(root)
    return source == root or source.startswith(root.rstrip("/") + "/")


def _within_root(source, root):
    """MLflow's `_is_uri_within_root`."""
    source_scheme, source_authority, source_parts = _normalized_parts(source)
    root_scheme, root_authority, root_parts = _normalized_parts(root)
    return (source_scheme == root_scheme and source_authority == root_authority
            and bool(root_parts) and source_parts[:len(root_parts)] == root_parts)


def _check_relative_paths(source):
    """MLflow's `_validate_non_local_source_contains_relative_paths`."""
    message = (f"Invalid model version source: '{source}'. If supplying a source as an http, "
               "https, local file path, ftp, objectstore, or mlflow-artifacts uri, an absolute "
               "path must be provided without relative path references present. Please provide "
               "an absolute path.")
    while (unquoted := urllib.parse.unquote_plus(source)) != source:
        source = unquoted
    path = re.sub(r"/+", "/", urllib.parse.urlparse(source).path.rstrip("/"))
    if "\x00" in path or any(part == ".." for part in source.split("/")):
        raise InvalidParameter(message)
    # MLflow compares the path with pathlib's resolve(), which makes a relative (or empty)
    # path absolute against the server's working directory, so only an absolute, normal
    # path survives. (resolve() also follows the server's own symlinks; a remote URI's path
    # has nothing to do with the gateway's file system, so that part is not copied.)
    if not path.startswith("/") or posixpath.normpath(path) != path:
        raise InvalidParameter(message)


def _is_local(source):
    """MLflow's `is_local_uri` for a source (a plain path, file:, or a localhost URI)."""
    parsed = urllib.parse.urlparse(source)
    if parsed.scheme == "":
        return True
    try:
        hostname = parsed.hostname
    except ValueError:
        hostname = None
    remote = hostname and not (hostname == "." or hostname.startswith("localhost")
                               or hostname.startswith("127.0.0.1"))
    if parsed.scheme == "file":
        if remote:
            raise InvalidParameter(f"{source} is not a valid remote uri. For remote access on "
                                   "windows, please consider using a different scheme such as "
                                   "SMB (e.g. smb://<hostname>/<path>).")
        return True
    return False


def _runs_uri_run_id(source):
    parsed = urllib.parse.urlparse(source)
    path = parsed.path
    run_id = path[1:].split("/")[0] if path.startswith("/") and len(path) > 1 else ""
    if not run_id:
        raise InvalidParameter(f"Not a proper runs:/ URI: {source}. Runs URIs must be of the "
                               "form 'runs:/<run_id>/run-relative/path/to/artifact'")
    return run_id


def _parse_model_uri(source):
    """MLflow's `_parse_model_uri`: (name, version, stage, alias, model_id)."""
    parsed = urllib.parse.urlparse(source, allow_fragments=False)
    path = parsed.path
    parts = path.lstrip("/").split("/")
    if (not path.startswith("/") or len(path) <= 1 or len(parts) > 2
            or parts[0].strip() == ""):
        raise _not_contained(source, "model_id")
    if len(parts) == 2:
        name, suffix = parts
        if suffix.strip() == "":
            raise _not_contained(source, "model_id")
        if suffix.isdigit():
            return name, suffix, None, None, None
        if suffix.lower() == "latest":
            return name, None, None, None, None
        return name, None, suffix, None, None
    if "@" in path:
        name, _, alias = parts[0].rpartition("@")
        if alias.strip() == "":
            raise _not_contained(source, "model_id")
        return name, None, None, alias, None
    return None, None, None, None, parts[0]


def _is_mlflow_artifact_source(source):
    scheme, _, parts = _normalized_parts(source)
    if scheme == "mlflow-artifacts":
        return True
    width = len(_MLFLOW_ARTIFACTS_ROUTE)
    return scheme in {"http", "https"} and any(
        parts[i:i + width] == _MLFLOW_ARTIFACTS_ROUTE for i in range(len(parts) - width + 1))


def _normalized_parts(uri):
    parsed = urllib.parse.urlsplit(uri)
    parts = []
    for part in parsed.path.split("/"):
        if part:
            while (unquoted := urllib.parse.unquote(part)) != part:
                part = unquoted
            parts.append(part)
    return parsed.scheme.lower(), parsed.netloc.lower(), tuple(parts)


def _check_host(source, policy):
    """host_policy.rejected_host_addressed_scheme, with the gateway's settings for MLflow's."""
    targets = _host_targets(source)
    if targets is None:
        return
    scheme = _scheme(source)
    if scheme in {s.lower() for s in policy.allowed_schemes}:
        return
    trusted = set()
    for root in policy.trusted_roots:
        trusted |= _host_targets(root) or set()
    if targets & trusted:
        return
    raise InvalidParameter(
        f"'source' cannot use the '{scheme}' scheme: the '{scheme}' scheme addresses a host "
        "other than the tracking server's configured artifact storage, so the server would "
        "connect to the host named in the URI. Set the GATEWAY_ALLOWED_HOST_ADDRESSED_SCHEMES "
        "environment variable on the gateway to allow it.")


def _scheme(uri):
    return urllib.parse.urlparse(uri).scheme.lower()


def _host_targets(uri):
    scheme = _scheme(uri)
    if scheme not in HOST_ADDRESSED_SCHEMES:
        return None
    parsed = urllib.parse.urlparse(uri)
    if scheme == "mlflow-artifacts" and not parsed.netloc:
        return None  # resolves against the server itself
    if "\\" in parsed.netloc or any(c.isspace() for c in parsed.netloc):
        return frozenset({("malformed", parsed.netloc, None)})
    try:
        port = parsed.port
    except ValueError:
        return frozenset({("malformed", parsed.netloc, None)})
    family = _SCHEME_FAMILIES.get(scheme, scheme)
    hostname = (parsed.hostname or "").lower()
    ports = (port,) if port is not None else _DEFAULT_PORTS.get(scheme, (None,))
    return frozenset((family, hostname, p) for p in ports)

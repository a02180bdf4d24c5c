"""The registry's input rules, copied from MLflow's `utils/validation.py` with its messages."""
import json
import posixpath
import re

from gateway.exceptions import InvalidParameter, MissingParameter

MAX_NAME_LENGTH = 256          # MLflow's column size: longer names fail on PostgreSQL
MAX_DESCRIPTION_LENGTH = 5000  # MLflow's column size
MAX_SOURCE_LENGTH = 500
MAX_RUN_ID_LENGTH = 32
MAX_TAG_KEY_LENGTH = 250
MAX_TAG_VALUE_LENGTH = 100000
MAX_ALIAS_LENGTH = 255
STAGES = ("None", "Staging", "Production", "Archived")
ACTIVE_STAGES = ("Staging", "Production")

_TAG_KEY = re.compile(r"^[/\w.\- :]*$")
_ALIAS = re.compile(r"^[\w\-]*$")
_VERSION_ALIAS = re.compile(r"^[vV]\d+$")
_WORKSPACE = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
RESERVED_WORKSPACES = {"workspaces", "api", "ajax-api", "static-files"}


def missing_value(path):
    return f"Missing value for required parameter '{path}'."


def exceeds_maximum_length(path, limit):
    return f"'{path}' exceeds the maximum length of {limit} characters"


def check_length(path, value, limit):
    """Refuse a value longer than limit."""
    if value is not None and len(value) > limit:
        raise InvalidParameter(exceeds_maximum_length(path, limit))


def _path_not_unique(name):
    norm = posixpath.normpath(name)
    return norm != name or norm == "." or norm.startswith("..") or norm.startswith("/")


def _bad_path(path, name):
    return InvalidParameter(
        f"Invalid value {_json(name)} for parameter '{path}' supplied: Names may be treated as "
        "files in certain cases, and must not resolve to other names when treated as such. "
        f"This name would resolve to {posixpath.normpath(name)!r}")


def _json(value):
    return json.dumps(value, sort_keys=True, separators=(",", ":"))


def model_name(name, path="name"):
    """Check a registered model name."""
    if name is None or name.strip() == "":
        raise MissingParameter(missing_value(path))
    if "/" in name or ":" in name:
        raise InvalidParameter(f"Invalid model name '{name}'. Names cannot contain '/' or ':'.")
    if _path_not_unique(name):
        raise _bad_path(path, name)
    check_length(path, name, MAX_NAME_LENGTH)


def tag(key, value):
    """Check a registry tag (registered model or model version)."""
    if key is None or key == "":
        raise MissingParameter(missing_value("key"))
    if not _TAG_KEY.match(key):
        raise InvalidParameter(
            f"Invalid value {_json(key)} for parameter 'key' supplied: Names may only contain "
            "alphanumerics, underscores (_), dashes (-), periods (.), spaces ( ), colon(:) and "
            "slashes (/).")
    if _path_not_unique(key):
        raise _bad_path("key", key)
    check_length("key", key, MAX_TAG_KEY_LENGTH)
    if value is None:
        raise InvalidParameter("Tag value cannot be None")
    check_length("value", value, MAX_TAG_VALUE_LENGTH)


def alias(name, reserved=False):
    """Check an alias name; `reserved` adds the rules that apply when setting one."""
    if not name:
        raise InvalidParameter("Registered model alias name cannot be empty.")
    if not _ALIAS.match(name):
        raise InvalidParameter(
            f"Invalid alias name: '{name}'. Names may only contain alphanumerics, "
            "underscores (_), and dashes (-).")
    check_length("Registered model alias name", name, MAX_ALIAS_LENGTH)
    if reserved and name.lower() == "latest":
        raise InvalidParameter("'latest' alias name (case insensitive) is reserved.")
    if reserved and _VERSION_ALIAS.match(name):
        raise InvalidParameter(f"Version alias name '{name}' is reserved.")


def version_number(version, path="version"):
    """Parse a version given as a string of digits."""
    try:
        number = int(version)
    except (TypeError, ValueError):
        raise InvalidParameter(f"Parameter '{path}' must be an integer, got '{version}'.") from None
    if number < 1 or number > 2**31 - 1:
        raise InvalidParameter(f"Parameter '{path}' must be a positive integer, got '{version}'.")
    return number


def stage(name):
    """Canonicalise a stage name case-insensitively."""
    for canonical in STAGES:
        if name.lower() == canonical.lower():
            return canonical
    raise InvalidParameter(f"Invalid Model Version stage: {name}. "
                           f"Value must be one of {', '.join(STAGES)}.")


def workspace_name(name):
    """Check a workspace name (Kubernetes-style, as MLflow's WorkspaceNameValidator)."""
    if not 2 <= len(name) <= 63:
        raise InvalidParameter(f"Workspace name '{name}' must be between 2 and 63 characters.")
    if not _WORKSPACE.match(name):
        raise InvalidParameter(
            f"Workspace name '{name}' must match the pattern {_WORKSPACE.pattern} "
            "(lowercase alphanumeric with optional internal hyphens).")
    if name in RESERVED_WORKSPACES:
        raise InvalidParameter(f"Workspace name '{name}' is reserved and cannot be used.")


_NEMO_WORKSPACE = re.compile(r"^[a-z][a-z0-9@.+_-]{1,62}$")


def nemo_workspace_name(name):
    """NeMo's resource-name rule for workspaces: a lowercase letter first, 2-63 characters of
    lowercase letters, digits, hyphens (and, for now, @ . + _), no "--", no "-" at the end."""
    if not _NEMO_WORKSPACE.match(name) or "--" in name or name.endswith("-"):
        raise InvalidParameter(
            f"Invalid workspace name '{name}': it must start with a lowercase letter, be 2-63 "
            "characters of lowercase letters, digits, hyphens (and @ . + _), with no '--' and "
            "no '-' at the end.")

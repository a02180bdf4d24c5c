"""Entity tags: a digest of everything a client can see of a model or version."""
import hashlib

import orjson

from gateway.exceptions import PreconditionFailed


def _digest(parts):
    """A strong entity-tag, quoted as RFC 9110 wants it ("...")."""
    text = orjson.dumps(parts, option=orjson.OPT_SORT_KEYS)
    return '"' + hashlib.sha256(text).hexdigest()[:32] + '"'


def _opaque(tag):
    return tag.strip().removeprefix("W/").strip('"')


def of_model(row):
    """The etag of a loaded registered model (with tags, aliases, latest versions)."""
    latest = [[v.version, v.current_stage, v.last_updated_timestamp] for v in row.latest_versions]
    return _digest([row.id, row.name, row.description, row.last_updated_timestamp, row.tags,
                    row.aliases, latest])


def of_version(row):
    """The etag of a loaded model version (with tags and aliases)."""
    return _digest([row.id, row.registered_model.name, row.version, row.description,
                    row.current_stage, row.source, row.run_id, row.run_link,
                    row.last_updated_timestamp, row.tags, row.aliases])


def check(current, if_match):
    """Refuse the change unless if_match (a list like an HTTP If-Match) names current or *."""
    if if_match is None:
        return
    # What clients echo: quoted, weak (W/"...") or bare; compared by the opaque part.
    wanted = {_opaque(tag) for tag in if_match.split(",")}
    if "*" not in wanted and _opaque(current) not in wanted:
        raise PreconditionFailed(f"The resource has changed: its etag is {current}, not "
                                 f"{if_match}.")

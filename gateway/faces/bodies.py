"""JSON request bodies, read the same strict way by every face."""
import orjson
from flask import current_app, request
from werkzeug.exceptions import RequestEntityTooLarge

from gateway.exceptions import MalformedRequest


def json_body(kind=dict):
    """The request body as JSON of `kind` (an object by default; `{}`/`[]` when empty)."""
    raw = request.get_data(cache=True)
    limit = current_app.config["MAX_CONTENT_LENGTH"]
    if request.content_length is None and limit and len(raw) >= limit:
        # A chunked body is cut at the limit by the WSGI layer; reaching it means "too large".
        raise RequestEntityTooLarge()
    if not raw.strip():
        return kind()
    try:
        # orjson, strictly: lone surrogates ("\ud800"), NaN and Infinity are not JSON text a
        # database could store, and are refused here rather than failing at the INSERT.
        data = orjson.loads(raw)
        if isinstance(data, str):  # old clients double-encode their JSON
            data = orjson.loads(data)
    except (ValueError, RecursionError) as error:
        reason = "nested too deeply" if isinstance(error, RecursionError) else str(error)[:200]
        raise MalformedRequest(f"Malformed JSON request body: {reason}") from None
    if not isinstance(data, kind):
        raise MalformedRequest(f"The request body must be a JSON "
                               f"{'object' if kind is dict else 'array'}.")
    return data

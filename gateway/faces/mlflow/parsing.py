"""Read a request the way MLflow's server does, and load it with a marshmallow schema."""
import json

import orjson

from flask import current_app, request
from marshmallow import ValidationError, fields
from werkzeug.exceptions import RequestEntityTooLarge

from gateway.exceptions import InvalidParameter, MalformedRequest, MissingParameter
from gateway.validation import missing_value

SEE_DOCS = " See the API docs for more information about request parameters."


def parse(schema):
    """The request's parameters, loaded and type-checked by schema."""
    data = _request_data(schema)
    try:
        return schema.load(data)
    except ValidationError as error:
        field = next(iter(error.messages))
        if data.get(field) in (None, ""):
            raise MissingParameter(missing_value(field) + SEE_DOCS) from None
        raise InvalidParameter(_invalid_message(field, data[field])) from None


def if_match():
    """The caller's If-Match etag list, or None."""
    return request.headers.get("If-Match")


def _request_data(schema):
    # GET reads the query string (repeated keys for lists), never a body: a body on a GET is
    # covered by no signature rule of OCI's and no cache; every other verb reads a JSON body.
    if request.method in ("GET", "HEAD"):
        return {key: request.args.getlist(key)
                if isinstance(schema.fields.get(key), fields.List) else request.args[key]
                for key in request.args}
    if request.method in ("POST", "PUT"):
        _check_content_type()
    return json_body()


def _check_content_type():
    if request.content_type is None:
        raise MalformedRequest("Bad Request. Content-Type header is missing.")
    if request.content_type.split(";")[0].strip() != "application/json":
        raise MalformedRequest("Bad Request. Content-Type must be one of ['application/json'].")


def json_body():
    """The request body as a JSON object ({} when empty)."""
    raw = request.get_data(cache=True)
    limit = current_app.config["MAX_CONTENT_LENGTH"]
    if request.content_length is None and limit and len(raw) >= limit:
        # A chunked body is cut at the limit by the WSGI layer; reaching it means "too large".
        raise RequestEntityTooLarge()
    if not raw.strip():
        return {}
    try:
        # orjson, strictly: lone surrogates ("\ud800"), NaN and Infinity are not JSON text a
        # database could store, and are refused here rather than failing at the INSERT.
        data = orjson.loads(raw)
        if isinstance(data, str):  # old clients double-encode their JSON
            data = orjson.loads(data)
    except (ValueError, RecursionError) as error:
        raise MalformedRequest(f"Malformed JSON request body: {_short(error)}") from None
    if not isinstance(data, dict):
        raise MalformedRequest("The request body must be a JSON object.")
    return data


def _short(error):
    return "nested too deeply" if isinstance(error, RecursionError) else str(error)[:200]


def _invalid_message(field, value):
    """MLflow's wording for an invalid field."""
    shown = json.dumps(value, sort_keys=True, separators=(",", ":"))
    if len(shown) > 200:
        shown = shown[:200] + "..."
    return (f"Invalid value {shown} for parameter '{field}' supplied:  Hint: Value was of type "
            f"'{type(value).__name__}'.{SEE_DOCS}")

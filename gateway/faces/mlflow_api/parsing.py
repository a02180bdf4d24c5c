"""Read a request the way MLflow's server does, and load it with a marshmallow schema."""
import json

from flask import request
from marshmallow import ValidationError, fields

from gateway.exceptions import InvalidParameter, MalformedRequest, MissingParameter
from gateway.faces.bodies import json_body
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


def _invalid_message(field, value):
    """MLflow's wording for an invalid field."""
    shown = json.dumps(value, sort_keys=True, separators=(",", ":"))
    if len(shown) > 200:
        shown = shown[:200] + "..."
    return (f"Invalid value {shown} for parameter '{field}' supplied:  Hint: Value was of type "
            f"'{type(value).__name__}'.{SEE_DOCS}")

"""Read NeMo requests: JSON bodies and query strings, with FastAPI-style 422 details."""
from flask import request
from marshmallow import ValidationError

from gateway.faces.bodies import json_body
from gateway.faces.nemo.errors import RequestInvalid, details_from


def body(schema):
    """The JSON body, validated by schema (only the fields given, for partial updates)."""
    try:
        return schema.load(json_body())
    except ValidationError as error:
        raise RequestInvalid(details_from(error.messages, "body")) from None


def query(schema):
    """The query string, validated by schema."""
    try:
        return schema.load(request.args.to_dict())
    except ValidationError as error:
        raise RequestInvalid(details_from(error.messages, "query")) from None

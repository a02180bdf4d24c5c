"""Read NeMo requests: JSON bodies and query strings, with FastAPI-style 422 details."""
import json
import re

from flask import request
from marshmallow import ValidationError

from gateway.exceptions import InvalidFilter
from gateway.faces.mlflow.parsing import json_body
from gateway.faces.nemo.errors import RequestInvalid, details_from

_BRACKET = re.compile(r"filter\[([^\]]+)\](?:\[([^\]]+)\])?")


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


def list_filter():
    """The filter of a list call, from ?filter={json} and ?filter[field][$op]=value forms."""
    result = {}
    text = request.args.get("filter")
    if text is not None:
        if not text.lstrip().startswith("{"):
            raise InvalidFilter("Only the JSON ({...}) and bracket (filter[field][$op]=value) "
                                "filter forms are supported.")
        try:
            result = json.loads(text)
        except ValueError:
            raise InvalidFilter(f"Invalid JSON in filter parameter: {text}") from None
        if not isinstance(result, dict):
            raise InvalidFilter("The filter must be a JSON object.")
    for key, value in request.args.items():
        match = _BRACKET.fullmatch(key)
        if match:
            field, operator = match.groups()
            if operator is None:
                result[field] = value
            elif isinstance(result.setdefault(field, {}), dict):
                result[field][operator] = value
            else:
                raise InvalidFilter(f"Conflicting filter values for '{field}'.")
    return result

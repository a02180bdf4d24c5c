"""NeMo-style list filters ({"field": value | {"$op": value}}) as Peewee conditions."""
from datetime import datetime

from peewee import SQL, NodeList, fn

from gateway.exceptions import InvalidFilter
from gateway.models import ModelAdapter, ModelEntityDetails, RegisteredModel

STRING_FIELDS = {
    "name": RegisteredModel.name, "description": RegisteredModel.description,
    "project": ModelEntityDetails.project, "fileset": ModelEntityDetails.fileset,
    "base_model": ModelEntityDetails.base_model,
    "finetuning_type": ModelEntityDetails.finetuning_type,
}
TIME_FIELDS = {"created_at": RegisteredModel.creation_timestamp,
               "updated_at": RegisteredModel.last_updated_timestamp}
STRING_OPS = ("$eq", "$in", "$nin", "$like")
TIME_OPS = ("$gte", "$lte")
FIELDS = sorted([*STRING_FIELDS, *TIME_FIELDS, "adapters"])


def conditions(filters):
    """WHERE conditions for a filter mapping; anything unknown is InvalidParameter."""
    result = []
    for field, value in filters.items():
        if field in STRING_FIELDS:
            result += _string(field, STRING_FIELDS[field], value)
        elif field in TIME_FIELDS:
            result += _time(field, TIME_FIELDS[field], value)
        elif field == "adapters":
            result.append(_has_adapters(value))
        else:
            raise InvalidFilter(f"Invalid filter field '{field}'. Valid fields are: "
                                   f"{', '.join(FIELDS)}.")
    return result


def _operations(field, value, allowed):
    operations = value if isinstance(value, dict) else {"$eq": value}
    unknown = [op for op in operations if op not in allowed]
    if unknown:
        raise InvalidFilter(f"Invalid filter operator '{unknown[0]}' for '{field}'. Valid "
                               f"operators are: {', '.join(allowed)}.")
    return operations


def _string(field, column, value):
    result = []
    for op, operand in _operations(field, value, STRING_OPS).items():
        if op in ("$in", "$nin"):
            values = operand.split(",") if isinstance(operand, str) else operand
            if not isinstance(values, list) or not all(isinstance(v, str) for v in values):
                raise InvalidFilter(f"Filter '{field}' {op} needs a list of strings.")
            result.append(column.in_(values) if op == "$in" else column.not_in(values))
        elif not isinstance(operand, str):
            raise InvalidFilter(f"Filter '{field}' {op} needs a string.")
        elif op == "$like":  # NeMo's $like: a case-insensitive substring match, in which
            result.append(_contains(column, operand))  # "_" and "%" are plain characters
        else:
            result.append(column == operand)
    return result


def _contains(column, text):
    escaped = text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return NodeList((fn.LOWER(column), SQL("LIKE"), fn.LOWER(f"%{escaped}%"),
                     SQL("ESCAPE '\\'")))


def _time(field, column, value):
    if not isinstance(value, dict):
        raise InvalidFilter(f"Filter '{field}' needs $gte and/or $lte.")
    result = []
    for op, operand in _operations(field, value, TIME_OPS).items():
        millis = _millis(field, operand)
        result.append(column >= millis if op == "$gte" else column <= millis)
    return result


def _millis(field, text):
    try:
        moment = datetime.fromisoformat(str(text).replace("Z", "+00:00"))
    except ValueError:
        raise InvalidFilter(f"Filter '{field}' needs ISO 8601 timestamps, not {text!r}.") from None
    if moment.tzinfo is None:
        raise InvalidFilter(f"Filter '{field}' timestamps need a time zone, e.g. 'Z'.")
    return int(moment.timestamp() * 1000)


def _has_adapters(value):
    wanted = {"true": True, "false": False}.get(str(value).lower())
    if wanted is None:
        raise InvalidFilter("Filter 'adapters' needs true or false.")
    rows = ModelAdapter.select(SQL("1")).where(ModelAdapter.registered_model == RegisteredModel.id)
    return fn.EXISTS(rows) if wanted else ~fn.EXISTS(rows)

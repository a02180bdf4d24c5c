"""NeMo's list filters as Peewee conditions.

A filter is NeMo's JSON form, whatever syntax it arrived in (the face turns bracket and text
syntax into it): {"field": value | {"$op": value}, "$and": [...], "$or": [...], "$not": {...}}.
Each list declares its fields as handlers; a field or operator a list does not declare is
InvalidFilter (a 400), never ignored. Values from query strings arrive as text, so handlers
accept "true"/"false" for booleans and "a,b" for lists.

Every condition is true or false, never SQL NULL, so `$not` and `$nin` also select the rows
where an optional field is empty.
"""
import functools
import operator
from datetime import datetime, timezone

from peewee import SQL, NodeList, Value, fn

from gateway.exceptions import InvalidFilter

STRING_OPS = ("$eq", "$in", "$nin", "$like")
TIME_OPS = {"$eq": operator.eq, "$gt": operator.gt, "$gte": operator.ge,
            "$lt": operator.lt, "$lte": operator.le}
LOGICAL = ("$and", "$or", "$not")


def conditions(tree, fields):
    """The WHERE conditions (ANDed) for a filter tree over `fields` {name: handler}."""
    return [] if not tree else [_node(tree, fields)]


def apply(query, tree, fields):
    """The query narrowed by a filter tree (unchanged for none)."""
    return query.where(*conditions(tree, fields)) if tree else query


def _node(tree, fields):
    if not isinstance(tree, dict) or not tree:
        raise InvalidFilter("A filter must be a non-empty object of fields and operators.")
    parts = []
    for key, value in tree.items():
        if key in ("$and", "$or"):
            if isinstance(value, dict):  # bracket syntax: filter[$or][0][name]=a
                value = [value[k] for k in sorted(value, key=_index)]
            if not isinstance(value, list) or not value:
                raise InvalidFilter(f"'{key}' needs a non-empty list of filters.")
            joined = operator.and_ if key == "$and" else operator.or_
            parts.append(functools.reduce(joined, [_node(item, fields) for item in value]))
        elif key == "$not":
            parts.append(~_node(value, fields))
        elif key in fields:
            parts.append(fields[key](key, value))
        else:
            raise InvalidFilter(f"Invalid filter field '{key}'. Valid fields are: "
                                f"{', '.join(sorted(fields))} (and {', '.join(LOGICAL)}).")
    return functools.reduce(operator.and_, parts)


def _index(key):
    if not str(key).isdigit():
        raise InvalidFilter(f"'$and'/'$or' take a list; '{key}' is not a list index.")
    return int(key)


def _operations(field, value, allowed):
    operations = value if isinstance(value, dict) else {"$eq": value}
    if not operations:
        raise InvalidFilter(f"Filter '{field}' has no operator.")
    unknown = [op for op in operations if op not in allowed]
    if unknown:
        raise InvalidFilter(f"Invalid filter operator '{unknown[0]}' for '{field}'. Valid "
                            f"operators are: {', '.join(allowed)}.")
    return operations


def _all(conditions_):
    return functools.reduce(operator.and_, conditions_)


def plain(value):
    """A bare value, or the operand of a lone $eq (text syntax writes `field:value`)."""
    if isinstance(value, dict) and list(value) == ["$eq"]:
        return value["$eq"]
    return value


def boolean(field, value):
    """true/false (also as text)."""
    value = plain(value)
    if isinstance(value, bool):
        return value
    wanted = {"true": True, "false": False}.get(str(value).lower()) if isinstance(
        value, str) else None
    if wanted is None:
        raise InvalidFilter(f"Filter '{field}' needs true or false, not {value!r}.")
    return wanted


def _strings(field, op, operand):
    values = operand.split(",") if isinstance(operand, str) else operand
    if not isinstance(values, list) or not values or not all(isinstance(v, str) for v in values):
        raise InvalidFilter(f"Filter '{field}' {op} needs a list of strings.")
    return values


def string(column, choices=None):
    """A text field with StringFilter's operators ($like: a case-insensitive substring, in
    which "_" and "%" are plain characters); `choices` limits the values (an enum)."""
    def handler(field, value):
        result = []
        for op, operand in _operations(field, value, STRING_OPS).items():
            if op in ("$in", "$nin"):
                values = _strings(field, op, operand)
                _check_choices(field, values, choices)
                result.append(column.is_null(False) & column.in_(values) if op == "$in"
                              else column.is_null() | column.not_in(values))
                continue
            if not isinstance(operand, str):
                raise InvalidFilter(f"Filter '{field}' {op} needs a string, not {operand!r}.")
            if op == "$like":
                result.append(column.is_null(False) & contains(column, operand))
            else:
                _check_choices(field, [operand], choices)
                result.append(column.is_null(False) & (column == operand))
        return _all(result)
    return handler


def _check_choices(field, values, choices):
    bad = [v for v in values if v not in choices] if choices else []
    if bad:
        raise InvalidFilter(f"Invalid value '{bad[0]}' for filter '{field}'. Valid values are: "
                            f"{', '.join(choices)}.")


def contains(column, text):
    """Case-insensitive substring match with LIKE's wildcards escaped."""
    escaped = text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return NodeList((fn.LOWER(column), SQL("LIKE"), fn.LOWER(f"%{escaped}%"),
                     SQL("ESCAPE '\\'")))


def timestamp(column):
    """A time (milliseconds since the epoch) compared with ISO 8601 values."""
    def handler(field, value):
        if not isinstance(value, dict):
            value = {"$eq": value}
        return _all([TIME_OPS[op](column, _millis(field, operand))
                     for op, operand in _operations(field, value, tuple(TIME_OPS)).items()])
    return handler


def _millis(field, text):
    try:
        moment = datetime.fromisoformat(str(text).replace("Z", "+00:00"))
    except ValueError:
        raise InvalidFilter(f"Filter '{field}' needs ISO 8601 timestamps, not {text!r}.") from None
    if moment.tzinfo is None:  # NeMo's examples ("2025-01-01T00:00:00") mean UTC
        moment = moment.replace(tzinfo=timezone.utc)
    return int(moment.timestamp() * 1000)


def flag(condition):
    """A true/false field: condition() is the SQL for true (and never NULL)."""
    def handler(field, value):
        return condition() if boolean(field, value) else ~condition()
    return handler


def is_set(column):
    """true: the optional column has a value; false: it has none."""
    return flag(lambda: column.is_null(False))


def always(result):
    """A constant condition (true or false), as SQL."""
    return Value(1) == Value(1 if result else 0)


def page_of(query, sorts, sort, tiebreak, page, page_size):
    """One page of a NeMo list: (rows, total_results, total_pages); sort is a key of sorts,
    "-" first for descending."""
    if page < 1 or page_size < 1:
        raise InvalidFilter("page and page_size must be positive integers.")
    column = sorts.get(sort.removeprefix("-"))
    if column is None:
        raise InvalidFilter(f"Invalid sort '{sort}'. Valid sorts are: "
                            f"{', '.join(s for name in sorts for s in (name, '-' + name))}.")
    total = query.count()
    order = column.desc() if sort.startswith("-") else column.asc()
    rows = list(query.order_by(order, tiebreak).paginate(page, page_size))
    return rows, total, -(-total // page_size)

"""Response schemas compiled to plain functions: the same output as `Schema.dump`, faster.

marshmallow spends ~15 us per object on its generic machinery (field lookups, hooks, error
collection), and a search page holds up to thousands of versions. `compiled_dump` writes one
function per schema that reads each field directly, the way dataclasses writes `__init__`:
the source is generated from the schema's fields, so the schema stays the one definition
(and the one the OpenAPI document is made from). It knows the field kinds below and the
Response rule (omit None, and "" or [] for the fields in OMIT_EMPTY); any other kind is
refused, so a new field cannot be dumped differently by accident. tests/test_schemas.py
checks both ways agree on every response schema.
"""
from marshmallow import fields

_CONVERSIONS = {fields.String: "str", fields.Integer: "int"}


def compiled_dump(schema):
    """A function `dump(obj) -> dict` equal to `schema.dump(obj)` for one object."""
    lines, scope = ["def dump(obj):", "    data = {}"], {}
    for index, (name, field) in enumerate(schema.dump_fields.items()):
        key, attribute, kind = field.data_key or name, field.attribute or name, type(field)
        if kind is fields.Function:
            scope[f"read{index}"] = field.serialize_func
            lines.append(f"    value = read{index}(obj)")
        elif kind is fields.Raw or kind in _CONVERSIONS:
            lines.append(f"    value = getattr(obj, {attribute!r}, None)")
            if kind in _CONVERSIONS:
                convert = _CONVERSIONS[kind]
                lines.append(f"    if value is not None and value.__class__ is not {convert}:")
                lines.append(f"        value = {convert}(value)")
        elif kind is fields.List and type(field.inner) is fields.Nested:
            scope[f"inner{index}"] = compiled_dump(field.inner.schema)
            lines.append(f"    value = getattr(obj, {attribute!r}, None)")
            lines.append("    if value is not None:")
            lines.append(f"        value = [inner{index}(item) for item in value]")
        else:
            raise TypeError(f"compiled_dump does not know {kind.__name__} fields ({name})")
        omitted = " and value != '' and value != []" if key in schema.OMIT_EMPTY else ""
        lines.append(f"    if value is not None{omitted}:")
        lines.append(f"        data[{key!r}] = value")
    lines.append("    return data")
    exec("\n".join(lines), scope)  # noqa: S102 - source built above from field names only
    return scope["dump"]

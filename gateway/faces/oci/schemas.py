"""OCI's own limits on CreateModelVersionDetails, stricter than MLflow's."""
from marshmallow import EXCLUDE, Schema, fields
from marshmallow.validate import Length

from gateway.faces.fields import Text


class Tag(Schema):
    class Meta:
        unknown = EXCLUDE

    key = Text(allow_none=True)
    value = Text(allow_none=True)


class CreateModelVersionDetails(Schema):
    """Only the limits; the MLflow schema then loads the same body."""

    class Meta:
        unknown = EXCLUDE

    name = Text(validate=Length(1, 255))
    source = Text(validate=Length(1, 500))
    run_id = Text(validate=Length(1, 32), allow_none=True)
    run_link = Text(validate=Length(0, 500), allow_none=True)
    description = Text(validate=Length(0, 5000), allow_none=True)
    model_id = Text(validate=Length(0, 36), allow_none=True)
    tags = fields.List(fields.Nested(Tag), validate=Length(0, 20), allow_none=True)


create_model_version_details = CreateModelVersionDetails()


def _text_limits(schema):
    """{field: (shortest, longest, may be null)} of a schema's Text fields, from their Length."""
    limits = {}
    for name, field in schema.fields.items():
        if isinstance(field, Text):
            [length] = [rule for rule in field.validators if isinstance(rule, Length)]
            limits[name] = (length.min or 0, length.max, field.allow_none)
    return limits


_TEXT_LIMITS = _text_limits(create_model_version_details)


def plainly_within_limits(body):
    """True when the body surely passes CreateModelVersionDetails (a quick look at its strings,
    a tenth of a schema load: this runs on every OCI version create); False means "load it
    with the schema" for the exact answer."""
    for name, (shortest, longest, nullable) in _TEXT_LIMITS.items():
        if name not in body:
            continue
        value = body[name]
        if value is None:
            if nullable:
                continue
            return False
        if type(value) is not str or not shortest <= len(value) <= longest or "\x00" in value:
            return False
    return not body.get("tags")

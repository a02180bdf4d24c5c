"""Marshmallow fields shared by every face."""
from marshmallow import ValidationError, fields


class Text(fields.String):
    """A string without NUL characters, which PostgreSQL cannot store."""

    def _deserialize(self, value, attr, data, **kwargs):
        text = super()._deserialize(value, attr, data, **kwargs)
        if "\x00" in text:
            raise ValidationError("Must not contain NUL characters.")
        return text

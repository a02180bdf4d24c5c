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

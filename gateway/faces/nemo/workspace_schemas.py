"""NeMo's workspace and member shapes (nemo-platform 0.3.0 `types/workspaces`) in marshmallow."""
from marshmallow import Schema, ValidationError, fields, validates
from marshmallow.validate import Length, OneOf

from gateway import validation
from gateway.exceptions import InvalidParameter
from gateway.faces.fields import Text
from gateway.faces.nemo.schemas import Paged, Request, description, iso

# NeMo's workspace roles and the gateway's: each includes the ones before it.
ROLES = {"Viewer": "reader", "Editor": "writer", "Admin": "admin"}
ROLE_NAMES = {role: name for name, role in ROLES.items()}


class CreateWorkspace(Request):
    name = Text(required=True)
    description = description()

    @validates("name")
    def _name(self, value, **kwargs):
        try:
            validation.nemo_workspace_name(value)
        except InvalidParameter as error:
            raise ValidationError(error.message) from None


class UpdateWorkspace(Request):
    description = description()


class ListWorkspaces(Paged):
    pass


def _roles(required):
    role = Text(validate=OneOf(tuple(ROLES), error="Input should be 'Viewer', 'Editor' or "
                                                   "'Admin'"))
    if required:
        return fields.List(role, required=True, validate=Length(min=1))
    return fields.List(role, load_default=["Viewer"], validate=Length(min=1))


class CreateMember(Request):
    principal = Text(required=True, validate=Length(1, 255))
    roles = _roles(required=False)


class UpdateMember(Request):
    roles = _roles(required=True)


def role_of(names):
    """The gateway role a list of NeMo roles grants: the highest of them."""
    return max((ROLES[name] for name in names), key=list(ROLES.values()).index)


class WorkspaceSchema(Schema):
    id = fields.Function(lambda row: row.uuid)
    name = fields.String()
    description = fields.String(allow_none=True)
    created_at = fields.Function(lambda row: iso(row.creation_timestamp))
    updated_at = fields.Function(
        lambda row: iso(row.last_updated_timestamp or row.creation_timestamp))
    created_by = fields.String(allow_none=True)
    updated_by = fields.String(allow_none=True)


class MemberSchema(Schema):
    principal = fields.Function(lambda grant: grant.principal.name)
    roles = fields.Function(lambda grant: [ROLE_NAMES[grant.role]])
    granted_at = fields.Function(lambda grant: iso(grant.granted_at) if grant.granted_at
                                 else None)
    granted_by = fields.String(allow_none=True)


create_workspace = CreateWorkspace()
update_workspace = UpdateWorkspace()
list_workspaces = ListWorkspaces()
create_member = CreateMember()
update_member = UpdateMember()
workspace_schema = WorkspaceSchema()
workspaces_schema = WorkspaceSchema(many=True)
member_schema = MemberSchema()
members_schema = MemberSchema(many=True)

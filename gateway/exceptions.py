"""Face-neutral domain errors; each API face maps them to its own status and body."""


class GatewayError(Exception):
    """Base of every error the domain raises on purpose."""

    def __init__(self, message):
        super().__init__(message)
        self.message = message


class InvalidParameter(GatewayError):
    """The request is malformed or breaks a rule of the registry."""


class NotFound(GatewayError):
    """The addressed resource does not exist (or is not visible to the caller)."""


class AlreadyExists(GatewayError):
    """A resource with that identity exists already."""


class Conflict(GatewayError):
    """The request conflicts with the current state of a resource."""

"""Face-neutral domain errors; each API face maps them to its own status and body."""


class GatewayError(Exception):
    """Base of every error the domain raises on purpose."""

    def __init__(self, message):
        super().__init__(message)
        self.message = message


class InvalidParameter(GatewayError):
    """The request breaks a rule of the registry."""


class MissingParameter(InvalidParameter):
    """A required parameter is absent or empty."""


class MalformedRequest(InvalidParameter):
    """The request cannot be parsed at all (bad JSON, wrong content type)."""


class NotFound(GatewayError):
    """The addressed resource does not exist (or is not visible to the caller)."""


class AlreadyExists(GatewayError):
    """A resource with that identity exists already."""


class Conflict(GatewayError):
    """The request conflicts with the current state of a resource."""


class IncorrectState(Conflict):
    """The resource is busy (e.g. a request with the same retry token is running); retry."""


class InvalidatedRetryToken(Conflict):
    """The retry token's original result has since been undone (e.g. deleted)."""


class PreconditionFailed(GatewayError):
    """The caller's if-match etag no longer matches the resource."""

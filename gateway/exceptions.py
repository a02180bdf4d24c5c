"""Face-neutral domain errors; each API face maps them to its own status and body."""


class GatewayError(Exception):
    """Base of every error the domain raises on purpose; headers go on the error answer."""

    def __init__(self, message, headers=None):
        super().__init__(message)
        self.message = message
        self.headers = headers or {}


class InvalidParameter(GatewayError):
    """The request breaks a rule of the registry."""


class MissingParameter(InvalidParameter):
    """A required parameter is absent or empty."""


class MalformedRequest(InvalidParameter):
    """The request cannot be parsed at all (bad JSON, wrong content type)."""


class InvalidFilter(InvalidParameter):
    """A list or search filter cannot be understood."""


class NotFound(GatewayError):
    """The addressed resource does not exist (or is not visible to the caller)."""


class AlreadyExists(GatewayError):
    """A resource with that identity exists already."""


class Conflict(GatewayError):
    """The request conflicts with the current state of a resource."""


class IncorrectState(Conflict):
    """The resource is busy (e.g. a request with the same retry token is running); retry."""

    def __init__(self, message, retry_after=1):
        super().__init__(message, {"Retry-After": str(retry_after)})


class InvalidatedRetryToken(Conflict):
    """The retry token's original result has since been undone (e.g. deleted)."""


class PreconditionFailed(GatewayError):
    """The caller's if-match etag no longer matches the resource."""


class Unauthenticated(GatewayError):
    """Missing or invalid credentials."""

    def __init__(self, message):
        super().__init__(message, {"WWW-Authenticate": 'Bearer realm="gateway", '
                                                       'Basic realm="gateway", Signature'})


class PermissionDenied(GatewayError):
    """A known caller without the role the request needs."""


class RateLimited(GatewayError):
    """The tenant is over its rate limit; retry after `retry_after` seconds."""

    def __init__(self, message, retry_after):
        super().__init__(message, {"Retry-After": str(retry_after)})


class UpstreamTimeout(GatewayError):
    """A server the gateway forwards to did not answer in time."""


class Unavailable(GatewayError):
    """A dependency (the database, a lock the request waits for) is out of reach; retry."""

    def __init__(self, message, retry_after=1):
        super().__init__(message, {"Retry-After": str(retry_after)})

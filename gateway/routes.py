"""What a face declares about its routes, as data the request pipeline (gateway.pipeline) reads.

On a blueprint, how the face finds the workspace its requests act in:

    bp.scope = Scope(find=..., resolve=..., hide=..., prepare=...)

On a view function, or on a blueprint for all of its views:

    @open_route          answered without credentials; enters no tenant, writes nothing
    @read_only           a POST that only reads: the reader role is enough (a catch-all may set
                         view.read_only to a predicate of the request: MLflow's POST searches)
    @requires("admin")   the role the caller needs there (default: reader to read, writer to
                         change); `also` names more (workspace, role) pairs the request needs
    @scoped(Scope(...))  the view's own scope instead of its blueprint's
    @forwarding          the view acts upstream, where nothing can be rolled back: its retry
                         token is reserved before it runs

The pipeline reads a view's declarations first, then its blueprints' from the innermost out
(once per endpoint), so renaming an endpoint or mounting a blueprint under another name cannot
silently open a route or lose its scope.
"""
from dataclasses import dataclass
from typing import Callable

from flask import request

# The methods that change something (what an opc-retry-token guards, what may create an OCI
# platform's registry).
MUTATING = frozenset({"POST", "PUT", "PATCH", "DELETE"})


@dataclass(frozen=True, slots=True)
class Scope:
    """How a face finds the workspace a request acts in.

    find(context)   the name the caller must hold a role in, from the request (its URL values
                    are on the context, put there by the face's url_value_preprocessor); None:
                    the request acts in no one workspace (a list of every workspace), and only
                    the caller's own rate limit counts
    resolve(name)   the gateway workspace the name stands for, once the caller may enter it
                    (NotFound if there is none); default: the name itself
    hide            answer 404 instead of 403 to a caller with no role there (so a workspace's
                    existence does not leak); a bool, or a predicate of the name
    authorize       False: any authenticated caller may act (NeMo: anyone may create a
                    workspace), still counted against the workspace found
    prepare()       the face's own checks and setup once the caller may act, before the retry
                    token is claimed (OCI: its body limits, the platform's registry)
    """
    find: Callable
    resolve: Callable | None = None
    hide: bool | Callable = False
    authorize: bool = True
    prepare: Callable | None = None


def from_path(key):
    """A Scope.find for a workspace named by the route's `key` path value (None on routes
    without it: the collection)."""
    return lambda scope: request.view_args.get(key)


# A route that acts in no workspace: only the caller's own rate limit counts.
UNSCOPED = Scope(find=lambda scope: None)


@dataclass(frozen=True, slots=True)
class Route:
    """Everything the pipeline needs to know about one endpoint, gathered once."""
    open: bool = False
    scope: Scope | None = None
    role: str | None = None
    also: Callable | None = None
    read_only: bool | Callable = False
    forwarding: bool = False

    def needed_role(self):
        """The declared role, else reader for reads, writer for changes."""
        if self.role is not None:
            return self.role
        if request.method in ("GET", "HEAD"):
            return "reader"
        flag = self.read_only
        return "reader" if (flag() if callable(flag) else flag) else "writer"


def open_route(target):
    target.open_route = True
    return target


def read_only(target):
    target.read_only = True
    return target


def requires(role, also=None):
    """The role a view (or every view of a blueprint) needs in its workspace; `also()` returns
    further (workspace, role) pairs the request needs (or none)."""
    def declare(target):
        target.required_role, target.also_requires = role, also
        return target
    return declare


def scoped(scope):
    """A view's own Scope, instead of its blueprint's."""
    def declare(target):
        target.scope = scope
        return target
    return declare


def forwarding(target):
    target.forwarding = True
    return target


def route_of(app, endpoint):
    """The Route an endpoint's declarations make (None endpoint: no route matched)."""
    known = app.extensions.setdefault("routes", {})
    route = known.get(endpoint)
    if route is None:
        route = known[endpoint] = _gather(app, endpoint) if endpoint else Route()
    return route


def _gather(app, endpoint):
    # The view, then its blueprints from the innermost out: the first to declare a thing wins.
    owners = [app.view_functions.get(endpoint)]
    name = endpoint.rpartition(".")[0]
    while name:
        owners.append(app.blueprints.get(name))
        name = name.rpartition(".")[0]
    owners = [owner for owner in owners if owner is not None]

    def first(attribute, default=None):
        return next((getattr(owner, attribute) for owner in owners
                     if getattr(owner, attribute, None) is not None), default)
    return Route(open=first("open_route", False), scope=first("scope"),
                 role=first("required_role"), also=first("also_requires"),
                 read_only=first("read_only", False), forwarding=first("forwarding", False))

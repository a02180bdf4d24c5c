"""What a face declares about its routes, as data the request pipeline reads.

    @bp.get("/health")
    @open_route          # answered without credentials; enters no tenant, writes nothing
    def health(): ...

    @bp.post("/get-latest-versions")
    @read_only           # a POST that only reads: the reader role is enough

A catch-all view may set `read_only` to a predicate of the request instead (the tracking
pass-through: MLflow's searches are POSTs).

Declarations sit on the view functions, so renaming an endpoint or mounting a blueprint under
another name cannot silently open a route (as matching endpoint names did).
"""
from flask import current_app, request


def open_route(view):
    view.open_route = True
    return view


def read_only(view):
    view.read_only = True
    return view


def view():
    """The view function the request's route leads to (None when no route matched)."""
    return current_app.view_functions.get(request.endpoint) if request.endpoint else None


def is_open():
    """Whether the request's route was declared open."""
    return getattr(view(), "open_route", False)


def is_read_only():
    """Whether the request only reads: GET/HEAD, or a route declared read-only."""
    if request.method in ("GET", "HEAD"):
        return True
    flag = getattr(view(), "read_only", False)
    return flag() if callable(flag) else flag

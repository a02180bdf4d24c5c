"""Who is acting: today the dh-user-principal header; authentication will refine it."""
from flask import g, request

USER_HEADER = "dh-user-principal"


def init_app(app):
    app.before_request(_identify)


def _identify():
    g.user = request.headers.get(USER_HEADER) or None


def caller():
    """The identity retry tokens are scoped to ("" when anonymous)."""
    return g.get("user") or ""

"""Per-tenant rate limits with the `limits` library: per workspace and per principal."""
import logging
import math
import sys
import time

from flask import current_app
from limits import parse_many
from limits.storage import storage_from_string
from limits.strategies import MovingWindowRateLimiter

from gateway import events
from gateway.exceptions import RateLimited

log = logging.getLogger(__name__)


def init_app(app):
    """Build the limiter when GATEWAY_RATE_LIMIT is set."""
    config = app.config
    app.extensions["traffic"] = None
    if config["RATE_LIMIT"] or config["PRINCIPAL_RATE_LIMIT"]:
        app.extensions["traffic"] = Limits(config["RATE_LIMIT"], config["RATE_LIMIT_OVERRIDES"],
                                           config["PRINCIPAL_RATE_LIMIT"],
                                           config["RATE_LIMIT_STORAGE"],
                                           _workers(config["RATE_LIMIT_WORKERS"]),
                                           float(config["REDIS_TIMEOUT_MS"]) / 1000)


def _workers(setting):
    """How many processes share a memory:// limit: the setting, else gunicorn's worker count."""
    if setting not in (None, "", "auto"):
        return int(setting)
    return gunicorn_workers() or 1


def gunicorn_workers():
    """The worker count of the gunicorn server loading this app, or None outside gunicorn.

    However gunicorn was started (`gateway serve`, `gunicorn -w N wsgi:app`, a config file,
    --preload), the app is built while gunicorn's worker or arbiter is on the call stack, and
    both carry the server's settings.
    """
    frame = sys._getframe(1)
    while frame is not None:
        owner = frame.f_locals.get("self")
        cfg = getattr(owner, "cfg", None)
        if type(owner).__module__.startswith("gunicorn.") and hasattr(cfg, "workers"):
            return int(cfg.workers)
        frame = frame.f_back
    return None


def admit(workspace, principal=None):
    """Count a request against its workspace's and principal's limits, or raise RateLimited."""
    limits = current_app.extensions.get("traffic")
    if limits is not None:
        limits.admit(workspace, principal)


class Limits:
    """The configured limits and where their counters live."""

    def __init__(self, default, overrides, per_principal, storage_uri, workers, timeout):
        self.local = storage_uri.startswith("memory")
        # In-process counters are per worker, so each worker enforces its share.
        self.share = workers if self.local else 1
        # A hung Redis costs each request at most `timeout` seconds, then fails open.
        options = {} if self.local else {"socket_timeout": timeout,
                                         "socket_connect_timeout": timeout}
        self.limiter = MovingWindowRateLimiter(storage_from_string(storage_uri, **options))
        self.default = self._parse(default)
        self.overrides = {name: self._parse(text) for name, text in overrides.items()}
        self.per_principal = self._parse(per_principal)

    def _parse(self, text):
        return [_shared(item, self.share) for item in parse_many(text)] if text else []

    def admit(self, workspace, principal):
        scopes = [("workspace", workspace, self.overrides.get(workspace, self.default))]
        if principal and self.per_principal:
            scopes.append(("principal", principal, self.per_principal))
        for scope, key, items in scopes:
            for item in items:
                if not self._hit(item, scope, key):
                    reset = self.limiter.get_window_stats(item, scope, key).reset_time
                    wait = max(1, math.ceil(reset - time.time()))
                    events.rate_limited.send("traffic", workspace=workspace)
                    raise RateLimited(f"Too many requests for {scope} '{key}' (limit "
                                      f"{item}); retry in {wait} s.", retry_after=wait)

    def _hit(self, item, scope, key):
        try:
            return self.limiter.hit(item, scope, key)
        except Exception:  # the counter store is down: serve rather than refuse everyone
            log.exception("rate-limit storage unavailable; admitting the request")
            return True


def _shared(item, share):
    amount = max(1, math.ceil(item.amount / share))
    return type(item)(amount, item.multiples, item.namespace) if share > 1 else item


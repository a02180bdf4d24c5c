"""Rate limits with the `limits` library: per tenant (workspace), per principal, and per client
address for traffic no tenant vouches for (unauthenticated, refused, open routes) and for
failed password checks (also per user name), so floods of those never spend a tenant's budget."""
import logging
import math
import sys
import time

from flask import current_app, request
from limits import parse_many
from limits.storage import storage_from_string
from limits.strategies import MovingWindowRateLimiter

from gateway import events
from gateway.exceptions import RateLimited

log = logging.getLogger(__name__)


def init_app(app):
    """Build the limiter when any limit is set."""
    config = app.config
    app.extensions["traffic"] = None
    if (config["RATE_LIMIT"] or config["PRINCIPAL_RATE_LIMIT"]
            or config["ANONYMOUS_RATE_LIMIT"] or config["LOGIN_FAILURE_LIMIT"]):
        app.extensions["traffic"] = Limits(config, _workers(config["RATE_LIMIT_WORKERS"]))


def client_address():
    """The client's address: the peer, or what trusted proxies say it is (X-Forwarded-For).

    Walking X-Forwarded-For from the right, each hop added by a proxy in TRUSTED_PROXIES is
    believed; the first address that is not a trusted proxy is the client. A client cannot
    choose its address by sending the header itself.
    """
    trusted = current_app.config["TRUSTED_PROXIES"]
    address = request.remote_addr or "unknown"
    if not trusted or address not in trusted:
        return address
    hops = [hop.strip() for hop in request.headers.get("X-Forwarded-For", "").split(",")]
    for hop in reversed([hop for hop in hops if hop]):
        if hop not in trusted:
            return hop
        address = hop
    return address


def admit_anonymous(address):
    """Count a request no tenant vouches for against its client address's limit."""
    limits = current_app.extensions.get("traffic")
    if limits is not None:
        limits.admit_anonymous(address)


def check_login(address, user):
    """Refuse (429) before any password work if the address or user name failed too often."""
    limits = current_app.extensions.get("traffic")
    if limits is not None:
        limits.check_login(address, user)


def failed_login(address, user):
    """Count a failed password check against the address and the user name."""
    limits = current_app.extensions.get("traffic")
    if limits is not None:
        limits.failed_login(address, user)


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

    def __init__(self, config, workers):
        storage_uri = config["RATE_LIMIT_STORAGE"]
        timeout = float(config["REDIS_TIMEOUT_MS"]) / 1000
        self.local = storage_uri.startswith("memory")
        # In-process counters are per worker, so each worker enforces its share.
        self.share = workers if self.local else 1
        # A hung Redis costs each request at most `timeout` seconds, then fails open.
        options = {} if self.local else {"socket_timeout": timeout,
                                         "socket_connect_timeout": timeout}
        self.limiter = MovingWindowRateLimiter(storage_from_string(storage_uri, **options))
        self.default = self._parse(config["RATE_LIMIT"])
        self.overrides = {name: self._parse(text)
                          for name, text in config["RATE_LIMIT_OVERRIDES"].items()}
        self.per_principal = self._parse(config["PRINCIPAL_RATE_LIMIT"])
        self.anonymous = self._parse(config["ANONYMOUS_RATE_LIMIT"])
        self.login = self._parse(config["LOGIN_FAILURE_LIMIT"])

    def _parse(self, text):
        return [_shared(item, self.share) for item in parse_many(text)] if text else []

    def admit(self, workspace, principal):
        # No workspace (a list of every workspace): the caller's own limit only.
        scopes = [] if workspace is None else [
            ("workspace", workspace, self.overrides.get(workspace, self.default))]
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

    def admit_anonymous(self, address):
        for item in self.anonymous:
            if not self._hit(item, "address", address):
                raise self._refusal(item, "address", address)

    def check_login(self, address, user):
        for scope, key in (("login-address", address), ("login-user", user)):
            for item in self.login:
                if not self._test(item, scope, key):
                    raise self._refusal(item, scope, key, "Too many failed logins")

    def failed_login(self, address, user):
        for scope, key in (("login-address", address), ("login-user", user)):
            for item in self.login:
                self._hit(item, scope, key)

    def _refusal(self, item, scope, key, what="Too many requests"):
        reset = self.limiter.get_window_stats(item, scope, key).reset_time
        wait = max(1, math.ceil(reset - time.time()))
        return RateLimited(f"{what} from this client (limit {item}); retry in {wait} s.",
                           retry_after=wait)

    def _test(self, item, scope, key):
        try:
            return self.limiter.test(item, scope, key)
        except Exception:  # the counter store is down: fail open, as for hits
            return True

    def _hit(self, item, scope, key):
        try:
            return self.limiter.hit(item, scope, key)
        except Exception:  # the counter store is down: serve rather than refuse everyone
            log.exception("rate-limit storage unavailable; admitting the request")
            return True


def _shared(item, share):
    amount = max(1, math.ceil(item.amount / share))
    return type(item)(amount, item.multiples, item.namespace) if share > 1 else item


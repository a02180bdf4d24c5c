"""The `gateway` command: `gateway serve`, `gateway db upgrade`, principals and grants.

The app (and with it prometheus-client) is imported only when a command needs it: `serve`
must set PROMETHEUS_MULTIPROC_DIR before prometheus-client is first imported.
"""
import os
import shutil
import tempfile
import time
from importlib.metadata import version

import click
from gunicorn.app.base import BaseApplication
from peewee import OperationalError

from gateway import migrations, tracking_server
from gateway.config import Config
from gateway.db import database
from gateway.exceptions import GatewayError
from gateway.services import principals
from gateway.services import workspaces
from gateway.services.workspaces import platform_workspace


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(version("model-registry-gateway"), "-V", "--version",
                      prog_name="gateway")
def main():
    """The model-registry gateway."""


@main.group()
def db():
    """Database maintenance."""


@db.command()
def upgrade():
    """Create or migrate the schema (run once, before the workers start)."""
    applied = _upgrade()
    click.echo(f"schema upgraded: applied {applied}" if applied else "schema is up to date")


def _upgrade(attempts=5):
    for attempt in range(attempts):
        try:
            return _in_database(migrations.upgrade)
        except OperationalError as error:
            # Switching a brand-new SQLite file to WAL can fail at once, without waiting,
            # while other upgraders open it; the next attempt finds WAL already set.
            if "locked" not in str(error) or attempt == attempts - 1:
                raise
            time.sleep(0.2 * (attempt + 1))


def _in_database(action):
    """Run action(*args) against the configured database; domain errors become CLI errors."""
    from gateway.app import create_app
    app = create_app()
    with app.app_context(), database.connection_context():
        try:
            return action()
        except GatewayError as error:
            raise click.ClickException(error.message) from None


@main.group()
def principal():
    """Principals, their credentials and roles (take effect at once, no restart)."""


@principal.command("create")
@click.argument("name")
@click.option("--act-for-others", is_flag=True, help="May name the acting user (dh-user-principal).")
def principal_create(name, act_for_others):
    """Create a principal."""
    _in_database(lambda: principals.create(name, act_for_others))
    click.echo(f"created principal {name}")


@principal.command("token")
@click.argument("name")
@click.option("--expires-in", help="Lifetime, e.g. 3600s, 90m, 12h, 30d (default: none).")
def principal_token(name, expires_in):
    """Issue a bearer token: printed once on stdout (only its digest is stored); its id, for
    `gateway token revoke`, goes to stderr."""
    seconds = _duration(expires_in) if expires_in else None
    token, token_id = _in_database(lambda: principals.issue_token(name, seconds, with_id=True))
    click.echo(token)
    click.echo(f"token id {token_id}", err=True)


def _duration(text):
    units = {"s": 1, "m": 60, "h": 3600, "d": 86400}
    try:
        amount, unit = float(text[:-1]), units[text[-1]]
    except (KeyError, ValueError, IndexError):
        raise click.BadParameter(f"{text!r}: use a number and s, m, h or d (e.g. 30d)") from None
    if amount <= 0:
        raise click.BadParameter("the lifetime must be positive")
    return amount * unit


@principal.command("list")
def principal_list():
    """Every principal, its roles and its credentials' counts."""
    def rows():
        return [(p.name, p.can_act_for_others, [(g.workspace, g.role) for g in p.grants],
                 p.tokens.count(), p.keys.count(), bool(p.password_hash))
                for p in principals.list_all()]
    for name, acts, grants, tokens, keys, password in _in_database(rows):
        roles = ", ".join(f"{role}@{workspace}" for workspace, role in grants) or "-"
        click.echo(f"{name}  roles: {roles}  tokens: {tokens}  keys: {keys}  "
                   f"password: {'yes' if password else 'no'}"
                   + ("  acts for others" if acts else ""))


@principal.command("delete")
@click.argument("name")
def principal_delete(name):
    """Delete a principal with its tokens, keys and grants."""
    _in_database(lambda: principals.delete(name))
    click.echo(f"deleted principal {name}")


@principal.command("remove-key")
@click.argument("key_id")
def principal_remove_key(key_id):
    """Remove a registered OCI API signing key."""
    _in_database(lambda: principals.remove_key(key_id))
    click.echo(f"key {key_id} removed")


@main.group()
def token():
    """Bearer tokens: list and revoke (revocations take effect within
    GATEWAY_AUTH_CACHE_SECONDS)."""


@token.command("list")
@click.argument("name", required=False)
def token_list(name):
    """Issued tokens (id, principal, issued, expires), never their value."""
    def rows():
        return [(t.id, t.principal.name, t.created_at, t.expires_at)
                for t in principals.tokens(name)]
    for token_id, owner, created, expires in _in_database(rows):
        click.echo(f"{token_id}  {owner}  issued {_when(created)}  "
                   f"expires {_when(expires) if expires else 'never'}")


def _when(ms):
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(ms / 1000))


@token.command("revoke")
@click.argument("token_id", type=int)
def token_revoke(token_id):
    """Revoke a token by its id."""
    _in_database(lambda: principals.revoke_token(token_id))
    click.echo(f"token {token_id} revoked")


@principal.command("password")
@click.argument("name")
@click.password_option()
def principal_password(name, password):
    """Set the password for HTTP Basic authentication."""
    _in_database(lambda: principals.set_password(name, password))
    click.echo(f"password set for {name}")


@principal.command("add-key")
@click.argument("name")
@click.argument("key_id")
@click.argument("public_key", type=click.File())
def principal_add_key(name, key_id, public_key):
    """Register an OCI API signing key: KEY_ID is "<tenancy>/<user>/<fingerprint>"."""
    _in_database(lambda: principals.add_key(name, key_id, public_key.read()))
    click.echo(f"key {key_id} added for {name}")


@principal.command("grant")
@click.argument("name")
@click.argument("workspace")
@click.argument("role", type=click.Choice(principals.ROLES))
@click.option("--platform", is_flag=True,
              help="WORKSPACE is an OCI aiDataPlatformId (its registry is made if need be).")
@click.option("--create", is_flag=True, help="Create WORKSPACE if it does not exist.")
def principal_grant(name, workspace, role, platform, create):
    """Give NAME a ROLE in an existing WORKSPACE ("*" for every workspace)."""
    if platform:
        workspace = _in_database(lambda: platform_workspace(workspace, create=True))
    elif create and workspace != principals.ALL_WORKSPACES:
        _in_database(lambda: workspaces.ensure(workspace))
    _in_database(lambda: principals.grant(name, workspace, role))
    click.echo(f"{name} is {role} in {workspace}")


@principal.command("revoke")
@click.argument("name")
@click.argument("workspace")
@click.option("--platform", is_flag=True, help="WORKSPACE is an OCI aiDataPlatformId.")
def principal_revoke(name, workspace, platform):
    """Take away NAME's role in WORKSPACE."""
    workspace = platform_workspace(workspace) if platform else workspace
    _in_database(lambda: principals.revoke(name, workspace))
    click.echo(f"{name} has no role in {workspace}")


@main.group("webhooks")
def webhooks_group():
    """Webhook deliveries (the outbox)."""


@webhooks_group.command("deliveries")
@click.option("--status", type=click.Choice(["pending", "delivered", "failed"]))
@click.option("--workspace")
@click.option("--limit", default=100, show_default=True, type=int)
def webhook_deliveries(status, workspace, limit):
    """List deliveries, newest first: id, status, attempts, event, webhook, last answer."""
    from gateway.services import webhooks
    for row in _in_database(lambda: webhooks.deliveries(status, workspace, limit)):
        last = row.last_status or (row.last_error or "")[:80]
        click.echo(f"{row.delivery_id}  {row.status:9}  {row.attempts:2}  {row.event:28}  "
                   f"{row.workspace}  {row.webhook_id}  {last}")


@webhooks_group.command("retry")
@click.argument("delivery_id")
def webhook_retry(delivery_id):
    """Queue a failed delivery again (same delivery id, attempts start over)."""
    from gateway.services import webhooks
    _in_database(lambda: webhooks.retry(delivery_id))
    click.echo(f"delivery {delivery_id} queued")


@main.command("platform-workspace")
@click.argument("platform_id")
def platform_workspace_command(platform_id):
    """Print the MLflow workspace holding an OCI AI Data Platform's registry."""
    click.echo(platform_workspace(platform_id))


# gunicorn's default access line, with the request id the gateway answered with.
ACCESS_LOG_FORMAT = '%(h)s [%({opc-request-id}o)s] "%(r)s" %(s)s %(b)s %(L)ss "%(a)s"'


def default_workers():
    """Two per core plus one, gunicorn's rule for synchronous workers."""
    return 2 * (os.cpu_count() or 1) + 1


@main.command()
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=5000, show_default=True, type=int)
@click.option("--workers", default=default_workers(), show_default=True, type=int)
@click.option("--access-log/--no-access-log", default=False, show_default=True,
              help="gunicorn's own access log (the gateway logs JSON lines itself).")
@click.option("--worker-class", type=click.Choice(["asgi", "sync"]), default="asgi",
              show_default=True,
              help="asgi: gunicorn's asyncio worker reads whole requests, so slow or idle "
                   "clients hold no worker (gateway/asgi.py); sync: plain synchronous workers.")
@click.option("--tracking", is_flag=True,
              help="Also start a local MLflow tracking server (experiments, runs, artifacts, "
                   "the UI) and forward to it; stopped with the gateway. Its data sits beside "
                   "a SQLite database, in mlflow-tracking/.")
def serve(host, port, workers, access_log, worker_class, tracking):
    """Migrate the schema, then serve the gateway with gunicorn."""
    metrics = _metrics_directory()  # first: before anything imports prometheus-client
    upstream = None
    try:
        _upgrade()
        if tracking:
            upstream = _start_tracking()
        options = {"bind": f"{host}:{port}", "workers": workers, "worker_class": worker_class,
                   "accesslog": "-" if access_log else None,
                   "access_log_format": ACCESS_LOG_FORMAT, "child_exit": _forget_worker_metrics}
        GunicornServer(options).run()
    finally:
        if upstream is not None:
            upstream.stop()
        if metrics is not None:
            shutil.rmtree(metrics, ignore_errors=True)


def _start_tracking():
    """The managed tracking server; the workers (forked later) forward to it."""
    if os.environ.get("GATEWAY_TRACKING_UPSTREAM"):
        raise click.UsageError("--tracking starts its own upstream: unset "
                               "GATEWAY_TRACKING_UPSTREAM, or drop --tracking")
    server = tracking_server.Managed(os.environ.get("GATEWAY_DATABASE_URL") or Config.DATABASE_URL)
    os.environ["GATEWAY_TRACKING_UPSTREAM"] = server.url
    click.echo(f"gateway: MLflow tracking server at {server.url} (pid {server.process.pid})",
               err=True)
    return server


def _metrics_directory():
    """prometheus-client's multiprocess folder: workers write samples there, /metrics sums.

    A folder named by PROMETHEUS_MULTIPROC_DIR is emptied and kept; otherwise a private one
    is made and returned, to be removed at shutdown.
    """
    given = os.environ.get("PROMETHEUS_MULTIPROC_DIR")
    folder = given or tempfile.mkdtemp(prefix="gateway-metrics-")
    if given:
        shutil.rmtree(folder, ignore_errors=True)
        os.makedirs(folder)
    os.environ["PROMETHEUS_MULTIPROC_DIR"] = folder
    return None if given else folder


def _forget_worker_metrics(server, worker):
    from prometheus_client import multiprocess
    multiprocess.mark_process_dead(worker.pid)


class GunicornServer(BaseApplication):
    """gunicorn running create_app() in each worker (no app is shared across a fork)."""

    def __init__(self, options):
        self.options = options
        super().__init__()

    def load_config(self):
        for key, value in self.options.items():
            if value is not None:
                self.cfg.set(key, value)

    def load(self):
        if self.options["worker_class"] == "asgi":
            from gateway.asgi import create_asgi_app
            return create_asgi_app()
        from gateway.app import create_app
        from gateway.delivery import start
        app = create_app()
        start(app)  # this worker's webhook delivery thread
        return app

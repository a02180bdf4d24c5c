"""The `gateway` command: `gateway serve` and `gateway db upgrade`."""
import os
import time

import click
from gunicorn.app.base import BaseApplication
from peewee import OperationalError

from gateway import migrations
from gateway.app import create_app
from gateway.db import database
from gateway.services.workspaces import platform_workspace


@click.group()
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
    app = create_app()
    for attempt in range(attempts):
        try:
            with app.app_context(), database.connection_context():
                return migrations.upgrade()
        except OperationalError as error:
            # Switching a brand-new SQLite file to WAL can fail at once, without waiting,
            # while other upgraders open it; the next attempt finds WAL already set.
            if "locked" not in str(error) or attempt == attempts - 1:
                raise
            time.sleep(0.2 * (attempt + 1))


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
@click.option("--access-log/--no-access-log", default=False, show_default=True)
def serve(host, port, workers, access_log):
    """Migrate the schema, then serve the gateway with gunicorn."""
    _upgrade()
    options = {"bind": f"{host}:{port}", "workers": workers,
               "accesslog": "-" if access_log else None, "access_log_format": ACCESS_LOG_FORMAT}
    GunicornServer(options).run()


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
        return create_app()

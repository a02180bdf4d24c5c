"""`gateway serve --tracking`: a local MLflow tracking server as a managed child process.

For one machine and a first try: the server listens on a private port of 127.0.0.1, keeps its
runs in SQLite and its artifacts in a folder beside the gateway's database, has workspaces on,
and is stopped with the gateway. The gateway forwards to it as to any upstream
(GATEWAY_TRACKING_UPSTREAM).

MLflow 3.17.2's server pins gunicorn<27 and the gateway runs gunicorn 27, so it cannot live
in the gateway's environment (hence no pip extra): it runs from its own virtual environment,
GATEWAY_TRACKING_MLFLOW (the path of its `mlflow` command), built on first use under
~/.cache/model-registry-gateway when that is not set.
"""
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from urllib.parse import urlsplit

import click
import requests

MLFLOW = "mlflow==3.17.2"
START_SECONDS = 180


def mlflow_command():
    """The `mlflow` command of MLflow's own environment (built if absent)."""
    given = os.environ.get("GATEWAY_TRACKING_MLFLOW")
    if given:
        if not Path(given).exists():
            raise click.ClickException(f"GATEWAY_TRACKING_MLFLOW={given} does not exist")
        return given
    home = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    env = home / "model-registry-gateway" / MLFLOW.replace("==", "-")
    command = env / "bin" / "mlflow"
    if not command.exists():
        click.echo(f"gateway: installing {MLFLOW} in {env} (once; its own environment)",
                   err=True)
        subprocess.run([sys.executable, "-m", "venv", str(env)], check=True)
        subprocess.run([str(env / "bin" / "pip"), "install", "-q", MLFLOW], check=True)
    return str(command)


def folder_for(database_url):
    """Where the tracking server keeps its data: beside a SQLite database, else ./."""
    parts = urlsplit(database_url)
    if parts.scheme.startswith("sqlite") and parts.path not in ("", "/", "/:memory:"):
        database = Path(parts.path[1:] if parts.netloc == "" else parts.path)
        return database.resolve().parent / "mlflow-tracking"
    return Path("mlflow-tracking").resolve()


def start(database_url):
    """Start the server; returns (process, url) once it answers /health."""
    folder = folder_for(database_url)
    folder.mkdir(parents=True, exist_ok=True)
    port = _free_port()
    process = subprocess.Popen(
        [mlflow_command(), "server", "--host", "127.0.0.1", "--port", str(port),
         "--backend-store-uri", f"sqlite:///{folder / 'mlflow.db'}",
         "--artifacts-destination", str(folder / "artifacts"), "--enable-workspaces",
         "--workers", "1"],
        cwd=folder, stdout=open(folder / "server.log", "ab"),  # noqa: SIM115
        stderr=subprocess.STDOUT, start_new_session=True)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + START_SECONDS
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise click.ClickException(f"MLflow's tracking server exited ({process.returncode})"
                                       f"; see {folder / 'server.log'}")
        try:
            if requests.get(f"{url}/health", timeout=2).ok:
                return process, url
        except requests.RequestException:
            pass
        time.sleep(0.5)
    stop(process)
    raise click.ClickException(f"MLflow's tracking server did not start within "
                               f"{START_SECONDS} s; see {folder / 'server.log'}")


def stop(process, seconds=15):
    """Stop the server and its workers (its own process group)."""
    if process.poll() is not None:
        return
    for sig, wait in ((signal.SIGTERM, seconds), (signal.SIGKILL, 5)):
        try:
            os.killpg(process.pid, sig)
        except ProcessLookupError:
            return
        try:
            process.wait(wait)
            return
        except subprocess.TimeoutExpired:
            continue


def _free_port():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]

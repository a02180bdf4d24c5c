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
import threading
import time
from pathlib import Path
from urllib.parse import urlsplit

import click
import requests

MLFLOW = "mlflow==3.17.2"
START_SECONDS = 180
RESTART_FIRST, RESTART_MOST = 1.0, 60.0  # seconds before a restart: the first, the longest


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


class Managed:
    """The server as a child of the gateway's master process: started and waited for, then
    watched (restarted on its port if it exits, after 1 s, doubling up to a minute while it
    keeps failing; the workers answer 503 meanwhile), stopped with the gateway."""

    def __init__(self, database_url):
        self.folder = folder_for(database_url)
        self.folder.mkdir(parents=True, exist_ok=True)
        self.port = _free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.process = self._launch()
        self._wait()
        self._stopping = threading.Event()
        self._watcher = threading.Thread(target=self._watch, name="tracking-server",
                                         daemon=True)
        self._watcher.start()

    def _launch(self):
        with open(self.folder / "server.log", "ab") as log:
            return subprocess.Popen(
                [mlflow_command(), "server", "--host", "127.0.0.1", "--port", str(self.port),
                 "--backend-store-uri", f"sqlite:///{self.folder / 'mlflow.db'}",
                 "--artifacts-destination", str(self.folder / "artifacts"),
                 "--enable-workspaces", "--workers", "1"],
                cwd=self.folder, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)

    def _wait(self):
        deadline = time.monotonic() + START_SECONDS
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise click.ClickException(
                    f"MLflow's tracking server exited ({self.process.returncode}); see "
                    f"{self.folder / 'server.log'}")
            try:
                if requests.get(f"{self.url}/health", timeout=2).ok:
                    return
            except requests.RequestException:
                pass
            time.sleep(0.5)
        stop(self.process)
        raise click.ClickException(f"MLflow's tracking server did not start within "
                                   f"{START_SECONDS} s; see {self.folder / 'server.log'}")

    def _watch(self):
        pause, started = RESTART_FIRST, time.monotonic()
        while not self._stopping.wait(1):
            if self.process.poll() is None:
                if time.monotonic() - started > RESTART_MOST:
                    pause = RESTART_FIRST  # it has run a while: a new failure starts over
                continue
            click.echo(f"gateway: MLflow tracking server exited ({self.process.returncode}); "
                       f"restarting in {pause:.0f} s", err=True)
            stop(self.process)  # what is left of its group (its job consumers)
            if self._stopping.wait(pause):
                return
            self.process, started = self._launch(), time.monotonic()
            pause = min(pause * 2, RESTART_MOST)
            click.echo(f"gateway: MLflow tracking server restarted at {self.url} "
                       f"(pid {self.process.pid})", err=True)

    def stop(self):
        self._stopping.set()
        self._watcher.join(10)
        stop(self.process)


def stop(process, seconds=15):
    """Stop the server and its workers (its own process group, even after the server
    itself exited: its job consumers may outlive it)."""
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

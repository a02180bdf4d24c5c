"""Helpers for benchmark scripts: start servers on free ports, measure, print tables."""
import os
import socket
import statistics
import subprocess
import sys
import time
from contextlib import contextmanager

import requests

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def free_port():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_until_up(url, process, seconds=60):
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"server exited with {process.returncode}")
        try:
            if requests.get(url, timeout=1).status_code < 500:
                return
        except requests.ConnectionError:
            time.sleep(0.2)
    raise RuntimeError(f"{url} did not come up in {seconds} s")


@contextmanager
def running(command, health_url, env=None, cwd=ROOT):
    """Run a server process for the duration of a with-block."""
    process = subprocess.Popen(command, env={**os.environ, **(env or {})}, cwd=cwd,
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_until_up(health_url, process)
        yield process
    finally:
        process.terminate()
        process.wait(timeout=30)


@contextmanager
def redis_server():
    """A private redis-server on a free port; yields its URL."""
    import redis
    port = free_port()
    process = subprocess.Popen(["redis-server", "--port", str(port), "--save", "",
                                "--appendonly", "no"], stdout=subprocess.DEVNULL)
    url = f"redis://127.0.0.1:{port}"
    try:
        for _ in range(200):
            try:
                redis.Redis.from_url(url).ping()
                break
            except redis.ConnectionError:
                time.sleep(0.05)
        yield url
    finally:
        process.terminate()
        process.wait(timeout=10)


@contextmanager
def gateway(database_url, workers, env=None):
    """The gateway under gunicorn; yields its base URL."""
    port = free_port()
    env = {"GATEWAY_DATABASE_URL": database_url, "GATEWAY_RATE_LIMIT_WORKERS": str(workers),
           **(env or {})}
    subprocess.run([sys.executable, "-m", "gateway", "db", "upgrade"], check=True,
                   env={**os.environ, **env}, cwd=ROOT, capture_output=True)
    command = [sys.executable, "-m", "gunicorn", "-w", str(workers), "-b", f"127.0.0.1:{port}",
               "gateway.app:create_app()"]
    with running(command, f"http://127.0.0.1:{port}/health", env):
        yield f"http://127.0.0.1:{port}"


def percentile(values, fraction):
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))]


def median(values):
    return statistics.median(values) if values else float("nan")


def table(headers, rows):
    widths = [max(len(str(x)) for x in column) for column in zip(headers, *rows)]
    line = "  ".join(f"{{:>{w}}}" for w in widths)
    print(line.format(*headers))
    for row in rows:
        print(line.format(*row))

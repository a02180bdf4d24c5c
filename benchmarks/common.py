"""Helpers for benchmark scripts: start servers on free ports, measure, print tables."""
import os
import statistics
import subprocess
import sys
from contextlib import contextmanager

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)
# The tests' process helpers: waits bounded by a deadline, process groups always stopped.
from tests import processes  # noqa: E402
from tests.processes import free_port  # noqa: E402,F401  (used by the scripts)


@contextmanager
def running(command, health_url, env=None, cwd=ROOT):
    """Run a server process (and its children) for the duration of a with-block."""
    process = processes.start(command, env={**os.environ, **(env or {})}, cwd=cwd)
    try:
        processes.wait_for(processes.http_ok(health_url, status_below=500), 120, health_url,
                           process)
        yield process
    finally:
        processes.stop(process, seconds=30)


@contextmanager
def redis_server():
    """A private redis-server on a free port; yields its URL."""
    import redis
    port = free_port()
    process = processes.start(["redis-server", "--port", str(port), "--bind", "127.0.0.1",
                               "--save", "", "--appendonly", "no"])
    url = f"redis://127.0.0.1:{port}"
    try:
        processes.wait_for(lambda: redis.Redis.from_url(url, socket_timeout=5).ping(), 30,
                           "redis-server", process)
        yield url
    finally:
        processes.stop(process)


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

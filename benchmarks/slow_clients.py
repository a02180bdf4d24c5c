"""What `gateway serve`'s asyncio worker buys against slow clients, and what it costs.

    python benchmarks/slow_clients.py [--workers 2] [--connections 100] [--seconds 5] [--repeats 3]

For each worker class (gunicorn's synchronous workers, and the asyncio worker that `gateway
serve` runs by default, gateway/asgi.py): an ordinary client's latency while --connections slow
clients (trickled headers, half bodies, silence) hold connections open; then throughput with wrk
(get and create, alternated --repeats times, medians) and the asgi/sync ratio.
"""
import argparse
import os
import sys
import tempfile
import time

import requests

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from common import ROOT, free_port, median, running, table  # noqa: E402
from compare import wrk  # noqa: E402
from tests.slow_clients import SlowClients  # noqa: E402

MLFLOW = "/api/2.0/mlflow"


def serve(worker_class, workers, folder):
    port = free_port()
    env = {"GATEWAY_DATABASE_URL": f"sqlite:///{folder}/{worker_class}.db",
           "GATEWAY_ACCESS_LOG": "false"}
    command = [sys.executable, "-m", "gateway", "serve", "--port", str(port), "--workers",
               str(workers), "--worker-class", worker_class]
    return port, running(command, f"http://127.0.0.1:{port}/health", env, cwd=ROOT)


def under_slow_clients(port, connections, samples=20):
    """An ordinary client's latencies (s) while slow clients hold connections."""
    base = f"http://127.0.0.1:{port}{MLFLOW}"
    slow = SlowClients(port, connections)
    try:
        time.sleep(1)
        latencies = []
        for index in range(samples):
            started = time.monotonic()
            try:
                requests.post(f"{base}/registered-models/create", json={"name": f"s{index}"},
                              timeout=40)
                latencies.append(time.monotonic() - started)
            except requests.RequestException:  # not answered in 40 s: no need to go on
                latencies.append(float("inf"))
                break
        return latencies
    finally:
        slow.close()


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--connections", type=int, default=100)
    parser.add_argument("--seconds", type=int, default=5)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    folder = tempfile.mkdtemp(prefix="gateway-slow-")
    rows, rates = [], {"sync": {"get": [], "create_one": []},
                       "asgi": {"get": [], "create_one": []}}
    for worker_class in ("sync", "asgi"):
        port, server = serve(worker_class, args.workers, folder)
        with server:
            base = f"http://127.0.0.1:{port}{MLFLOW}"
            requests.post(f"{base}/registered-models/create", json={"name": "bench"}, timeout=30)
            latencies = under_slow_clients(port, args.connections)
            rows.append((worker_class, args.workers, args.connections, len(latencies),
                         f"{median(latencies) * 1000:.1f}", f"{max(latencies) * 1000:.1f}"))
    for _ in range(args.repeats):  # alternated, so both see the same noise
        for worker_class in ("sync", "asgi"):
            port, server = serve(worker_class, args.workers, folder)
            with server:
                base = f"http://127.0.0.1:{port}{MLFLOW}"
                requests.post(f"{base}/registered-models/create", json={"name": "bench"},
                              timeout=30)
                rates[worker_class]["get"].append(
                    wrk(f"{base}/registered-models/get?name=bench", "get", args.seconds)[0])
                rates[worker_class]["create_one"].append(
                    wrk(f"{base}/model-versions/create", "create_one", args.seconds)[0])
    print("An ordinary client's create while slow clients hold connections (ms):")
    table(("workers", "count", "slow clients", "requests", "p50", "max"), rows)
    print("\nThroughput, medians of alternated runs (requests/s):")
    table(("scenario", "sync", "asgi", "asgi/sync"), [
        (scenario, f"{median(rates['sync'][scenario]):.0f}",
         f"{median(rates['asgi'][scenario]):.0f}",
         f"{median(rates['asgi'][scenario]) / median(rates['sync'][scenario]):.2f}")
        for scenario in ("get", "create_one")])


if __name__ == "__main__":
    main()

"""Fairness: a tenant flooding at ten times its limit must not hurt another tenant.

Starts the gateway (gunicorn, SQLite, Redis-backed limits), then measures a quiet tenant's
requests alone and again while a noisy tenant floods at 10x its limit. Prints both tenants'
success rates and the quiet tenant's latency (median, p99), loaded vs unloaded.

    python benchmarks/fairness.py [--limit 20] [--seconds 10] [--workers 4]
"""
import argparse
import os
import sys
import tempfile
import threading
import time

import requests

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from common import gateway, median, percentile, redis_server, table  # noqa: E402

MLFLOW = "/api/2.0/mlflow"


def paced(base, workspace, rate, seconds, results, threads=1):
    """Send `rate` requests per second for `seconds`, recording (status, latency)."""
    interval = threads / rate
    deadline = time.monotonic() + seconds

    def worker(offset):
        session = requests.Session()
        next_at = time.monotonic() + offset
        while next_at < deadline:
            time.sleep(max(0.0, next_at - time.monotonic()))
            started = time.perf_counter()
            response = session.get(f"{base}{MLFLOW}/registered-models/get",
                                   params={"name": "model"},
                                   headers={"X-MLFLOW-WORKSPACE": workspace})
            results.append((response.status_code, time.perf_counter() - started))
            next_at += interval

    pool = [threading.Thread(target=worker, args=(i * interval / threads,))
            for i in range(threads)]
    for thread in pool:
        thread.start()
    return pool


def summary(name, results):
    ok = [latency for status, latency in results if status == 200]
    limited = sum(1 for status, _ in results if status == 429)
    return [name, len(results), f"{100 * len(ok) / max(1, len(results)):.1f}%", limited,
            f"{1000 * median(ok):.1f}", f"{1000 * percentile(ok, 0.99):.1f}"]


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--limit", type=int, default=20, help="requests/second per tenant")
    parser.add_argument("--seconds", type=float, default=10)
    parser.add_argument("--workers", type=int, default=4)
    args = parser.parse_args()
    quiet_rate = args.limit / 2
    with tempfile.TemporaryDirectory() as folder, redis_server() as redis_url:
        env = {"GATEWAY_RATE_LIMIT": f"{args.limit}/second",
               "GATEWAY_RATE_LIMIT_STORAGE": redis_url}
        with gateway(f"sqlite:///{folder}/fair.db", args.workers, env) as base:
            for workspace in ("quiet", "noisy"):
                requests.post(f"{base}/api/3.0/mlflow/workspaces", json={"name": workspace})
                requests.post(f"{base}{MLFLOW}/registered-models/create", json={"name": "model"},
                              headers={"X-MLFLOW-WORKSPACE": workspace})
            alone = []
            for thread in paced(base, "quiet", quiet_rate, args.seconds, alone):
                thread.join()
            time.sleep(1.1)  # let the moving window empty
            loaded, flood = [], []
            threads = paced(base, "quiet", quiet_rate, args.seconds, loaded)
            threads += paced(base, "noisy", 10 * args.limit, args.seconds, flood, threads=8)
            for thread in threads:
                thread.join()
    print(f"limit {args.limit}/s per tenant; quiet tenant sends {quiet_rate:g}/s, noisy "
          f"{10 * args.limit}/s; {args.workers} gunicorn workers, Redis counters, "
          f"{args.seconds:g} s each\n")
    table(["tenant", "requests", "success", "429s", "p50 ms", "p99 ms"],
          [summary("quiet, alone", alone), summary("quiet, during flood", loaded),
           summary("noisy (10x limit)", flood)])
    quiet_ok = all(status == 200 for status, _ in loaded)
    ratio = median([l for s, l in loaded if s == 200]) / median([l for s, l in alone if s == 200])
    print(f"\nquiet tenant all succeeded during the flood: {quiet_ok}; "
          f"its median latency loaded/unloaded: {ratio:.2f}x")


if __name__ == "__main__":
    main()

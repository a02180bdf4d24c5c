"""Wrong passwords must not cost a neighbour its latency (security issue, item 6).

Each wrong Basic password costs a scrypt hash (~200 ms of CPU, on purpose). Starts the gateway
(gunicorn, auth required), then measures a neighbour tenant's gets (bearer token, 10/s) alone
and again while another client sends 50 wrong passwords per second for a known user. Failed
logins are limited per client address and per user name (GATEWAY_LOGIN_FAILURE_LIMIT), so past
the first few the flood is answered 429 before any hashing. Prints the neighbour's p50/p90 and
the loaded/unloaded p90 ratio (target: at most 2).

    python benchmarks/login_flood.py [--seconds 10] [--workers 4] [--flood 50]
"""
import argparse
import base64
import os
import subprocess
import sys
import tempfile
import threading
import time

import requests

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from common import ROOT, gateway, percentile, table  # noqa: E402

MLFLOW = "/api/2.0/mlflow"


def paced(url, rate, seconds, headers, results):
    session, interval = requests.Session(), 1 / rate
    next_at, deadline = time.monotonic(), time.monotonic() + seconds
    while next_at < deadline:
        time.sleep(max(0.0, next_at - time.monotonic()))
        started = time.perf_counter()
        status = session.get(url, headers=headers, timeout=30).status_code
        results.append((status, time.perf_counter() - started))
        next_at += interval


def flood(url, rate, seconds, results, threads=10):
    wrong = {"Authorization": "Basic " + base64.b64encode(b"victim:wrong-password").decode()}
    workers = [threading.Thread(target=paced, args=(url, rate / threads, seconds, wrong, results))
               for _ in range(threads)]
    for worker in workers:
        worker.start()
    return workers


def cli(env, *args):
    return subprocess.run([sys.executable, "-m", "gateway", *args], env={**os.environ, **env},
                          cwd=ROOT, capture_output=True, text=True, check=True).stdout.strip()


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--seconds", type=int, default=10)
    parser.add_argument("--workers", type=int, default=4)
    parser.add_argument("--flood", type=int, default=50)
    args = parser.parse_args()
    folder = tempfile.mkdtemp(prefix="gateway-login-")
    url = f"sqlite:///{folder}/gateway.db"
    env = {"GATEWAY_DATABASE_URL": url, "GATEWAY_AUTH": "required", "GATEWAY_ACCESS_LOG": "false"}
    subprocess.run([sys.executable, "-m", "gateway", "db", "upgrade"], env={**os.environ, **env},
                   cwd=ROOT, check=True, capture_output=True)
    for name in ("neighbour", "victim"):
        cli(env, "principal", "create", name)
        cli(env, "principal", "grant", name, "default", "reader")
    cli(env, "principal", "password", "victim", "--password", "right-password-1")
    token = cli(env, "principal", "token", "neighbour")
    with gateway(url, args.workers, env) as base:
        get = f"{base}{MLFLOW}/registered-models/search"
        headers = {"Authorization": f"Bearer {token}"}
        alone, loaded, flooded = [], [], []
        paced(get, 10, args.seconds, headers, alone)
        workers = flood(get, args.flood, args.seconds, flooded)
        paced(get, 10, args.seconds, headers, loaded)
        for worker in workers:
            worker.join()
    rows = []
    for label, results in (("neighbour, alone", alone), ("neighbour, during the flood", loaded),
                           ("flood (wrong passwords)", flooded)):
        latencies = [latency * 1000 for _, latency in results]
        statuses = sorted({status for status, _ in results})
        rows.append((label, len(results), ",".join(map(str, statuses)),
                     f"{percentile(latencies, 0.5):.1f}", f"{percentile(latencies, 0.9):.1f}"))
    table(("client", "requests", "statuses", "p50 ms", "p90 ms"), rows)
    ratio = percentile([x for _, x in loaded], 0.9) / percentile([x for _, x in alone], 0.9)
    print(f"\nneighbour p90 during the flood / alone: {ratio:.2f} (target <= 2)")


if __name__ == "__main__":
    main()

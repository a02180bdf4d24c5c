"""The gateway against the real MLflow server (and a bare Flask app), on this machine, in one run.

    bash benchmarks/setup.sh                # once: wrk, redis-server, mlflow==3.17.2 in its own venv
    python benchmarks/compare.py [--seconds 8] [--workers 5] [--repeats 3]

wrk (16 connections) drives one server at a time; the table gives requests/s, p50/p99 latency
and gateway/MLflow ratios. Then: the gateway's get against a bare Flask app (the ceiling),
alternated --repeats times and compared by medians, since this machine is shared and noisy;
what the gateway machinery (OCI face, request id, retry token, auth, Redis rate limit) costs,
piece by piece; search growth from 10k to 100k versions; peak RSS per worker.
"""
import argparse
import os
import re
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from contextlib import ExitStack, contextmanager

import requests

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from common import ROOT, free_port, redis_server, running  # noqa: E402

MLFLOW = "/api/2.0/mlflow"
MODELS = 1000
LUA = {
    "get": "",
    "create_one": """
counter = 0
request = function()
  counter = counter + 1
  return wrk.format("POST", nil, {["Content-Type"] = "application/json"},
    string.format('{"name":"bench","source":"s3://b/%d"}', counter))
end""",
    "create_many": """
counter = 0
request = function()
  counter = counter + 1
  return wrk.format("POST", nil, {["Content-Type"] = "application/json"},
    string.format('{"name":"m%d","source":"s3://b/%d"}', math.random(0, 999), counter))
end""",
    # The OCI-face create; TOKEN (bearer) and RETRY ("1": send opc-retry-token) are optional.
    "create_oci": """
local threads = 0
function setup(thread) thread:set("tid", threads); threads = threads + 1 end
counter = 0
request = function()
  counter = counter + 1
  local id = string.format("%s-%d-%d", RUN, tid, counter)
  local headers = {["Content-Type"] = "application/json", ["opc-request-id"] = id}
  if TOKEN ~= "" then headers["Authorization"] = "Bearer " .. TOKEN end
  if RETRY == "1" then headers["opc-retry-token"] = id end
  return wrk.format("POST", nil, headers,
    string.format('{"name":"m%d","source":"s3://b/%d"}', math.random(0, 999), counter))
end""",
}


def wrk(url, scenario, seconds, variables=None):
    """(requests/s, p50 ms, p99 ms) of one wrk run."""
    script = "".join(f'{k} = "{v}"\n' for k, v in (variables or {}).items()) + LUA[scenario]
    with tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False) as lua:
        lua.write(script)
    out = subprocess.run(["wrk", "-t2", "-c16", f"-d{seconds}s", "--timeout", "10s", "--latency",
                          "-s", lua.name, url], capture_output=True, text=True, check=True).stdout
    os.unlink(lua.name)
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))
    non_2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    if non_2xx:
        print(f"  warning: {non_2xx.group(1)} non-2xx answers in {scenario} at {url}")
    return rps, _millis(out, "50%"), _millis(out, "99%")


def _millis(out, label):
    value, unit = re.search(rf"{label}\s+([\d.]+)(us|ms|s)", out).groups()
    return float(value) * {"us": 0.001, "ms": 1, "s": 1000}[unit]


def worker_rss_mb(master_pid):
    """Peak resident memory (VmHWM) of each worker process under a master, in MB."""
    children = subprocess.run(["pgrep", "-P", str(master_pid)], capture_output=True,
                              text=True).stdout.split()
    sizes = []
    for pid in children:
        try:
            status = open(f"/proc/{pid}/status").read()
        except FileNotFoundError:
            continue
        sizes.append(int(re.search(r"VmHWM:\s+(\d+)", status).group(1)) / 1024)
    return sizes


@contextmanager
def gateway_server(folder, workers, env=None, database=None):
    url = f"sqlite:///{database or folder + '/gateway.db'}"
    env = {"GATEWAY_DATABASE_URL": url, "GATEWAY_RATE_LIMIT_WORKERS": str(workers), **(env or {})}
    subprocess.run([sys.executable, "-m", "gateway", "db", "upgrade"], check=True,
                   env={**os.environ, **env}, capture_output=True)
    port = free_port()
    command = [sys.executable, "-m", "gunicorn", "-w", str(workers), "-b", f"127.0.0.1:{port}",
               "gateway.app:create_app()"]
    with running(command, f"http://127.0.0.1:{port}/health", env) as process:
        yield f"http://127.0.0.1:{port}", process


@contextmanager
def mlflow_server(folder, mlflow):
    port = free_port()
    command = [mlflow, "server", "--backend-store-uri", f"sqlite:///{folder}/mlflow.db",
               "--host", "127.0.0.1", "--port", str(port), "--workers", "4",
               "--default-artifact-root", f"{folder}/artifacts"]
    with running(command, f"http://127.0.0.1:{port}/health", cwd=folder) as process:
        yield f"http://127.0.0.1:{port}", _uvicorn_master(process.pid)


def _uvicorn_master(pid):
    # `mlflow server` starts uvicorn as a child; its workers are the grandchildren.
    children = subprocess.run(["pgrep", "-P", str(pid)], capture_output=True, text=True)
    return type("Process", (), {"pid": int(children.stdout.split()[0])})()


@contextmanager
def bare_flask(workers):
    port = free_port()
    command = [sys.executable, "-m", "gunicorn", "-w", str(workers), "-b", f"127.0.0.1:{port}",
               "bare_flask:app"]
    with running(command, f"http://127.0.0.1:{port}/health",
                 cwd=os.path.join(ROOT, "benchmarks")) as process:
        yield f"http://127.0.0.1:{port}", process


def seed_small(base):
    """The model 'bench' with one version, and models m0..m999, through the API."""
    session = requests.Session()
    for name in ["bench"] + [f"m{i}" for i in range(MODELS)]:
        session.post(f"{base}{MLFLOW}/registered-models/create", json={"name": name})
    session.post(f"{base}{MLFLOW}/model-versions/create", json={"name": "bench",
                                                               "source": "s3://b/0"})


def fill_mlflow(path, per_model):
    """Bring every model m0..m999 of MLflow's database to per_model versions."""
    db = sqlite3.connect(path)
    now = int(time.time() * 1000)
    for i in range(MODELS):
        have = db.execute("SELECT COALESCE(MAX(version), 0) FROM model_versions WHERE name=?",
                          (f"m{i}",)).fetchone()[0]
        db.executemany(
            "INSERT INTO model_versions (name, version, creation_time, last_updated_time, "
            "description, current_stage, source, run_id, status, run_link, workspace) "
            "VALUES (?, ?, ?, ?, '', 'None', ?, '', 'READY', '', 'default')",
            [(f"m{i}", v, now, now, f"s3://b/{i}/{v}") for v in range(have + 1, per_model + 1)])
    db.commit()


def fill_gateway(path, per_model):
    """The same for the gateway's database (through its own models)."""
    from gateway import create_app
    from gateway.db import database
    from gateway.models import ModelVersion, RegisteredModel
    create_app({"DATABASE_URL": f"sqlite:///{path}"})
    now = int(time.time() * 1000)
    with database.connection_context(), database.atomic():
        for model in RegisteredModel.select().where(RegisteredModel.name.startswith("m")):
            rows = [{"registered_model": model.id, "version": v, "source": f"s3://b/{v}",
                     "creation_timestamp": now, "last_updated_timestamp": now}
                    for v in range(model.last_version + 1, per_model + 1)]
            for start in range(0, len(rows), 500):
                ModelVersion.insert_many(rows[start:start + 500]).execute()
            model.last_version = max(model.last_version, per_model)
            model.save()


SEARCHES = {
    "search_models": f"{MLFLOW}/registered-models/search?filter=name%3D%27m500%27&max_results=100",
    "search_versions": f"{MLFLOW}/model-versions/search?filter=name%3D%27m500%27&max_results=100",
    # The same search with a page of 10: every page the same size, so only the registry grows.
    "search_versions_page10": f"{MLFLOW}/model-versions/search?filter=name%3D%27m500%27"
                              "&max_results=10",
}


def measure(folder, args):
    results, rss = {}, {}
    get = f"{MLFLOW}/model-versions/get?name=bench&version=1"
    create = f"{MLFLOW}/model-versions/create"
    with mlflow_server(folder, args.mlflow) as (base, master):
        seed_small(base)
        for scenario, path in (("get", get), ("create_one", create), ("create_many", create)):
            results[("mlflow", scenario)] = wrk(base + path, scenario, args.seconds)
        for size, per_model in (("10k", 10), ("100k", 100)):
            fill_mlflow(f"{folder}/mlflow.db", per_model)
            for name, path in SEARCHES.items():
                results[("mlflow", f"{name}_{size}")] = wrk(base + path, "get", args.seconds)
        rss["mlflow"] = worker_rss_mb(master.pid)
    with gateway_server(folder, args.workers) as (base, process):
        seed_small(base)
        for scenario, path in (("get", get), ("create_one", create), ("create_many", create)):
            results[("gateway", scenario)] = wrk(base + path, scenario, args.seconds)
        rss["gateway"] = worker_rss_mb(process.pid)
    for size, per_model in (("10k", 10), ("100k", 100)):
        fill_gateway(f"{folder}/gateway.db", per_model)
        with gateway_server(folder, args.workers) as (base, process):
            for name, path in SEARCHES.items():
                results[("gateway", f"{name}_{size}")] = wrk(base + path, "get", args.seconds)
            rss[f"gateway, {size} search"] = worker_rss_mb(process.pid)
    results["ceiling"] = ceiling(folder, args, get)
    results["machinery"] = machinery(folder, args)
    return results, rss


def ceiling(folder, args, get):
    """Gateway gets and bare-Flask gets, alternated `--repeats` times: (gateway, bare) req/s."""
    runs = []
    with gateway_server(folder, args.workers, database=f"{folder}/ceiling.db") as (gateway, _):
        seed_small(gateway)
        with bare_flask(args.workers) as (bare, _):
            for _ in range(args.repeats):
                runs.append((wrk(gateway + get, "get", args.seconds)[0],
                             wrk(bare + get, "get", args.seconds)[0]))
    return runs


# The machinery, one piece at a time: each step adds to the one before. Each step is its own
# gateway (its own database); all run at once and are driven in turn, --repeats rounds.
MACHINERY = (("MLflow face (plain)", {}, False, False, "mlflow"),
             ("OCI face, opc-request-id", {}, False, False, "oci"),
             ("+ opc-retry-token", {}, False, True, "oci"),
             ("+ bearer auth", {"GATEWAY_AUTH": "required"}, True, True, "oci"),
             ("+ Redis rate limit", {"GATEWAY_AUTH": "required", "GATEWAY_RATE_LIMIT":
                                     "100000/second"}, True, True, "oci"))


def machinery(folder, args):
    """The create of the MLflow face, then of the OCI face adding request id, retry token,
    bearer auth and a Redis rate limit: {step: (median req/s, median p50 ms)}."""
    platform = "ocid1.aidataplatform.oc1..bench"
    targets = {}
    with redis_server() as redis_url, ExitStack() as servers:
        for index, (name, env, auth, retry, face) in enumerate(MACHINERY):
            database = f"{folder}/machinery-{index}.db"
            env = {**env, "GATEWAY_RATE_LIMIT_STORAGE": redis_url}
            gateway = [sys.executable, "-m", "gateway"]
            run = {"env": {**os.environ, "GATEWAY_DATABASE_URL": f"sqlite:///{database}"},
                   "check": True, "capture_output": True, "text": True}
            subprocess.run(gateway + ["db", "upgrade"], **run)
            subprocess.run(gateway + ["principal", "create", "bench"], **run)
            token = subprocess.run(gateway + ["principal", "token", "bench"], **run).stdout.strip()
            subprocess.run(gateway + ["principal", "grant", "bench", "*", "admin"], **run)
            base, _ = servers.enter_context(gateway_server(folder, args.workers, env, database))
            root = base + (MLFLOW if face == "mlflow" else
                           f"/20260430/aiDataPlatforms/{platform}/workspaces/ws/mlops{MLFLOW}")
            session = requests.Session()
            session.headers["Authorization"] = f"Bearer {token}"
            for i in range(MODELS):
                session.post(f"{root}/registered-models/create", json={"name": f"m{i}"})
            scenario = "create_many" if face == "mlflow" else "create_oci"
            targets[name] = (f"{root}/model-versions/create", scenario,
                             {"TOKEN": token if auth else "", "RETRY": "1" if retry else "0"})
        runs = {name: [] for name in targets}
        for _ in range(args.repeats):
            for name, (url, scenario, variables) in targets.items():
                runs[name].append(wrk(url, scenario, args.seconds,
                                      {**variables, "RUN": str(time.time_ns())}))
    return {name: (statistics.median(r[0] for r in rounds),
                   statistics.median(r[1] for r in rounds)) for name, rounds in runs.items()}


def report(results, rss, args):
    print(f"\n{args.seconds:g} s per run, wrk -t2 -c16, gateway and bare Flask on gunicorn "
          f"-w {args.workers}, MLflow 3.17.2 `mlflow server` (4 uvicorn workers), SQLite\n")
    if "ceiling" not in results:  # --machinery-only
        report_machinery(results["machinery"], args)
        return
    rows = []
    for scenario in ("get", "create_one", "create_many", "search_models_10k",
                     "search_models_100k", "search_versions_10k", "search_versions_100k",
                     "search_versions_page10_10k", "search_versions_page10_100k"):
        m, g = results[("mlflow", scenario)], results[("gateway", scenario)]
        rows.append([scenario, f"{m[0]:.0f}", f"{g[0]:.0f}", f"{g[0] / m[0]:.1f}x",
                     f"{m[1]:.1f} / {m[2]:.1f}", f"{g[1]:.1f} / {g[2]:.1f}"])
    from common import table
    table(["scenario", "MLflow req/s", "gateway req/s", "ratio", "MLflow p50/p99 ms",
           "gateway p50/p99 ms"], rows)
    runs = results["ceiling"]
    gateway, bare = (statistics.median(side) for side in zip(*runs))
    print(f"\ngets, gateway vs bare Flask (constant JSON), alternated {len(runs)} times: "
          + ", ".join(f"{g:.0f} vs {b:.0f}" for g, b in runs))
    print(f"medians {gateway:.0f} vs {bare:.0f} req/s: the gateway's get = {gateway / bare:.2f} "
          "of the ceiling")
    report_machinery(results["machinery"], args)
    print()
    for name in ("search_models", "search_versions", "search_versions_page10"):
        small, large = results[("gateway", f"{name}_10k")], results[("gateway", f"{name}_100k")]
        print(f"{name}: p50 {small[1]:.2f} ms at 10k, {large[1]:.2f} ms at 100k versions "
              f"(x{large[1] / small[1]:.2f})")
    for name, sizes in rss.items():
        print(f"peak RSS per worker, {name}: " + ", ".join(f"{s:.0f}" for s in sizes) + " MB")


def report_machinery(steps, args):
    base = steps[MACHINERY[0][0]][0]
    print(f"\nmachinery: creates, each step against the MLflow face's, same gateways driven in "
          f"turn, medians of {args.repeats} rounds:")
    for step, (rps, p50) in steps.items():
        print(f"  {step:26s} {rps:6.0f} req/s  p50 {p50:5.1f} ms  costs "
              f"{100 * (1 - rps / base):3.0f}%")


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=int, default=8)
    parser.add_argument("--repeats", type=int, default=3,
                        help="alternated runs of the gateway-vs-bare-Flask get and of the "
                             "machinery's steps (medians)")
    parser.add_argument("--workers", type=int, default=2 * (os.cpu_count() or 1) + 1)
    parser.add_argument("--mlflow", default=os.path.join(ROOT, "benchmarks", ".venv", "bin",
                                                         "mlflow"))
    parser.add_argument("--machinery-only", action="store_true",
                        help="only the machinery table (about 4 minutes)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        if args.machinery_only:
            results, rss = {"machinery": machinery(folder, args)}, {}
        else:
            results, rss = measure(folder, args)
    report(results, rss, args)


if __name__ == "__main__":
    main()

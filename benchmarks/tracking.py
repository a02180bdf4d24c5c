"""The tracking pass-through against calling MLflow's tracking server directly, in one run.

    bash benchmarks/setup.sh      # once: wrk, and mlflow==3.17.2 in its own venv
    python benchmarks/tracking.py [--rounds 5] [--calls 200] [--seconds 8] [--artifact-mb 1024]

A real MLflow 3.17.2 server (--enable-workspaces, 2 workers) and the gateway in front of it
(`gateway serve`, 2 workers, as deployed) on this machine. Printed:
- latency: a forwarded `runs/get` against the same call made directly, one keep-alive client,
  alternated --rounds times; the medians of each round's p50, and the gateway's added p50;
- throughput: wrk (16 connections) on `runs/get`, directly and through the gateway,
  alternated; req/s medians, and the CPU time each side spends per forwarded request (on two
  shared cores both servers compete for the same CPUs, so req/s through the gateway is bounded
  by the sum; CPU per request says which of the two would saturate first on equal cores);
- the same latency against a constant stand-in upstream (bare Flask), beside the floor: a bare
  Flask proxy served as the gateway is (bare_proxy.py), the cost of the hop itself;
- memory: one --artifact-mb artifact uploaded and downloaded through the gateway (checksums
  compared), the peak resident memory (VmHWM) of each gateway worker afterwards.
"""
import argparse
import hashlib
import os
import statistics
import subprocess
import sys
import tempfile
import time

import requests

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from common import ROOT, free_port, percentile, running, table  # noqa: E402
from compare import worker_rss_mb  # noqa: E402

WRK_LUA = 'wrk.headers["X-MLFLOW-WORKSPACE"] = "default"\n'


def mlflow_command():
    for path in (os.environ.get("GATEWAY_TRACKING_MLFLOW"),
                 os.path.join(ROOT, "benchmarks", ".venv", "bin", "mlflow"),
                 os.path.join(ROOT, ".ci", ".mlflow-server", "bin", "mlflow")):
        if path and os.path.exists(path):
            return path
    sys.exit("MLflow 3.17.2's server is needed: bash benchmarks/setup.sh")


def cpu_seconds(master_pid):
    """utime+stime of a process and all its descendants so far (live processes only)."""
    pids, queue = [], [str(master_pid)]
    while queue:
        pid = queue.pop()
        pids.append(pid)
        queue += subprocess.run(["pgrep", "-P", pid], capture_output=True,
                                text=True).stdout.split()
    total = 0
    for pid in pids:
        try:
            with open(f"/proc/{pid}/stat") as stat:
                fields = stat.read().rsplit(")", 1)[1].split()
            total += int(fields[11]) + int(fields[12])
        except (OSError, IndexError):
            continue
    return total / os.sysconf("SC_CLK_TCK")


def latencies(session, url, params, calls):
    times = []
    for _ in range(calls):
        start = time.perf_counter()
        answer = session.get(url, params=params, headers={"X-MLFLOW-WORKSPACE": "default"},
                             timeout=30)
        times.append((time.perf_counter() - start) * 1000)
        answer.raise_for_status()
    return times


def compare_latency(session, targets, args, title):
    """The same call made directly and through each hop in targets ({label: url}, the direct
    one first), alternated round by round; each hop's added p50 and mean over the first."""
    for url in targets.values():
        latencies(session, url, None, 50)  # warm each
    rounds = {label: [] for label in targets}
    for _ in range(args.rounds):
        for label, url in targets.items():
            rounds[label].append(latencies(session, url, None, args.calls))

    def p50(label):
        return statistics.median(percentile(times, 0.5) for times in rounds[label])

    def mean(label):
        return statistics.median(statistics.fmean(times) for times in rounds[label])
    direct = next(iter(targets))
    print(title)
    table(["path", "p50 ms", "mean ms", "added p50", "added mean"], [
        [label, f"{p50(label):.2f}", f"{mean(label):.2f}",
         "-" if label == direct else f"{p50(label) - p50(direct):+.2f}",
         "-" if label == direct else f"{mean(label) - mean(direct):+.2f}"]
        for label in targets])


def wrk(url, seconds):
    with tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False) as lua:
        lua.write(WRK_LUA)
    try:
        out = subprocess.run(["wrk", "-t2", "-c16", f"-d{seconds}s", "--timeout", "10s",
                              "-s", lua.name, url], capture_output=True, text=True,
                             check=True).stdout
    finally:
        os.unlink(lua.name)
    if "Non-2xx" in out:
        print("  warning: non-2xx answers:", url)
    requests_done = int(out.split(" requests in ")[0].split()[-1])
    return float(out.split("Requests/sec:")[1].split()[0]), requests_done


def artifact_round_trip(gateway, master_pid, megabytes, folder):
    source = os.path.join(folder, "big.bin")
    digest = hashlib.sha256()
    with open(source, "wb") as out:
        for _ in range(megabytes):
            chunk = os.urandom(1024 * 1024)
            digest.update(chunk)
            out.write(chunk)
    url = f"{gateway}/api/2.0/mlflow-artifacts/artifacts/bench/big.bin"
    start = time.perf_counter()
    with open(source, "rb") as body:
        requests.put(url, data=body, timeout=600).raise_for_status()
    upload = time.perf_counter() - start
    back = hashlib.sha256()
    start = time.perf_counter()
    with requests.get(url, stream=True, timeout=600) as answer:
        answer.raise_for_status()
        for chunk in answer.iter_content(1024 * 1024):
            back.update(chunk)
    download = time.perf_counter() - start
    os.unlink(source)
    return back.digest() == digest.digest(), upload, download, worker_rss_mb(master_pid)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--calls", type=int, default=200)
    parser.add_argument("--seconds", type=int, default=8)
    parser.add_argument("--artifact-mb", type=int, default=1024)
    args = parser.parse_args()
    folder = tempfile.mkdtemp(prefix="bench-tracking-")
    up_port, gw_port = free_port(), free_port()
    upstream, gateway = f"http://127.0.0.1:{up_port}", f"http://127.0.0.1:{gw_port}"
    server = [mlflow_command(), "server", "--host", "127.0.0.1", "--port", str(up_port),
              "--backend-store-uri", f"sqlite:///{folder}/mlflow.db", "--artifacts-destination",
              f"{folder}/artifacts", "--enable-workspaces", "--workers", "2"]
    env = {"GATEWAY_DATABASE_URL": f"sqlite:///{folder}/gateway.db",
           "GATEWAY_TRACKING_UPSTREAM": upstream, "GATEWAY_ACCESS_LOG": "false"}
    serve = [sys.executable, "-m", "gateway", "serve", "--port", str(gw_port), "--workers", "2"]
    with running(server, f"{upstream}/health", cwd=folder) as mlflow_process, \
            running(serve, f"{gateway}/health", env=env, cwd=folder) as gateway_process:
        api = f"{gateway}/api/2.0/mlflow"
        experiment = requests.post(f"{api}/experiments/create", json={"name": "bench"},
                                   timeout=30).json()["experiment_id"]
        run_id = requests.post(f"{api}/runs/create", json={"experiment_id": experiment},
                               timeout=30).json()["run"]["info"]["run_id"]
        path = f"/api/2.0/mlflow/runs/get?run_id={run_id}"
        session = requests.Session()
        compare_latency(session, {"direct": upstream + path, "through gateway": gateway + path},
                        args,
                        f"runs/get, one keep-alive client, {args.rounds} rounds x "
                        f"{args.calls} calls (medians over rounds of each round's p50 and "
                        "mean, ms):")
        direct_rps, gateway_rps, cpu_gw, cpu_up = [], [], [], []
        for _ in range(max(1, args.rounds // 2)):
            direct_rps.append(wrk(upstream + path, args.seconds)[0])
            before_gw, before_up = cpu_seconds(gateway_process.pid), cpu_seconds(
                mlflow_process.pid)
            rps, done = wrk(gateway + path, args.seconds)
            gateway_rps.append(rps)
            cpu_gw.append((cpu_seconds(gateway_process.pid) - before_gw) / done * 1000)
            cpu_up.append((cpu_seconds(mlflow_process.pid) - before_up) / done * 1000)
        print(f"\nruns/get under wrk (16 connections, {args.seconds} s, medians):")
        table(["path", "req/s", "gateway CPU ms/req", "upstream CPU ms/req"], [
            ["direct", f"{statistics.median(direct_rps):.0f}", "-", "-"],
            ["through gateway", f"{statistics.median(gateway_rps):.0f}",
             f"{statistics.median(cpu_gw):.2f}", f"{statistics.median(cpu_up):.2f}"]])
        print(f"  gateway/direct req/s: {statistics.median(gateway_rps) / statistics.median(direct_rps):.2f}; "
              f"upstream/gateway CPU per request: {statistics.median(cpu_up) / statistics.median(cpu_gw):.2f} "
              "(> 1: the upstream saturates first on equal cores)")
        # The upstream answers in steps of about 4 ms, so the added p50 above lands on one side
        # of a step or the other from run to run. Against a constant, fast stand-in (bare
        # Flask under gunicorn) the gateway's own addition shows, beside the floor: a bare
        # Flask proxy served the same way (benchmarks/bare_proxy.py), the cost of the hop.
        bare_port, floor_port, gw2_port = free_port(), free_port(), free_port()
        bare, floor = f"http://127.0.0.1:{bare_port}", f"http://127.0.0.1:{floor_port}"
        gateway2 = f"http://127.0.0.1:{gw2_port}"
        here = os.path.join(ROOT, "benchmarks")
        stand_in = [sys.executable, "-m", "gunicorn", "-w", "2", "-b", f"127.0.0.1:{bare_port}",
                    "--chdir", here, "bare_flask:app"]
        bare_proxy = [sys.executable, "-m", "gunicorn", "-w", "2", "-k", "asgi", "-b",
                      f"127.0.0.1:{floor_port}", "--chdir", here, "bare_proxy:asgi"]
        serve2 = [sys.executable, "-m", "gateway", "serve", "--port", str(gw2_port),
                  "--workers", "2"]
        env2 = {**env, "GATEWAY_TRACKING_UPSTREAM": bare,
                "GATEWAY_DATABASE_URL": f"sqlite:///{folder}/gateway2.db"}
        with running(stand_in, f"{bare}/health"), \
                running(bare_proxy, f"{floor}/health", env={"BARE_PROXY_UPSTREAM": bare}), \
                running(serve2, f"{gateway2}/health", env=env2, cwd=folder):
            compare_latency(session, {"direct": bare + path, "bare Flask proxy": floor + path,
                                      "through gateway": gateway2 + path}, args,
                            "\nthe same against a constant stand-in upstream (bare Flask, "
                            "gunicorn -w 2); the floor: a bare Flask proxy (-k asgi):")
        if args.artifact_mb:
            equal, upload, download, rss = artifact_round_trip(
                gateway, gateway_process.pid, args.artifact_mb, folder)
            print(f"\n{args.artifact_mb} MB artifact through the gateway: checksums "
                  f"{'equal' if equal else 'DIFFER'}; upload {upload:.1f} s, download "
                  f"{download:.1f} s; gateway workers' peak RSS (MB): {rss}")
    subprocess.run(["rm", "-rf", folder])


if __name__ == "__main__":
    main()

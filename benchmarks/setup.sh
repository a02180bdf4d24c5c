#!/usr/bin/env bash
# Install what benchmarks/compare.py needs: wrk and redis-server from Debian, and the real
# MLflow server (3.17.2) in its own virtual environment, apart from the gateway's.
set -euo pipefail
cd "$(dirname "$0")"
command -v wrk >/dev/null && command -v redis-server >/dev/null || {
    apt-get update -qq && apt-get install -y -qq wrk redis-server >/dev/null; }
[ -x .venv/bin/mlflow ] || {
    python3 -m venv .venv && .venv/bin/pip install -q --upgrade pip && \
    .venv/bin/pip install -q "mlflow==3.17.2"; }
echo "ready: $(wrk --version 2>&1 | head -1); $(.venv/bin/mlflow --version)"

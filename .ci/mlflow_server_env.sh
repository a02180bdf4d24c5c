#!/usr/bin/env bash
# Build a virtual environment holding MLflow's tracking server (mlflow 3.17.2), the upstream the
# gateway's tracking pass-through is tested against. It has its own environment because mlflow
# pins gunicorn<27, and the gateway runs gunicorn 27.
# Usage: mlflow_server_env.sh DIR   (then DIR/bin/mlflow server ... works)
set -eu
dir=$1
python3.11 -m venv "$dir" 2>/dev/null || python3 -m venv "$dir"
"$dir/bin/pip" install -q mlflow==3.17.2
"$dir/bin/mlflow" --version

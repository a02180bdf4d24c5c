#!/usr/bin/env bash
# Build a virtual environment holding OpenMetadata's Python client (openmetadata-ingestion 2.0.7.0), from the
# package registry alone: its dependency dbt-extractor downloads a binary from outside the registries at
# install time, so the client is installed without dependencies and its needs come from a pinned lock.
# (A copy of ../shared/tools/om_client_env.sh, so CI builds it from a clean clone.)
# Usage: om_client_env.sh DIR   (then DIR/bin/python has `metadata.ingestion.ometa` and `metadata.sdk`)
set -eu
dir=$1; here=$(cd "$(dirname "$0")" && pwd)
python3.11 -m venv "$dir" 2>/dev/null || python3 -m venv "$dir"
"$dir/bin/pip" install -q --no-deps openmetadata-ingestion==2.0.7.0 collate-sqllineage==2.1.7 "collate-data-diff>=0.11.17"
grep -v -i -E "^(openmetadata-ingestion|collate-sqllineage|collate-data-diff|dbt-extractor)==" "$here/openmetadata-client.lock" > "$dir/reqs.txt"
"$dir/bin/pip" install -q --no-deps -r "$dir/reqs.txt"
"$dir/bin/python" -c "from metadata.sdk.entities import MLModels; from metadata.ingestion.ometa.ometa_api import OpenMetadata; print('openmetadata client ok')"

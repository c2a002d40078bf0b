#!/usr/bin/env sh
# Creates the Python venv the DuckDB peer runs in (bench/.venv, not committed).
set -eu
here=$(cd "$(dirname "$0")" && pwd)
if [ ! -x "$here/.venv/bin/python" ]; then
    python3 -m venv "$here/.venv"
fi
"$here/.venv/bin/pip" install --quiet --disable-pip-version-check duckdb
"$here/.venv/bin/python" -c 'import duckdb; print("duckdb", duckdb.__version__)'

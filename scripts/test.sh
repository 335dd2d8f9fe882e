#!/usr/bin/env bash
# Install the bridge with its test dependencies into .venv and run the whole suite.
# PostgreSQL tests use 127.0.0.1:5432 (user postgres, database test) and Redis at
# 127.0.0.1:6379; they are skipped when those servers are absent, unless CI=true.
set -euo pipefail
cd "$(dirname "$0")/.."
python3 -m venv .venv
.venv/bin/python -m pip install --quiet --upgrade pip
.venv/bin/python -m pip install --quiet -e '.[test]'
exec .venv/bin/python -m pytest "$@"

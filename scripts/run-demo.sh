#!/usr/bin/env bash
# Install the bridge into .venv and run it on the embedded default with the demo peers.
set -euo pipefail
cd "$(dirname "$0")/.."
python3 -m venv .venv
.venv/bin/python -m pip install --quiet --upgrade pip
.venv/bin/python -m pip install --quiet -e '.[demo]'
exec .venv/bin/hpass-bridge run --demo "$@"

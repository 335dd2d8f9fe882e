#!/usr/bin/env bash
# Install the bridge with its test dependencies into .venv from the lock file, run the
# supply-chain and static checks, then the whole suite.
# PostgreSQL tests use 127.0.0.1:5432 (user postgres, database test) and Redis at
# 127.0.0.1:6379; they are skipped when those servers are absent, unless CI=true.
set -euo pipefail
cd "$(dirname "$0")/.."
# The browser tests use Debian's chromium (Playwright's own browser download is not
# used), so a fresh machine gets it here when the script may install packages.
if [ ! -x /usr/bin/chromium ] && [ "$(id -u)" = "0" ] && command -v apt-get >/dev/null; then
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium
fi
python3 -m venv .venv
# Every third-party package comes from the lock, each checked against its hashes, so
# what scripts/check.sh audits is what the tests run. The bridge itself is added
# without resolving anything more.
.venv/bin/python -m pip install --quiet --require-hashes -r requirements/lock.txt
.venv/bin/python -m pip install --quiet --no-deps -e .
bash scripts/check.sh
exec .venv/bin/python -m pytest "$@"

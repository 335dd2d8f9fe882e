#!/usr/bin/env bash
# Supply-chain and static checks, run by scripts/test.sh before the tests: that the
# lock covers pyproject.toml's requirements, ruff's linter (pyflakes, syntax and
# bandit's security rules, as set in pyproject.toml) and formatter, and pip-audit over
# every package pinned in requirements/lock.txt.
#
# After changing dependencies in pyproject.toml, regenerate the lock with the command
# written at its top (pip-compile, installed in .venv by the `checks` extra).
#
# pip-audit looks each pinned version up in PyPI's JSON API. Known vulnerabilities
# always stop the run. When the API cannot be reached or returns no record (as on
# networks that serve only PyPI's package index), the audit did not happen: that is
# printed as "pip-audit FAILED ... NOT audited" and the run goes on, so the tests can
# still run there. HPASS_AUDIT_UNREACHABLE=fail makes it stop the run instead.
set -euo pipefail
cd "$(dirname "$0")/.."
python=.venv/bin/python

echo "lock check: requirements/lock.txt against pyproject.toml"
"$python" scripts/check_lock.py

echo "ruff: checking lti_tool, badge_engine, connectors, bench, scripts and tests"
"$python" -m ruff check --quiet .
echo "ruff format: checking that every Python file is formatted"
"$python" -m ruff format --check --quiet .

echo "pip-audit: auditing requirements/lock.txt"
report=$(mktemp)
trap 'rm -f "$report"' EXIT
if "$python" -m pip_audit --strict --disable-pip --require-hashes \
        --requirement requirements/lock.txt --progress-spinner off >"$report" 2>&1; then
    cat "$report"
    exit 0
fi
cat "$report"
if grep -q "could not be audited" "$report" && ! grep -qi "known vulnerabilit" "$report"; then
    echo "pip-audit FAILED: PyPI's JSON API returned no record for the package above" \
         "(pip-audit reads pypi.org/pypi/NAME/VERSION/json), so the lock file is NOT" \
         "audited. Run scripts/check.sh where that API answers."
    if [ "${HPASS_AUDIT_UNREACHABLE:-report}" = "report" ]; then
        exit 0
    fi
fi
exit 1

#!/usr/bin/env bash
# Extract the page texts into lti_tool/translations/messages.pot and merge them into
# each language's messages.po, keeping every existing entry in place and appending new
# ones (scripts/update_translations.py). Translate the new empty msgstr entries
# afterwards; the app compiles the .po files when it starts, so there is no compile
# step. PYTHON selects the interpreter that has Babel: .venv/bin/python when it
# exists, else python3.
set -euo pipefail
cd "$(dirname "$0")/.."
if [ -z "${PYTHON:-}" ]; then
    if [ -x .venv/bin/python ]; then PYTHON=.venv/bin/python; else PYTHON=python3; fi
fi
exec "$PYTHON" scripts/update_translations.py

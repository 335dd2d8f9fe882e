#!/usr/bin/env bash
# Extract the page texts into lti_tool/translations/messages.pot and merge them into
# each language's messages.po. Translate the new empty msgstr entries afterwards; the
# app compiles the .po files when it starts, so there is no compile step.
set -euo pipefail
cd "$(dirname "$0")/.."
PYBABEL="${PYBABEL:-pybabel}"
"$PYBABEL" extract --no-location --sort-output -F lti_tool/translations/babel.cfg \
    -k _ -k gettext -o lti_tool/translations/messages.pot .
for locale in fr es ar; do
    po="lti_tool/translations/$locale/LC_MESSAGES/messages.po"
    if [ -f "$po" ]; then
        "$PYBABEL" update --no-fuzzy-matching -i lti_tool/translations/messages.pot \
            -d lti_tool/translations -l "$locale"
    else
        "$PYBABEL" init -i lti_tool/translations/messages.pot -d lti_tool/translations -l "$locale"
    fi
done

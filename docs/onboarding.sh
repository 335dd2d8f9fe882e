#!/usr/bin/env bash
# Onboard a learning provider end to end with hpass-bridge commands alone:
# provider, LTI platform, Moodle connection, a course badge and its backfill.
#
# Usage: docs/onboarding.sh BRIDGE_URL MOODLE_URL MOODLE_TOKEN_FILE COURSE_ID [SLUG]
#
#   BRIDGE_URL         the bridge's public base URL (HPASS_PUBLIC_BASE_URL)
#   MOODLE_URL         the Moodle site's root URL; the LTI platform URLs derive from it
#   MOODLE_TOKEN_FILE  file with the Moodle web service token
#   COURSE_ID          the Moodle course that awards the badge
#   SLUG               the provider's slug (default: onboarded-academy)
#
# BRIDGE_URL must use https. To try the script on one machine with a bridge on plain
# HTTP, such as http://127.0.0.1:5000, set HPASS_LOOPBACK_DEV=1 first. The bridge
# accepts that setting only for a loopback BRIDGE_URL (127.0.0.1, ::1, localhost).
#
# Run it on the bridge's host with the bridge's environment, from the folder that
# contains the bridge's ./instance folder or with HPASS_INSTANCE_PATH set. The script
# runs the command named by HPASS_BRIDGE_COMMAND, else `hpass-bridge` from PATH,
# else the one in the .venv folder that the README's quick start creates beside
# docs/. It stops at the first failing command (set -e) and prints what each step
# created as JSON lines on stdout.
#
# It is safe to run again after a failure: a provider, platform, Moodle connection
# or badge that an earlier run created with the same values is reused. A provider or
# platform with the same slug or client id but other values stops the script with
# an error naming the values that differ.
set -euo pipefail

if [ "$#" -lt 4 ]; then
    echo "usage: $0 BRIDGE_URL MOODLE_URL MOODLE_TOKEN_FILE COURSE_ID [SLUG]" >&2
    echo "BRIDGE_URL must use https. For a bridge on plain HTTP at a loopback" >&2
    echo "address (http://127.0.0.1:5000), set HPASS_LOOPBACK_DEV=1 first." >&2
    exit 2
fi
bridge_url="${1%/}"
moodle_url="${2%/}"
token_file="$3"
course_id="$4"
slug="${5:-onboarded-academy}"
export HPASS_PUBLIC_BASE_URL="$bridge_url"

repository="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
if [ -n "${HPASS_BRIDGE_COMMAND:-}" ]; then
    bridge_command="$HPASS_BRIDGE_COMMAND"
elif command -v hpass-bridge >/dev/null 2>&1; then
    bridge_command="hpass-bridge"
elif [ -x "$repository/.venv/bin/hpass-bridge" ]; then
    bridge_command="$repository/.venv/bin/hpass-bridge"
else
    echo "error: hpass-bridge not found on PATH or in $repository/.venv/bin." >&2
    echo "Install the bridge as the README's quick start does, or set" >&2
    echo "HPASS_BRIDGE_COMMAND to the path of the hpass-bridge command." >&2
    exit 1
fi

hpass-bridge() {
    command "$bridge_command" "$@"
}

json_field() {
    # Read one field of a JSON document on stdin: json_field connection.id
    python3 -c 'import json, sys
value = json.load(sys.stdin)
for key in sys.argv[1].split("."):
    value = value[key]
print(value)' "$1"
}

hpass-bridge db upgrade --json

hpass-bridge provider add --slug "$slug" --name "Onboarded Academy" \
    --url "$moodle_url" --json

hpass-bridge platform add --provider "$slug" --issuer "$moodle_url" \
    --client-id "hpass-$slug" --deployment-id 1 --family moodle \
    --jwks-url "$moodle_url/mod/lti/certs.php" \
    --auth-url "$moodle_url/mod/lti/auth.php" \
    --token-url "$moodle_url/mod/lti/token.php" --json

moodle_connection_id() {
    # Print the id of the provider's working Moodle connection to MOODLE_URL, if any.
    python3 -c 'import json, sys
site = sys.argv[1].rstrip("/").lower()
for row in json.load(sys.stdin)["connections"]:
    same_site = row["url"].rstrip("/").lower() == site
    if row["kind"] == "moodle" and same_site and row["status"] != "disconnected":
        print(row["id"])
        break' "$moodle_url"
}

connection_id=$(hpass-bridge lms list --provider "$slug" --json | moodle_connection_id)
if [ -n "$connection_id" ]; then
    echo "{\"status\": \"unchanged\", \"connection\": {\"id\": \"$connection_id\"}}"
else
    connection=$(hpass-bridge lms connect moodle --provider "$slug" \
        --url "$moodle_url" --token-file "$token_file" --json)
    echo "$connection"
    connection_id=$(echo "$connection" | json_field connection.id)
fi

achievement=$(hpass-bridge achievement add --provider "$slug" \
    --connection "$connection_id" --course "$course_id" \
    --name "Course completed" --description "Completed the whole course." \
    --criteria "Complete every activity of the course." \
    --rule '{"version": 1, "rule": {"kind": "course_completed"}}' --no-backfill --json)
echo "$achievement"
achievement_id=$(echo "$achievement" | json_field achievement.id)

hpass-bridge achievement backfill "$achievement_id" --json
hpass-bridge awards list --provider "$slug" --json

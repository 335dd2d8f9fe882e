"""`achievement add` and `achievement edit` check the course and the rule's activity
ids in the LMS, and `lms activities` lists those ids, against the LMS stand-ins."""

from __future__ import annotations

import json
import sqlite3
import time
from pathlib import Path

import pytest

from lti_tool.demo.peers.moodle import MoodleStandIn
from lti_tool.demo.peers.moodle_ws import DEMO_COURSE_ID
from tests.lti_tool.cli.conftest import CANVAS_COURSE_ID, MOODLE_TOKEN, RULE
from tests.support.silent_server import SilentServer

COURSE = str(DEMO_COURSE_ID)
# Course modules of the Moodle stand-in's demo course.
QUIZ, PAGE = "4001", "4002"


def _rule(*activity_ids: str) -> str:
    return json.dumps(
        {
            "version": 1,
            "rule": {
                "kind": "activities_completed",
                "match": "all",
                "activity_ids": list(activity_ids),
            },
        }
    )


def _add(cli, provider: str, connection: str, course: str, rule: str, *extra: str):
    return cli(
        "achievement",
        "add",
        "--provider",
        provider,
        "--connection",
        connection,
        "--course",
        course,
        "--name",
        "n",
        "--description",
        "d",
        "--criteria",
        "c",
        "--rule",
        rule,
        *extra,
    )


def _error_line(result) -> str:
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    return lines[0]


def _badge_count(cli, provider: str) -> int:
    listed = cli.ok("achievement", "list", "--provider", provider, "--json")
    return len(listed.document["achievements"])


@pytest.fixture
def stopped_moodle(cli, provider):
    """A Moodle connection whose site stopped after the connection was made."""
    stand_in = MoodleStandIn(token=MOODLE_TOKEN)
    server = stand_in.start()
    connected = cli.ok(
        "lms",
        "connect",
        "moodle",
        "--provider",
        provider,
        "--url",
        stand_in.site_url,
        "--token",
        MOODLE_TOKEN,
        "--json",
    )
    server.stop()
    return connected.document["connection"]["id"]


def test_lms_activities_lists_moodle_course(cli, moodle_connection):
    """lms activities prints the course modules' ids, names and tracking."""
    text = cli.ok("lms", "activities", moodle_connection, "--course", COURSE).stdout
    document = cli.ok(
        "lms", "activities", moodle_connection, "--course", COURSE, "--json"
    ).document

    assert [row["id"] for row in document["activities"]] == [QUIZ, PAGE]
    assert document["activities"][0]["name"] == "Final quiz"
    assert document["activities"][0]["tracked"] is True
    assert [row["kind"] for row in document["activities"]] == ["quiz", "page"]
    assert QUIZ in text
    assert "Code of conduct" in text
    assert text.splitlines()[0].split() == ["ID", "KIND", "TRACKED", "SECTION", "NAME"]


def test_lms_activities_unknown_course(cli, moodle_connection):
    result = cli("lms", "activities", moodle_connection, "--course", "999")

    assert result.code == 2
    line = _error_line(result)
    assert "course '999' was not found" in line
    assert "Nothing was saved" not in line


def test_add_known_activities(cli, provider, moodle_connection):
    """A rule on the course's real activities is added with no warning."""
    result = _add(cli, provider, moodle_connection, COURSE, _rule(QUIZ, PAGE), "--json")

    assert result.code == 0, result.stderr
    assert result.document["warnings"] == []
    assert result.stderr == ""


def test_add_unknown_course(cli, provider, moodle_connection):
    """A course Moodle lacks exits 2 with the id named, and nothing is added."""
    result = _add(cli, provider, moodle_connection, "999", RULE)
    as_json = _add(cli, provider, moodle_connection, "999", RULE, "--json")

    assert result.code == 2
    assert "course '999' was not found in the moodle LMS" in _error_line(result)
    assert as_json.code == 2
    assert as_json.document["error"] == "course_not_found"
    assert _badge_count(cli, provider) == 0


def test_add_unknown_activity(cli, provider, moodle_connection):
    """A rule activity the course lacks exits 2 naming it and the listing command."""
    result = _add(cli, provider, moodle_connection, COURSE, _rule(QUIZ, "4999"))

    assert result.code == 2
    line = _error_line(result)
    assert "names activity 4999" in line
    assert f"hpass-bridge lms activities {moodle_connection} --course {COURSE}" in line
    assert _badge_count(cli, provider) == 0


def test_add_lms_unreachable(cli, provider, stopped_moodle):
    """An LMS that cannot be reached exits 1 and adds nothing, and --skip-lms-check
    adds the badge with a warning."""
    refused = _add(cli, provider, stopped_moodle, COURSE, _rule(QUIZ))
    count_after_refusal = _badge_count(cli, provider)
    skipped = _add(
        cli, provider, stopped_moodle, COURSE, _rule(QUIZ), "--skip-lms-check", "--json"
    )

    assert refused.code == 1
    line = _error_line(refused)
    assert "the LMS could not be checked for course '101'" in line
    assert "--skip-lms-check" in line
    assert count_after_refusal == 0
    assert skipped.code == 0, skipped.stderr
    assert skipped.stderr.startswith("warning: the LMS was not checked")
    assert "the LMS was not checked" in skipped.document["warnings"][0]
    assert _badge_count(cli, provider) == 1


@pytest.fixture
def silent_moodle(cli, provider, moodle_connection):
    """The Moodle connection moved to a site that accepts connections and never
    responds, with a one-second LMS check time budget."""
    with SilentServer() as server:
        cli.env["HPASS_LMS_CHECK_TIMEOUT_SECONDS"] = "1"
        database = sqlite3.connect(Path(cli.env["HPASS_INSTANCE_PATH"]) / "hpass.db")
        with database:
            database.execute(
                "UPDATE lms_connections SET base_url = ? WHERE public_id = ?",
                (server.url, moodle_connection),
            )
        database.close()
        yield moodle_connection


def test_add_silent_lms_times_out(cli, provider, silent_moodle):
    """A silent LMS exits 1 after the time budget, naming the CLI's next steps."""
    started = time.monotonic()
    result = _add(cli, provider, silent_moodle, COURSE, _rule(QUIZ))
    elapsed = time.monotonic() - started

    assert result.code == 1
    line = _error_line(result)
    assert "did not respond within 1 s" in line
    assert "Nothing was saved" in line
    assert "--skip-lms-check" in line
    assert f"hpass-bridge lms test {silent_moodle}" in line
    assert "/api/v1" not in line
    assert elapsed < 8
    assert _badge_count(cli, provider) == 0


def test_lms_activities_silent_lms(cli, silent_moodle):
    """Listing a silent LMS's course exits 1 without naming the skip option."""
    result = cli("lms", "activities", silent_moodle, "--course", COURSE)

    assert result.code == 1
    line = _error_line(result)
    assert "did not respond within 1 s" in line
    assert "Retry later" in line
    assert "--skip-lms-check" not in line
    assert "Nothing was saved" not in line


def test_add_non_numeric_moodle_course(cli, provider, stopped_moodle):
    """A Moodle course id that is not a number exits 2, even with the check skipped."""
    result = _add(
        cli, provider, stopped_moodle, "intro-101", _rule(QUIZ), "--skip-lms-check"
    )

    assert result.code == 2
    line = _error_line(result)
    assert "course 'intro-101' was not found" in line
    assert "Moodle course ids are whole numbers" in line
    assert "Nothing was saved" in line
    assert _badge_count(cli, provider) == 0


def test_add_lms_error_page(cli, provider, moodle, moodle_connection):
    """A Moodle that returns an HTML page exits 1 naming the skip option."""
    moodle.html_next(2)

    result = _add(cli, provider, moodle_connection, COURSE, _rule(QUIZ))

    assert result.code == 1
    assert "--skip-lms-check" in _error_line(result)
    assert _badge_count(cli, provider) == 0


def test_edit_rule_checked(cli, provider, moodle_connection):
    """edit --rule with a missing activity exits 2 and keeps the old rule; a rule
    on a real activity is stored."""
    added = _add(cli, provider, moodle_connection, COURSE, _rule(QUIZ), "--json")
    badge = added.document["achievement"]["id"]

    refused = cli("achievement", "edit", badge, "--rule", _rule("4999"))
    changed = cli("achievement", "edit", badge, "--rule", _rule(PAGE), "--json")
    shown = cli.ok("achievement", "show", badge, "--json").document

    assert refused.code == 2
    assert "names activity 4999" in _error_line(refused)
    assert changed.code == 0, changed.stderr
    assert changed.document["warnings"] == []
    assert shown["award_rule"]["rule"]["activity_ids"] == [PAGE]


def test_edit_rule_lms_unreachable(cli, provider, stopped_moodle):
    """With the LMS down a name edit works, a rule edit exits 1 unless skipped."""
    added = _add(
        cli, provider, stopped_moodle, COURSE, _rule(QUIZ), "--skip-lms-check", "--json"
    )
    badge = added.document["achievement"]["id"]

    renamed = cli("achievement", "edit", badge, "--name", "Renamed")
    refused = cli("achievement", "edit", badge, "--rule", _rule(PAGE))
    skipped = cli(
        "achievement", "edit", badge, "--rule", _rule(PAGE), "--skip-lms-check"
    )

    assert renamed.code == 0, renamed.stderr
    assert renamed.stderr == ""
    assert refused.code == 1
    assert "--skip-lms-check" in _error_line(refused)
    assert skipped.code == 0, skipped.stderr
    assert skipped.stderr.startswith("warning: the LMS was not checked")


def test_canvas_unknown_course_and_item(cli, provider, canvas):
    """A Canvas course or module item that does not exist exits 2."""
    connected = cli.ok(
        "lms",
        "connect",
        "canvas",
        "--provider",
        provider,
        "--url",
        canvas.url,
        "--token",
        canvas.issue_token(),
        "--course",
        str(CANVAS_COURSE_ID),
        "--json",
    )
    connection = connected.document["connection"]["id"]
    item = str(CANVAS_COURSE_ID * 1000 + 1)

    missing_course = _add(cli, provider, connection, "777", _rule(item))
    missing_item = _add(cli, provider, connection, str(CANVAS_COURSE_ID), _rule("1"))
    listed = cli.ok(
        "lms", "activities", connection, "--course", str(CANVAS_COURSE_ID), "--json"
    ).document
    added = _add(cli, provider, connection, str(CANVAS_COURSE_ID), _rule(item))

    assert missing_course.code == 2
    assert "course '777' was not found in the canvas LMS" in _error_line(missing_course)
    assert missing_item.code == 2
    assert "names activity 1," in _error_line(missing_item)
    assert item in [row["id"] for row in listed["activities"]]
    assert added.code == 0, added.stderr

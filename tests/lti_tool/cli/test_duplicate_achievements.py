"""`achievement add` and `edit` keep one badge of each name per course."""

from __future__ import annotations

import json

from lti_tool.demo.peers.moodle_ws import DEMO_COURSE_ID
from tests.lti_tool.cli.conftest import RULE

ADD = [
    "achievement",
    "add",
    "--provider",
    "acme",
    "--course",
    str(DEMO_COURSE_ID),
    "--description",
    "Finished it.",
    "--criteria",
    "Complete the course.",
    "--rule",
    RULE,
    "--no-backfill",
]


def _listed(cli) -> list[dict]:
    result = cli.ok("achievement", "list", "--provider", "acme", "--json")
    return result.document["achievements"]


def test_add_again_reports_existing(cli, moodle_connection, achievement):
    """The same add run again exits 0 with the existing badge and adds none."""
    again = cli(
        "achievement",
        "add",
        "--connection",
        moodle_connection,
        "--name",
        "Course finisher",
        *ADD[2:],
        "--json",
    )

    assert again.code == 0, again.stderr
    assert again.document["status"] == "unchanged"
    assert again.document["achievement"]["id"] == achievement
    assert again.document["backfill"] is None
    assert len(_listed(cli)) == 1


def test_add_again_text_names_badge(cli, moodle_connection, achievement):
    """Without --json the repeated add names the badge and the edit command."""
    again = cli.ok(
        "achievement",
        "add",
        "--connection",
        moodle_connection,
        "--name",
        "Course finisher",
        *ADD[2:],
    )

    assert f"achievement {achievement} already exists" in again.stdout
    assert f"hpass-bridge achievement edit {achievement}" in again.stdout


def test_add_equivalent_rule_reports_existing(cli, moodle_connection, achievement):
    """A rule written differently that awards alike counts as the same values."""
    spaced = json.dumps(json.loads(RULE), indent=2)
    arguments = [*ADD[:-2], "--no-backfill"]
    arguments[arguments.index("--rule") + 1] = spaced

    again = cli(
        "achievement",
        "add",
        "--connection",
        moodle_connection,
        "--name",
        "Course finisher",
        *arguments[2:],
        "--json",
    )

    assert again.code == 0, again.stderr
    assert again.document["status"] == "unchanged"


def test_add_same_name_other_values_rejected(cli, moodle_connection, achievement):
    """A name differing only in case and spaces, with other texts, exits 1 naming
    the existing badge and `achievement edit`."""
    arguments = list(ADD)
    arguments[arguments.index("--description") + 1] = "Another text."

    rejected = cli(
        "achievement",
        "add",
        "--connection",
        moodle_connection,
        "--name",
        "  course   FINISHER ",
        *arguments[2:],
        "--json",
    )

    assert rejected.code == 1
    assert rejected.document["error"] == "achievement_exists"
    message = rejected.document["message"]
    assert f"(achievement {achievement})" in message
    assert "'Course finisher'" in message
    assert f"`hpass-bridge achievement edit {achievement}`" in message
    assert rejected.stderr.startswith("error: course ")
    assert len(_listed(cli)) == 1


def test_add_other_rule_same_name_rejected(cli, moodle_connection, achievement):
    """The same name with a rule that awards differently is rejected too."""
    arguments = list(ADD)
    arguments[arguments.index("--rule") + 1] = (
        '{"version": 1, "rule": {"kind": "activity_completed", "activity_id": "1"}}'
    )

    rejected = cli(
        "achievement",
        "add",
        "--connection",
        moodle_connection,
        "--name",
        "Course finisher",
        "--skip-lms-check",
        *arguments[2:],
        "--json",
    )

    assert rejected.code == 1
    assert rejected.document["error"] == "achievement_exists"
    assert len(_listed(cli)) == 1


def test_add_same_name_other_course(cli, moodle_connection, achievement):
    """Another course may have a badge of the same name."""
    arguments = list(ADD)
    arguments[arguments.index("--course") + 1] = "4242"

    added = cli(
        "achievement",
        "add",
        "--connection",
        moodle_connection,
        "--name",
        "Course finisher",
        "--skip-lms-check",
        *arguments[2:],
        "--json",
    )

    assert added.code == 0, added.stderr
    assert added.document["status"] == "created"
    assert len(_listed(cli)) == 2


def test_edit_rename_to_taken_name(cli, moodle_connection, achievement):
    """Renaming a badge to the name of another badge of its course exits 1."""
    other = cli.ok(
        "achievement",
        "add",
        "--connection",
        moodle_connection,
        "--name",
        "Second badge",
        *ADD[2:],
        "--json",
    )
    other_id = other.document["achievement"]["id"]

    rejected = cli(
        "achievement", "edit", other_id, "--name", "COURSE finisher", "--json"
    )

    assert rejected.code == 1
    assert rejected.document["error"] == "achievement_exists"
    assert f"give achievement {other_id} another name" in rejected.document["message"]
    shown = cli.ok("achievement", "show", other_id, "--json").document
    assert shown["name"] == "Second badge"


def test_edit_keeps_own_name(cli, achievement):
    """A badge renamed to its own name in other case is saved."""
    edited = cli.ok(
        "achievement", "edit", achievement, "--name", "Course Finisher", "--json"
    )

    assert edited.document["fields"] == ["name"]

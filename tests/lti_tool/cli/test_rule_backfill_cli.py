"""`hpass-bridge achievement add` and `edit --rule` queue a backfill of the rule."""

from __future__ import annotations

import json

from sqlalchemy import create_engine, text

from lti_tool.demo.peers.moodle_ws import DEMO_COURSE_ID

from .conftest import RULE

QUIZ_RULE = (
    '{"version": 1, "rule": {"kind": "activities_completed", '
    '"activity_ids": ["4001"], "match": "any"}}'
)


def audit_rows(tmp_path, action: str) -> list[tuple[str, dict]]:
    engine = create_engine(f"sqlite:///{tmp_path / 'instance' / 'hpass.db'}")
    with engine.connect() as connection:
        rows = connection.execute(
            text("select target, detail from audit_events where action = :action"),
            {"action": action},
        ).all()
    engine.dispose()
    return [
        (target, json.loads(detail) if isinstance(detail, str) else detail)
        for target, detail in rows
    ]


def test_edit_rule_queues_backfill(cli, achievement):
    """A changed rule queues a backfill, which a queued manual backfill then joins."""
    edited = cli.ok("achievement", "edit", achievement, "--rule", QUIZ_RULE, "--json")
    manual = cli.ok("achievement", "backfill", achievement, "--queue", "--json")

    document = edited.document
    assert document["status"] == "updated"
    assert document["fields"] == ["award_rule"]
    backfill = document["backfill"]
    assert backfill["joined"] is False
    assert backfill["trigger"] == "rule_changed"
    assert backfill["status"] == "pending"
    assert backfill["achievements"] == [achievement]
    assert manual.document["joined"] is True
    assert manual.document["job"] == backfill["id"]


def test_edit_rule_prints_backfill_line(cli, achievement):
    """The text output names the queued backfill on its own line."""
    edited = cli.ok("achievement", "edit", achievement, "--rule", QUIZ_RULE)

    first, second = edited.stdout.splitlines()
    assert first == f"achievement {achievement} updated: award_rule"
    assert second.startswith("the award rule changed; backfill ")
    assert second.endswith(" queued for the workers")


def test_edit_rule_audits_both_rules(cli, achievement, tmp_path):
    """The update event records the old and new rule; the start event its trigger."""
    edited = cli.ok("achievement", "edit", achievement, "--rule", QUIZ_RULE, "--json")

    [(target, detail)] = audit_rows(tmp_path, "achievement.updated")
    assert target == f"achievement:{achievement}"
    assert detail["fields"] == ["award_rule"]
    assert detail["old_rule"] == json.loads(RULE)
    assert detail["new_rule"] == json.loads(QUIZ_RULE)
    [(target, detail)] = audit_rows(tmp_path, "backfill.started")
    assert target == f"backfill:{edited.document['backfill']['id']}"
    assert detail["trigger"] == "rule_changed"


def test_edit_no_backfill_option(cli, achievement, tmp_path):
    """--no-backfill saves the rule and starts no job."""
    edited = cli.ok(
        "achievement",
        "edit",
        achievement,
        "--rule",
        QUIZ_RULE,
        "--no-backfill",
        "--json",
    )

    assert edited.document["fields"] == ["award_rule"]
    assert edited.document["backfill"] is None
    assert audit_rows(tmp_path, "backfill.started") == []


def test_edit_name_starts_no_backfill(cli, achievement, tmp_path):
    """A text change keeps the rule, so no job starts."""
    edited = cli.ok("achievement", "edit", achievement, "--name", "Finisher", "--json")

    assert edited.document["backfill"] is None
    assert audit_rows(tmp_path, "backfill.started") == []


def test_edit_same_rule_unchanged(cli, achievement, tmp_path):
    """The stored rule given again is no change: nothing is recorded or started."""
    edited = cli.ok("achievement", "edit", achievement, "--rule", RULE, "--json")
    text_output = cli.ok("achievement", "edit", achievement, "--rule", RULE)

    assert edited.document["status"] == "unchanged"
    assert edited.document["fields"] == []
    assert edited.document["backfill"] is None
    assert text_output.stdout.strip() == (
        f"achievement {achievement} unchanged: the award rule given awards like the "
        "stored one"
    )
    assert audit_rows(tmp_path, "achievement.updated") == []
    assert audit_rows(tmp_path, "backfill.started") == []


def test_edit_equivalent_rule_unchanged(cli, achievement, tmp_path):
    """A rule that awards like the stored one is no change and starts nothing."""
    cli.ok("achievement", "edit", achievement, "--rule", QUIZ_RULE)
    equivalent = (
        '{"rule": {"count": 1, "kind": "activities_completed_at_least", '
        '"activity_ids": ["4001"]}, "version": 1}'
    )

    edited = cli.ok("achievement", "edit", achievement, "--rule", equivalent, "--json")

    assert edited.document["status"] == "unchanged"
    assert edited.document["backfill"] is None
    assert edited.document["achievement"]["award_rule"] == json.loads(QUIZ_RULE)
    assert len(audit_rows(tmp_path, "achievement.updated")) == 1
    assert len(audit_rows(tmp_path, "backfill.started")) == 1


def test_edit_changed_match_queues_backfill(cli, achievement, tmp_path):
    """A rule over the same activities that needs another count is a change."""
    cli.ok("achievement", "edit", achievement, "--rule", QUIZ_RULE)
    changed = QUIZ_RULE.replace('["4001"]', '["4001", "4002"]')

    edited = cli.ok("achievement", "edit", achievement, "--rule", changed, "--json")

    assert edited.document["status"] == "updated"
    assert edited.document["backfill"]["trigger"] == "rule_changed"
    assert len(audit_rows(tmp_path, "achievement.updated")) == 2


def test_add_queues_backfill(cli, provider, moodle_connection):
    """A new badge gets a backfill queued for the workers, named in the output."""
    added = cli.ok(
        "achievement",
        "add",
        "--provider",
        provider,
        "--connection",
        moodle_connection,
        "--course",
        str(DEMO_COURSE_ID),
        "--name",
        "Quiz passed",
        "--description",
        "Passed the quiz.",
        "--criteria",
        "Pass the quiz.",
        "--rule",
        QUIZ_RULE,
        "--json",
    )

    backfill = added.document["backfill"]
    assert backfill["trigger"] == "achievement_created"
    assert backfill["status"] == "pending"
    assert backfill["joined"] is False
    assert backfill["achievements"] == [added.document["achievement"]["id"]]


def test_add_prints_backfill(cli, provider, moodle_connection):
    """The text output names the queued backfill."""
    added = cli.ok(
        "achievement",
        "add",
        "--provider",
        provider,
        "--connection",
        moodle_connection,
        "--course",
        str(DEMO_COURSE_ID),
        "--name",
        "Quiz passed",
        "--description",
        "Passed the quiz.",
        "--criteria",
        "Pass the quiz.",
        "--rule",
        QUIZ_RULE,
    )

    assert " created; backfill " in added.stdout
    assert added.stdout.rstrip().endswith("who already meet the rule")


def test_add_no_backfill_option(cli, provider, moodle_connection, tmp_path):
    """--no-backfill adds the badge, starts no job and prints how to start one."""
    added = cli.ok(
        "achievement",
        "add",
        "--provider",
        provider,
        "--connection",
        moodle_connection,
        "--course",
        str(DEMO_COURSE_ID),
        "--name",
        "Quiz passed",
        "--description",
        "Passed the quiz.",
        "--criteria",
        "Pass the quiz.",
        "--rule",
        QUIZ_RULE,
        "--no-backfill",
    )

    assert audit_rows(tmp_path, "backfill.started") == []
    assert "hpass-bridge achievement backfill " in added.stdout


def test_backfill_runs_queued_job_here(cli, achievement):
    """Without workers, `achievement backfill` runs the job a rule change queued."""
    edited = cli.ok("achievement", "edit", achievement, "--rule", QUIZ_RULE, "--json")
    manual = cli.ok("achievement", "backfill", achievement, "--json")

    assert manual.document["job"] == edited.document["backfill"]["id"]
    assert manual.document["status"] == "done"
    assert "joined" not in manual.document

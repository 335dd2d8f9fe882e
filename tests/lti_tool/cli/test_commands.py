"""Operator commands run through the console script against the LMS stand-ins."""

from __future__ import annotations

import json

import pytest
from sqlalchemy import select

from badge_engine.models import Credential
from badge_engine.outbox import OutboxMessage
from connectors.hpass.deliveries import delivery_key
from connectors.hpass.models import Delivery
from lti_tool.bridge import Bridge
from lti_tool.config import ensure_secret_files, load_settings
from lti_tool.demo.peers.moodle_ws import DEMO_COURSE_ID, DEMO_LEARNER_ID
from tests.lti_tool.cli.conftest import CANVAS_COURSE_ID, MOODLE_TOKEN, RULE
from tests.support.broker import broker_tasks

LEARNER = str(DEMO_LEARNER_ID)


def _one_error_line(result) -> str:
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    return lines[0]


COMMANDS = [
    ["provider", "add"],
    ["provider", "list"],
    ["provider", "show"],
    ["provider", "remove"],
    ["api-token", "create"],
    ["api-token", "list"],
    ["api-token", "revoke"],
    ["lms", "connect", "moodle"],
    ["lms", "connect", "canvas"],
    ["lms", "list"],
    ["lms", "test"],
    ["lms", "activities"],
    ["achievement", "add"],
    ["achievement", "list"],
    ["achievement", "show"],
    ["achievement", "edit"],
    ["achievement", "preview"],
    ["achievement", "backfill"],
    ["awards", "list"],
    ["awards", "show"],
    ["awards", "revoke"],
    ["awards", "explain"],
    ["deliveries", "list"],
    ["deliveries", "retry"],
    ["deliveries", "discard"],
    ["facts", "list"],
    ["export"],
    ["keys", "list"],
    ["keys", "rotate"],
    ["deployments", "approve"],
    ["learner", "export"],
    ["learner", "forget"],
    ["operator", "add"],
]


def test_every_command_has_help_and_json(cli):
    """Each command prints help and offers --json."""
    for command in COMMANDS:
        result = cli(*command, "--help")
        assert result.code == 0, command
        assert "--json" in result.stdout, command


def test_provider_add_list_show_remove(cli):
    """A provider is added, listed, shown and removed, in text and JSON."""
    added = cli.ok(
        "provider",
        "add",
        "--slug",
        "acme",
        "--name",
        "Acme",
        "--url",
        "https://acme.example.org",
        "--json",
    )
    assert added.document["provider"]["certification"] == "not_certified"

    listed = cli.ok("provider", "list")
    assert "acme" in listed.stdout
    assert "not_certified" in listed.stdout
    shown = cli.ok("provider", "show", "acme", "--json")
    assert shown.document["slug"] == "acme"

    removed = cli.ok("provider", "remove", "acme")
    assert "removed" in removed.stdout
    assert cli.ok("provider", "list", "--json").document["providers"] == []


@pytest.mark.parametrize(
    ("args", "word"),
    [
        (["--slug", "Bad Slug", "--name", "x", "--url", "https://x.org"], "slug"),
        (["--slug", "ok", "--name", "x", "--url", "ftp://x.org"], "http(s)"),
    ],
)
def test_provider_add_bad_input(cli, args, word):
    """A bad slug or URL exits 2 with one line naming it; nothing is added."""
    result = cli("provider", "add", *args, "--json")

    assert result.code == 2
    assert word in _one_error_line(result)
    assert json.loads(result.stdout)["error"]
    assert cli.ok("provider", "list", "--json").document["providers"] == []


def test_unknown_slug_is_usage_error(cli):
    """An unknown provider slug exits 2 and names the slug."""
    result = cli("achievement", "list", "--provider", "nobody")

    assert result.code == 2
    assert "'nobody'" in _one_error_line(result)


@pytest.mark.parametrize(
    "args, value",
    [
        (["platform", "list", "--provider", "nobody"], "'nobody'"),
        (["platform", "registration-url", "--provider", "nobody"], "'nobody'"),
        (["platform", "remove", "https://lms.example.invalid", "nope"], "'nope'"),
        (["platform", "approve", "https://lms.example.invalid", "nope", "1"], "'nope'"),
        (["platform", "rotate-key", "https://lms.example.invalid", "nope"], "'nope'"),
        (["connection", "test", "missing-id"], "'missing-id'"),
    ],
)
def test_older_commands_unknown_is_usage(cli, args, value):
    """The platform and connection commands exit 2 for an unknown slug or id."""
    result = cli(*args)

    assert result.code == 2, result.stderr
    assert value in _one_error_line(result)


def test_connection_set_token_unknown(cli, tmp_path):
    """connection set-token exits 2 for an unknown connection id."""
    token_file = tmp_path / "token.txt"
    token_file.write_text(MOODLE_TOKEN)

    result = cli(
        "connection", "set-token", "missing-id", "--token-file", str(token_file)
    )

    assert result.code == 2, result.stderr
    assert "'missing-id'" in _one_error_line(result)


def test_add_moodle_metadata_address(cli, provider, tmp_path):
    """connection add-moodle rejects a metadata address before storing anything."""
    token_file = tmp_path / "token.txt"
    token_file.write_text(MOODLE_TOKEN)

    result = cli(
        "connection",
        "add-moodle",
        "--provider",
        provider,
        "--url",
        "http://169.254.169.254",
        "--token-file",
        str(token_file),
    )

    assert result.code == 1, result.stderr
    assert "non-public address 169.254.169.254" in _one_error_line(result)


def test_provider_remove_in_use(cli, moodle_connection):
    """A provider with an LMS connection is not removed."""
    result = cli("provider", "remove", "acme")

    assert result.code == 1
    assert "lms_connections" in _one_error_line(result)


def test_lms_connect_moodle_prints_webhook(cli, provider, moodle):
    """Connecting Moodle tests it and shows the webhook URL and secret once."""
    result = cli.ok(
        "lms",
        "connect",
        "moodle",
        "--provider",
        provider,
        "--url",
        moodle.site_url,
        "--token",
        MOODLE_TOKEN,
    )

    assert "Webhook URL: http://127.0.0.1:5999/webhooks/moodle/" in result.stdout
    assert "Webhook secret" in result.stdout
    listed = cli.ok("lms", "list", "--provider", provider, "--json")
    assert listed.document["connections"][0]["kind"] == "moodle"
    assert "webhook_secret" not in listed.stdout


def test_lms_list_uses_page_words(cli, provider, moodle):
    """The text table shows the admin page's status words, --json the status key."""
    connected = cli.ok(
        "lms",
        "connect",
        "moodle",
        "--provider",
        provider,
        "--url",
        moodle.site_url,
        "--token",
        MOODLE_TOKEN,
        "--json",
    )
    connection_id = connected.document["connection"]["id"]

    text = cli.ok("lms", "list", "--provider", provider)
    listed = cli.ok("lms", "list", "--provider", provider, "--json")
    header, row = text.stdout.strip().splitlines()

    assert "STATUS" in header
    assert "STATE" not in header
    assert connection_id in row
    assert " Connected " in row
    assert " ok " not in row
    assert listed.document["connections"][0]["status"] == "connected"
    assert listed.document["connections"][0]["state"] == "ok"


def test_lms_connect_same_site_twice(cli, provider, moodle, tmp_path):
    """A second connection to the same Moodle site is rejected, however spelled."""
    cli.ok(
        "lms",
        "connect",
        "moodle",
        "--provider",
        provider,
        "--url",
        moodle.site_url,
        "--token",
        MOODLE_TOKEN,
    )
    respelled = moodle.site_url.replace("http://", "HTTP://") + "/"
    token_file = tmp_path / "token.txt"
    token_file.write_text(MOODLE_TOKEN)

    second = cli(
        "lms",
        "connect",
        "moodle",
        "--provider",
        provider,
        "--url",
        respelled,
        "--token",
        MOODLE_TOKEN,
        "--json",
    )
    older = cli(
        "connection",
        "add-moodle",
        "--provider",
        provider,
        "--url",
        moodle.site_url,
        "--token-file",
        str(token_file),
        "--json",
    )

    assert second.code == 1
    assert second.document["error"] == "connection_exists"
    assert "already has moodle connection" in second.document["message"]
    assert older.code == 1
    assert older.document["error"] == "connection_exists"
    listed = cli.ok("lms", "list", "--provider", provider, "--json")
    assert len(listed.document["connections"]) == 1


def test_lms_connect_same_site_other_provider(cli, provider, moodle):
    """Another provider may connect the Moodle site that one provider uses."""
    cli.ok(
        "provider",
        "add",
        "--slug",
        "beta",
        "--name",
        "Beta School",
        "--url",
        "https://beta.example.org",
    )
    cli.ok(
        "lms",
        "connect",
        "moodle",
        "--provider",
        provider,
        "--url",
        moodle.site_url,
        "--token",
        MOODLE_TOKEN,
    )

    cli.ok(
        "lms",
        "connect",
        "moodle",
        "--provider",
        "beta",
        "--url",
        moodle.site_url,
        "--token",
        MOODLE_TOKEN,
    )


def test_lms_connect_unreachable_saves_nothing(cli, provider):
    """An unreachable Moodle exits 1 and leaves no connection."""
    result = cli(
        "lms",
        "connect",
        "moodle",
        "--provider",
        provider,
        "--url",
        "http://127.0.0.1:9",
        "--token",
        "x",
    )

    assert result.code == 1
    assert "nothing was saved" in _one_error_line(result)
    assert cli.ok("lms", "list", "--json").document["connections"] == []


def test_lms_connect_rejected_token(cli, provider, moodle):
    """A token Moodle rejects exits 1 and leaves no connection."""
    result = cli(
        "lms",
        "connect",
        "moodle",
        "--provider",
        provider,
        "--url",
        moodle.site_url,
        "--token",
        "wrong-token",
        "--json",
    )

    assert result.code == 1
    assert result.document["error"] == "lms_unreachable"
    assert "give it with --token and" in result.document["message"]
    assert cli.ok("lms", "list", "--json").document["connections"] == []


def test_lms_connect_rejected_token_file(cli, provider, moodle, tmp_path):
    """A rejected token from --token-file names that option and the setup guide,
    not the advice for a stored connection."""
    token_file = tmp_path / "bad-token.txt"
    token_file.write_text("wrong-token\n")

    result = cli(
        "lms",
        "connect",
        "moodle",
        "--provider",
        provider,
        "--url",
        moodle.site_url,
        "--token-file",
        str(token_file),
    )
    line = _one_error_line(result)

    assert result.code == 1
    assert "rejected the web service token" in line
    assert "docs/moodle-setup.md" in line
    assert "give it with --token-file" in line
    assert "--token " not in line
    assert "Stop polling" not in line
    assert "nothing was saved" in line
    assert "wrong-token" not in line
    assert cli.ok("lms", "list", "--json").document["connections"] == []


def test_lms_connect_canvas_and_test(cli, provider, canvas):
    """Connecting Canvas tests the scopes and prints the Live Events URL."""
    token = canvas.issue_token()
    result = cli.ok(
        "lms",
        "connect",
        "canvas",
        "--provider",
        provider,
        "--url",
        canvas.url,
        "--token",
        token,
        "--course",
        str(CANVAS_COURSE_ID),
        "--json",
    )

    assert result.document["test"]["ok"] is True
    assert "?token=" in result.document["webhook_url"]
    connection = result.document["connection"]["id"]
    tested = cli("lms", "test", connection, "--course", str(CANVAS_COURSE_ID))
    assert tested.code == 0, tested.stderr
    assert "ok" in tested.stdout


def test_lms_test_moodle(cli, moodle_connection):
    """lms test reports a working Moodle connection in text and JSON."""
    assert "ok" in cli.ok("lms", "test", moodle_connection).stdout
    assert cli.ok("lms", "test", moodle_connection, "--json").document["ok"] is True


def test_achievement_add_show_edit(cli, provider, achievement):
    """A badge is added, shown and edited, and appears in the list."""
    shown = cli.ok("achievement", "show", achievement, "--json")
    assert shown.document["award_rule"] == json.loads(RULE)
    assert (
        "Course finisher"
        in cli.ok("achievement", "list", "--provider", provider).stdout
    )

    edited = cli.ok("achievement", "edit", achievement, "--name", "Finisher", "--json")
    assert edited.document["fields"] == ["name"]
    assert edited.document["achievement"]["name"] == "Finisher"


def test_achievement_alignments_edit(cli, achievement):
    """--alignments sets the badge's skills, and a bad list exits 2 naming the field."""
    skills = (
        '[{"targetName": "First aid", "targetUrl": "https://skills.example.org/fa"}]'
    )

    edited = cli.ok(
        "achievement", "edit", achievement, "--alignments", skills, "--json"
    )
    bad = cli(
        "achievement",
        "edit",
        achievement,
        "--alignments",
        '[{"targetName": "First aid"}]',
    )

    assert edited.document["fields"] == ["alignments"]
    assert edited.document["achievement"]["alignments"][0]["targetName"] == "First aid"
    assert bad.code == 2
    assert "targetUrl is missing" in _one_error_line(bad)


@pytest.mark.parametrize(
    "rule", ['{"version": 1', '{"version": 1, "rule": {"kind": "nope"}}']
)
def test_achievement_add_bad_rule(cli, provider, moodle_connection, rule):
    """Malformed or invalid rule JSON exits 2 and adds nothing."""
    result = cli(
        "achievement",
        "add",
        "--provider",
        provider,
        "--connection",
        moodle_connection,
        "--course",
        "101",
        "--name",
        "n",
        "--description",
        "d",
        "--criteria",
        "c",
        "--rule",
        rule,
    )

    assert result.code == 2
    assert "rule" in _one_error_line(result)
    listed = cli.ok("achievement", "list", "--provider", provider, "--json")
    assert listed.document["achievements"] == []


def test_achievement_add_bidi_control(cli, provider, moodle_connection):
    """A name with U+202E exits 2 naming the character and adds nothing, and an
    Arabic name with U+200F is added as typed."""
    common = [
        "achievement",
        "add",
        "--provider",
        provider,
        "--connection",
        moodle_connection,
        "--course",
        "101",
        "--description",
        "d",
        "--criteria",
        "c",
        "--rule",
        RULE,
    ]

    rejected = cli(*common, "--name", "First aid \u202esisab")
    added = cli.ok(*common, "--name", "\u200fإسعافات أولية", "--json")

    assert rejected.code == 2
    assert "U+202E RIGHT-TO-LEFT OVERRIDE at position 11" in _one_error_line(rejected)
    assert added.document["achievement"]["name"] == "\u200fإسعافات أولية"
    listed = cli.ok("achievement", "list", "--provider", provider, "--json")
    assert len(listed.document["achievements"]) == 1


def test_achievement_preview(cli, achievement):
    """Preview names the learner who completed the course and issues nothing."""
    result = cli.ok("achievement", "preview", achievement, "--json")

    earning = [row["lms_user_id"] for row in result.document["learners"] if row["met"]]
    assert earning == [LEARNER]
    assert (
        cli.ok("awards", "list", "--provider", "acme", "--json").document["awards"]
        == []
    )
    assert "would earn it now" in cli.ok("achievement", "preview", achievement).stdout


def test_achievement_preview_after_backfill(cli, achievement):
    """After a backfill, preview lists the holder apart and suggests no backfill."""
    cli.ok("achievement", "backfill", achievement, "--json")

    document = cli.ok("achievement", "preview", achievement, "--json").document
    text = cli.ok("achievement", "preview", achievement).stdout
    lines = text.splitlines()

    holder = next(row for row in document["learners"] if row["lms_user_id"] == LEARNER)
    assert holder["met"] is True
    assert holder["holds"] is True
    assert document["would_earn"] == 0
    assert document["already_hold"] == 1
    assert "Would earn it now (0)" in lines
    held_at = lines.index("Already hold it (1)")
    assert lines[held_at + 2].split()[0] == LEARNER
    assert lines[-1] == "Nothing was issued."
    assert "achievement backfill" not in text


def test_achievement_backfill_issues_once(cli, achievement):
    """Backfill issues to the learner who completed; a second run issues nothing."""
    first = cli.ok("achievement", "backfill", achievement, "--json")
    assert first.document["status"] == "done"
    assert first.document["issued"] == 1

    second = cli.ok("achievement", "backfill", achievement)
    assert "0 issued, 1 already held" in second.stdout


def test_canvas_preview_explain_backfill(cli, provider, canvas):
    """Preview, explain and backfill read a Canvas course's students."""
    from datetime import datetime, timezone

    canvas.complete(CANVAS_COURSE_ID, 123, datetime(2026, 3, 1, tzinfo=timezone.utc))
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
    badge = cli.ok(
        "achievement",
        "add",
        "--provider",
        provider,
        "--connection",
        connected.document["connection"]["id"],
        "--course",
        str(CANVAS_COURSE_ID),
        "--name",
        "Canvas finisher",
        "--description",
        "Finished it.",
        "--criteria",
        "Complete it.",
        "--rule",
        RULE,
        "--json",
    ).document["achievement"]["id"]

    preview = cli.ok("achievement", "preview", badge, "--json").document
    explained = cli.ok(
        "awards", "explain", "--achievement", badge, "--learner", "124", "--json"
    ).document
    backfill = cli.ok("achievement", "backfill", badge, "--json").document

    met = {row["lms_user_id"]: row["met"] for row in preview["learners"]}
    assert met == {"123": True, "124": False}
    assert explained["rule_met"] is False
    assert explained["missing"]
    assert backfill["status"] == "done"
    assert backfill["issued"] == 1
    assert backfill["not_met"] == 1


def test_awards_list_show_explain(cli, award, achievement, moodle):
    """Awards are listed by learner, shown with deliveries, and explained."""
    listed = cli.ok(
        "awards", "list", "--provider", "acme", "--learner", LEARNER, "--json"
    )
    assert [item["id"] for item in listed.document["awards"]] == [award]
    assert "live" in cli.ok("awards", "list", "--provider", "acme").stdout

    shown = cli.ok("awards", "show", award, "--json")
    assert shown.document["status"] == "live"
    assert "deliveries" in shown.document

    explained = cli.ok(
        "awards",
        "explain",
        "--achievement",
        achievement,
        "--learner",
        LEARNER,
        "--json",
    )
    assert explained.document["holds_award"] == award
    moodle.enrol_learner(DEMO_COURSE_ID, 3002, "Learner Two")
    not_earned = cli.ok(
        "awards", "explain", "--achievement", achievement, "--learner", "3002"
    )
    assert "has not earned it" in not_earned.stdout


def test_explain_unknown_learner(cli, achievement):
    """A learner id the LMS does not have exits 2 and names the learner."""
    result = cli(
        "awards", "explain", "--achievement", achievement, "--learner", "9999", "--json"
    )

    assert result.code == 2, result.stderr
    line = _one_error_line(result)
    assert "no learner '9999'" in line
    assert f"course {DEMO_COURSE_ID}" in line
    assert "dml_missing_record_exception" not in line
    assert json.loads(result.stdout)["error"] == "learner_not_found"


def test_awards_revoke_needs_reason(cli, award):
    """A revoke without a reason exits 2; with one it revokes once."""
    missing = cli("awards", "revoke", award)
    assert missing.code == 2
    assert "--reason" in _one_error_line(missing)

    revoked = cli.ok("awards", "revoke", award, "--reason", "Issued in error", "--json")
    assert revoked.document["award"]["status"] == "revoked"
    again = cli("awards", "revoke", award, "--reason", "again")
    assert again.code == 1
    assert "already revoked" in _one_error_line(again)


def test_deliveries_and_facts_lists(cli, award):
    """deliveries list and facts list answer in text and JSON."""
    deliveries = cli.ok("deliveries", "list", "--provider", "acme", "--json")
    assert "deliveries" in deliveries.document
    facts = cli.ok("facts", "list", "--provider", "acme", "--json")
    assert "facts" in facts.document
    assert cli.ok("facts", "list", "--provider", "acme").stdout.strip()


def _dead_delivery(settings, award: str) -> tuple[int, int]:
    """Store a failed delivery of the award with a dead outbox message."""
    bridge = Bridge.from_settings(settings)
    try:
        with bridge.session() as session:
            credential = session.scalar(
                select(Credential).where(Credential.public_id == award)
            )
            delivery = Delivery(
                provider_id=credential.provider_id,
                credential_id=credential.id,
                status="failed",
                attempts=12,
            )
            session.add(delivery)
            session.flush()
            message = OutboxMessage(
                provider_id=credential.provider_id,
                kind="credential.deliver",
                idempotency_key=delivery_key(delivery.id),
                payload={"delivery_id": delivery.id},
                status="dead",
                attempts=12,
                last_error="portfolio returned HTTP 500",
            )
            session.add(message)
            session.commit()
            return delivery.id, message.id
    finally:
        bridge.engine.dispose()


def test_deliveries_retry_sends_at_once(cli, award):
    """A retried delivery's message is in the broker when the command returns."""
    settings = load_settings(environ=cli.env)
    ensure_secret_files(settings, cli.env)
    delivery_id, message_id = _dead_delivery(settings, award)

    result = cli.ok(
        "deliveries", "retry", "--provider", "acme", str(delivery_id), "--json"
    )

    tasks = [task for task in broker_tasks(settings) if "run_outbox_message" in task]
    assert result.document["outbox_message"] == message_id
    assert len(tasks) == 1
    assert f"[{message_id}]" in tasks[0]
    bridge = Bridge.from_settings(settings)
    with bridge.session() as session:
        message = session.get(OutboxMessage, message_id)
        assert message.status == "pending"
        assert message.dispatched_at is not None
    bridge.engine.dispose()


def test_deliveries_retry_unknown(cli, provider):
    """Retrying an unknown delivery exits 2 naming it and the command that lists
    deliveries."""
    result = cli("deliveries", "retry", "--provider", provider, "999")

    assert result.code == 2
    line = _one_error_line(result)
    assert "999" in line
    assert "`hpass-bridge deliveries list`" in line
    assert "/api/v1/" not in line


@pytest.mark.parametrize(
    ("args", "command"),
    [
        (["achievement", "show", "no-such-badge"], "`hpass-bridge achievement list`"),
        (["awards", "show", "no-such-award"], "`hpass-bridge awards list`"),
    ],
)
def test_unknown_id_names_list_command(cli, provider, args, command):
    """An unknown id on the command line points to the command that lists the ids."""
    result = cli(*args)

    assert result.code == 2, result.stderr
    line = _one_error_line(result)
    assert command in line
    assert "/api/v1/" not in line


def test_export_formats(cli, award, tmp_path):
    """Export writes JSON, PNG and SVG badges that hpass-bridge verify reads."""
    for file_format in ("json", "png", "svg"):
        out = tmp_path / file_format
        result = cli.ok(
            "export",
            "--provider",
            "acme",
            "--out",
            str(out),
            "--format",
            file_format,
            "--json",
        )
        assert result.document["count"] == 1
        assert (out / f"{award}.{file_format}").exists()


def test_keys_list_and_rotate(cli, provider, award):
    """Signing and encryption keys are listed and rotated."""
    rotated = cli.ok(
        "keys", "rotate", "--kind", "signing", "--provider", provider, "--json"
    )
    assert rotated.document["new_key"] == "key-2"
    listed = cli.ok("keys", "list", "--kind", "signing", "--json")
    assert [key["active"] for key in listed.document["keys"]] == [False, True]

    encryption = cli.ok("keys", "rotate", "--kind", "encryption", "--json")
    assert encryption.document["secrets_reencrypted"] >= 3
    assert "encryption" in cli.ok("keys", "list").stdout
    needs_provider = cli("keys", "rotate", "--kind", "lti")
    assert needs_provider.code == 2


def test_learner_export_and_forget(cli, award):
    """A learner's data is exported, then the name is forgotten."""
    exported = cli.ok("learner", "export", "--provider", "acme", LEARNER, "--json")
    assert exported.document["learners"][0]["awards"][0]["id"] == award

    cli.ok("learner", "forget", "--provider", "acme", LEARNER)
    after = cli.ok("learner", "export", "--provider", "acme", LEARNER, "--json")
    assert after.document["learners"][0]["name"] is None


def test_api_token_create_list_revoke(cli, provider):
    """A token is shown once at creation, listed without it, and revoked."""
    created = cli.ok("api-token", "create", "--provider", provider, "--json")
    token = created.document["token"]
    listed = cli.ok("api-token", "list", "--provider", provider)
    assert token not in listed.stdout
    assert created.document["id"] in listed.stdout

    cli.ok("api-token", "revoke", "--provider", provider, created.document["id"])
    revoked = cli.ok("api-token", "list", "--provider", provider, "--json")
    assert revoked.document["tokens"][0]["revoked_at"]


def test_aliases_exist(cli):
    """The older names stay: connection add-moodle, platform approve, operator create."""
    for command in (
        ["connection", "add-moodle"],
        ["platform", "approve"],
        ["operator", "create"],
        ["deployments", "approve"],
    ):
        assert cli(*command, "--help").code == 0


def test_commands_are_audited_as_os_user(cli, provider, tmp_path):
    """Operator commands record audit events with the operating-system user."""
    from sqlalchemy import create_engine, text

    engine = create_engine(f"sqlite:///{tmp_path / 'instance' / 'hpass.db'}")
    with engine.connect() as connection:
        actors = connection.execute(
            text("select actor, action from audit_events")
        ).all()
    engine.dispose()
    assert "provider.created" in {action for _, action in actors}
    assert all(actor.startswith("os:") for actor, _ in actors)


def test_achievement_show_text_sections(cli, achievement):
    """show prints aligned fields, then the texts, skills and rule in sections."""
    skills = (
        '[{"targetName": "First aid", "targetUrl": "https://skills.example.org/fa",'
        ' "targetFramework": "ESCO"}]'
    )
    cli.ok("achievement", "edit", achievement, "--alignments", skills)

    lines = cli.ok("achievement", "show", achievement).stdout.splitlines()
    blank_then_titles = [
        lines[index + 1] for index, line in enumerate(lines[:-1]) if line == ""
    ]
    id_line = next(line for line in lines if line.strip().startswith("id "))
    course_line = next(line for line in lines if line.strip().startswith("course "))

    assert lines[0] == "Badge: Course finisher"
    assert blank_then_titles == ["Description", "Criteria", "Skills", "Award rule"]
    assert id_line.startswith("  id ")
    assert id_line.index(achievement) == course_line.index("101")
    assert "  - First aid  https://skills.example.org/fa  (ESCO)" in lines
    assert '      "kind": "course_completed"' in lines
    assert not any(": {" in line and line.startswith("award_rule") for line in lines)


def test_achievement_show_json_unchanged(cli, achievement):
    """show --json still prints the achievement document with the same keys."""
    shown = cli.ok("achievement", "show", achievement, "--json").document

    assert sorted(shown) == [
        "alignments",
        "award_rule",
        "course_id",
        "created_at",
        "criteria",
        "description",
        "id",
        "image_url",
        "lms_connection",
        "name",
    ]


def test_achievement_preview_text_sections(cli, achievement):
    """preview prints the count, who would earn it, who not yet and what is missing."""
    lines = cli.ok("achievement", "preview", achievement).stdout.splitlines()
    earn_at = lines.index("Would earn it now (1)")
    not_yet_at = next(i for i, line in enumerate(lines) if line.startswith("Not yet ("))

    assert lines[0].endswith("enrolled learners would earn it now")
    assert lines[earn_at + 1].split() == ["LMS_USER_ID", "NAME", "MET_AT"]
    assert lines[earn_at + 2].split()[0] == LEARNER
    assert lines[not_yet_at + 1].split()[:3] in (
        ["LMS_USER_ID", "NAME", "MISSING"],
        ["(none)"],
    )
    assert lines[-2] == "Nothing was issued. To award the badge to them, run:"
    assert lines[-1] == f"  hpass-bridge achievement backfill {achievement}"


def test_achievement_preview_json_unchanged(cli, achievement):
    """preview --json keeps its document: id, count and every learner row."""
    document = cli.ok("achievement", "preview", achievement, "--json").document

    assert sorted(document) == [
        "achievement",
        "already_hold",
        "learners",
        "would_earn",
    ]
    assert sorted(document["learners"][0]) == [
        "completed_activities",
        "holds",
        "lms_user_id",
        "met",
        "met_at",
        "missing",
        "name",
    ]


def test_preview_text_without_earners():
    """With no learner qualifying, preview lists missing steps and no backfill."""
    # lti_tool.cli imports the command modules in the order their imports need.
    import lti_tool.cli  # noqa: F401
    from lti_tool.cli_achievements import _preview_text

    row = {
        "lms_user_id": "3",
        "name": "Bob",
        "met": False,
        "met_at": None,
        "missing": ["Complete the course", "Pass quiz 2"],
        "completed_activities": [],
    }

    lines = _preview_text("badge-1", [row]).splitlines()

    assert lines[0] == "0 of 1 enrolled learners would earn it now"
    assert "Would earn it now (0)" in lines
    assert "  (none)" in lines
    assert lines[-3].split()[:2] == ["3", "Bob"]
    assert lines[-3].endswith("Complete the course; Pass quiz 2")
    assert lines[-1] == "Nothing was issued."

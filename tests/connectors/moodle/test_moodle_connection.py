"""Test connection against the fake Moodle over real HTTP, as a function and from
the `hpass-bridge connection` commands."""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner
from sqlalchemy import select

from badge_engine.models import Provider
from connectors.models import ConnectionState, LmsConnection
from connectors.moodle.client import REQUIRED_FUNCTIONS, MoodleClient
from connectors.moodle.connection import test_connection
from lti_tool.bridge import Bridge
from lti_tool.cli import main
from lti_tool.config import ensure_secret_files, load_settings
from lti_tool.demo.peers.moodle import MoodleStandIn
from lti_tool.schema import upgrade
from tests.support.outbound import LOOPBACK_POLICY

FULL_TOKEN = "full-token-0001"
PARTIAL_TOKEN = "partial-token-0002"
LEFT_OUT = ("core_enrol_get_enrolled_users", "gradereport_user_get_grade_items")


@pytest.fixture
def moodle():
    """The fake Moodle on loopback with a full token and one missing two functions."""
    stand_in = MoodleStandIn(FULL_TOKEN)
    stand_in.add_token(
        PARTIAL_TOKEN, [name for name in REQUIRED_FUNCTIONS if name not in LEFT_OUT]
    )
    server = stand_in.start()
    yield stand_in
    server.stop()


@pytest.fixture
def cli_env(tmp_path):
    """Environment for the CLI: a loopback bridge with one provider."""
    env = {
        "HPASS_INSTANCE_PATH": str(tmp_path / "instance"),
        "HPASS_PUBLIC_BASE_URL": "http://127.0.0.1:5999",
        "HPASS_LOOPBACK_DEV": "1",
    }
    settings = load_settings(environ=env)
    settings.instance_path.mkdir(parents=True)
    upgrade(settings.database_url)
    bridge = _bridge_for(env)
    with bridge.session() as session:
        session.add(Provider(slug="acme", name="Acme", url="https://acme.invalid"))
        session.commit()
    bridge.engine.dispose()
    return env


def _bridge_for(env: dict[str, str]) -> Bridge:
    settings = load_settings(environ=env)
    ensure_secret_files(settings, env)
    return Bridge.from_settings(settings)


def _add_moodle(cli_env, tmp_path, moodle, token: str) -> dict:
    token_file = tmp_path / f"{token}.txt"
    token_file.write_text(token + "\n")
    arguments = ["connection", "add-moodle", "--provider", "acme"]
    arguments += ["--url", moodle.site_url, "--token-file", str(token_file), "--json"]

    result = CliRunner().invoke(main, arguments, env=cli_env)

    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


def test_connection_names_missing_functions(moodle):
    """A token missing two functions gets a result naming both, with the fix."""
    with MoodleClient(moodle.site_url, PARTIAL_TOKEN, policy=LOOPBACK_POLICY) as client:
        result = test_connection(client)

    assert not result.ok
    assert [missing.name for missing in result.missing_functions] == list(LEFT_OUT)
    for missing in result.missing_functions:
        assert "External services > Functions" in missing.fix
    assert result.site_name == "HPass demo Moodle"


def test_connection_full_token_ok(moodle):
    """A token with every required function passes."""
    with MoodleClient(moodle.site_url, FULL_TOKEN, policy=LOOPBACK_POLICY) as client:
        result = test_connection(client)

    assert result.ok
    assert result.missing_functions == ()


def test_connection_invalid_token(moodle):
    """An unknown token is reported as invalid without raising."""
    with MoodleClient(
        moodle.site_url, "no-such-token", policy=LOOPBACK_POLICY
    ) as client:
        result = test_connection(client)

    assert not result.ok
    assert result.token_invalid
    assert result.errorcode == "invalidtoken"


def test_cli_add_moodle_prints_webhook(cli_env, tmp_path, moodle):
    """add-moodle prints the webhook URL and the secret, and stores neither in clear."""
    created = _add_moodle(cli_env, tmp_path, moodle, FULL_TOKEN)

    assert created["webhook_url"].endswith(
        f"/webhooks/moodle/{created['connection_id']}"
    )
    assert len(created["webhook_secret"]) >= 32
    bridge = _bridge_for(cli_env)
    with bridge.session() as session:
        connection = session.scalars(select(LmsConnection)).one()
        assert FULL_TOKEN.encode() not in connection.api_token_encrypted
        assert connection.webhook_secret_sha256 != created["webhook_secret"]
    bridge.engine.dispose()


def test_cli_test_names_missing(cli_env, tmp_path, moodle):
    """connection test names both missing functions and exits 1."""
    created = _add_moodle(cli_env, tmp_path, moodle, PARTIAL_TOKEN)

    result = CliRunner().invoke(
        main, ["connection", "test", created["connection_id"]], env=cli_env
    )

    assert result.exit_code == 1
    for name in LEFT_OUT:
        assert f"missing function {name}" in result.stdout


def test_cli_test_json(cli_env, tmp_path, moodle):
    """connection test --json lists the missing functions by name."""
    created = _add_moodle(cli_env, tmp_path, moodle, PARTIAL_TOKEN)

    result = CliRunner().invoke(
        main, ["connection", "test", created["connection_id"], "--json"], env=cli_env
    )

    document = json.loads(result.stdout)
    assert [entry["name"] for entry in document["missing_functions"]] == list(LEFT_OUT)
    assert document["ok"] is False


def test_cli_revoked_token_marks_broken(cli_env, tmp_path, moodle):
    """A test with a revoked token marks the connection broken; set-token fixes it."""
    created = _add_moodle(cli_env, tmp_path, moodle, FULL_TOKEN)
    moodle.revoke_token(FULL_TOKEN)
    runner = CliRunner()

    failed = runner.invoke(
        main, ["connection", "test", created["connection_id"]], env=cli_env
    )
    assert failed.exit_code == 1
    assert "invalidtoken" in failed.stdout
    assert _connection_state(cli_env) == ConnectionState.BROKEN.value

    new_token = tmp_path / "new.txt"
    new_token.write_text("fresh-token-0003")
    moodle.add_token("fresh-token-0003", REQUIRED_FUNCTIONS)
    fixed = runner.invoke(
        main,
        ["connection", "set-token", created["connection_id"]]
        + ["--token-file", str(new_token)],
        env=cli_env,
    )

    assert fixed.exit_code == 0, fixed.output
    assert _connection_state(cli_env) == ConnectionState.OK.value


def _connection_state(cli_env) -> str:
    bridge = _bridge_for(cli_env)
    with bridge.session() as session:
        state = session.scalars(select(LmsConnection.state)).one()
    bridge.engine.dispose()
    return state


def test_cli_unknown_provider(cli_env, tmp_path, moodle):
    """add-moodle with an unknown provider slug is a usage error naming it."""
    token_file = tmp_path / "token.txt"
    token_file.write_text(FULL_TOKEN)

    result = CliRunner().invoke(
        main,
        ["connection", "add-moodle", "--provider", "nope", "--url", moodle.site_url]
        + ["--token-file", str(token_file)],
        env=cli_env,
    )

    assert result.exit_code == 2
    assert "'nope'" in result.stderr


def test_cli_empty_token_file(cli_env, tmp_path, moodle):
    """add-moodle with an empty token file fails and creates no connection."""
    token_file = tmp_path / "token.txt"
    token_file.write_text("\n")

    result = CliRunner().invoke(
        main,
        ["connection", "add-moodle", "--provider", "acme", "--url", moodle.site_url]
        + ["--token-file", str(token_file)],
        env=cli_env,
    )

    assert result.exit_code == 1
    assert "token file" in result.stderr


def test_cli_unknown_connection(cli_env):
    """connection test with an unknown id is a usage error naming it."""
    result = CliRunner().invoke(main, ["connection", "test", "missing-id"], env=cli_env)

    assert result.exit_code == 2
    assert "'missing-id'" in result.stderr


def _count_connections(cli_env) -> int:
    bridge = _bridge_for(cli_env)
    with bridge.session() as session:
        count = len(session.scalars(select(LmsConnection.id)).all())
    bridge.engine.dispose()
    return count


def _add_moodle_command(tmp_path, moodle, token: str, *options: str) -> list[str]:
    token_file = tmp_path / "token.txt"
    token_file.write_text(token + "\n")
    return [
        "connection",
        "add-moodle",
        "--provider",
        "acme",
        "--url",
        moodle.site_url,
        "--token-file",
        str(token_file),
        *options,
    ]


def test_cli_add_moodle_rejected_token(cli_env, tmp_path, moodle):
    """add-moodle tests the token and saves nothing when Moodle rejects it."""
    arguments = _add_moodle_command(tmp_path, moodle, "unknown-token-0004")

    result = CliRunner().invoke(main, arguments, env=cli_env)
    as_json = CliRunner().invoke(main, [*arguments, "--json"], env=cli_env)

    assert result.exit_code == 1
    assert "rejected the web service token (errorcode invalidtoken)" in result.stderr
    assert "give it with --token-file" in result.stderr
    assert "nothing was saved" in result.stderr
    assert "Webhook secret" not in result.stdout
    assert as_json.exit_code == 1
    assert json.loads(as_json.stdout)["error"] == "lms_unreachable"
    assert _count_connections(cli_env) == 0


def test_cli_add_moodle_names_missing(cli_env, tmp_path, moodle):
    """A token Moodle accepts is saved, and each missing function gets a fix line."""
    arguments = _add_moodle_command(tmp_path, moodle, PARTIAL_TOKEN)

    result = CliRunner().invoke(main, arguments, env=cli_env)

    assert result.exit_code == 0, result.output
    assert "Webhook secret" in result.stdout
    for name in LEFT_OUT:
        assert f"  to fix: {name} is needed to" in result.stdout
    assert _count_connections(cli_env) == 1


def test_cli_add_moodle_json_test(cli_env, tmp_path, moodle):
    """The JSON output carries the test result next to the webhook fields."""
    arguments = _add_moodle_command(tmp_path, moodle, FULL_TOKEN, "--json")

    result = CliRunner().invoke(main, arguments, env=cli_env)
    document = json.loads(result.stdout)

    assert result.exit_code == 0, result.output
    assert document["status"] == "created"
    assert document["test"]["ok"] is True
    assert document["warnings"] == []
    assert document["webhook_url"].endswith(document["connection_id"])


def test_cli_add_moodle_skip_check(cli_env, tmp_path, moodle):
    """--skip-lms-check saves an untested token and warns on stderr."""
    arguments = _add_moodle_command(
        tmp_path, moodle, "unknown-token-0004", "--skip-lms-check", "--json"
    )
    requests_before = len(moodle.calls)

    result = CliRunner().invoke(main, arguments, env=cli_env)
    document = json.loads(result.stdout)

    assert result.exit_code == 0, result.output
    assert document["test"] is None
    assert "the token was not tested" in document["warnings"][0]
    assert "warning: the token was not tested" in result.stderr
    assert f"connection test {document['connection_id']}" in result.stderr
    assert len(moodle.calls) == requests_before
    assert _count_connections(cli_env) == 1
    assert _connection_state(cli_env) == ConnectionState.OK.value

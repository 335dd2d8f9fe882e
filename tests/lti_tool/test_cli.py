"""Command line conventions: --json output, one-line errors, exit codes."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
from click.testing import CliRunner

from lti_tool.cli import main


def _env(tmp_path, **extra):
    return {
        "HPASS_INSTANCE_PATH": str(tmp_path / "instance"),
        "HPASS_PUBLIC_BASE_URL": "",
        **extra,
    }


def test_db_upgrade_json(tmp_path):
    """db upgrade --json prints one JSON document naming the revision."""
    result = CliRunner().invoke(main, ["db", "upgrade", "--json"], env=_env(tmp_path))

    assert result.exit_code == 0, result.output
    document = json.loads(result.stdout)
    assert document["status"] == "ok"
    assert document["revision"]


def test_db_upgrade_twice_is_safe(tmp_path):
    """Running the upgrade again changes nothing and succeeds."""
    runner = CliRunner()
    runner.invoke(main, ["db", "upgrade"], env=_env(tmp_path))

    result = runner.invoke(main, ["db", "upgrade"], env=_env(tmp_path))

    assert result.exit_code == 0
    assert "database is at revision" in result.stdout


def test_invalid_setting_fails_with_one_line(tmp_path):
    """A bad setting exits 1 with one stderr line naming the variable and fix."""
    env = _env(tmp_path, HPASS_PUBLIC_BASE_URL="http://bridge.example.org")

    result = CliRunner().invoke(main, ["db", "upgrade", "--json"], env=env)

    assert result.exit_code == 1
    assert json.loads(result.stdout)["error"] == "invalid_configuration"
    error_lines = result.stderr.strip().splitlines()
    assert len(error_lines) == 1
    assert "HPASS_PUBLIC_BASE_URL" in error_lines[0]
    assert "https" in error_lines[0]


def test_loopback_mode_refused_off_loopback(tmp_path):
    """Loopback development mode refuses a public base URL that is not on loopback."""
    env = _env(
        tmp_path,
        HPASS_PUBLIC_BASE_URL="https://bridge.example.org",
        HPASS_LOOPBACK_DEV="1",
    )

    result = CliRunner().invoke(main, ["db", "upgrade"], env=env)

    assert result.exit_code == 1
    assert "not a loopback address" in result.stderr


def test_unknown_option_is_usage_error(tmp_path):
    """An unknown option exits 2, as a usage error."""
    result = CliRunner().invoke(main, ["db", "upgrade", "--bogus"], env=_env(tmp_path))

    assert result.exit_code == 2


def test_every_command_has_help():
    """--help works for every command and group."""
    runner = CliRunner()
    commands = [
        [],
        ["db"],
        ["db", "upgrade"],
        ["run"],
        ["worker"],
        ["scheduler"],
        ["demo"],
    ]

    for command in commands:
        result = runner.invoke(main, [*command, "--help"])
        assert result.exit_code == 0, command
        assert "Usage:" in result.output


def test_run_rejects_port_out_of_range():
    """A port above 65535 is a usage error, not a silent random port."""
    result = CliRunner().invoke(main, ["run", "--port", "99999"])

    assert result.exit_code == 2
    assert "65535" in result.output


def test_demo_out_unwritable(tmp_path):
    """An --out folder that cannot be created fails with one line naming it."""
    blocker = tmp_path / "file"
    blocker.write_text("x")

    result = CliRunner().invoke(main, ["demo", "--out", str(blocker / "sub")])

    assert result.exit_code == 2
    assert "--out folder" in result.stderr


@pytest.mark.slow
def test_demo_out_verifies_offline(tmp_path):
    """demo --out writes an archive that verify accepts after the demo has stopped."""
    out = tmp_path / "out"
    demo = subprocess.run(
        [sys.executable, "-m", "lti_tool", "demo", "--out", str(out)],
        capture_output=True,
        text=True,
        timeout=240,
    )
    offline = subprocess.run(
        [
            sys.executable,
            "-m",
            "lti_tool",
            "verify",
            str(out / "archive.json"),
            "--json",
        ],
        capture_output=True,
        text=True,
        timeout=60,
    )

    assert demo.returncode == 0, demo.stderr
    assert {path.name for path in out.iterdir()} == {
        "credential.json",
        "did.json",
        "archive.json",
    }
    assert offline.returncode == 0, offline.stdout
    assert json.loads(offline.stdout)["valid"] is True

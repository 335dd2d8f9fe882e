"""Commands that read or change a bridge never create an instance folder, secret
files or a database; they name the instance folder they looked at."""

from __future__ import annotations

import sqlite3

import pytest

from tests.lti_tool.cli.conftest import Cli

READ_AND_CHANGE = [
    ["awards", "list", "--provider", "demo-academy"],
    ["provider", "list"],
    [
        "provider",
        "add",
        "--slug",
        "acme",
        "--name",
        "Acme",
        "--url",
        "https://acme.example.org",
    ],
    ["platform", "list"],
    ["achievement", "list", "--provider", "acme"],
    ["lms", "list", "--provider", "acme"],
    ["keys", "list"],
    [
        "operator",
        "create",
        "--email",
        "admin@example.org",
        "--password",
        "a-long-password-1",
    ],
    [
        "credential",
        "revoke",
        "00000000-0000-0000-0000-000000000000",
        "--reason",
        "test",
    ],
]


@pytest.mark.parametrize("command", READ_AND_CHANGE, ids=lambda c: " ".join(c[:2]))
def test_missing_instance_creates_nothing(tmp_path, command):
    """Without an instance folder the command exits 1 naming the folder, the
    variable that points at another one and the commands that create one."""
    instance = tmp_path / "instance"
    cli = Cli(instance)

    result = cli(*command, "--json")

    assert result.code == 1, result.stderr
    assert result.document["error"] == "instance_not_ready"
    message = result.document["message"]
    assert f"no bridge database at {instance / 'hpass.db'}" in message
    assert f"The folder {instance} does not exist" in message
    assert "HPASS_INSTANCE_PATH" in message
    assert "`hpass-bridge db upgrade`" in message
    assert not instance.exists()


def test_missing_instance_text_error(tmp_path):
    """Without --json the error is one line on stderr and stdout stays empty."""
    cli = Cli(tmp_path / "instance")

    result = cli("awards", "list", "--provider", "demo-academy")

    assert result.code == 1
    assert result.stdout == ""
    assert result.stderr.startswith("error: no bridge database at ")
    assert len(result.stderr.splitlines()) == 1


@pytest.mark.parametrize("command", ["worker", "scheduler"])
def test_background_process_needs_instance(tmp_path, command):
    """The worker and the scheduler exit 1 on a missing instance and create no
    keys, because new keys could not read the secrets the web server stored."""
    instance = tmp_path / "instance"
    cli = Cli(instance)

    result = cli(command)

    assert result.code == 1
    assert result.stderr.startswith("error: no bridge database at ")
    assert "`hpass-bridge db upgrade`" in result.stderr
    assert not instance.exists()


def test_worker_missing_key_file(cli, tmp_path):
    """A worker on an instance whose encryption key file is gone exits 1 instead
    of starting with a new key."""
    key_file = tmp_path / "instance" / "encryption_key"
    key_file.unlink()

    result = cli("worker")

    assert result.code == 1
    assert "has no encryption_key file" in result.stderr
    assert not key_file.exists()


def test_empty_database_names_instance(tmp_path):
    """A database file without the bridge's tables is reported, not changed."""
    instance = tmp_path / "instance"
    instance.mkdir()
    sqlite3.connect(instance / "hpass.db").close()
    cli = Cli(instance)

    result = cli("provider", "list", "--json")

    assert result.code == 1
    message = result.document["message"]
    assert "has no bridge tables" in message
    assert str(instance) in message
    assert sorted(path.name for path in instance.iterdir()) == ["hpass.db"]


def test_missing_key_file_named(cli, tmp_path):
    """An instance whose encryption key file is gone is not given a new key."""
    key_file = tmp_path / "instance" / "encryption_key"
    key_file.unlink()

    result = cli("provider", "list", "--json")

    assert result.code == 1
    assert "has no encryption_key file" in result.document["message"]
    assert not key_file.exists()


def test_db_upgrade_sets_up_instance(tmp_path):
    """db upgrade creates the folder, the secret files and the schema, after which
    read commands work."""
    instance = tmp_path / "instance"
    cli = Cli(instance)

    cli.ok("db", "upgrade")
    listed = cli.ok("provider", "list", "--json")

    assert (instance / "encryption_key").is_file()
    assert (instance / "secret_key").is_file()
    assert listed.document == {"providers": []}

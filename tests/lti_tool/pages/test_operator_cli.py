"""`hpass-bridge operator create`: the first operator account from the command line."""

from __future__ import annotations

import json

from sqlalchemy import select

from lti_tool.accounts import Account, AccountRole, AuditEvent
from lti_tool.cli import main

from .conftest import PASSWORD, add_account


def cli_env(settings) -> dict:
    return {
        "HPASS_INSTANCE_PATH": str(settings.instance_path),
        "HPASS_DATABASE_URL": settings.database_url,
        "HPASS_PUBLIC_BASE_URL": "http://127.0.0.1:5999",
        "HPASS_LOOPBACK_DEV": "1",
        # The app's own keys, because the command creates no key files.
        "HPASS_SECRET_KEY": settings.secret_key.decode(),
        "HPASS_ENCRYPTION_KEYS": settings.encryption_keys[0].decode(),
    }


def test_operator_create(app, settings, db):
    """The command asks for the password twice and creates an operator."""
    runner = app.test_cli_runner()

    result = runner.invoke(
        main,
        ["operator", "create", "--email", "Op@HPass.org", "--json"],
        input=f"{PASSWORD}\n{PASSWORD}\n",
        env=cli_env(settings),
    )

    assert result.exit_code == 0, result.output
    assert json.loads(result.output.splitlines()[-1])["email"] == "op@hpass.org"
    account = db.scalar(select(Account).where(Account.email == "op@hpass.org"))
    assert account.role == "operator"
    assert account.provider_id is None


def test_operator_create_prints_sign_in_url(app, settings):
    """The command prints the full sign-in URL under the public base URL."""
    runner = app.test_cli_runner()
    arguments = [
        "operator",
        "create",
        "--email",
        "op@hpass.org",
        "--password",
        PASSWORD,
    ]

    result = runner.invoke(main, arguments, env=cli_env(settings))
    as_json = runner.invoke(
        main,
        ["operator", "create", "--email", "op2@hpass.org", "--password", PASSWORD]
        + ["--json"],
        env=cli_env(settings),
    )

    assert result.exit_code == 0, result.output
    assert "sign in at http://127.0.0.1:5999/account/sign-in" in result.output
    assert (
        json.loads(as_json.output.splitlines()[-1])["sign_in_url"]
        == "http://127.0.0.1:5999/account/sign-in"
    )


def test_operator_create_twice(app, settings):
    """A second account with the same email fails with a clear message."""
    runner = app.test_cli_runner()
    arguments = [
        "operator",
        "create",
        "--email",
        "op@hpass.org",
        "--password",
        PASSWORD,
    ]

    runner.invoke(main, arguments, env=cli_env(settings))
    again = runner.invoke(main, arguments, env=cli_env(settings))

    assert again.exit_code == 1
    assert "already exists" in again.output


def test_operator_create_taken_no_prompt(app, settings, db):
    """A taken address fails before any password prompt, in any letter case."""
    add_account(db, "op@hpass.org", AccountRole.OPERATOR, None)
    runner = app.test_cli_runner()

    result = runner.invoke(
        main,
        ["operator", "create", "--email", "Op@HPass.org"],
        input=f"{PASSWORD}\n{PASSWORD}\n",
        env=cli_env(settings),
    )

    assert result.exit_code == 1
    assert "an account for Op@HPass.org already exists" in result.output
    assert "Password" not in result.output
    assert "Repeat for confirmation" not in result.output


def test_operator_create_taken_while_prompting(app, settings, db, monkeypatch):
    """An account created by another process during the prompts still makes the
    command fail, and it creates no second account."""
    from lti_tool import cli_accounts

    def create_meanwhile(email: str) -> str:
        add_account(db, "op@hpass.org", AccountRole.OPERATOR, None)
        return PASSWORD

    monkeypatch.setattr(cli_accounts, "_prompt_new_password", create_meanwhile)
    runner = app.test_cli_runner()

    result = runner.invoke(
        main,
        ["operator", "create", "--email", "op@hpass.org", "--json"],
        env=cli_env(settings),
    )
    db.expire_all()
    accounts = db.scalars(select(Account)).all()

    assert result.exit_code == 1
    assert json.loads(result.output.splitlines()[0])["error"] == "account_exists"
    assert len(accounts) == 1


def test_operator_short_password(app, settings, db):
    """A short password is rejected and no account is created."""
    runner = app.test_cli_runner()

    result = runner.invoke(
        main,
        ["operator", "create", "--email", "op@hpass.org", "--password", "short"],
        env=cli_env(settings),
    )

    assert result.exit_code == 2
    assert "at least 12" in result.output
    assert db.scalar(select(Account)) is None


def test_operator_invalid_email(app, settings, db):
    """An email without @ is a value to correct: exit 2, no account."""
    runner = app.test_cli_runner()

    result = runner.invoke(
        main,
        [
            "operator",
            "create",
            "--email",
            "op.hpass.org",
            "--password",
            PASSWORD,
            "--json",
        ],
        env=cli_env(settings),
    )

    assert result.exit_code == 2
    assert json.loads(result.output.splitlines()[0])["error"] == "invalid_email"
    assert "not an email address" in result.output
    assert db.scalar(select(Account)) is None


def test_operator_create_audited_as_os_user(app, settings, db, monkeypatch):
    """The new account is audited with the operating-system user as actor."""
    monkeypatch.setattr("getpass.getuser", lambda: "deploy")
    runner = app.test_cli_runner()

    result = runner.invoke(
        main,
        ["operator", "create", "--email", "op@hpass.org", "--json"],
        input=f"{PASSWORD}\n{PASSWORD}\n",
        env=cli_env(settings),
    )

    assert result.exit_code == 0, result.output
    event = db.scalar(select(AuditEvent).where(AuditEvent.action == "account.created"))
    assert event.actor == "os:deploy"


def test_operator_prompt_checks_length_first(app, settings, db):
    """A short typed password is rejected before the confirmation prompt."""
    runner = app.test_cli_runner()

    result = runner.invoke(
        main,
        ["operator", "create", "--email", "op@hpass.org", "--json"],
        input=f"short\n{PASSWORD}\n{PASSWORD}\n",
        env=cli_env(settings),
    )

    assert result.exit_code == 0, result.output
    assert "at least 12" in result.output
    assert result.output.count("Repeat for confirmation") == 1
    assert db.scalar(select(Account)).email == "op@hpass.org"


def test_operator_prompt_repeats_on_mismatch(app, settings, db):
    """Two different typed passwords are asked for again."""
    runner = app.test_cli_runner()

    result = runner.invoke(
        main,
        ["operator", "create", "--email", "op@hpass.org", "--json"],
        input=f"{PASSWORD}\n{PASSWORD}x\n{PASSWORD}\n{PASSWORD}\n",
        env=cli_env(settings),
    )

    assert result.exit_code == 0, result.output
    assert "the two passwords differ" in result.output
    assert db.scalar(select(Account)) is not None


def test_operator_create_locale(app, settings, db):
    """`--locale` stores the language of the operator's emails, as its supported
    language for a regional tag."""
    runner = app.test_cli_runner()
    arguments = ["operator", "create", "--email", "op@hpass.org"]

    result = runner.invoke(
        main,
        arguments + ["--password", PASSWORD, "--locale", "fr-CA", "--json"],
        env=cli_env(settings),
    )

    assert result.exit_code == 0, result.output
    assert json.loads(result.output.splitlines()[-1])["locale"] == "fr"
    account = db.scalar(select(Account).where(Account.email == "op@hpass.org"))
    assert account.locale == "fr"


def test_operator_create_no_locale(app, settings, db):
    """Without `--locale` the account stores no language."""
    runner = app.test_cli_runner()
    arguments = ["operator", "create", "--email", "op@hpass.org"]

    result = runner.invoke(
        main, arguments + ["--password", PASSWORD], env=cli_env(settings)
    )

    assert result.exit_code == 0, result.output
    account = db.scalar(select(Account).where(Account.email == "op@hpass.org"))
    assert account.locale is None


def test_operator_create_bad_locale(app, settings, db):
    """An unsupported `--locale` fails, naming the languages, before any prompt,
    and creates no account."""
    runner = app.test_cli_runner()
    arguments = ["operator", "create", "--email", "op@hpass.org", "--locale", "de"]

    result = runner.invoke(main, arguments, env=cli_env(settings))

    assert result.exit_code == 2
    assert "'de' is not a supported language" in result.output
    assert "en, fr, es, ar" in result.output
    assert "Password" not in result.output
    assert db.scalar(select(Account)) is None

"""The `hpass-bridge` command line.

Every command explains itself with `--help`, and `--json` prints one JSON document on
stdout. An error prints one line on stderr naming the value and the fix; with `--json`
a JSON error object goes to stdout as well. Exit code 0 is success, 1 a failure and 2
a usage error.
"""

from __future__ import annotations

import json
import sys
from typing import Any, NoReturn

import click

from lti_tool.config import ConfigError, load_settings

EXIT_FAILURE = 1
# A value the user must correct, as docs/cli.md documents for every command.
EXIT_INVALID_INPUT = 2


class CommandFailed(click.ClickException):
    exit_code = EXIT_FAILURE


def emit(result: dict[str, Any], as_json: bool, text: str) -> None:
    if as_json:
        click.echo(json.dumps(result, default=str))
    else:
        click.echo(text)


def fail(
    message: str,
    as_json: bool,
    code: str = "failed",
    exit_code: int = EXIT_FAILURE,
) -> NoReturn:
    if as_json:
        click.echo(json.dumps({"error": code, "message": message}))
    click.echo(f"error: {message}", err=True)
    sys.exit(exit_code)


def json_option(function):
    return click.option(
        "--json", "as_json", is_flag=True, help="Print one JSON document on stdout."
    )(function)


def _settings_or_fail(as_json: bool = False, **overrides):
    try:
        return load_settings(overrides=overrides or None)
    except ConfigError as error:
        fail(str(error), as_json, code="invalid_configuration")


def _instance_or_fail(as_json: bool = False):
    """Return the settings of an existing instance, with its secrets loaded.

    A missing database, schema or secret file ends the command with a message that
    names the instance folder; nothing is created.
    """
    from lti_tool.instance import check_instance

    settings = _settings_or_fail(as_json)
    try:
        check_instance(settings)
    except ConfigError as error:
        fail(str(error), as_json, code="instance_not_ready")

    return settings


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="hpass-bridge")
def main() -> None:
    """Award Open Badges from Moodle and Canvas into HPass portfolios."""


@main.group()
def db() -> None:
    """Manage the database schema."""


@db.command("upgrade")
@json_option
def db_upgrade(as_json: bool) -> None:
    """Upgrade the database schema to the newest version (safe to run again)."""
    from lti_tool.schema import current_revision, upgrade

    from lti_tool.config import ensure_secret_files

    settings = _settings_or_fail(as_json)
    try:
        # `db upgrade` sets up an instance, so it creates the folder and the secret
        # files that the other commands require.
        ensure_secret_files(settings)
    except (OSError, ConfigError) as error:
        fail(
            f"cannot set up the instance folder {settings.instance_path}: {error}",
            as_json,
            code="invalid_configuration",
        )
    try:
        upgrade(settings.database_url)
    except Exception as error:  # noqa: BLE001 - reported to the operator
        fail(
            f"schema upgrade of {_redact(settings.database_url)} failed: {error}",
            as_json,
        )
    revision = current_revision(settings.database_url)
    emit(
        {"status": "ok", "revision": revision},
        as_json,
        f"database is at revision {revision}",
    )


def _redact(url: str) -> str:
    from lti_tool.instance import redacted_url

    return redacted_url(url)


@main.command()
@click.option("--loglevel", default="INFO", show_default=True, help="Worker log level.")
def worker(loglevel: str) -> None:
    """Run a Celery worker that executes outbox messages."""
    from lti_tool.app import create_app

    # A worker started on a missing or wrong instance folder must not create
    # encryption keys that cannot read what the web server stored.
    settings = _instance_or_fail()
    celery = create_app(settings).extensions["celery"]
    celery.worker_main(
        [
            "worker",
            f"--loglevel={loglevel}",
            f"--concurrency={settings.worker_concurrency}",
            "--without-gossip",
            "--without-mingle",
            "--hostname=hpass@%h",
        ]
    )


@main.command()
@click.option(
    "--loglevel", default="INFO", show_default=True, help="Scheduler log level."
)
def scheduler(loglevel: str) -> None:
    """Run the periodic scheduler (Celery beat) that sweeps the outbox."""
    from lti_tool.app import create_app
    from lti_tool.beat_process import run_beat

    settings = _instance_or_fail()
    celery = create_app(settings).extensions["celery"]
    schedule = settings.instance_path / "celerybeat-schedule"
    run_beat(celery, loglevel, schedule)


from lti_tool.cli_connections import connection  # noqa: E402
from lti_tool.cli_accounts import account, operator  # noqa: E402
from lti_tool.cli_platform import platform  # noqa: E402
from lti_tool.cli_run import demo, run  # noqa: E402
from lti_tool.cli_verify import verify  # noqa: E402
from lti_tool.cli_credentials import credential  # noqa: E402

main.add_command(run)
main.add_command(demo)
main.add_command(operator)
main.add_command(account)
main.add_command(connection)
main.add_command(verify)
main.add_command(credential)
main.add_command(platform)

from lti_tool.cli_achievements import achievement  # noqa: E402
from lti_tool.cli_awards import awards  # noqa: E402
from lti_tool.cli_deliveries import deliveries, facts  # noqa: E402
from lti_tool.cli_deployments import deployments  # noqa: E402
from lti_tool.cli_export import export  # noqa: E402
from lti_tool.cli_keys import keys  # noqa: E402
from lti_tool.cli_learners import learner  # noqa: E402
from lti_tool.cli_lms import lms  # noqa: E402
from lti_tool.cli_providers import api_token, provider  # noqa: E402

main.add_command(provider)
main.add_command(api_token)
main.add_command(lms)
main.add_command(achievement)
main.add_command(awards)
main.add_command(deliveries)
main.add_command(facts)
main.add_command(deployments)
main.add_command(export)
main.add_command(keys)
main.add_command(learner)
operator.add_command(operator.commands["create"], "add")

"""Plumbing shared by the operator commands: a database session, the audit actor and
one way to report a rejected action.

An action error prints one line on stderr (and, with `--json`, a JSON error object
on stdout) and exits 2 when the operator must correct a value, 1 when the action
failed. A database error rolls the transaction back, so nothing is half-written.
"""

from __future__ import annotations

import json
import sys
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, Iterator, NoReturn

import click
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session

from lti_tool.bridge import Bridge
from lti_tool.cli import _instance_or_fail
from lti_tool.logs import configure_logging, get_logger
from lti_tool.operations import ActionError, operating_system_actor

log = get_logger(__name__)


@dataclass
class Operator:
    bridge: Bridge
    session: Session
    actor: str


def report_error(error: ActionError, as_json: bool) -> NoReturn:
    if as_json:
        click.echo(json.dumps({"error": error.code, "message": error.message}))
    click.echo(f"error: {error.message}", err=True)
    sys.exit(error.exit_code)


@contextmanager
def operator_session(as_json: bool) -> Iterator[Operator]:
    """Open a session for one command; an ActionError ends the command cleanly."""
    settings = _instance_or_fail(as_json)
    # Only errors are logged, on stderr, so stdout stays one JSON document and a
    # rejected action prints the single line of `report_error`.
    configure_logging(settings.log_format, "CRITICAL")
    bridge = Bridge.from_settings(settings)
    try:
        with bridge.session() as session:
            yield Operator(bridge, session, operating_system_actor())
    except ActionError as error:
        log.info("operator_action_rejected", code=error.code, reason=error.message)
        report_error(error, as_json)
    except SQLAlchemyError as error:
        report_error(
            ActionError(
                f"the database rejected the change ({type(error).__name__}: "
                f"{str(error.orig if hasattr(error, 'orig') else error)[:200]}); "
                "nothing was saved. Run `hpass-bridge db upgrade` if the schema is "
                "out of date",
                code="database_error",
            ),
            as_json,
        )
    finally:
        bridge.engine.dispose()


def send_committed(bridge: Bridge, message_ids: list[int]) -> None:
    """Send committed outbox messages to the broker before the command exits.

    A failed or slow send costs only time, because the scheduler's sweep sends
    every pending message that was never marked as dispatched.
    """
    from lti_tool.app import create_app
    from lti_tool.dispatcher import dispatcher_for

    app = create_app(bridge.settings)
    try:
        dispatcher = dispatcher_for(app)
        dispatcher.submit(message_ids)
        if not dispatcher.stop():
            log.warning("outbox_send_unfinished", message_ids=message_ids[:20])
    finally:
        app.extensions["hpass"].engine.dispose()


def emit(result: Any, as_json: bool, text: str) -> None:
    if as_json:
        click.echo(json.dumps(result, default=str))
    else:
        click.echo(text)


def json_option(function):
    return click.option(
        "--json", "as_json", is_flag=True, help="Print one JSON document on stdout."
    )(function)


def provider_option(required: bool = True):
    return click.option(
        "--provider",
        "provider_slug",
        required=required,
        help="Slug of the provider to act for.",
    )


def fields(pairs: list[tuple[str, Any]], indent: int = 0) -> str:
    """Render label and value pairs with the values aligned in one column.

    A value of several lines continues under its first line; None prints as "-".
    """
    width = max((len(label) for label, _value in pairs), default=0)
    lines = []
    for label, value in pairs:
        text = "-" if value is None or value == "" else str(value)
        first, *rest = text.splitlines() or [""]
        lines.append(f"{' ' * indent}{label.ljust(width)}  {first}".rstrip())
        lines += [f"{' ' * (indent + width + 2)}{line}".rstrip() for line in rest]

    return "\n".join(lines)


def section(title: str, body: str, indent: int = 2) -> str:
    """Render a titled block with its body lines indented under the title."""
    lines = [title]
    lines += [f"{' ' * indent}{line}".rstrip() for line in body.splitlines()]

    return "\n".join(lines)


def table(rows: list[dict[str, Any]], columns: list[str], empty: str) -> str:
    """Render rows as aligned text columns for a terminal."""
    if not rows:
        return empty
    cells = [
        [
            str(row.get(column) if row.get(column) is not None else "-")
            for column in columns
        ]
        for row in rows
    ]
    widths = [
        max(len(column), *(len(line[index]) for line in cells))
        for index, column in enumerate(columns)
    ]
    lines = ["  ".join(c.upper().ljust(w) for c, w in zip(columns, widths)).rstrip()]
    for line in cells:
        lines.append("  ".join(c.ljust(w) for c, w in zip(line, widths)).rstrip())

    return "\n".join(lines)

"""Celery tasks: run one outbox message, and sweep the outbox for due messages."""

from __future__ import annotations

from collections.abc import Sequence

import structlog
from celery import shared_task
from flask import current_app
from sqlalchemy import select

from badge_engine.outbox import (
    OutboxMessage,
    claim,
    due_message_ids,
    mark_done,
    mark_failed,
)
from lti_tool.bridge import Bridge, current_bridge
from lti_tool.dispatcher import RUN_OUTBOX_MESSAGE, RUN_OUTBOX_MESSAGES, dispatcher_for
from lti_tool.logs import get_logger
from lti_tool.pipeline import HANDLERS, GiveUp, HandlerContext, RetryLater

log = get_logger(__name__)


@shared_task(name=RUN_OUTBOX_MESSAGE)
def run_outbox_message(message_id: int) -> str:
    """Claim the message and run its handler, or skip it when another worker claimed it."""
    bridge = current_bridge()
    settings = bridge.settings
    structlog.contextvars.bind_contextvars(outbox_message_id=message_id)

    with bridge.session() as session:
        message = claim(
            session, message_id, lease_seconds=settings.outbox_lease_seconds
        )
        session.commit()
    if message is None:
        log.debug("outbox_message_not_claimable")
        return "skipped"
    structlog.contextvars.bind_contextvars(
        provider_id=message.provider_id, kind=message.kind, attempt=message.attempts
    )

    handler = HANDLERS.get(message.kind)
    with bridge.session() as session:
        message = session.get(OutboxMessage, message_id)
        try:
            if handler is None:
                raise GiveUp(f"no handler for outbox message kind {message.kind!r}")
            context = HandlerContext(bridge=bridge, session=session, message=message)
            handler(context)
            mark_done(message)
            session.commit()
        except (RetryLater, GiveUp, Exception) as error:  # noqa: BLE001
            session.rollback()
            _record_failure(bridge, message_id, error)
            return "failed"

    log.info("outbox_message_done")
    dispatch(context.follow_up_ids)
    return "done"


@shared_task(name=RUN_OUTBOX_MESSAGES)
def run_outbox_messages(message_ids: list[int]) -> dict[str, int]:
    """Run messages the dispatcher sent together, one after another.

    Each runs as `run_outbox_message` would alone, in its own transactions, so one
    failure does not touch the others. Returns how many ended done, failed, skipped
    or in an error that the sweep will retry.
    """
    outcomes: dict[str, int] = {}
    task_ids = structlog.contextvars.get_contextvars()
    for message_id in message_ids:
        structlog.contextvars.clear_contextvars()
        structlog.contextvars.bind_contextvars(**task_ids)
        try:
            outcome = run_outbox_message.run(message_id)
        except Exception:  # noqa: BLE001 - the sweep sends this id again later
            log.exception("outbox_message_failed", outbox_message_id=message_id)
            outcome = "error"
        outcomes[outcome] = outcomes.get(outcome, 0) + 1
    return outcomes


def _record_failure(bridge: Bridge, message_id: int, error: Exception) -> None:
    settings = bridge.settings
    with bridge.session() as session:
        message = session.get(OutboxMessage, message_id)
        if isinstance(error, GiveUp):
            mark_failed(message, str(error), max_attempts=0)
            log.error("outbox_message_dead", error=str(error))
        elif isinstance(error, RetryLater):
            mark_failed(
                message,
                str(error),
                max_attempts=settings.outbox_max_attempts,
                retry_after=error.retry_after,
            )
            log.warning(
                "outbox_message_retry",
                error=str(error),
                status=message.status,
                next_attempt_at=message.next_attempt_at.isoformat(),
            )
        else:
            mark_failed(
                message,
                f"{type(error).__name__}: {error}",
                max_attempts=settings.outbox_max_attempts,
            )
            log.exception("outbox_message_failed", status=message.status)
        session.commit()


def dispatch(message_ids: list[int]) -> None:
    """Hand messages to the broker after their transaction committed.

    The ids go to this process's background dispatcher, so the caller never waits on
    the broker. A broker that is down costs only speed: the sweep sends them later.
    """
    if message_ids:
        dispatcher_for(current_app).submit(list(message_ids))


@shared_task(name="lti_tool.tasks.sweep_outbox")
def sweep_outbox() -> int:
    """Send due messages and those whose worker died; return how many were sent."""
    bridge = current_bridge()
    redispatch_after = max(60.0, bridge.settings.outbox_sweep_seconds * 6)
    with bridge.session() as session:
        ids = due_message_ids(session, redispatch_after_seconds=redispatch_after)
    if ids:
        log.info("outbox_sweep_dispatching", count=len(ids))
        dispatch(ids)

    return len(ids)


def send_task_each(task_name: str, ids: Sequence[int]) -> int:
    """Send one `task_name` task per id through the broker; return how many were sent.

    The beat tasks use this to start one poll per connection or course, so a slow
    or failing one does not hold up the others.
    """
    celery = current_app.extensions["celery"]
    for item_id in ids:
        celery.send_task(task_name, args=[item_id])
    return len(ids)


def polled_connection_ids(kind: str) -> list[int]:
    """Return the ids of the LMS connections of `kind` that are neither broken nor
    disconnected."""
    from connectors.models import ConnectionState, LmsConnection

    with current_bridge().session() as session:
        return list(
            session.scalars(
                select(LmsConnection.id).where(
                    LmsConnection.kind == kind,
                    LmsConnection.state == ConnectionState.OK.value,
                )
            )
        )


def polled_connection(session, connection_id: int, kind: str):
    """Return the connection when it is of `kind` and OK (neither broken nor
    disconnected), else None."""
    from connectors.models import ConnectionState, LmsConnection

    connection = session.get(LmsConnection, connection_id)
    if connection is None or connection.kind != kind:
        return None
    if connection.state != ConnectionState.OK.value:
        return None
    return connection


POLL_MOODLE_CONNECTION = "lti_tool.tasks.poll_moodle_connection"


@shared_task(name="lti_tool.tasks.poll_moodle_connections")
def poll_moodle_connections() -> int:
    """Start one reconciliation poll per Moodle connection that is OK."""
    from connectors.models import LmsKind

    return send_task_each(
        POLL_MOODLE_CONNECTION, polled_connection_ids(LmsKind.MOODLE.value)
    )


@shared_task(name=POLL_MOODLE_CONNECTION)
def poll_moodle_connection(connection_id: int) -> str:
    """Poll one Moodle connection's courses for completions that no event reported.

    Safe to run twice: facts are deduplicated, and the cursor only moves forward.
    A rejected token marks the connection broken, which stops its polls until the
    provider admin saves a new token.
    """
    from connectors.contacts import record_failure, record_success
    from connectors.models import ContactSource, LmsKind
    from connectors.moodle.errors import MoodleError, MoodleTokenInvalid
    from connectors.moodle.poller import poll_connection
    from lti_tool.pipeline import mark_connection_broken, moodle_client_for, record_fact

    bridge = current_bridge()
    structlog.contextvars.bind_contextvars(connection_id=connection_id)

    def store(session, fact):
        _, message = record_fact(session, fact)
        return message.id if message is not None else None

    with bridge.session() as session:
        connection = polled_connection(session, connection_id, LmsKind.MOODLE.value)
        if connection is None:
            log.warning(
                "moodle_poll_skipped",
                reason="connection not found, not a Moodle connection, broken or "
                "disconnected",
            )
            return "skipped"
        structlog.contextvars.bind_contextvars(provider_id=connection.provider_id)

        client = moodle_client_for(bridge, connection)
        try:
            result = poll_connection(session, client, connection, store)
        except MoodleTokenInvalid as error:
            session.rollback()
            mark_connection_broken(session, connection, error)
            record_failure(session, connection, ContactSource.POLL, error)
            session.commit()
            return "broken"
        except MoodleError as error:
            # Facts stored before the failure were committed page by page.
            session.rollback()
            log.warning(
                "moodle_poll_failed", error=str(error), errorcode=error.errorcode
            )
            record_failure(session, connection, ContactSource.POLL, error)
            session.commit()
            return "failed"
        finally:
            client.close()
        if result.courses:
            # A connection without achievements was not read, so it was not reached.
            record_success(session, connection, ContactSource.POLL)
        session.commit()

    log.info(
        "moodle_poll_done",
        courses=result.courses,
        users_read=result.users_read,
        facts_new=result.facts_new,
        users_skipped=result.users_skipped,
        passes_completed=result.passes_completed,
    )
    dispatch(result.message_ids)
    return "done"

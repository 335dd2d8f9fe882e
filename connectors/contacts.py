"""Record how the bridge's contacts with each LMS ended, for the admin page and the API.

Polls, learner re-reads and connection tests call `record_success` or
`record_failure` when they finish. Each call is one upsert of the connection's
`LmsContact` row that never moves a time backwards, so two workers that finish in
either order leave the newest outcome. The caller commits. A handler whose
transaction rolls back after a failure must commit the failure first, or it is lost.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import or_, select
from sqlalchemy.orm import Session

from badge_engine.db import dialect_insert, utcnow
from connectors.models import ContactSource, LmsConnection, LmsContact

# Re-reads and events happen once per completion, so a busy connection would
# write its contact row for each one. Within this interval only the first is
# written, so the row is locked rarely and the stored re-read and event times
# can be up to this old.
FREQUENT_WRITE_INTERVAL = timedelta(seconds=60)

# The stored failure reason is cut to this many characters.
DETAIL_MAX_CHARS = 2000

_CONTACTS = LmsContact.__table__


def record_success(
    session: Session,
    connection: LmsConnection,
    source: ContactSource,
    *,
    at: datetime | None = None,
) -> None:
    """Record that `source` reached the connection's LMS and received a usable response."""
    _upsert_latest(
        session,
        connection,
        "last_success_at",
        at or utcnow(),
        last_success_source=source.value,
    )


def record_failure(
    session: Session,
    connection: LmsConnection,
    source: ContactSource,
    error: Exception | str,
    *,
    at: datetime | None = None,
) -> None:
    """Record that `source` could not use the connection's LMS, with the reason."""
    _upsert_latest(
        session,
        connection,
        "last_failure_at",
        at or utcnow(),
        last_failure_source=source.value,
        last_failure_detail=str(error)[:DETAIL_MAX_CHARS],
    )


def record_reread(session: Session, connection: LmsConnection) -> None:
    """Record a successful re-read of one learner, unless the stored success is newer
    than `FREQUENT_WRITE_INTERVAL` (two workers may still both write)."""
    stored = _stored_time(session, connection, _CONTACTS.c.last_success_at)
    now = utcnow()
    if stored is not None and now - stored < FREQUENT_WRITE_INTERVAL:
        return
    record_success(session, connection, ContactSource.REREAD, at=now)


def record_event(
    session: Session, connection: LmsConnection, received_at: datetime
) -> None:
    """Record when a processed webhook event arrived, unless the stored time is newer
    than `FREQUENT_WRITE_INTERVAL` (two workers may still both write)."""
    stored = _stored_time(session, connection, _CONTACTS.c.last_event_at)
    if stored is not None and received_at - stored < FREQUENT_WRITE_INTERVAL:
        return
    _upsert_latest(session, connection, "last_event_at", received_at)


def _stored_time(session: Session, connection: LmsConnection, column):
    return session.execute(
        select(column).where(
            _CONTACTS.c.provider_id == connection.provider_id,
            _CONTACTS.c.lms_connection_id == connection.id,
        )
    ).scalar()


def _upsert_latest(
    session: Session,
    connection: LmsConnection,
    time_column: str,
    moment: datetime,
    **values: str,
) -> None:
    """Insert the row, or set `time_column` and `values` unless it is already newer."""
    statement = dialect_insert(session.get_bind().dialect.name, _CONTACTS).values(
        provider_id=connection.provider_id,
        lms_connection_id=connection.id,
        **{time_column: moment},
        **values,
    )
    stored = _CONTACTS.c[time_column]
    statement = statement.on_conflict_do_update(
        index_elements=[_CONTACTS.c.lms_connection_id],
        set_={name: statement.excluded[name] for name in (time_column, *values)},
        where=(_CONTACTS.c.provider_id == statement.excluded.provider_id)
        & or_(stored.is_(None), stored <= statement.excluded[time_column]),
    )
    session.execute(statement)


def last_contact_outcome(contact: LmsContact | None) -> str | None:
    """Return "failed" or "succeeded" for the latest recorded contact, or None
    when no poll, re-read or test of the connection was recorded."""
    if contact is None:
        return None
    if contact.failing:
        return "failed"
    if contact.last_success_at is not None:
        return "succeeded"
    return None

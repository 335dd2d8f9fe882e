"""The per-course cursor rows with which the LMS pollers resume where they stopped."""

from __future__ import annotations

from typing import Any, TypeVar

from sqlalchemy import select
from sqlalchemy.orm import Session

from connectors.models import LmsConnection

CursorRow = TypeVar("CursorRow")


def course_cursor(
    session: Session,
    model: type[CursorRow],
    connection: LmsConnection,
    lms_course_id: str,
    **start: Any,
) -> CursorRow:
    """Return the cursor row of a connection's course, adding it with `start` if missing.

    `model` is a cursor table keyed by provider, LMS connection and LMS course id.
    """
    cursor = session.scalar(
        select(model).where(
            model.provider_id == connection.provider_id,
            model.lms_connection_id == connection.id,
            model.lms_course_id == lms_course_id,
        )
    )
    if cursor is None:
        cursor = model(
            provider_id=connection.provider_id,
            lms_connection_id=connection.id,
            lms_course_id=lms_course_id,
            **start,
        )
        session.add(cursor)
        session.flush()
    return cursor

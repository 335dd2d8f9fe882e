"""Tables of the Moodle connector."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from badge_engine.db import Base, utcnow


class MoodlePollCursor(Base):
    """Where the reconciliation poll of one course stopped, so it never starts over.

    A poll reads at most a bounded number of enrolled users per run, from
    `next_offset` in Moodle's enrolment list, and stores where the next run goes on.
    `next_offset` wraps to 0 after the last page, which completes a pass over the
    course, at `last_pass_completed_at`.
    """

    __tablename__ = "moodle_poll_cursors"

    id: Mapped[int] = mapped_column(primary_key=True)
    provider_id: Mapped[int] = mapped_column(ForeignKey("providers.id"), index=True)
    lms_connection_id: Mapped[int] = mapped_column(ForeignKey("lms_connections.id"))
    lms_course_id: Mapped[str] = mapped_column(String(64))
    next_offset: Mapped[int] = mapped_column(default=0)
    last_polled_at: Mapped[datetime | None]
    last_pass_completed_at: Mapped[datetime | None]
    facts_found: Mapped[int] = mapped_column(default=0)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)

    __table_args__ = (
        UniqueConstraint(
            "provider_id",
            "lms_connection_id",
            "lms_course_id",
            name="uq_moodle_poll_cursors_course",
        ),
    )

"""Tables of the Canvas connector: REST API credentials and reconciliation cursors."""

from __future__ import annotations

import enum
from datetime import datetime

from sqlalchemy import ForeignKey, Integer, LargeBinary, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from badge_engine.db import Base, utcnow


class CanvasAuthKind(str, enum.Enum):
    OAUTH2 = "oauth2"
    ACCESS_TOKEN = "access_token"  # noqa: S105 - the kind's name, not a token


class CanvasCredential(Base):
    """The REST API credentials of one Canvas connection, and its Live Events setup.

    Every token and the developer key's secret are encrypted with the vault key.
    `home_shard` is the shard of the provider's root account, used to turn global
    ids in Live Events into local ids; None means "learn it from each event's
    root_account_id". `jwks_url` is where the keys of signed Live Events are.
    """

    __tablename__ = "canvas_credentials"

    id: Mapped[int] = mapped_column(primary_key=True)
    provider_id: Mapped[int] = mapped_column(ForeignKey("providers.id"), index=True)
    lms_connection_id: Mapped[int] = mapped_column(
        ForeignKey("lms_connections.id"), unique=True
    )
    auth_kind: Mapped[str] = mapped_column(String(20))
    client_id: Mapped[str | None] = mapped_column(String(100))
    client_secret_encrypted: Mapped[bytes | None] = mapped_column(LargeBinary)
    access_token_encrypted: Mapped[bytes] = mapped_column(LargeBinary)
    refresh_token_encrypted: Mapped[bytes | None] = mapped_column(LargeBinary)
    access_token_expires_at: Mapped[datetime | None]
    home_shard: Mapped[int | None] = mapped_column(Integer)
    jwks_url: Mapped[str | None] = mapped_column(String(500))
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)


class CanvasPollCursor(Base):
    """The position of one course's reconciliation, so a stopped run resumes.

    `next_page_url` is the `bulk_user_progress` page to read next, or None when the
    last run finished. A run that stops half-way (throttling that outlasts the
    retries, a revoked token) continues from that page on its next start.
    """

    __tablename__ = "canvas_poll_cursors"
    __table_args__ = (UniqueConstraint("lms_connection_id", "lms_course_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    provider_id: Mapped[int] = mapped_column(ForeignKey("providers.id"), index=True)
    lms_connection_id: Mapped[int] = mapped_column(ForeignKey("lms_connections.id"))
    lms_course_id: Mapped[str] = mapped_column(String(64))
    next_page_url: Mapped[str | None] = mapped_column(Text)
    pages_read: Mapped[int] = mapped_column(default=0)
    learners_read: Mapped[int] = mapped_column(default=0)
    run_started_at: Mapped[datetime | None]
    last_finished_at: Mapped[datetime | None]

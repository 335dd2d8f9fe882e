"""Tables shared by every LMS connector."""

from __future__ import annotations

import enum
import uuid
from datetime import datetime

from sqlalchemy import ForeignKey, LargeBinary, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from badge_engine.db import Base, utcnow


class LmsKind(str, enum.Enum):
    MOODLE = "moodle"
    CANVAS = "canvas"


class ConnectionState(str, enum.Enum):
    OK = "ok"
    BROKEN = "broken"


class LmsConnection(Base):
    """One provider's LMS site: its API address, credentials and webhook secret.

    The API token is encrypted with the vault key. The webhook secret is shown to the
    admin once; only its SHA-256 digest is kept, compared in constant time.
    """

    __tablename__ = "lms_connections"

    id: Mapped[int] = mapped_column(primary_key=True)
    provider_id: Mapped[int] = mapped_column(ForeignKey("providers.id"), index=True)
    public_id: Mapped[str] = mapped_column(
        String(36), unique=True, default=lambda: str(uuid.uuid4())
    )
    kind: Mapped[str] = mapped_column(String(10))
    name: Mapped[str] = mapped_column(String(200))
    base_url: Mapped[str] = mapped_column(String(500))
    api_token_encrypted: Mapped[bytes | None] = mapped_column(LargeBinary)
    webhook_secret_sha256: Mapped[str | None] = mapped_column(String(64))
    state: Mapped[str] = mapped_column(String(10), default=ConnectionState.OK.value)
    state_detail: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)

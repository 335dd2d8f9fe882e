"""Tables shared by every LMS connector."""

from __future__ import annotations

import enum
import uuid
from datetime import datetime

from urllib.parse import urlsplit

from sqlalchemy import ForeignKey, Index, LargeBinary, String, Text, and_
from sqlalchemy.orm import Mapped, mapped_column, relationship, validates

from badge_engine.db import Base, utcnow


class LmsKind(str, enum.Enum):
    MOODLE = "moodle"
    CANVAS = "canvas"


class ConnectionState(str, enum.Enum):
    OK = "ok"
    BROKEN = "broken"
    # Removed by an admin. The row stays because facts, learners, badges and
    # deliveries refer to it, but its secrets are wiped, and the bridge stops
    # reading the LMS and rejects its events.
    DISCONNECTED = "disconnected"


# Ports that an address may leave out, by scheme.
DEFAULT_PORTS = {"http": 80, "https": 443}


def normalized_site_url(url: str) -> str:
    """Return the LMS site address in one spelling: scheme and host in lower case,
    no default port, no trailing slash.

    Migration 0119 keeps a copy of this function to fill `site_key` on existing
    rows, so a change here needs a migration that recomputes the column.
    """
    parts = urlsplit(url.strip())
    scheme = parts.scheme.lower()
    host = (parts.hostname or "").lower()
    if ":" in host:
        host = f"[{host}]"
    try:
        port = parts.port
    except ValueError:
        port = None
    netloc = host if port in (None, DEFAULT_PORTS.get(scheme)) else f"{host}:{port}"
    return f"{scheme}://{netloc}{parts.path.rstrip('/')}"


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
    state: Mapped[str] = mapped_column(String(20), default=ConnectionState.OK.value)
    state_detail: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    # `normalized_site_url(base_url)`, set whenever `base_url` is. The unique index
    # below keeps one connection per provider, LMS kind and site even when two
    # requests pass the check in code at once. It is NULL, which the index does
    # not cover, on rows that duplicated another site before migration 0119 and
    # on disconnected connections, so the site can be connected again.
    site_key: Mapped[str | None] = mapped_column(String(500))
    disconnected_at: Mapped[datetime | None]
    # The audit actor who disconnected it, such as "account:7" or "os:alice".
    disconnected_by: Mapped[str | None] = mapped_column(String(200))

    __table_args__ = (
        Index(
            "uq_lms_connections_provider_kind_site",
            "provider_id",
            "kind",
            "site_key",
            unique=True,
        ),
    )

    # Read only: `connectors.contacts` writes the row with one upsert, so recording
    # a contact never marks the connection changed (which would clear the webhook
    # connection cache).
    contact: Mapped["LmsContact | None"] = relationship(
        primaryjoin=lambda: and_(
            LmsContact.lms_connection_id == LmsConnection.id,
            LmsContact.provider_id == LmsConnection.provider_id,
        ),
        foreign_keys=lambda: [LmsContact.lms_connection_id, LmsContact.provider_id],
        uselist=False,
        viewonly=True,
    )

    @validates("base_url")
    def _set_site_key(self, _key: str, value: str) -> str:
        self.site_key = normalized_site_url(value)
        return value

    @property
    def disconnected(self) -> bool:
        return self.state == ConnectionState.DISCONNECTED.value


class ContactSource(str, enum.Enum):
    """The bridge task that contacted an LMS: a reconciliation poll (Moodle or
    Canvas), an AGS grade poll, a re-read of one learner after an event, or a
    connection test."""

    POLL = "poll"
    AGS_POLL = "ags_poll"
    REREAD = "reread"
    TEST = "test"


class LmsContact(Base):
    """The outcome of the bridge's latest contacts with one connection's LMS.

    The latest success and the latest failure are kept apart, so the admin page
    can tell a site that stopped responding from one that failed once and
    recovered. `last_event_at` is when the newest webhook event that the bridge
    processed arrived. Times are UTC. A connection without a row has had no
    contact recorded yet.
    """

    __tablename__ = "lms_contacts"

    id: Mapped[int] = mapped_column(primary_key=True)
    provider_id: Mapped[int] = mapped_column(ForeignKey("providers.id"), index=True)
    lms_connection_id: Mapped[int] = mapped_column(
        ForeignKey("lms_connections.id"), unique=True
    )
    last_success_at: Mapped[datetime | None]
    last_success_source: Mapped[str | None] = mapped_column(String(20))
    last_failure_at: Mapped[datetime | None]
    last_failure_source: Mapped[str | None] = mapped_column(String(20))
    # The error as the connector raised it, which names what failed and the fix.
    last_failure_detail: Mapped[str | None] = mapped_column(Text)
    last_event_at: Mapped[datetime | None]

    @property
    def failing(self) -> bool:
        """Whether the latest contact failed."""
        if self.last_failure_at is None:
            return False
        return (
            self.last_success_at is None or self.last_failure_at > self.last_success_at
        )

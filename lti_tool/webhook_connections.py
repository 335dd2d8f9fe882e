"""A per-process cache of what the webhook endpoints read about an LMS connection.

Every event used to read its connection (and, for Canvas, the connection's Live
Events settings) from the database before anything else. This cache keeps those few
fields for `CACHE_SECONDS`, so a busy connection costs one read per interval.

Bound on staleness: a change committed through this process's sessions (a new
webhook secret, a disconnected connection, new Canvas settings) clears the cache at
commit. Another process (a second web server, a CLI command) serves the old values
for at most `CACHE_SECONDS` after the change, so an old webhook secret is accepted
that long after rotation, and a connection's events for that long after it was
disconnected. Facts stored in that window never award, because the pipeline
reads the connection's state from the database before it evaluates them. An unknown connection id
is never cached, so a connection works as soon as it is created.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass

from sqlalchemy import event, select
from sqlalchemy.orm import Session, sessionmaker

from connectors.canvas.models import CanvasCredential
from connectors.models import LmsConnection

CACHE_SECONDS = 5.0

_CHANGED = "hpass_webhook_connections_changed"


@dataclass(frozen=True)
class WebhookConnection:
    """The fields of one LMS connection that authenticate and attribute its events."""

    id: int
    public_id: str
    kind: str
    provider_id: int
    webhook_secret_sha256: str | None
    disconnected: bool = False
    # Canvas only, from the connection's CanvasCredential when it has one.
    jwks_url: str | None = None
    home_shard: int | None = None


class WebhookConnections:
    """Cached connection lookups for the webhook endpoints of one bridge."""

    def __init__(
        self,
        session_factory: sessionmaker,
        *,
        max_age: float = CACHE_SECONDS,
        clock=time.monotonic,
    ) -> None:
        self._session_factory = session_factory
        self._max_age = max_age
        self._clock = clock
        self._lock = threading.Lock()
        self._entries: dict[tuple[str, str], tuple[float, WebhookConnection]] = {}
        event.listen(session_factory, "after_flush", _note_changes)
        event.listen(session_factory, "after_commit", self._clear_if_changed)
        event.listen(session_factory, "after_transaction_end", _forget_changes)

    def get(self, public_id: str, kind: str) -> WebhookConnection | None:
        """Return the connection of this kind with this public id, or None."""
        key = (public_id, kind)
        now = self._clock()
        entry = self._entries.get(key)
        if entry is not None and entry[0] > now:
            return entry[1]

        connection = self._load(public_id, kind)
        with self._lock:
            if connection is None:
                self._entries.pop(key, None)
            else:
                self._entries[key] = (now + self._max_age, connection)
        return connection

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()

    def _load(self, public_id: str, kind: str) -> WebhookConnection | None:
        with self._session_factory() as session:
            row = session.execute(
                select(LmsConnection, CanvasCredential)
                .outerjoin(
                    CanvasCredential,
                    (CanvasCredential.lms_connection_id == LmsConnection.id)
                    & (CanvasCredential.provider_id == LmsConnection.provider_id),
                )
                .where(LmsConnection.public_id == public_id, LmsConnection.kind == kind)
            ).first()
        if row is None:
            return None

        connection, credential = row
        return WebhookConnection(
            id=connection.id,
            public_id=connection.public_id,
            kind=connection.kind,
            provider_id=connection.provider_id,
            webhook_secret_sha256=connection.webhook_secret_sha256,
            disconnected=connection.disconnected,
            jwks_url=credential.jwks_url if credential else None,
            home_shard=credential.home_shard if credential else None,
        )

    def _clear_if_changed(self, session: Session) -> None:
        # Read, not popped: every cache on this session factory must see the flag.
        if session.info.get(_CHANGED):
            self.clear()


def note_changed(session: Session) -> None:
    """Clear the caches when `session` commits, after a change the ORM does not
    track, such as a bulk UPDATE of `lms_connections`."""
    session.info[_CHANGED] = True


def _note_changes(session: Session, _flush_context) -> None:
    # In after_flush, new, dirty and deleted still list what this flush wrote.
    for instance in (*session.new, *session.dirty, *session.deleted):
        if isinstance(instance, (LmsConnection, CanvasCredential)):
            session.info[_CHANGED] = True
            return


def _forget_changes(session: Session, transaction) -> None:
    # Only the outermost transaction's end settles the changes, after its commit
    # listeners ran. A savepoint ending inside it keeps the flag.
    if transaction.parent is None:
        session.info.pop(_CHANGED, None)

"""A per-process cache of the registration and deployment rows that launches read.

Every login and launch reads its registration row, and every launch its deployment
row, although these rows change only when an admin changes a registration. Rows stay
cached for at most `MAX_AGE_SECONDS`. A change committed through a session of this
process (the admin pages, dynamic registration, the launch that adds a deployment)
clears the cache at once. A change made by another process (a second web process, the
`hpass-bridge platform` commands) reaches this process when the entry expires, so
for up to `MAX_AGE_SECONDS` after it:

- a removed registration's logins still succeed, and its launches read the
  registration again when recording the used nonce fails, and get a 404;
- a changed issuer, client_id, login URL, key set URL or deployment policy still
  applies.

Held deployments are never cached, so an approval takes effect at the next launch.
"""

from __future__ import annotations

import threading
import time
from typing import Callable

from sqlalchemy import bindparam, event, select
from sqlalchemy.engine import Connection, Row
from sqlalchemy.orm import Session, sessionmaker

from lti_tool.models import Deployment, DeploymentStatus, Registration

MAX_AGE_SECONDS = 10.0

# Built once: constructing a statement costs more than running it on a launch. Core
# statements, because the rows are only read and the ORM's identity map costs more.
_REGISTRATION = select(Registration.__table__).where(
    Registration.public_id == bindparam("public_id")
)
_DEPLOYMENT = select(Deployment.__table__).where(
    Deployment.provider_id == bindparam("provider_id"),
    Deployment.registration_id == bindparam("registration_id"),
    Deployment.deployment_id == bindparam("deployment_id"),
)


class LaunchRowCache:
    """Registration rows by public id and active deployment rows, each with an age.

    The rows are SQLAlchemy `Row` tuples, which are immutable, so threads share them.
    """

    def __init__(self, max_age_seconds: float = MAX_AGE_SECONDS) -> None:
        self.max_age = max_age_seconds
        self._registrations: dict[str, tuple[float, Row]] = {}
        self._deployments: dict[tuple[int, int, str], tuple[float, Row]] = {}
        self._lock = threading.Lock()

    def registration_cached(self, public_id: str) -> Row | None:
        """Return the cached registration row of `public_id`, or None when not cached."""
        cached = self._registrations.get(public_id)
        if cached is not None and time.monotonic() - cached[0] < self.max_age:
            return cached[1]
        return None

    def registration(self, connection: Connection, public_id: str) -> Row | None:
        """Return the registration row of `public_id`, or None when there is none."""
        now = time.monotonic()
        cached = self._registrations.get(public_id)
        if cached is not None and now - cached[0] < self.max_age:
            return cached[1]

        row = connection.execute(_REGISTRATION, {"public_id": public_id}).first()
        # Unknown ids are not cached, so probing random ids cannot fill the memory.
        if row is not None:
            with self._lock:
                self._registrations[public_id] = (now, row)
        return row

    def deployment(
        self, connection: Connection, registration: Row, deployment_id: str
    ) -> Row | None:
        """Return the deployment row of `deployment_id`, or None when there is none."""
        key = (registration.provider_id, registration.id, deployment_id)
        now = time.monotonic()
        cached = self._deployments.get(key)
        if cached is not None and now - cached[0] < self.max_age:
            return cached[1]

        row = connection.execute(
            _DEPLOYMENT,
            {
                "provider_id": key[0],
                "registration_id": key[1],
                "deployment_id": deployment_id,
            },
        ).first()
        if row is not None and row.status == DeploymentStatus.ACTIVE.value:
            with self._lock:
                self._deployments[key] = (now, row)
        return row

    def clear(self) -> None:
        with self._lock:
            self._registrations.clear()
            self._deployments.clear()

    def clear_on_commit(self, session_factory: sessionmaker) -> None:
        """Clear the cache after each commit that changed a registration or deployment."""
        clear_after_commits(session_factory, (Registration, Deployment), self.clear)


def clear_after_commits(
    session_factory: sessionmaker, models: tuple[type, ...], clear: Callable[[], None]
) -> None:
    """Call `clear` after each commit of a session that changed rows of `models`.

    ORM changes are seen at flush, and bulk UPDATE or DELETE statements on their
    tables when the session runs them. Statements sent on a bare connection, such as
    the launch's upserts, are not seen.
    """
    tables = frozenset(model.__tablename__ for model in models)
    changed = f"hpass_changed_{'_'.join(sorted(tables))}"

    def note_flushed_rows(session: Session, _flush_context) -> None:
        for instance in (*session.new, *session.dirty, *session.deleted):
            if isinstance(instance, models):
                session.info[changed] = True
                return

    def note_bulk_statement(state) -> None:
        if not (state.is_update or state.is_delete):
            return
        table = getattr(state.statement, "table", None)
        if getattr(table, "name", None) in tables:
            state.session.info[changed] = True

    def clear_if_changed(session: Session) -> None:
        if session.info.pop(changed, False):
            clear()

    def forget_changes(session: Session, _previous_transaction) -> None:
        session.info.pop(changed, None)

    event.listen(session_factory, "after_flush", note_flushed_rows)
    event.listen(session_factory, "do_orm_execute", note_bulk_statement)
    event.listen(session_factory, "after_commit", clear_if_changed)
    event.listen(session_factory, "after_soft_rollback", forget_changes)

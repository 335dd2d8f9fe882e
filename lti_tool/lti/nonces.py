"""Single-use state and nonce of each OIDC login, kept in the database.

pylti1p3 keeps a used nonce in its cache and never deletes it, so a nonce stays valid
for as long as the cache does. Here the login inserts one row and the launch deletes
it: a second launch with the same state finds no row and is rejected. Rows expire
after `LIFETIME`, and expired rows are swept now and then by the login endpoint.
The table works the same on SQLite and PostgreSQL.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import threading
import time
from dataclasses import dataclass
from datetime import timedelta

from sqlalchemy import bindparam, delete, insert, select
from sqlalchemy.engine import Connection
from sqlalchemy.orm import Session

from badge_engine.db import utcnow
from lti_tool.lti.errors import StateInvalid
from lti_tool.models import LtiNonce, Registration

# Login to launch takes seconds; five minutes covers a slow platform page.
LIFETIME = timedelta(minutes=5)
SWEEP_INTERVAL_SECONDS = 60.0

_last_sweep = 0.0
_sweep_lock = threading.Lock()

# Built once: constructing a statement costs more than running it on a launch. The
# insert and delete are Core statements on the session's connection, which skips the
# ORM's bulk and synchronize machinery.
_TABLE = LtiNonce.__table__
_FIND = select(LtiNonce).where(
    LtiNonce.provider_id == bindparam("provider_id"),
    LtiNonce.registration_id == bindparam("registration_id"),
    LtiNonce.state == bindparam("state"),
)
_TAKE = (
    delete(_TABLE)
    .where(
        _TABLE.c.provider_id == bindparam("provider_id"),
        _TABLE.c.registration_id == bindparam("registration_id"),
        _TABLE.c.state == bindparam("state"),
        _TABLE.c.expires_at > bindparam("now"),
    )
    .returning(_TABLE.c.nonce)
)
_INSERT = insert(_TABLE)


@dataclass(frozen=True)
class IssuedNonce:
    """The state and nonce of one login, as sent to the platform."""

    state: str
    nonce: str


def issue(
    connection: Connection,
    registration: Registration,
    *,
    storage_target: str | None = None,
) -> tuple[IssuedNonce, str | None]:
    """Add a state and nonce for one login; return the row and the storage binding.

    With a `storage_target` (the frame the platform named for LTI Platform Storage),
    the binding is a secret put in that storage beside the state; only its hash is
    stored. The caller commits.
    """
    platform_storage = bool(storage_target)
    binding = secrets.token_urlsafe(32) if platform_storage else None
    issued = IssuedNonce(state=secrets.token_urlsafe(32), nonce=secrets.token_urlsafe(32))
    connection.execute(
        _INSERT,
        {
            "provider_id": registration.provider_id,
            "registration_id": registration.id,
            "state": issued.state,
            "nonce": issued.nonce,
            "uses_platform_storage": platform_storage,
            "storage_binding_sha256": _digest(binding) if binding else None,
            "storage_target": storage_target or None,
            "expires_at": utcnow() + LIFETIME,
        },
    )
    _sweep_now_and_then(connection)

    return issued, binding


def find(session: Session, registration: Registration, state: str) -> LtiNonce | None:
    """Return the unexpired row of `state` for this registration, without using it."""
    row = session.scalar(
        _FIND,
        {
            "provider_id": registration.provider_id,
            "registration_id": registration.id,
            "state": state,
        },
    )
    if row is None or row.expires_at <= utcnow():
        return None
    return row


def consume(
    session: Session, registration: Registration, state: str, nonce: str, /, **ids
) -> None:
    """Delete the row of `state` when its nonce matches; raise StateInvalid if not.

    The delete is the single-use guarantee: of two launches racing with the same
    state, only the one whose delete returned the row goes on. On a nonce mismatch
    the caller's rollback restores the row. The caller commits.
    """
    stored = session.connection().execute(
        _TAKE,
        {
            "provider_id": registration.provider_id,
            "registration_id": registration.id,
            "state": state,
            "now": utcnow(),
        },
    ).scalar()
    if stored is None:
        raise state_unknown(**ids)
    # Bytes, because compare_digest rejects str with non-ASCII characters.
    if not hmac.compare_digest(stored.encode(), nonce.encode()):
        raise StateInvalid(
            "the id_token's nonce does not match the nonce this tool sent at login",
            check="start the launch again from the course; a platform that reuses "
            "old id_tokens must send the nonce from the authentication request",
            **ids,
        )


def state_unknown(**ids) -> StateInvalid:
    return StateInvalid(
        "the launch's state is unknown, expired or was already used (a replayed "
        "or stale launch)",
        check="start the launch again from the course; if it keeps failing, the "
        "platform must post the launch within 5 minutes of the login",
        **ids,
    )


def binding_matches(row: LtiNonce, binding: str) -> bool:
    if not row.storage_binding_sha256 or not binding:
        return False
    return hmac.compare_digest(row.storage_binding_sha256, _digest(binding))


def _digest(value: str) -> str:
    return hashlib.sha256(value.encode()).hexdigest()


def _sweep_now_and_then(connection: Connection) -> None:
    # Expired rows carry no provider data worth scoping, and a sweep per process per
    # minute keeps the table small without a scheduled task.
    global _last_sweep
    now = time.monotonic()
    with _sweep_lock:
        if now - _last_sweep < SWEEP_INTERVAL_SECONDS:
            return
        _last_sweep = now
    connection.execute(delete(_TABLE).where(_TABLE.c.expires_at < utcnow()))

"""The state and nonce of each OIDC login: signed at login, used once at launch.

The login stores nothing. Its state is a signed value that carries the registration
id, an expiry, a random id and, for LTI Platform Storage, the storage frame's name:

    <registration id>.<expiry, Unix seconds>.<random id>.<storage target>.<MAC>

The MAC is HMAC-SHA256 (truncated to 128 bits) with a key derived from the app's
secret key. The nonce and the platform storage binding are further HMACs of the
state, so neither needs storing either: the launch computes them again and compares.

The launch checks the MAC, the registration and the expiry. Then it inserts the
state's random id into `lti_used_nonces`, in the same transaction as its other
writes. The table's unique constraint makes the nonce single-use: of two launches
with the same state, only the first insert adds a row. A used row is kept until the state's
expiry has passed (plus `PURGE_MARGIN`), after which the expiry alone rejects the
state, and the launch endpoint purges such rows once a minute per process. Replacing
the app's secret key invalidates logins in progress, which the platform then repeats.

pylti1p3 keeps a used nonce in its cache and never deletes it, so a nonce stays valid
for as long as the cache does. The table works the same on SQLite and PostgreSQL.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
import threading
import time
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone

from sqlalchemy import delete, select
from sqlalchemy.engine import Connection, Dialect
from sqlalchemy.exc import DBAPIError

from badge_engine.db import utcnow
from lti_tool.lti.errors import StateInvalid
from lti_tool.models import LtiUsedNonce, Registration

# Login to launch takes seconds; five minutes covers a slow platform page.
LIFETIME = timedelta(minutes=5)
# Used rows outlive their state's expiry by this margin, so a second web host whose
# clock is behind still finds the row until its own clock passes the expiry.
PURGE_MARGIN = timedelta(minutes=1)
PURGE_INTERVAL_SECONDS = 60.0
# The maximum length of a state from `issue`: two numbers, the random id, the MAC and
# a 128-character storage target as base64url of its UTF-8 (at most 683 characters).
MAX_STATE_LENGTH = 800

_MAC_BYTES = 16
_KEY_LABEL = b"hpass-lti-login-state-v1"

_last_purge = 0.0
_purge_lock = threading.Lock()

_TABLE = LtiUsedNonce.__table__
# The used-nonce INSERT by dialect name, driver and parameter style.
_inserts: dict[tuple[str, str, str], _UsedNonceInsert] = {}


@dataclass(frozen=True)
class IssuedNonce:
    """The state and nonce of one login, as sent to the platform."""

    state: str
    nonce: str


@dataclass(frozen=True)
class LoginState:
    """The verified contents of a state."""

    registration_id: int
    expires_at: int
    state_id: str
    storage_target: str | None

    @property
    def uses_platform_storage(self) -> bool:
        return self.storage_target is not None


class StateSigner:
    """Signs and verifies states, and derives their nonces and storage bindings."""

    def __init__(self, secret_key: bytes) -> None:
        if not secret_key:
            raise ValueError(
                "the app's secret key is empty, so login states cannot be signed; "
                "set the secret key in the settings"
            )
        key = hmac.new(secret_key, _KEY_LABEL, hashlib.sha256).digest()
        # Copied for each MAC, so the key is hashed into the HMAC state once.
        self._keyed = hmac.new(key, digestmod=hashlib.sha256)

    def _mac(self, purpose: bytes, text: str) -> str:
        mac = self._keyed.copy()
        mac.update(purpose + text.encode())
        return _b64(mac.digest()[:_MAC_BYTES])

    def issue(
        self, registration: Registration, *, storage_target: str | None = None
    ) -> tuple[IssuedNonce, str | None]:
        """Make a state and nonce for one login; return them and the storage binding.

        With a `storage_target` (the frame the platform named for LTI Platform
        Storage), the binding is the secret the login page puts in that storage
        beside the state. Nothing is written to the database.
        """
        expires_at = int(time.time() + LIFETIME.total_seconds())
        target = _b64(storage_target.encode()) if storage_target else ""
        body = f"{registration.id}.{expires_at}.{secrets.token_urlsafe(16)}.{target}"
        state = f"{body}.{self._mac(b'state:', body)}"
        issued = IssuedNonce(state=state, nonce=self.nonce_of(state))
        binding = self.binding_of(state) if storage_target else None
        return issued, binding

    def nonce_of(self, state: str) -> str:
        return self._mac(b"nonce:", state)

    def binding_of(self, state: str) -> str:
        return self._mac(b"binding:", state)

    def verify(self, registration: Registration, state: str) -> LoginState | None:
        """Return the state's contents, or None when it is forged, foreign or expired."""
        if len(state) > MAX_STATE_LENGTH:
            return None
        body, _, mac = state.rpartition(".")
        if not hmac.compare_digest(mac.encode(), self._mac(b"state:", body).encode()):
            return None
        try:
            registration_id, expires_at, state_id, target = body.split(".")
            verified = LoginState(
                registration_id=int(registration_id),
                expires_at=int(expires_at),
                state_id=state_id,
                storage_target=(
                    base64.urlsafe_b64decode(_padded(target)).decode()
                    if target
                    else None
                ),
            )
        except ValueError:
            # Only a state signed with this key gets here, so this is a format from
            # another version of this module.
            return None
        if verified.registration_id != registration.id:
            return None
        if verified.expires_at <= time.time():
            return None
        return verified

    def binding_matches(self, state: str, binding: str | None) -> bool:
        if not binding:
            return False
        return hmac.compare_digest(binding.encode(), self.binding_of(state).encode())


def consume(
    connection: Connection,
    signer: StateSigner,
    registration: Registration,
    state: str,
    nonce: str,
    /,
    **ids,
) -> None:
    """Check the state and its nonce, and record the nonce as used.

    Raises StateInvalid when the state is forged, expired or used, or the nonce is
    not the state's. The insert is the single-use guarantee: of two launches racing
    with the same state, only the one whose insert added the row goes on. The
    caller commits.
    """
    verified = signer.verify(registration, state)
    if verified is None:
        raise state_unknown(**ids)
    # Bytes, because compare_digest rejects str with non-ASCII characters.
    if not hmac.compare_digest(signer.nonce_of(state).encode(), nonce.encode()):
        raise StateInvalid(
            "the id_token's nonce does not match the nonce this tool sent at login",
            check="start the launch again from the course; a platform that reuses "
            "old id_tokens must send the nonce from the authentication request",
            **ids,
        )

    if not _insert_used(connection, registration, verified):
        raise state_unknown(**ids)
    _purge_now_and_then(connection)


def is_used(connection: Connection, login: LoginState) -> bool:
    """Return whether a launch has used this state already."""
    found = connection.execute(
        select(_TABLE.c.id).where(_TABLE.c.state_id == login.state_id)
    ).first()
    return found is not None


def state_unknown(**ids) -> StateInvalid:
    return StateInvalid(
        "the launch's state is unknown, expired or was already used (a replayed "
        "or stale launch)",
        check="start the launch again from the course; if it keeps failing, the "
        "platform must post the launch within 5 minutes of the login",
        **ids,
    )


def purge_expired(connection: Connection) -> int:
    """Delete used nonces whose state expired more than `PURGE_MARGIN` ago."""
    cutoff = utcnow() - PURGE_MARGIN
    return connection.execute(
        delete(_TABLE).where(_TABLE.c.expires_at < cutoff)
    ).rowcount


def _insert_used(
    connection: Connection, registration: Registration, verified: LoginState
) -> bool:
    """Insert the state's random id into `lti_used_nonces`, or return False if it is there.

    The INSERT runs on the DB-API cursor of `connection`, inside its transaction,
    because SQLAlchemy's statement cache lookup and result handling cost more than
    the insert itself. Every value goes through its column type's bind processor, so the
    row is the one SQLAlchemy would write.
    """
    dialect = connection.dialect
    insert = _UsedNonceInsert.for_dialect(dialect)
    parameters = insert.values(
        registration.provider_id,
        registration.id,
        verified.state_id,
        datetime.fromtimestamp(verified.expires_at, timezone.utc),
    )
    cursor = connection.connection.cursor()
    try:
        cursor.execute(insert.sql, parameters)
        return cursor.fetchone() is not None
    except dialect.loaded_dbapi.Error as error:
        # Raised as SQLAlchemy would, so callers catch its IntegrityError (a
        # registration deleted while cached) and OperationalError as before.
        raise DBAPIError.instance(
            insert.sql, parameters, error, dialect.loaded_dbapi.Error, dialect=dialect
        ) from error
    finally:
        cursor.close()


class _UsedNonceInsert:
    """The SQL text and parameter conversion of the used-nonce INSERT for one dialect."""

    _COLUMNS = ("provider_id", "registration_id", "state_id", "expires_at")

    def __init__(self, dialect: Dialect) -> None:
        if dialect.name not in ("sqlite", "postgresql"):
            raise ValueError(
                f"database {dialect.name!r} is not supported; use PostgreSQL or SQLite"
            )
        marker = "?" if dialect.paramstyle == "qmark" else "%s"
        # Names come from the model, never from input, and every value is a bound
        # parameter. RETURNING, because the rowcount of ON CONFLICT DO NOTHING is -1
        # on psycopg.
        self.sql = (
            f"INSERT INTO {_TABLE.name} ({', '.join(self._COLUMNS)}) "  # noqa: S608
            f"VALUES ({', '.join([marker] * len(self._COLUMNS))}) "
            "ON CONFLICT (state_id) DO NOTHING RETURNING id"
        )
        self._processors = [
            _TABLE.c[name].type.dialect_impl(dialect).bind_processor(dialect)
            for name in self._COLUMNS
        ]

    @classmethod
    def for_dialect(cls, dialect: Dialect) -> _UsedNonceInsert:
        key = (dialect.name, dialect.driver, dialect.paramstyle)
        insert = _inserts.get(key)
        if insert is None:
            insert = _inserts.setdefault(key, cls(dialect))
        return insert

    def values(self, *row) -> tuple:
        return tuple(
            value if processor is None else processor(value)
            for value, processor in zip(row, self._processors)
        )


def _purge_now_and_then(connection: Connection) -> None:
    # Expired rows carry no provider data worth scoping, and a purge per process per
    # minute keeps the table small without a scheduled task.
    global _last_purge
    now = time.monotonic()
    with _purge_lock:
        if now - _last_purge < PURGE_INTERVAL_SECONDS:
            return
        _last_purge = now
    purge_expired(connection)


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _padded(text: str) -> str:
    return text + "=" * (-len(text) % 4)

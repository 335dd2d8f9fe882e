"""The one declarative base and the database engine every package builds on."""

from __future__ import annotations

import logging
import os
import stat
from datetime import datetime, timezone
from pathlib import Path

from sqlalchemy import DateTime, MetaData, create_engine, event
from sqlalchemy.engine import Engine, make_url
from sqlalchemy.orm import DeclarativeBase, sessionmaker
from sqlalchemy.types import TypeDecorator

log = logging.getLogger(__name__)

# Stable constraint names so migrations can alter constraints on every backend.
NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


SQLITE_SIDE_FILES = ("-wal", "-shm", "-journal")


def utcnow() -> datetime:
    return datetime.now(timezone.utc)


class UTCDateTime(TypeDecorator):
    """A timestamp stored as UTC and always read back timezone-aware.

    SQLite keeps no time zone, so without this a value written aware comes back naive.
    """

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value, dialect):
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError(f"naive datetime {value!r} given; pass a UTC-aware value")
        return value.astimezone(timezone.utc)

    def process_result_value(self, value, dialect):
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=timezone.utc)
        return value.astimezone(timezone.utc)


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)
    type_annotation_map = {datetime: UTCDateTime()}


def _configure_sqlite(dbapi_connection, _record) -> None:
    cursor = dbapi_connection.cursor()
    # WAL lets the web server read while the worker writes; the busy timeout makes a
    # writer wait for the lock instead of failing at once with "database is locked".
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA busy_timeout=30000")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.close()


def _begin_before_savepoint(connection, _name) -> None:
    """Open the transaction before a savepoint when no statement has opened it.

    Python's sqlite3 module sends BEGIN only before an INSERT, UPDATE or DELETE. A
    SAVEPOINT sent first would then open the transaction itself, and releasing it
    would commit every change made inside it at once, before the session's commit,
    so a later rollback would leave them stored.
    """
    database = connection.connection.driver_connection
    if not database.in_transaction:
        database.execute("BEGIN")


def restrict_sqlite_file(url: str) -> None:
    """Make the SQLite file of `url` readable and writable by its owner only.

    A missing file is created empty with mode 0600, which SQLite accepts as an empty
    database. SQLite gives the -wal, -shm and -journal files it creates the mode of the
    database file, so those follow. Files that exist already (from an older release)
    are changed to 0600. In-memory databases and URLs other than SQLite are left alone.
    """
    parsed = make_url(url)
    database = parsed.database
    if parsed.get_backend_name() != "sqlite" or not database or database == ":memory:":
        return
    if database.startswith("file:") or parsed.query.get("mode") == "memory":
        return

    path = Path(database)
    try:
        os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))
    except (FileExistsError, FileNotFoundError):
        # A missing folder is left for SQLite to report when it connects.
        pass
    for file in (path, *(Path(f"{path}{suffix}") for suffix in SQLITE_SIDE_FILES)):
        try:
            mode = stat.S_IMODE(file.stat().st_mode)
        except FileNotFoundError:
            continue
        if not mode & 0o077:
            continue
        try:
            file.chmod(mode & 0o700)
        except OSError as error:
            log.warning(
                "failed to make database file %s private, its mode stays %o: %s. "
                "Run chmod 600 on it as its owner",
                file,
                mode,
                error,
            )


def make_engine(url: str, **options) -> Engine:
    """Create an engine, with SQLite tuned for one web process and one worker.

    A SQLite database file is made private to its owner first (`restrict_sqlite_file`).
    """
    if url.startswith("sqlite"):
        restrict_sqlite_file(url)
        options.setdefault("connect_args", {"timeout": 30})
        engine = create_engine(url, **options)
        event.listen(engine, "connect", _configure_sqlite)
        event.listen(engine, "savepoint", _begin_before_savepoint)
        return engine

    options.setdefault("pool_pre_ping", True)
    return create_engine(url, **options)


def make_session_factory(engine: Engine) -> sessionmaker:
    return sessionmaker(bind=engine, expire_on_commit=False)


def dialect_insert(dialect_name: str, table):
    """Return an INSERT for `table` that supports ON CONFLICT on this database.

    PostgreSQL and SQLite (3.24 and later) both have ON CONFLICT; SQLAlchemy spells
    it through each dialect's own `insert()`.
    """
    if dialect_name == "postgresql":
        from sqlalchemy.dialects.postgresql import insert
    elif dialect_name == "sqlite":
        from sqlalchemy.dialects.sqlite import insert
    else:
        raise ValueError(
            f"database {dialect_name!r} is not supported; use PostgreSQL or SQLite"
        )
    return insert(table)

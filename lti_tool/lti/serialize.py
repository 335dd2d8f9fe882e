"""One writer at a time per process on SQLite, waiting on a lock instead of sleeping.

SQLite lets one connection write at a time. A second writer gets SQLITE_BUSY and its
busy handler sleeps in steps of up to 100 ms before retrying, so under concurrent
launches most of the time goes to sleeping. Launch handlers in one process are bound
by the GIL anyway, so queueing their database work on a lock costs no parallelism and
wakes each waiter as soon as the previous one commits. Other databases get no lock.
"""

from __future__ import annotations

import contextlib
import threading

from sqlalchemy.engine import Engine

_locks: dict[int, threading.Lock] = {}
_guard = threading.Lock()


def database_writes(engine: Engine) -> contextlib.AbstractContextManager:
    """Return a context that holds the engine's write lock on SQLite, else nothing."""
    if engine.dialect.name != "sqlite":
        return contextlib.nullcontext()
    lock = _locks.get(id(engine))
    if lock is None:
        with _guard:
            lock = _locks.setdefault(id(engine), threading.Lock())
    return lock

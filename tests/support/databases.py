"""Test databases: SQLite files in a temporary folder, and the PostgreSQL server.

PostgreSQL tests run for real in CI (CI=true), where a missing server fails the run; on
a developer machine without the server they are skipped.
"""

from __future__ import annotations

import atexit
import os
import random
import uuid

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

POSTGRES_URL = os.environ.get(
    "HPASS_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test"
)
REDIS_URL = os.environ.get("HPASS_TEST_REDIS_URL", "redis://127.0.0.1:6379/15")


def in_ci() -> bool:
    return os.environ.get("CI", "").lower() == "true"


def require_service(name: str, error: Exception) -> None:
    message = f"{name} is not reachable: {error}"
    if in_ci():
        pytest.fail(f"{message}; CI must provide it", pytrace=False)
    pytest.skip(message)


def reset_postgres(url: str = POSTGRES_URL) -> str:
    """Create an empty database of this test's own on the server and return its URL.

    Each call gets a new database, so test runs beside each other on one server (two
    checkouts, or CI beside a developer) never see each other's tables. Databases are
    dropped when the test process exits.
    """
    name = f"hpass_test_{os.getpid()}_{uuid.uuid4().hex[:8]}"
    try:
        admin = create_engine(url, isolation_level="AUTOCOMMIT")
        with admin.connect() as connection:
            connection.execute(text(f'CREATE DATABASE "{name}"'))
        admin.dispose()
    except Exception as error:  # noqa: BLE001 - any failure means the server is absent
        require_service("PostgreSQL at " + url, error)
    atexit.register(_drop_database, url, name)
    return make_url(url).set(database=name).render_as_string(hide_password=False)


def _drop_database(url: str, name: str) -> None:
    try:
        admin = create_engine(url, isolation_level="AUTOCOMMIT")
        with admin.connect() as connection:
            connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()
    except Exception:  # noqa: BLE001 - cleanup at exit must not mask the test result
        pass


def reset_redis(url: str = REDIS_URL) -> str:
    """Return the URL of an emptied Redis database picked at random from 1 to 15.

    A random database keeps test runs on one server apart in most cases; the
    embedded-broker tests need no Redis at all.
    """
    target = make_url(url.replace("redis://", "postgresql://", 1))
    index = random.randint(1, 15)
    chosen = f"redis://{target.host}:{target.port or 6379}/{index}"
    try:
        import redis

        client = redis.Redis.from_url(chosen, socket_connect_timeout=2)
        client.flushdb()
        client.close()
    except Exception as error:  # noqa: BLE001 - any failure means the server is absent
        require_service("Redis at " + url, error)
    return chosen

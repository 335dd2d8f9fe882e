"""Test databases: SQLite files in a temporary folder, and the PostgreSQL server.

PostgreSQL tests run for real in CI (CI=true), where a missing server fails the run; on
a developer machine without the server they are skipped.
"""

from __future__ import annotations

import os

import pytest
from sqlalchemy import create_engine, text

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
    """Drop every table in the public schema so a test starts from an empty database."""
    try:
        engine = create_engine(url, isolation_level="AUTOCOMMIT")
        with engine.connect() as connection:
            connection.execute(text("DROP SCHEMA public CASCADE"))
            connection.execute(text("CREATE SCHEMA public"))
        engine.dispose()
    except Exception as error:  # noqa: BLE001 - any failure means the server is absent
        require_service("PostgreSQL at " + url, error)
    return url


def reset_redis(url: str = REDIS_URL) -> str:
    try:
        import redis

        client = redis.Redis.from_url(url, socket_connect_timeout=2)
        client.flushdb()
        client.close()
    except Exception as error:  # noqa: BLE001 - any failure means the server is absent
        require_service("Redis at " + url, error)
    return url

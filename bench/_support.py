"""Helpers the benchmarks share: a scratch PostgreSQL database, a seeded provider and
the choice of WSGI server."""

from __future__ import annotations

import os
import socket
from contextlib import contextmanager
from pathlib import Path

from cryptography.fernet import Fernet
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

POSTGRES_URL = os.environ.get(
    "HPASS_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test"
)


def add_server_arguments(parser, *, workers: int | None, threads: int) -> None:
    """Add --server, --workers and --threads; `workers=None` lets the bench choose."""
    parser.add_argument(
        "--server",
        choices=("granian", "waitress"),
        default="granian",
        help="WSGI server of both apps (default granian, the production web server)",
    )
    parser.add_argument(
        "--workers",
        type=int,
        default=workers,
        help="granian worker processes per app"
        + (f" (default {workers})" if workers else ""),
    )
    parser.add_argument(
        "--threads",
        type=int,
        default=threads,
        help=f"threads per granian worker, or waitress threads (default {threads})",
    )


def describe_server(server: dict) -> str:
    if server["name"] == "waitress":
        return f"waitress with {server['threads']} threads"
    return f"granian with {server['workers']} workers of {server['threads']} threads"


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@contextmanager
def scratch_postgres(prefix: str):
    """Create a database of this run's own on the PostgreSQL server and drop it after."""
    name = f"{prefix}_{os.getpid()}"
    admin = create_engine(POSTGRES_URL, isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        connection.execute(text(f'CREATE DATABASE "{name}"'))
    try:
        yield (
            make_url(POSTGRES_URL)
            .set(database=name)
            .render_as_string(hide_password=False)
        )
    finally:
        with admin.connect() as connection:
            connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


def bench_settings(instance: Path, database_url: str | None = None):
    from lti_tool.config import load_settings

    environ = {"HPASS_INSTANCE_PATH": str(instance)}
    if database_url:
        environ["HPASS_DATABASE_URL"] = database_url
    settings = load_settings(environ=environ)
    settings.loopback_dev = True
    settings.secret_key = b"benchmark-secret-key"
    settings.encryption_keys = [Fernet.generate_key()]
    settings.instance_path.mkdir(parents=True, exist_ok=True)
    return settings

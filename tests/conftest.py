"""Shared fixtures: settings on a temporary instance folder, the app and its clients."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest
from cryptography.fernet import Fernet
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from lti_tool import intake
from lti_tool.app import create_app
from lti_tool.config import load_settings
from lti_tool.demo.peers.serving import stop_all_servers
from lti_tool.schema import upgrade
from tests.support.databases import POSTGRES_URL, reset_postgres

# Fixtures shared by test modules in several folders.
pytest_plugins = ["tests.support.smtp", "tests.lti_tool.lti.harness"]


@pytest.fixture(scope="session", autouse=True)
def _loopback_servers_finished():
    """Wait, at the end of the run, for the request threads of every loopback server.

    A slow handler can outlive its server's `stop()`. The "Client disconnected" line
    it logs when it returns must come before pytest closes its capture streams.
    """
    yield
    stop_all_servers()


@pytest.fixture
def settings(tmp_path):
    """Loopback settings on a fresh SQLite database and embedded broker."""
    settings = load_settings(
        environ={},
        overrides={
            "instance_path": tmp_path / "instance",
            "public_base_url": "http://127.0.0.1:5999",
        },
    )
    settings.loopback_dev = True
    settings.secret_key = b"test-secret-key-generated-per-test"
    settings.encryption_keys = [Fernet.generate_key()]
    settings.instance_path.mkdir(parents=True)
    return settings


class MigratedSchemas:
    """Databases upgraded to the newest revision once per run, copied for each test.

    Running every migration took 0.3 to 2 s per test on a 2-core machine, and
    most tests only need the current schema. A copy of an upgraded SQLite file,
    or a PostgreSQL database created from an upgraded template, takes a few
    milliseconds to about 0.15 s. A database that already contains tables is
    upgraded in place, so tests that prepare an older schema still test the
    migrations.
    """

    def __init__(self, folder: Path) -> None:
        self._folder = folder
        self._sqlite_template: Path | None = None
        self._postgres_template: str | None = None

    def install(self, database_url: str) -> None:
        """Give the empty database at `database_url` the newest schema."""
        url = make_url(database_url)
        backend = url.get_backend_name()
        if backend == "sqlite" and url.database and not _has_content(url.database):
            self._copy_sqlite(Path(url.database))
        elif backend == "postgresql" and _is_empty_postgres(database_url):
            self._copy_postgres(url.database)
        else:
            upgrade(database_url)

    def _copy_sqlite(self, target: Path) -> None:
        if self._sqlite_template is None:
            template = self._folder / "template.db"
            upgrade(f"sqlite:///{template}")
            self._sqlite_template = template
        # The backup API copies a consistent database even when the template
        # left a write-ahead log beside its file.
        source = sqlite3.connect(self._sqlite_template)
        destination = sqlite3.connect(target)
        try:
            source.backup(destination)
        finally:
            destination.close()
            source.close()

    def _copy_postgres(self, name: str) -> None:
        if self._postgres_template is None:
            template_url = reset_postgres()
            upgrade(template_url)
            self._postgres_template = make_url(template_url).database
        admin = create_engine(POSTGRES_URL, isolation_level="AUTOCOMMIT")
        try:
            with admin.connect() as connection:
                connection.execute(text(f'DROP DATABASE "{name}" WITH (FORCE)'))
                connection.execute(
                    text(
                        f'CREATE DATABASE "{name}" TEMPLATE "{self._postgres_template}"'
                    )
                )
        finally:
            admin.dispose()


def _has_content(path: str) -> bool:
    file = Path(path)
    return file.exists() and file.stat().st_size > 0


def _is_empty_postgres(database_url: str) -> bool:
    """Return True for a database of this run's own that has no tables yet."""
    url = make_url(database_url)
    if not (url.database or "").startswith("hpass_test_"):
        return False
    engine = create_engine(database_url)
    try:
        with engine.connect() as connection:
            tables = connection.scalar(
                text("SELECT count(*) FROM pg_tables WHERE schemaname = 'public'")
            )
    finally:
        engine.dispose()
    return tables == 0


@pytest.fixture(scope="session")
def migrated_schemas(tmp_path_factory) -> MigratedSchemas:
    return MigratedSchemas(tmp_path_factory.mktemp("schema"))


@pytest.fixture
def app(settings, migrated_schemas):
    migrated_schemas.install(settings.database_url)
    app = create_app(settings)
    app.config["TESTING"] = True
    yield app
    # The fact writer and dispatcher threads would otherwise stay, idle, for the
    # rest of the test run.
    intake.stop(app)
    app.extensions["hpass"].engine.dispose()


@pytest.fixture
def client(app):
    return app.test_client()


@pytest.fixture
def runner(app):
    return app.test_cli_runner()


@pytest.fixture
def db(app):
    """A database session outside any request, closed after the test."""
    with app.extensions["hpass"].session() as session:
        yield session

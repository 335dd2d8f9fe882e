"""SQLite files in the instance folder are readable by their owner only, like the key
files beside them, whatever the process umask."""

from __future__ import annotations

import os
import sqlite3
import stat

import pytest
from kombu import Connection
from sqlalchemy import text

from badge_engine.db import make_engine, restrict_sqlite_file
from lti_tool.embedded_broker import register


@pytest.fixture(autouse=True)
def common_umask():
    """Run under the usual umask 022, which alone would create files as 0644."""
    before = os.umask(0o022)
    yield
    os.umask(before)


def file_mode(path) -> int:
    return stat.S_IMODE(os.stat(path).st_mode)


def test_database_private_after_first_start(app, settings, db):
    """The first start creates the database and its WAL files with mode 0600."""
    database = settings.instance_path / "hpass.db"

    db.execute(text("CREATE TABLE IF NOT EXISTS mode_probe (id INTEGER)"))
    db.execute(text("INSERT INTO mode_probe VALUES (1)"))
    db.commit()

    assert file_mode(database) == 0o600
    assert file_mode(f"{database}-wal") == 0o600
    assert file_mode(f"{database}-shm") == 0o600


def test_existing_database_made_private(tmp_path):
    """A database and WAL files left 0644 by an older release become 0600."""
    database = tmp_path / "hpass.db"
    connection = sqlite3.connect(database)
    connection.execute("PRAGMA journal_mode=WAL")
    connection.execute("CREATE TABLE kept (id INTEGER)")
    connection.commit()
    wal, shm = f"{database}-wal", f"{database}-shm"
    for path in (database, wal, shm):
        os.chmod(path, 0o644)

    engine = make_engine(f"sqlite:///{database}")
    modes = [file_mode(path) for path in (database, wal, shm)]
    with engine.connect() as opened:
        tables = opened.execute(text("SELECT name FROM sqlite_master")).scalars().all()
    engine.dispose()
    connection.close()

    assert modes == [0o600, 0o600, 0o600]
    assert tables == ["kept"]


def test_embedded_broker_file_private(tmp_path):
    """The embedded broker's queue file is created with mode 0600 too."""
    register()
    broker = tmp_path / "broker.db"

    with Connection(f"hpass-sqlite+sqlite:///{broker}") as connection:
        queue = connection.SimpleQueue("mode-probe")
        queue.put({"id": 1})
        queue.close()

    assert file_mode(broker) == 0o600


@pytest.mark.parametrize(
    "url",
    [
        "sqlite://",
        "sqlite:///:memory:",
        "postgresql+psycopg://postgres@127.0.0.1:5432/test",
    ],
)
def test_restrict_skips_other_databases(url, tmp_path, monkeypatch):
    """In-memory SQLite and other databases create no file."""
    monkeypatch.chdir(tmp_path)

    restrict_sqlite_file(url)

    assert list(tmp_path.iterdir()) == []


def test_restrict_missing_folder_left_to_sqlite(tmp_path):
    """A database in a missing folder creates nothing and raises nothing."""
    database = tmp_path / "missing" / "hpass.db"

    restrict_sqlite_file(f"sqlite:///{database}")

    assert not database.parent.exists()

"""The baseline for the intake benchmark: a Flask app that only stores each body.

One insert and one commit per request, nothing else: no authentication, parsing,
deduplication or outbox. The body goes into the same kind of database as the
bridge's in the same run: SQLite in WAL mode (`MINIMAL_RECEIVER_DB`, a file path),
or a table of its own in the PostgreSQL database given as a libpq connection
string in `MINIMAL_RECEIVER_POSTGRES`. Each request thread keeps one connection.
"""

from __future__ import annotations

import gc
import os
import sqlite3
import threading

from flask import Flask, request

_local = threading.local()


def _sqlite_connection(path: str) -> sqlite3.Connection:
    connection = sqlite3.connect(path, timeout=30, isolation_level=None)
    connection.execute("PRAGMA journal_mode=WAL")
    connection.execute("PRAGMA synchronous=NORMAL")
    connection.execute("PRAGMA busy_timeout=30000")
    return connection


def _postgres_connection(dsn: str):
    import psycopg

    # Autocommit: each INSERT is its own transaction, committed before it returns.
    return psycopg.connect(dsn, autocommit=True)


def create_app() -> Flask:
    dsn = os.environ.get("MINIMAL_RECEIVER_POSTGRES")
    if dsn:
        connect, target = _postgres_connection, dsn
        create = (
            "CREATE TABLE IF NOT EXISTS bodies (id BIGSERIAL PRIMARY KEY, body BYTEA)"
        )
        insert = "INSERT INTO bodies (body) VALUES (%s)"
    else:
        connect, target = _sqlite_connection, os.environ["MINIMAL_RECEIVER_DB"]
        create = "CREATE TABLE IF NOT EXISTS bodies (id INTEGER PRIMARY KEY, body BLOB)"
        insert = "INSERT INTO bodies (body) VALUES (?)"
    setup = connect(target)
    if dsn:
        # Each server worker runs this, and two concurrent CREATE TABLE IF NOT
        # EXISTS can both try to create the table's type on PostgreSQL.
        setup.execute("SELECT pg_advisory_lock(7406)")
    setup.execute(create)
    setup.close()
    app = Flask(__name__)

    @app.post("/webhooks/moodle/<public_id>")
    def receive(public_id: str):
        connection = getattr(_local, "connection", None)
        if connection is None:
            connection = _local.connection = connect(target)
        connection.execute(insert, (request.get_data(),))
        return {"status": "accepted"}, 202

    # As the bridge's server factory does, so neither pays for full collections
    # over its start-up objects.
    gc.freeze()
    return app

"""The baseline for the intake benchmark: a Flask app that only stores each body.

One SQLite insert per request, in WAL mode, nothing else: no authentication, parsing,
deduplication or outbox.
"""

from __future__ import annotations

import os
import sqlite3
import threading

from flask import Flask, request

_local = threading.local()


def _connection(path: str) -> sqlite3.Connection:
    if not hasattr(_local, "connection"):
        connection = sqlite3.connect(path, timeout=30, isolation_level=None)
        connection.execute("PRAGMA journal_mode=WAL")
        connection.execute("PRAGMA synchronous=NORMAL")
        connection.execute("PRAGMA busy_timeout=30000")
        _local.connection = connection
    return _local.connection


def create_app() -> Flask:
    path = os.environ["MINIMAL_RECEIVER_DB"]
    setup = sqlite3.connect(path)
    setup.execute(
        "CREATE TABLE IF NOT EXISTS bodies (id INTEGER PRIMARY KEY, body BLOB)"
    )
    setup.close()
    app = Flask(__name__)

    @app.post("/webhooks/moodle/<public_id>")
    def receive(public_id: str):
        _connection(path).execute(
            "INSERT INTO bodies (body) VALUES (?)", (request.get_data(),)
        )
        return {"status": "accepted"}, 202

    return app

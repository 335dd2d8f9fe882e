"""Read the embedded broker's queue file, to see which tasks were sent."""

from __future__ import annotations

import sqlite3


def broker_tasks(settings) -> list[str]:
    """Return the raw payload of every task message waiting in the embedded broker."""
    path = settings.broker_url.split("sqlite:///", 1)[1]
    with sqlite3.connect(path) as broker:
        return [row[0] for row in broker.execute("SELECT payload FROM kombu_message")]

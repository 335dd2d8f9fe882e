"""The embedded Celery broker: kombu's SQLAlchemy transport tuned for one SQLite file.

kombu passes every transport option to `create_engine`, so the polling interval must be
taken out first. SQLite also needs WAL and a busy timeout, or a publish from the web
server and a poll from the worker collide with "database is locked". Stock kombu keeps
every consumed message as an invisible row; this transport deletes it instead, so the
file does not grow forever. A message lost in between (a worker killed after taking it)
is not a problem: the outbox sweep sends its id again. A publish is one Core INSERT:
stock kombu adds each message through its long-lived ORM session, where the queue
object's in-memory message list grows with every publish and makes each flush slower.
"""

from __future__ import annotations

from json import loads
from queue import Empty

from kombu.transport import TRANSPORT_ALIASES
from kombu.transport.sqlalchemy import Channel as SqlaChannel
from kombu.transport.sqlalchemy import Transport as SqlaTransport
from kombu.utils.encoding import bytes_to_str
from kombu.utils.json import dumps
from sqlalchemy import create_engine, event, text
from sqlalchemy.exc import OperationalError

from badge_engine.db import restrict_sqlite_file

ALIAS = "hpass-sqlite"
ENGINE_OPTION_BLOCKLIST = (
    "queue_tablename",
    "message_tablename",
    "callback",
    "errback",
    "max_retries",
    "interval_start",
    "interval_step",
    "interval_max",
    "retry_errors",
    "polling_interval",
    "visibility_timeout",
)


def _sqlite_pragmas(dbapi_connection, _record) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA busy_timeout=30000")
    # As for the bridge's database: in WAL mode a commit then skips its fsync, which
    # took most of a publish's time. A crash of the process loses nothing, and a
    # message lost when the machine itself fails is sent again by the outbox sweep.
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.close()


class Channel(SqlaChannel):
    def _engine_from_config(self):
        conninfo = self.connection.client
        options = {
            key: value
            for key, value in conninfo.transport_options.items()
            if key not in ENGINE_OPTION_BLOCKLIST
        }
        options.setdefault("connect_args", {"timeout": 30})
        if conninfo.hostname.startswith("sqlite"):
            # Kept as private as the bridge's own database file.
            restrict_sqlite_file(conninfo.hostname)
        engine = create_engine(conninfo.hostname, **options)
        if engine.dialect.name == "sqlite":
            event.listen(engine, "connect", _sqlite_pragmas)
        return engine

    def _put(self, queue, payload, **kwargs):
        queue_ids = self.__dict__.setdefault("_hpass_queue_ids", {})
        queue_id = queue_ids.get(queue)
        if queue_id is None:
            queue_id = queue_ids[queue] = self._get_or_create(queue).id
        session = self.session
        session.execute(
            self.message_cls.__table__.insert().values(
                queue_id=queue_id, payload=dumps(payload), visible=True, version=1
            )
        )
        try:
            session.commit()
        except OperationalError:
            # The publish must fail, so the dispatcher leaves the message to the
            # sweep, instead of reporting a message that was never stored.
            session.rollback()
            raise

    def _get(self, queue):
        queue_row = self._get_or_create(queue)
        session = self.session
        if session.bind.name == "sqlite":
            session.execute(text("BEGIN IMMEDIATE TRANSACTION"))
        try:
            message = (
                session.query(self.message_cls)
                .filter(self.message_cls.queue_id == queue_row.id)
                .filter(self.message_cls.visible.is_(True))
                .order_by(self.message_cls.sent_at, self.message_cls.id)
                .limit(1)
                .first()
            )
            if message is None:
                raise Empty()
            payload = loads(bytes_to_str(message.payload))
            session.delete(message)
            return payload
        finally:
            session.commit()


class Transport(SqlaTransport):
    Channel = Channel


def register() -> None:
    """Make `hpass-sqlite+sqlite:///path` broker URLs resolve to this transport."""
    TRANSPORT_ALIASES[ALIAS] = f"{__name__}:Transport"

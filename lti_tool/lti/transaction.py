"""The database transaction of one launch: a Core connection, with an ORM session when needed.

A launch sends Core statements only, unless it adds a deployment or changes a
learner's email. Opening, committing and closing an ORM session cost more than
those statements and the commit together. In a loop of their own with one INSERT
on SQLite (2-core AMD EPYC, Python 3.11), a session took about 60 microseconds of
CPU and a Core connection 14. So the launch runs on a Core connection, and an ORM
session is opened on that connection the first time an ORM object is written. That session then takes over the connection's transaction
and commits it, so its flush and commit events (which clear the per-process row
caches) fire as they would for any other session.
"""

from __future__ import annotations

from types import TracebackType

from sqlalchemy.engine import Connection
from sqlalchemy.orm import Session


class LaunchTransaction:
    """One transaction on one connection; `orm` opens a session on it when needed."""

    def __init__(self, bridge) -> None:
        self._session_factory = bridge.session_factory
        self._connection = bridge.engine.connect()
        # Begun here, because a statement sent on the DB-API cursor does not begin
        # SQLAlchemy's transaction, and commit() without one would commit nothing.
        self._connection.begin()
        self._session: Session | None = None

    def __enter__(self) -> LaunchTransaction:
        return self

    def __exit__(
        self,
        error_type: type[BaseException] | None,
        error: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        try:
            if error is not None:
                self.rollback()
        finally:
            self.close()

    def connection(self) -> Connection:
        return self._connection

    @property
    def orm(self) -> Session:
        """The ORM session of this transaction, opened on its connection at first use."""
        if self._session is None:
            # "control_fully": the session's commit and rollback end the
            # connection's transaction, as if the session had begun it.
            self._session = self._session_factory(
                bind=self._connection, join_transaction_mode="control_fully"
            )
        return self._session

    def add(self, instance: object) -> None:
        self.orm.add(instance)

    def flush(self) -> None:
        self.orm.flush()

    def commit(self) -> None:
        if self._session is not None:
            self._session.commit()
        else:
            self._connection.commit()

    def commit_and_begin(self) -> None:
        """Commit the writes so far and begin the next transaction on the same connection.

        The next transaction is begun explicitly, as in `__init__`, because a later
        write on the DB-API cursor alone would otherwise not be committed.
        """
        self.commit()
        if not self._connection.in_transaction():
            self._connection.begin()

    def rollback(self) -> None:
        if self._session is not None:
            self._session.rollback()
        else:
            self._connection.rollback()

    def close(self) -> None:
        try:
            if self._session is not None:
                self._session.close()
        finally:
            self._connection.close()

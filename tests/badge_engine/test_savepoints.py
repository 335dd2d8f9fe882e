"""Savepoints stay inside the session's transaction on SQLite and PostgreSQL.

The engine's code wraps inserts that may lose a race in a savepoint, often as the
first write of a transaction. The rows written in the savepoint must be committed
or rolled back with the rest of the transaction, never on their own.
"""

from __future__ import annotations

import pytest
from sqlalchemy import Integer, String, text
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import DeclarativeBase, Mapped, Session, mapped_column

from badge_engine.db import make_engine
from tests.support.databases import reset_postgres


class _Base(DeclarativeBase):
    pass


class _Row(_Base):
    __tablename__ = "savepoint_rows"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(20), unique=True)


@pytest.fixture(params=["sqlite", "postgres"])
def engine(request, tmp_path):
    if request.param == "postgres":
        url = reset_postgres()
    else:
        url = f"sqlite:///{tmp_path / 'savepoints.db'}"
    engine = make_engine(url)
    _Base.metadata.create_all(engine)
    yield engine
    engine.dispose()


def _names(engine) -> list[str]:
    with engine.connect() as connection:
        return list(
            connection.scalars(text("SELECT name FROM savepoint_rows ORDER BY name"))
        )


def test_rollback_undoes_a_released_savepoint(engine):
    """A row written in a savepoint, as the first write, goes with a rollback."""
    with Session(engine) as session:
        session.execute(text("SELECT 1"))
        with session.begin_nested():
            session.add(_Row(name="first"))
        session.add(_Row(name="second"))
        session.flush()
        session.rollback()

    assert _names(engine) == []


def test_commit_keeps_a_released_savepoint(engine):
    with Session(engine) as session:
        with session.begin_nested():
            session.add(_Row(name="first"))
        session.add(_Row(name="second"))
        session.commit()

    assert _names(engine) == ["first", "second"]


def test_failed_savepoint_keeps_the_transaction(engine):
    """A savepoint that loses a race is undone alone; the rest commits."""
    with Session(engine) as session:
        session.add(_Row(name="taken"))
        session.commit()

    with Session(engine) as session:
        with pytest.raises(IntegrityError):
            with session.begin_nested():
                session.add(_Row(name="taken"))
        session.add(_Row(name="other"))
        session.commit()

    assert _names(engine) == ["other", "taken"]

"""The launch's transaction: Core writes, and an ORM session opened on the same connection."""

from __future__ import annotations

import pytest
from sqlalchemy import func, select

from badge_engine.models import Provider
from lti_tool.lti.transaction import LaunchTransaction


def _providers(app) -> int:
    with app.extensions["hpass"].engine.connect() as connection:
        return connection.scalar(select(func.count()).select_from(Provider))


def _insert_provider(transaction: LaunchTransaction, slug: str) -> None:
    # On the DB-API cursor, as the used-nonce insert runs.
    cursor = transaction.connection().connection.cursor()
    marker = "?" if transaction.connection().dialect.paramstyle == "qmark" else "%s"
    markers = ", ".join([marker] * 5)
    sql = f"INSERT INTO providers (slug, name, url, slug_frozen, created_at) VALUES ({markers})"  # noqa: S608, E501
    cursor.execute(
        sql,
        (slug, slug, f"https://{slug}.example.invalid", False, "2026-01-01 00:00:00"),
    )
    cursor.close()


def test_cursor_write_committed(app):
    """A write on the DB-API cursor is kept by commit, with no ORM session opened."""
    bridge = app.extensions["hpass"]
    with LaunchTransaction(bridge) as transaction:
        _insert_provider(transaction, "cursor-write")
        transaction.commit()
        assert transaction._session is None

    assert _providers(app) == 1


def test_orm_write_commits_cursor_write(app):
    """An ORM object added later commits in the same transaction as the cursor write."""
    bridge = app.extensions["hpass"]
    with LaunchTransaction(bridge) as transaction:
        _insert_provider(transaction, "cursor-write")
        transaction.add(Provider(slug="orm-write", name="ORM", url="https://o.example"))
        transaction.flush()
        transaction.commit()

    assert _providers(app) == 2


@pytest.mark.parametrize("with_orm", [False, True])
def test_error_rolls_back_both(app, with_orm):
    """An exception inside the block rolls back every write of the transaction."""
    bridge = app.extensions["hpass"]
    with pytest.raises(RuntimeError):
        with LaunchTransaction(bridge) as transaction:
            _insert_provider(transaction, "cursor-write")
            if with_orm:
                transaction.add(
                    Provider(slug="orm", name="ORM", url="https://o.example")
                )
                transaction.flush()
            raise RuntimeError("launch failed")

    assert _providers(app) == 0


def test_commit_and_begin_keeps_first_step(app):
    """Writes committed by commit_and_begin stay when the next step rolls back,
    and a cursor write after it is committed by the next commit."""
    bridge = app.extensions["hpass"]
    with pytest.raises(RuntimeError):
        with LaunchTransaction(bridge) as transaction:
            _insert_provider(transaction, "first-step")
            transaction.commit_and_begin()
            _insert_provider(transaction, "rolled-back")
            raise RuntimeError("launch failed")

    assert _providers(app) == 1

    with LaunchTransaction(bridge) as transaction:
        transaction.commit_and_begin()
        _insert_provider(transaction, "second-step")
        transaction.commit()

    assert _providers(app) == 2

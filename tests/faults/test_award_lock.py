"""The award lock makes a second issuer of the same pair wait, on both databases."""

from __future__ import annotations

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import Session

from badge_engine.db import Base, make_engine
from badge_engine.locking import lock_award
from lti_tool.schema import import_all_models, upgrade
from tests.support.seed import add_provider


def _provider_id(engine) -> int:
    with Session(engine) as session:
        provider = add_provider(session)
        session.commit()
        return provider.id


def test_postgres_second_lock_waits(own_database):
    """A second transaction cannot take the pair's advisory lock until the first ends."""
    upgrade(own_database)
    engine = create_engine(own_database)
    provider_id = _provider_id(engine)
    first, second = Session(engine), Session(engine)
    try:
        lock_award(first, provider_id=provider_id, achievement_id=1, learner_id=2)
        second.execute(text("SET LOCAL lock_timeout = '200ms'"))
        with pytest.raises(OperationalError, match="lock timeout"):
            lock_award(second, provider_id=provider_id, achievement_id=1, learner_id=2)
        second.rollback()

        lock_award(second, provider_id=provider_id, achievement_id=1, learner_id=3)
        first.commit()
        second.execute(text("SET LOCAL lock_timeout = '200ms'"))
        lock_award(second, provider_id=provider_id, achievement_id=1, learner_id=2)
    finally:
        first.close()
        second.close()
        engine.dispose()


def test_sqlite_second_lock_waits(tmp_path):
    """On SQLite the lock-table write holds the write lock until the first commits."""
    url = f"sqlite:///{tmp_path / 'lock.db'}"
    import_all_models()
    upgrade(url)
    engine = make_engine(url, connect_args={"timeout": 0.2})
    provider_id = _provider_id(engine)
    first, second = Session(engine), Session(engine)
    try:
        lock_award(first, provider_id=provider_id, achievement_id=1, learner_id=2)
        # make_engine sets a 30 s busy timeout on connect; wait 200 ms instead.
        second.execute(text("PRAGMA busy_timeout=200"))
        with pytest.raises(OperationalError, match="database is locked"):
            lock_award(second, provider_id=provider_id, achievement_id=1, learner_id=2)
        second.rollback()

        first.commit()
        lock_award(second, provider_id=provider_id, achievement_id=1, learner_id=2)
        second.commit()
    finally:
        first.close()
        second.close()
        engine.dispose()
    assert "award_locks" in Base.metadata.tables

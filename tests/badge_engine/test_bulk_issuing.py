"""Bulk issuing on SQLite and PostgreSQL: exactly once, unique status indexes, bad rows."""

from __future__ import annotations

import threading
import time
from datetime import datetime, timezone

import pytest
from sqlalchemy import func, select, text

from badge_engine.bulk_issuing import AwardRequest, issue_credentials_in_bulk
from badge_engine.issuers import did_document
from badge_engine.issuing import issue_credential
from badge_engine.models import Achievement, Credential, Learner, Provider
from badge_engine.rules import COURSE_COMPLETED_RULE
from badge_engine.schema import validate_open_badge_credential
from badge_engine.status import StatusIndexPool
from badge_engine.verify import verify_open_badge_credential
from tests.support.databases import reset_postgres
from tests.support.seed import add_moodle_connection, add_provider

BASE = "http://127.0.0.1:5999"
AWARDED = datetime(2025, 1, 1, tzinfo=timezone.utc)


@pytest.fixture(params=["sqlite", "postgresql"])
def settings(request, settings):
    """The shared settings on SQLite and on PostgreSQL."""
    if request.param == "postgresql":
        settings.database_url = reset_postgres()
    return settings


@pytest.fixture
def bridge(app):
    return app.extensions["hpass"]


@pytest.fixture
def course(bridge, db):
    """A provider with two achievements and five learners, committed."""
    provider = add_provider(db)
    connection = add_moodle_connection(
        db, bridge.vault, provider, "http://127.0.0.1:1", "t"
    )
    achievements = [
        Achievement(
            provider_id=provider.id,
            lms_connection_id=connection.id,
            lms_course_id="101",
            name=f"Badge {number}",
            description="Completes the course.",
            criteria_narrative="Complete the course.",
            award_rule=COURSE_COMPLETED_RULE,
        )
        for number in range(2)
    ]
    learners = [
        Learner(
            provider_id=provider.id,
            lms_connection_id=connection.id,
            lms_user_id=str(3000 + number),
            email=f"learner{number}@example.org" if number % 2 else None,
        )
        for number in range(5)
    ]
    db.add_all(achievements + learners)
    db.commit()
    return (
        provider.id,
        [a.id for a in achievements],
        [learner.id for learner in learners],
    )


def _requests(session, achievement_ids, learner_ids) -> list[AwardRequest]:
    achievements = [session.get(Achievement, i) for i in achievement_ids]
    learners = [session.get(Learner, i) for i in learner_ids]
    return [
        AwardRequest(achievement=achievement, learner=learner, awarded_at=AWARDED)
        for learner in learners
        for achievement in achievements
    ]


def _issue(bridge, session, provider_id, requests, pool=None):
    pool = pool or StatusIndexPool(provider_id)
    return issue_credentials_in_bulk(
        session,
        vault=bridge.vault,
        base_url=BASE,
        provider=session.get(Provider, provider_id),
        requests=requests,
        status_indexes=pool,
    )


def _live_pairs(session) -> list[tuple[int, int]]:
    return session.execute(
        select(Credential.achievement_id, Credential.learner_id).where(
            Credential.live_key.is_not(None)
        )
    ).all()


def test_bulk_issues_each_pair(bridge, db, course):
    """Every requested pair gets one signed, verifiable credential with its own index."""
    provider_id, achievement_ids, learner_ids = course

    result = _issue(
        bridge, db, provider_id, _requests(db, achievement_ids, learner_ids)
    )
    db.commit()

    assert len(result.issued) == 10
    assert result.already_held == []
    assert result.rejected == []
    credentials = db.scalars(select(Credential)).all()
    assert len(credentials) == 10
    assert len({c.status_list_index for c in credentials}) == 10
    provider = db.get(Provider, provider_id)
    assert provider.slug_frozen
    did_doc = did_document(db, BASE, provider)
    for credential in credentials[:2]:
        verified = verify_open_badge_credential(
            credential.document, lambda did: did_doc
        )
        assert verified.verified, verified.errors
        assert validate_open_badge_credential(credential.document) == []


def test_bulk_second_run_issues_nothing(bridge, db, course):
    """A second bulk call for the same pairs reports every pair as already held."""
    provider_id, achievement_ids, learner_ids = course
    _issue(bridge, db, provider_id, _requests(db, achievement_ids, learner_ids))
    db.commit()

    again = _issue(bridge, db, provider_id, _requests(db, achievement_ids, learner_ids))
    db.commit()

    assert again.issued == []
    assert len(again.already_held) == 10
    assert db.scalar(select(func.count(Credential.id))) == 10


def test_bulk_repeated_request_held(bridge, db, course):
    """A pair listed twice in one call is issued once and then reported as held."""
    provider_id, achievement_ids, learner_ids = course
    requests = _requests(db, achievement_ids[:1], learner_ids[:1]) * 2

    result = _issue(bridge, db, provider_id, requests)
    db.commit()

    assert len(result.issued) == 1
    assert len(result.already_held) == 1
    assert db.scalar(select(func.count(Credential.id))) == 1


def test_bulk_rejects_learner_without_identifier(bridge, db, course):
    """A learner without email or LMS user id is rejected; the rest of the page issues."""
    provider_id, achievement_ids, learner_ids = course
    nameless = db.get(Learner, learner_ids[0])
    nameless.email = None
    nameless.lms_user_id = ""
    db.commit()

    result = _issue(
        bridge, db, provider_id, _requests(db, achievement_ids, learner_ids)
    )
    db.commit()

    assert len(result.rejected) == 2
    assert {r.request.learner.id for r in result.rejected} == {learner_ids[0]}
    assert "neither an email nor an LMS user id" in result.rejected[0].reason
    assert len(result.issued) == 8
    assert db.scalar(select(func.count(Credential.id))) == 8


def test_bulk_rejects_other_providers_learner(bridge, db, course):
    """A learner of another provider is rejected with both provider ids named."""
    provider_id, achievement_ids, learner_ids = course
    other = add_provider(db, slug="other", name="Other")
    stranger = db.get(Learner, learner_ids[1])
    stranger.provider_id = other.id
    db.commit()

    result = _issue(
        bridge, db, provider_id, _requests(db, achievement_ids, learner_ids)
    )
    db.commit()

    assert len(result.rejected) == 2
    assert f"belongs to provider {other.id}" in result.rejected[0].reason
    assert len(result.issued) == 8


def _wait_until_blocked(bridge, session_pid: int | None) -> None:
    """Wait until the PostgreSQL backend `session_pid` waits on a lock (SQLite: a pause)."""
    if session_pid is None:
        time.sleep(0.5)
        return
    for _ in range(200):
        with bridge.engine.connect() as connection:
            waiting = connection.execute(
                text("SELECT wait_event_type FROM pg_stat_activity WHERE pid = :pid"),
                {"pid": session_pid},
            ).scalar()
        if waiting == "Lock":
            return
        time.sleep(0.05)
    pytest.fail(f"backend {session_pid} never waited on a lock")


def _backend_pid(session) -> int | None:
    if session.get_bind().dialect.name != "postgresql":
        return None
    return session.execute(text("SELECT pg_backend_pid()")).scalar()


def _reserved_pool(bridge, provider_id) -> StatusIndexPool:
    """Return a pool with a block reserved, as a worker has before its page opens."""
    pool = StatusIndexPool(provider_id)
    with bridge.session() as session:
        pool.reserve(session, 100)
    return pool


def _run_page_in_thread(bridge, pool, provider_id, achievement_ids, learner_ids):
    """Start a bulk page in another thread that commits; return it, its output and pid."""
    output = {}
    started = threading.Event()

    def page() -> None:
        with bridge.session() as session:
            output["pid"] = _backend_pid(session)
            started.set()
            requests = _requests(session, achievement_ids, learner_ids)
            output["result"] = _issue(bridge, session, provider_id, requests, pool)
            session.commit()

    thread = threading.Thread(target=page)
    thread.start()
    started.wait(10)
    return thread, output


def test_bulk_concurrent_pages_issue_once(bridge, db, course):
    """Two overlapping pages in flight at once issue each pair once, neither failing."""
    provider_id, achievement_ids, learner_ids = course
    # The signing key exists before the race, as it does after a provider's first award.
    _issue(bridge, db, provider_id, _requests(db, achievement_ids[:1], learner_ids[:1]))
    db.commit()

    pool = _reserved_pool(bridge, provider_id)
    first = _issue(
        bridge, db, provider_id, _requests(db, achievement_ids, learner_ids[:3])
    )
    thread, second = _run_page_in_thread(
        bridge, pool, provider_id, achievement_ids, learner_ids
    )
    _wait_until_blocked(bridge, second["pid"])
    db.commit()
    thread.join(60)

    assert not thread.is_alive()
    assert len(first.issued) == 5
    assert len(second["result"].issued) == 4
    assert len(second["result"].already_held) == 6
    assert second["result"].rejected == []
    pairs = _live_pairs(db)
    assert len(pairs) == 10
    assert len(set(pairs)) == 10


def test_bulk_races_single_award(bridge, db, course):
    """A page that collides with a concurrent single award reports that pair as held."""
    provider_id, achievement_ids, learner_ids = course
    _issue(bridge, db, provider_id, _requests(db, achievement_ids[:1], learner_ids[:1]))
    db.commit()

    pool = _reserved_pool(bridge, provider_id)
    single = issue_credential(
        db,
        vault=bridge.vault,
        base_url=BASE,
        achievement=db.get(Achievement, achievement_ids[1]),
        learner=db.get(Learner, learner_ids[4]),
        awarded_at=AWARDED,
    )
    thread, page = _run_page_in_thread(
        bridge, pool, provider_id, achievement_ids, learner_ids
    )
    _wait_until_blocked(bridge, page["pid"])
    db.commit()
    thread.join(60)

    assert not thread.is_alive()
    assert single.created
    assert len(page["result"].issued) == 8
    assert len(page["result"].already_held) == 2
    pairs = _live_pairs(db)
    assert len(pairs) == 10
    assert len(set(pairs)) == 10


def test_status_indexes_unique_across_workers(bridge, db, course):
    """Pools of two workers reserving small blocks at once never share an index."""
    provider_id = course[0]
    taken: list[list[int]] = [[], []]
    errors = []

    def worker(number: int) -> None:
        pool = StatusIndexPool(provider_id, block_size=7)
        try:
            for _ in range(40):
                with bridge.session() as session:
                    pool.reserve(session, 5)
                    taken[number] += pool.take(session, 5)
                    session.commit()
        except Exception as error:  # noqa: BLE001 - reported by the assert below
            errors.append(error)

    threads = [threading.Thread(target=worker, args=(n,)) for n in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(120)

    assert errors == []
    everything = taken[0] + taken[1]
    assert len(everything) == 400
    assert len(set(everything)) == 400


def test_pool_take_without_reserve(bridge, db, course):
    """A pool with no block reserves just the missing indexes in the caller's transaction."""
    provider_id = course[0]
    pool = StatusIndexPool(provider_id)

    taken = pool.take(db, 3)
    db.commit()
    later = StatusIndexPool(provider_id, block_size=2)
    with bridge.session() as session:
        later.reserve(session, 1)

    assert taken == [0, 1, 2]
    assert pool.available == 0
    assert later.take(db, 2) == [3, 4]

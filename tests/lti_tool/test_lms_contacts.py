"""Recorded contacts with each LMS: the upserts, and where polls and re-reads write
them, against the fake Moodle over real HTTP, on SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest
from sqlalchemy import select

from badge_engine.facts import CompletionFact, CompletionState, FactSource
from badge_engine.models import Achievement, Provider
from badge_engine.rules import COURSE_COMPLETED_RULE
from connectors.contacts import (
    DETAIL_MAX_CHARS,
    last_contact_outcome,
    record_event,
    record_failure,
    record_reread,
    record_success,
)
from connectors.models import ContactSource, LmsConnection, LmsContact, LmsKind
from lti_tool.demo.peers.moodle import MoodleStandIn
from lti_tool.demo.peers.moodle_ws import DEMO_COURSE_ID, DEMO_LEARNER_ID
from lti_tool.operations.lms import connection_dict
from lti_tool.pipeline import HandlerContext, RetryLater, evaluate_fact, record_fact
from lti_tool.tasks import poll_moodle_connection
from tests.support.databases import reset_postgres

TOKEN = "contacts-token-0001"
T0 = datetime(2026, 12, 1, 9, 0, tzinfo=timezone.utc)


@pytest.fixture(params=["sqlite", "postgres"])
def settings(request, settings):
    """The shared settings, on SQLite or on the local PostgreSQL."""
    if request.param == "postgres":
        settings.database_url = reset_postgres()
    return settings


@pytest.fixture
def moodle():
    stand_in = MoodleStandIn(TOKEN)
    server = stand_in.start()
    yield stand_in
    server.stop()


def add_connection(app, db, site_url: str, slug: str = "contacts") -> LmsConnection:
    provider = Provider(slug=slug, name=slug.title(), url=f"https://{slug}.invalid")
    db.add(provider)
    db.flush()
    connection = LmsConnection(
        provider_id=provider.id,
        kind=LmsKind.MOODLE.value,
        name="Moodle",
        base_url=site_url,
        api_token_encrypted=app.extensions["hpass"].vault.encrypt(TOKEN),
    )
    db.add(connection)
    db.flush()
    return connection


def add_course_badge(db, connection: LmsConnection) -> None:
    db.add(
        Achievement(
            provider_id=connection.provider_id,
            lms_connection_id=connection.id,
            lms_course_id=str(DEMO_COURSE_ID),
            name="Badge",
            description="A badge.",
            criteria_narrative="Complete the course.",
            award_rule=COURSE_COMPLETED_RULE,
        )
    )
    db.commit()


def contact_of(db, connection_id: int) -> LmsContact | None:
    db.expire_all()
    return db.scalar(
        select(LmsContact).where(LmsContact.lms_connection_id == connection_id)
    )


def test_success_then_failure_is_failing(app, db):
    """A failure newer than the last success makes the latest contact a failure."""
    connection = add_connection(app, db, "https://moodle.invalid")
    record_success(db, connection, ContactSource.POLL, at=T0)
    record_failure(
        db, connection, ContactSource.REREAD, "site down", at=T0 + timedelta(minutes=5)
    )
    db.commit()

    contact = contact_of(db, connection.id)

    assert contact.provider_id == connection.provider_id
    assert contact.last_success_at == T0
    assert contact.last_success_source == "poll"
    assert contact.last_failure_at == T0 + timedelta(minutes=5)
    assert contact.last_failure_source == "reread"
    assert contact.last_failure_detail == "site down"
    assert contact.failing
    assert last_contact_outcome(contact) == "failed"


def test_failure_then_success_recovers(app, db):
    """A success after a failure keeps the failure's record but is not failing."""
    connection = add_connection(app, db, "https://moodle.invalid")
    record_failure(db, connection, ContactSource.POLL, "site down", at=T0)
    record_success(db, connection, ContactSource.POLL, at=T0 + timedelta(minutes=5))
    db.commit()

    contact = contact_of(db, connection.id)

    assert not contact.failing
    assert contact.last_failure_detail == "site down"
    assert last_contact_outcome(contact) == "succeeded"


def test_older_outcome_never_overwrites(app, db):
    """A worker that finishes late with an older time leaves the newer record."""
    connection = add_connection(app, db, "https://moodle.invalid")
    record_success(db, connection, ContactSource.POLL, at=T0 + timedelta(hours=1))
    record_success(db, connection, ContactSource.TEST, at=T0)
    record_failure(
        db, connection, ContactSource.POLL, "new", at=T0 + timedelta(hours=1)
    )
    record_failure(db, connection, ContactSource.POLL, "old", at=T0)
    db.commit()

    contact = contact_of(db, connection.id)

    assert contact.last_success_at == T0 + timedelta(hours=1)
    assert contact.last_success_source == "poll"
    assert contact.last_failure_detail == "new"


def test_failure_detail_is_cut(app, db):
    """A very long error is stored cut to the maximum length."""
    connection = add_connection(app, db, "https://moodle.invalid")
    record_failure(db, connection, ContactSource.POLL, RuntimeError("x" * 5000))
    db.commit()

    assert len(contact_of(db, connection.id).last_failure_detail) == DETAIL_MAX_CHARS


def test_reread_and_event_written_once_a_minute(app, db):
    """Re-reads and events within the interval do not write the row again."""
    connection = add_connection(app, db, "https://moodle.invalid")
    record_reread(db, connection)
    record_event(db, connection, T0)
    db.commit()
    first = contact_of(db, connection.id)
    first_success = first.last_success_at

    record_reread(db, connection)
    record_event(db, connection, T0 + timedelta(seconds=30))
    db.commit()
    within = contact_of(db, connection.id)

    assert within.last_success_at == first_success
    assert within.last_success_source == "reread"
    assert within.last_event_at == T0

    record_event(db, connection, T0 + timedelta(minutes=2))
    db.commit()

    assert contact_of(db, connection.id).last_event_at == T0 + timedelta(minutes=2)


def test_outcome_without_contact(app, db):
    """No row, or a row with only an event, has no latest contact outcome."""
    connection = add_connection(app, db, "https://moodle.invalid")
    db.commit()

    assert last_contact_outcome(None) is None
    assert last_contact_outcome(contact_of(db, connection.id)) is None

    record_event(db, connection, T0)
    db.commit()

    assert last_contact_outcome(contact_of(db, connection.id)) is None


def test_contacts_stay_per_connection(app, db):
    """One provider's contacts never show on another provider's connection."""
    own = add_connection(app, db, "https://one.invalid", slug="one")
    other = add_connection(app, db, "https://two.invalid", slug="two")
    record_failure(db, own, ContactSource.POLL, "site down", at=T0)
    db.commit()

    assert contact_of(db, other.id) is None
    db.expire_all()
    assert db.get(LmsConnection, other.id).contact is None
    assert db.get(LmsConnection, own.id).contact.last_failure_detail == "site down"


def test_connection_dict_contact_fields(app, db):
    """The API's connection has null contact fields until a contact is recorded."""
    connection = add_connection(app, db, "https://moodle.invalid")
    db.commit()
    bridge = app.extensions["hpass"]

    empty = connection_dict(bridge, connection)

    assert empty["last_contact"] is None
    assert empty["last_success_at"] is None
    assert empty["last_failure_at"] is None
    assert empty["last_failure_detail"] is None
    assert empty["last_event_at"] is None

    record_failure(db, connection, ContactSource.POLL, "site down", at=T0)
    db.commit()
    db.expire_all()
    filled = connection_dict(bridge, db.get(LmsConnection, connection.id))

    assert filled["last_contact"] == "failed"
    assert filled["last_failure_at"] == T0.isoformat()
    assert filled["last_failure_source"] == "poll"
    assert filled["last_failure_detail"] == "site down"


def test_poll_records_success(app, db, moodle):
    """A finished poll records a successful contact."""
    connection = add_connection(app, db, moodle.site_url)
    add_course_badge(db, connection)

    with app.app_context():
        outcome = poll_moodle_connection.run(connection.id)

    contact = contact_of(db, connection.id)
    assert outcome == "done"
    assert contact.last_success_source == "poll"
    assert contact.last_failure_at is None


def test_poll_without_courses_records_nothing(app, db, moodle):
    """A connection whose courses award nothing is not read, so nothing is recorded."""
    connection = add_connection(app, db, moodle.site_url)
    db.commit()

    with app.app_context():
        poll_moodle_connection.run(connection.id)

    assert contact_of(db, connection.id) is None


def test_poll_failure_recorded(app, db, moodle):
    """A poll that receives an HTML response records the failure and its reason."""
    connection = add_connection(app, db, moodle.site_url)
    add_course_badge(db, connection)
    moodle.html_next(1)

    with app.app_context():
        outcome = poll_moodle_connection.run(connection.id)

    contact = contact_of(db, connection.id)
    assert outcome == "failed"
    assert contact.failing
    assert contact.last_failure_source == "poll"
    assert "not JSON" in contact.last_failure_detail


def test_poll_site_down_recorded(app, db):
    """A site that refuses connections is recorded as a failed poll."""
    connection = add_connection(app, db, "http://127.0.0.1:9")
    add_course_badge(db, connection)

    with app.app_context():
        outcome = poll_moodle_connection.run(connection.id)

    contact = contact_of(db, connection.id)
    assert outcome == "failed"
    assert contact.failing
    assert "Could not connect" in contact.last_failure_detail


def test_poll_revoked_token_recorded(app, db, moodle):
    """A rejected token marks the connection broken and records the failure."""
    connection = add_connection(app, db, moodle.site_url)
    add_course_badge(db, connection)
    moodle.revoke_token(TOKEN)

    with app.app_context():
        outcome = poll_moodle_connection.run(connection.id)

    contact = contact_of(db, connection.id)
    assert outcome == "broken"
    assert contact.failing
    assert "invalidtoken" in contact.last_failure_detail


def _evaluate_event(app, db, connection: LmsConnection) -> None:
    fact = CompletionFact(
        provider_id=connection.provider_id,
        lms_connection_id=connection.id,
        lms_course_id=str(DEMO_COURSE_ID),
        lms_user_id=str(DEMO_LEARNER_ID),
        activity_id=None,
        state=CompletionState.COMPLETE,
        occurred_at=T0,
        source=FactSource.EVENT,
    )
    _, message = record_fact(db, fact)
    db.commit()
    context = HandlerContext(
        bridge=app.extensions["hpass"], session=db, message=message
    )
    with app.app_context():
        evaluate_fact(context)
    db.commit()


def test_event_reread_recorded(app, db, moodle):
    """An evaluated event records its arrival and the successful re-read."""
    connection = add_connection(app, db, moodle.site_url)
    add_course_badge(db, connection)

    _evaluate_event(app, db, connection)

    contact = contact_of(db, connection.id)
    assert contact.last_event_at is not None
    assert contact.last_success_source == "reread"
    assert not contact.failing


def test_reread_failure_survives_rollback(app, db, moodle):
    """A failed re-read is committed before the outbox rolls the handler back."""
    connection = add_connection(app, db, moodle.site_url)
    add_course_badge(db, connection)
    moodle.html_next(1)

    with pytest.raises(RetryLater):
        _evaluate_event(app, db, connection)
    db.rollback()

    contact = contact_of(db, connection.id)
    assert contact.failing
    assert contact.last_failure_source == "reread"
    assert contact.last_event_at is not None

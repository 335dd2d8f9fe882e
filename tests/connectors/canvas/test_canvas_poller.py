"""Reconciliation over bulk_user_progress: paging under throttling, cursor, dedupe."""

from __future__ import annotations

import logging
from datetime import datetime, timedelta, timezone

import pytest
from sqlalchemy import func, select

from badge_engine.models import CompletionFactRecord
from badge_engine.outbox import OutboxMessage
from connectors.canvas.connection import client_for_connection, connect_canvas
from connectors.canvas.errors import CanvasTokenInvalid, CanvasUnavailable
from connectors.canvas.models import CanvasPollCursor
from connectors.canvas.poller import reconcile_course
from tests.connectors.canvas.conftest import COURSE_ID
from tests.support.outbound import LOOPBACK_POLICY
from tests.support.seed import add_provider

START = datetime(2025, 1, 1, 9, tzinfo=timezone.utc)
LEARNERS = range(2000, 3000)


@pytest.fixture
def connection(app, db, fake, canvas_url):
    vault = app.extensions["hpass"].vault
    provider = add_provider(db)
    connection = connect_canvas(
        db,
        vault,
        provider_id=provider.id,
        name="Academy Canvas",
        base_url=canvas_url,
        access_token=fake.issue_token(),
    )
    db.commit()
    return connection


@pytest.fixture
def course_of_1000(fake):
    """1,000 learners, every third of them complete at a distinct time."""
    course = fake.add_course(700)
    fake.add_students(700, LEARNERS)
    completed = set()
    for index, user_id in enumerate(LEARNERS):
        if index % 3 == 0:
            fake.complete(700, user_id, START + timedelta(minutes=index))
            completed.add(str(user_id))
    return course, completed


def _client(app, db, connection, waits, **options):
    vault = app.extensions["hpass"].vault
    return client_for_connection(
        db, vault, connection, sleep=waits.append, **options, policy=LOOPBACK_POLICY
    )


def _fact_users(db, connection) -> list[str]:
    return list(
        db.scalars(
            select(CompletionFactRecord.lms_user_id).where(
                CompletionFactRecord.provider_id == connection.provider_id,
                CompletionFactRecord.lms_connection_id == connection.id,
            )
        )
    )


def test_reconcile_1000_under_throttling(
    app, db, fake, connection, course_of_1000, waits, caplog
):
    """1,000 learners over 10 pages complete under throttling, retries logged, none missed."""
    _, completed = course_of_1000
    fake.throttle_every(4, "alternate")
    client = _client(app, db, connection, waits)

    with caplog.at_level(logging.WARNING, logger="connectors.canvas.client"):
        report = reconcile_course(db, client, connection, "700")

    users = _fact_users(db, connection)
    assert report.finished is True
    assert report.pages == 10
    assert report.learners == 1000
    assert report.completed == len(completed) == 334
    assert sorted(users) == sorted(completed)
    assert len(report.message_ids) == 334
    assert client.stats.throttled >= 2
    statuses = {status for _, _, status in fake.requests}
    assert {403, 429} <= statuses
    retries = [r for r in caplog.records if "throttled" in r.getMessage()]
    assert len(retries) == client.stats.throttled


def test_reconcile_resumes_from_cursor(
    app, db, fake, connection, course_of_1000, waits
):
    """Throttling that outlasts the retries stops the run; the next run resumes, once each."""
    _, completed = course_of_1000
    client = _client(app, db, connection, waits, max_retries=2)
    fake.throttle_every(None)
    pages = client.iter_bulk_user_progress("700")
    next(pages)
    fake.requests.clear()

    original = fake._throttle
    calls = {"count": 0}

    def throttle_after_four_pages(token_value):
        calls["count"] += 1
        if 5 <= calls["count"] <= 7:
            return fake.app.make_response(
                ("403 Forbidden (Rate Limit Exceeded)", 403)
            ), 403
        return original(token_value)

    fake._throttle = throttle_after_four_pages
    first = reconcile_course(db, client, connection, "700")

    cursor = db.scalar(select(CanvasPollCursor))
    assert first.finished is False
    assert isinstance(first.error, CanvasUnavailable)
    assert first.pages == 4
    assert "page=5" in cursor.next_page_url

    second = reconcile_course(db, client, connection, "700")

    assert second.finished is True
    assert second.pages == 6
    assert first.new_facts + second.new_facts == len(completed)
    assert sorted(_fact_users(db, connection)) == sorted(completed)
    db.refresh(cursor)
    assert cursor.next_page_url is None
    assert cursor.pages_read == 10


def test_second_reconcile_adds_nothing(
    app, db, fake, connection, course_of_1000, waits
):
    """A repeated run stores no fact twice and queues no new evaluation."""
    client = _client(app, db, connection, waits)
    reconcile_course(db, client, connection, "700")
    messages_before = db.scalar(select(func.count()).select_from(OutboxMessage))

    again = reconcile_course(db, client, connection, "700")

    assert again.finished is True
    assert again.new_facts == 0
    assert db.scalar(select(func.count()).select_from(OutboxMessage)) == messages_before


def test_revoked_token_halfway_keeps_cursor(
    app, db, fake, connection, course_of_1000, waits
):
    """A token revoked mid-run raises CanvasTokenInvalid with committed pages kept."""
    client = _client(app, db, connection, waits)
    original = fake._throttle
    calls = {"count": 0}

    def revoke_after_three(token_value):
        calls["count"] += 1
        if calls["count"] == 3:
            fake.expire_all_tokens()
        return original(token_value)

    fake._throttle = revoke_after_three

    with pytest.raises(CanvasTokenInvalid):
        reconcile_course(db, client, connection, "700")

    cursor = db.scalar(select(CanvasPollCursor))
    assert cursor.pages_read == 3
    assert "page=4" in cursor.next_page_url
    # Every third of the first 300 learners is complete.
    assert len(_fact_users(db, connection)) == 100


def test_bad_entries_skipped_and_counted(app, db, fake, connection, waits, monkeypatch):
    """An entry with an error object or a foreign-shard id is skipped and counted."""
    fake.complete(COURSE_ID, 123, START)
    original = fake._progress

    def progress(course, student):
        if student.id == 124:
            return {"error": {"message": "boom"}}
        return original(course, student)

    monkeypatch.setattr(fake, "_progress", progress)
    client = _client(app, db, connection, waits)

    report = reconcile_course(db, client, connection, str(COURSE_ID))

    assert report.skipped == 1
    assert report.new_facts == 1
    assert _fact_users(db, connection) == ["123"]


def test_poll_task_reconciles_achievement_courses(
    app, db, fake, connection, course_of_1000
):
    """The poll task reconciles each course that has an achievement, and dispatches."""
    from badge_engine.models import Achievement
    from badge_engine.rules import COURSE_COMPLETED_RULE
    from lti_tool.canvas_tasks import poll_canvas_connection

    _, completed = course_of_1000
    db.add(
        Achievement(
            provider_id=connection.provider_id,
            lms_connection_id=connection.id,
            lms_course_id="700",
            name="Course 700",
            description="Completed the course.",
            criteria_narrative="Complete the course.",
            award_rule=COURSE_COMPLETED_RULE,
        )
    )
    db.commit()

    with app.app_context():
        outcome = poll_canvas_connection(connection.id)

    assert outcome == "done"
    assert sorted(_fact_users(db, connection)) == sorted(completed)
    db.expire_all()
    contact = db.get(type(connection), connection.id).contact
    assert contact.last_success_source == "poll"
    assert not contact.failing


def test_poll_task_marks_revoked_connection_broken(
    app, db, fake, connection, course_of_1000
):
    """A rejected admin token during the poll marks the connection broken."""
    from badge_engine.models import Achievement
    from badge_engine.rules import COURSE_COMPLETED_RULE
    from lti_tool.canvas_tasks import poll_canvas_connection

    db.add(
        Achievement(
            provider_id=connection.provider_id,
            lms_connection_id=connection.id,
            lms_course_id="700",
            name="Course 700",
            description="Completed the course.",
            criteria_narrative="Complete the course.",
            award_rule=COURSE_COMPLETED_RULE,
        )
    )
    db.commit()
    fake.expire_all_tokens()

    with app.app_context():
        outcome = poll_canvas_connection(connection.id)

    db.expire_all()
    assert outcome == "broken"
    assert db.get(type(connection), connection.id).state == "broken"
    contact = db.get(type(connection), connection.id).contact
    assert contact.failing
    assert contact.last_failure_source == "poll"

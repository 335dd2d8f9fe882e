"""Reconciliation polls against the fake Moodle over real HTTP, on SQLite."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from badge_engine.models import Achievement, CompletionFactRecord, Provider
from badge_engine.rules import COURSE_COMPLETED_RULE
from connectors.models import LmsConnection, LmsKind
from connectors.moodle.client import MoodleClient
from connectors.moodle.errors import MoodleTokenInvalid
from connectors.moodle.models import MoodlePollCursor
from connectors.moodle.poller import facts_for_learner, poll_connection
from lti_tool.demo.peers.moodle import MoodleStandIn
from lti_tool.demo.peers.moodle_ws import COMPLETION_INCOMPLETE, DEMO_COURSE_ID
from lti_tool.pipeline import record_fact
from tests.support.outbound import LOOPBACK_POLICY

TOKEN = "poller-token-0001"
LEARNER_IDS = [3001, 3002, 3003, 3004, 3005]
COMPLETED_AT = 1735689600


@pytest.fixture
def moodle():
    """The fake Moodle with five learners enrolled in the demo course."""
    stand_in = MoodleStandIn(TOKEN)
    for user_id in LEARNER_IDS:
        stand_in.enrol_learner(DEMO_COURSE_ID, user_id, f"Learner {user_id}")
    server = stand_in.start()
    yield stand_in
    server.stop()


@pytest.fixture
def client(moodle):
    with MoodleClient(
        moodle.site_url, TOKEN, max_retries=0, policy=LOOPBACK_POLICY
    ) as made:
        yield made


@pytest.fixture
def connection(db, moodle):
    """A provider whose Moodle connection awards a badge for the demo course."""
    provider = Provider(slug="poller", name="Poller", url="https://poller.invalid")
    db.add(provider)
    db.flush()
    made = LmsConnection(
        provider_id=provider.id,
        kind=LmsKind.MOODLE.value,
        name="Moodle",
        base_url=moodle.site_url,
    )
    db.add(made)
    db.flush()
    db.add(
        Achievement(
            provider_id=provider.id,
            lms_connection_id=made.id,
            lms_course_id=str(DEMO_COURSE_ID),
            name="Badge",
            description="A badge.",
            criteria_narrative="Complete the course.",
            award_rule=COURSE_COMPLETED_RULE,
        )
    )
    db.commit()
    return made


def store(session, fact):
    _, message = record_fact(session, fact)
    return message.id if message is not None else None


def _facts(db) -> list[CompletionFactRecord]:
    return db.scalars(select(CompletionFactRecord)).all()


def _cursor(db) -> MoodlePollCursor:
    return db.scalars(select(MoodlePollCursor)).one()


def test_poll_finds_completion_without_event(db, moodle, client, connection):
    """A completed course with no event becomes one course fact from the poll."""
    moodle.complete_course(DEMO_COURSE_ID, 3003, COMPLETED_AT, send_event=False)

    result = poll_connection(db, client, connection, store)

    course_facts = [fact for fact in _facts(db) if fact.activity_id is None]
    assert len(course_facts) == 1
    assert course_facts[0].lms_user_id == "3003"
    assert course_facts[0].source == "poll"
    assert course_facts[0].occurred_at.timestamp() == COMPLETED_AT
    assert result.facts_new == len(_facts(db))
    assert len(result.message_ids) == result.facts_new


def test_poll_again_is_idempotent(db, moodle, client, connection):
    """A second poll over unchanged state stores no new fact."""
    moodle.complete_course(DEMO_COURSE_ID, 3001, COMPLETED_AT, send_event=False)
    poll_connection(db, client, connection, store)
    count = len(_facts(db))

    result = poll_connection(db, client, connection, store)

    assert result.facts_new == 0
    assert len(_facts(db)) == count


def test_poll_is_bounded_and_resumes(db, moodle, client, connection):
    """A run reads at most max_users users and the next run goes on from the cursor."""
    first = poll_connection(db, client, connection, store, page_size=2, max_users=4)

    assert first.users_read == 4
    assert first.passes_completed == 0
    assert _cursor(db).next_offset == 4

    second = poll_connection(db, client, connection, store, page_size=2, max_users=4)

    # Six users are enrolled: five learners and the instructor.
    assert second.users_read == 2
    assert second.passes_completed == 1
    assert _cursor(db).next_offset == 0
    assert _cursor(db).last_pass_completed_at is not None


def test_poll_pages_enrolments(db, moodle, client, connection):
    """Enrolled users are read with limitfrom and limitnumber, one page at a time."""
    poll_connection(db, client, connection, store, page_size=2, max_users=10)

    pages = [
        params
        for wsfunction, params in moodle.calls
        if wsfunction == "core_enrol_get_enrolled_users"
    ]
    offsets = [int(page["options[1][value]"]) for page in pages]
    # Six users fill three pages, so only the empty fourth page ends the list.
    assert offsets == [0, 2, 4, 6]


def test_poll_skips_untracked_instructor(db, moodle, client, connection):
    """The instructor, whom Moodle does not track, is skipped and counted."""
    result = poll_connection(db, client, connection, store)

    assert result.users_skipped == 1
    assert result.users_read == 6


def test_poll_records_teacher_override(db, moodle, client, connection):
    """A teacher's override to incomplete becomes an incomplete activity fact."""
    moodle.complete_course(DEMO_COURSE_ID, 3002, COMPLETED_AT, send_event=False)
    moodle.override_activity_state(
        DEMO_COURSE_ID, 3002, 4001, COMPLETION_INCOMPLETE, COMPLETED_AT + 60
    )

    facts = facts_for_learner(client, connection, str(DEMO_COURSE_ID), "3002")

    reversal = [fact for fact in facts if fact.activity_id == "4001"]
    assert len(reversal) == 1
    assert reversal[0].state.value == "incomplete"
    assert reversal[0].occurred_at.timestamp() == COMPLETED_AT + 60


def test_token_revoked_mid_poll_keeps_progress(db, moodle, client, connection):
    """A token revoked after the first page raises, keeping that page's facts and cursor."""
    moodle.complete_course(DEMO_COURSE_ID, 3001, COMPLETED_AT, send_event=False)
    original_call = moodle.call

    def revoke_after_first_page(wsfunction, params, functions=()):
        if (
            wsfunction == "core_enrol_get_enrolled_users"
            and params.get("options[1][value]") != "0"
        ):
            moodle.revoke_token(TOKEN)
        return original_call(wsfunction, params, functions)

    moodle.call = revoke_after_first_page

    with pytest.raises(MoodleTokenInvalid):
        poll_connection(db, client, connection, store, page_size=2, max_users=10)

    db.rollback()
    assert _cursor(db).next_offset == 2
    assert any(fact.lms_user_id == "3001" for fact in _facts(db))

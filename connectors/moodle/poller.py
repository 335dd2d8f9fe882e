"""Re-read learners' completion from Moodle and turn it into completion facts.

Events are fast but incomplete, because Moodle may fire none for bulk grade changes
and some course restores, and a webhook delivery can fail. The reconciliation poll reads
each course's enrolled users page by page and, for each one, the course and
activity completion that Moodle stores. Every completion it reads becomes a
`CompletionFact` with source POLL. Facts go through the same store as events, and
a fact's dedupe key leaves the source out, so a completion that an event already
reported is stored once.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from badge_engine.db import utcnow
from badge_engine.facts import CompletionFact, CompletionState, FactSource
from badge_engine.identity import IdentityConflict, change_email
from badge_engine.models import Achievement, Learner
from connectors.models import LmsConnection
from connectors.poll_cursors import course_cursor
from connectors.moodle.client import EnrolledUser, MoodleClient
from connectors.moodle.errors import (
    MoodleAccessDenied,
    MoodleError,
    MoodleNoCompletionCriteria,
    MoodleTokenInvalid,
    MoodleUnavailable,
)
from connectors.moodle.models import MoodlePollCursor

logger = logging.getLogger(__name__)

# Enrolled users read per web service call, and per course in one poll run. A run
# therefore makes at most 2 x MAX_USERS_PER_RUN completion calls per course.
PAGE_SIZE = 50
MAX_USERS_PER_RUN = 200

# Stores one fact and returns the id of the outbox message it queued, or None when
# the fact was stored before.
StoreFact = Callable[[Session, CompletionFact], "int | None"]


@dataclass
class PollResult:
    """Counts of one poll run of one connection, and the outbox messages it queued.

    The caller dispatches `message_ids` after the final commit.
    """

    courses: int = 0
    users_read: int = 0
    facts_new: int = 0
    users_skipped: int = 0
    passes_completed: int = 0
    message_ids: list[int] = field(default_factory=list)


def facts_for_learner(
    client: MoodleClient, connection: LmsConnection, course_id: str, user_id: str
) -> list[CompletionFact]:
    """Read one learner's course and activity completion as poll facts.

    A course fact is made when Moodle reports the course complete with a time.
    An activity fact is made for each activity whose completion row Moodle has
    written (its time is not 0), whatever its state, so a teacher's override back
    to incomplete becomes a reversal fact.

    Raises the client's typed errors, except MoodleNoCompletionCriteria, after
    which only the activity facts are returned.
    """
    facts = []
    try:
        status = client.get_course_completion_status(course_id, user_id)
    except MoodleNoCompletionCriteria:
        status = None

    if status is not None and status.completed and status.time_completed:
        facts.append(
            _poll_fact(
                connection,
                course_id,
                user_id,
                activity_id=None,
                state=CompletionState.COMPLETE,
                occurred_at=status.time_completed,
                raw=status.raw,
            )
        )

    for activity in client.get_activities_completion_status(course_id, user_id):
        if activity.time_completed is None:
            continue
        facts.append(
            _poll_fact(
                connection,
                course_id,
                user_id,
                activity_id=str(activity.cmid),
                state=activity.state,
                occurred_at=activity.time_completed,
                raw=activity.raw,
            )
        )
    return facts


def poll_connection(
    session: Session,
    client: MoodleClient,
    connection: LmsConnection,
    store: StoreFact,
    *,
    page_size: int = PAGE_SIZE,
    max_users: int = MAX_USERS_PER_RUN,
) -> PollResult:
    """Poll every course of the connection that awards an achievement.

    Commits after each page, so a run cut short keeps what it stored and its
    cursor. Raises MoodleTokenInvalid, MoodleAccessDenied and MoodleUnavailable,
    which stop the run for the whole connection.
    """
    course_ids = session.scalars(
        select(Achievement.lms_course_id)
        .where(
            Achievement.provider_id == connection.provider_id,
            Achievement.lms_connection_id == connection.id,
        )
        .distinct()
        .order_by(Achievement.lms_course_id)
    ).all()

    result = PollResult()
    for course_id in course_ids:
        poll_course(
            session,
            client,
            connection,
            course_id,
            store,
            result,
            page_size=page_size,
            max_users=max_users,
        )
        result.courses += 1
    return result


def poll_course(
    session: Session,
    client: MoodleClient,
    connection: LmsConnection,
    course_id: str,
    store: StoreFact,
    result: PollResult,
    *,
    page_size: int = PAGE_SIZE,
    max_users: int = MAX_USERS_PER_RUN,
) -> None:
    """Read up to `max_users` enrolled users of one course from its cursor onwards."""
    cursor = _cursor_for(session, connection, course_id)
    users_this_run = 0

    while users_this_run < max_users:
        limit = min(page_size, max_users - users_this_run)
        users = client.get_enrolled_users(
            int(course_id), offset=cursor.next_offset, limit=limit
        )
        for user in users:
            _update_learner_identity(session, connection, user)
            _poll_learner(
                session,
                client,
                connection,
                course_id,
                user.user_id,
                store,
                result,
                cursor,
            )

        users_this_run += len(users)
        result.users_read += len(users)
        cursor.last_polled_at = utcnow()
        if len(users) < limit:
            # A short page is the end of the list: the next run starts a new pass.
            cursor.next_offset = 0
            cursor.last_pass_completed_at = utcnow()
            result.passes_completed += 1
            session.commit()
            return

        cursor.next_offset += len(users)
        session.commit()


def _poll_learner(
    session: Session,
    client: MoodleClient,
    connection: LmsConnection,
    course_id: str,
    user_id: int,
    store: StoreFact,
    result: PollResult,
    cursor: MoodlePollCursor,
) -> None:
    try:
        facts = facts_for_learner(client, connection, course_id, str(user_id))
    except (MoodleTokenInvalid, MoodleAccessDenied, MoodleUnavailable):
        raise
    except MoodleError as error:
        # A user Moodle does not track in this course (a teacher, say) returns
        # errorcode nottracked; skip that user and go on with the others.
        result.users_skipped += 1
        logger.info(
            "Moodle poll skipped a user: provider_id=%s connection_id=%s "
            "course_id=%s user_id=%s errorcode=%s",
            connection.provider_id,
            connection.id,
            course_id,
            user_id,
            error.errorcode,
        )
        return

    for fact in facts:
        message_id = store(session, fact)
        if message_id is not None:
            result.facts_new += 1
            result.message_ids.append(message_id)
            cursor.facts_found += 1


def _update_learner_identity(
    session: Session, connection: LmsConnection, user: EnrolledUser
) -> None:
    """Fill in the name and update the email of a known learner from Moodle's list.

    A launch or an earlier fact may have created the learner with the Moodle user
    id only, so the email lets the same person be matched across launch and polls.
    """
    learner = session.scalar(
        select(Learner).where(
            Learner.provider_id == connection.provider_id,
            Learner.lms_connection_id == connection.id,
            Learner.lms_user_id == str(user.user_id),
        )
    )
    if learner is None:
        return
    if user.email and learner.email != user.email:
        try:
            # Keeps the earlier address as an identity, so its badges still match.
            change_email(session, learner, user.email)
        except IdentityConflict as error:
            logger.warning("moodle poll kept learner %s's email: %s", learner.id, error)
    if learner.name is None and user.fullname:
        learner.name = user.fullname


def _cursor_for(
    session: Session, connection: LmsConnection, course_id: str
) -> MoodlePollCursor:
    return course_cursor(
        session, MoodlePollCursor, connection, course_id, next_offset=0, facts_found=0
    )


def _poll_fact(
    connection: LmsConnection,
    course_id: str,
    user_id: str,
    *,
    activity_id: str | None,
    state: CompletionState,
    occurred_at: datetime,
    raw: dict,
) -> CompletionFact:
    target = f"cm{activity_id}" if activity_id else "course"
    return CompletionFact(
        provider_id=connection.provider_id,
        lms_connection_id=connection.id,
        lms_course_id=course_id,
        lms_user_id=user_id,
        activity_id=activity_id,
        state=state,
        occurred_at=occurred_at,
        source=FactSource.POLL,
        source_event_id=(
            f"poll|{course_id}|{user_id}|{target}|{int(occurred_at.timestamp())}"
        ),
        raw_payload=raw,
    )

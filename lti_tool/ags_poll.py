"""Grade facts from LTI Assignment and Grade Services (AGS), for grades the LMS API lacks.

Which source a grade rule reads is decided by the item it names:

- An item whose activity id starts with "ags-" is an AGS line item. Its grades come
  only from this poll, which reads the line item's results and stores one grade fact
  per learner and score.
- Every other activity id, and the course total, is read through the LMS's REST API
  (Moodle web services, Canvas REST) as before.

The poll reads a course's line items whenever its launches carried the AGS endpoint
claim and its registration belongs to an LMS connection, so the rule builder can
offer them. It reads results only for line items that an award rule of the course
names, so a course that only uses the LMS API costs one line item request a poll.
Learners are matched by the LTI `sub` of their latest launch, because AGS results name
learners by `sub`. A result whose `sub` no launch has brought yet is counted and
skipped until the learner launches the tool once.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from dataclasses import dataclass, field

from sqlalchemy import select
from sqlalchemy.orm import Session

from badge_engine.db import utcnow
from badge_engine.fact_store import record_fact
from badge_engine.facts import CompletionFact, CompletionState, FactSource
from badge_engine.models import Achievement, Learner
from badge_engine.outbound import OutboundPolicy
from connectors.models import ConnectionState, LmsConnection
from lti_tool.bridge import Bridge
from lti_tool.lti.ags import AgsClient, LineItem
from lti_tool.models import AGS_ACTIVITY_PREFIX, AgsLineItem, LtiCourse, Registration


@dataclass
class AgsPollResult:
    """Counts of one course's poll, and the outbox messages to send after commit."""

    line_items: int = 0
    line_items_read: int = 0
    results_read: int = 0
    facts_new: int = 0
    unmatched: int = 0
    message_ids: list[int] = field(default_factory=list)


@dataclass(frozen=True)
class AgsCourse:
    """A course the poll may read, with the registration and connection it uses."""

    course: LtiCourse
    registration: Registration
    connection: LmsConnection


def pollable_course_ids(session: Session) -> list[int]:
    """Return the ids of courses with a stored AGS endpoint on a working connection."""
    return list(
        session.scalars(
            select(LtiCourse.id)
            .join(Registration, Registration.id == LtiCourse.registration_id)
            .join(LmsConnection, LmsConnection.id == Registration.lms_connection_id)
            .where(
                LtiCourse.ags_scopes.is_not(None),
                LtiCourse.ags_lineitems_url.is_not(None)
                | LtiCourse.ags_lineitem_url.is_not(None),
                Registration.auth_token_url.is_not(None),
                LmsConnection.provider_id == LtiCourse.provider_id,
                LmsConnection.state == ConnectionState.OK.value,
            )
            .order_by(LtiCourse.id)
        )
    )


def load_course(session: Session, course_id: int) -> AgsCourse | None:
    """Return the course with its registration and connection, or None if unusable
    (unknown, without a connection, or on a disconnected one)."""
    row = session.execute(
        select(LtiCourse, Registration, LmsConnection)
        .join(Registration, Registration.id == LtiCourse.registration_id)
        .join(LmsConnection, LmsConnection.id == Registration.lms_connection_id)
        .where(
            LtiCourse.id == course_id,
            Registration.provider_id == LtiCourse.provider_id,
            LmsConnection.provider_id == LtiCourse.provider_id,
            LmsConnection.state != ConnectionState.DISCONNECTED.value,
        )
    ).one_or_none()
    if row is None:
        return None

    return AgsCourse(*row)


def client_for(bridge: Bridge, target: AgsCourse) -> AgsClient:
    return AgsClient(
        target.registration,
        bridge.vault,
        OutboundPolicy.from_settings(bridge.settings),
        granted_scopes=tuple((target.course.ags_scopes or "").split()),
        timeout=bridge.settings.http_timeout_seconds,
    )


def poll_course(
    session: Session, client: AgsClient, target: AgsCourse
) -> AgsPollResult:
    """Store the course's line items and a grade fact for each new or changed score.

    Raises the client's AgsError; facts stored before it stay in the session, and
    the caller decides whether to commit them. Safe to run twice: line items are
    upserted and grade facts deduplicated by learner, line item and percentage.
    """
    course = target.course
    result = AgsPollResult()
    if course.ags_lineitems_url:
        items = client.line_items(course.ags_lineitems_url)
    else:
        items = [client.line_item(course.ags_lineitem_url)]
    rows = store_line_items(session, target, items)
    result.line_items = len(rows)

    named = rule_activity_ids(session, target.connection.id, course.lms_course_id)
    for row in rows:
        if row.activity_id not in named:
            continue

        result.line_items_read += 1
        results = client.results(row.lineitem_url)
        result.results_read += len(results)
        learners = _learners_by_sub(
            session, target.connection, (r.user_id for r in results)
        )
        for ags_result in results:
            percent = ags_result.percent
            if percent is None:
                continue

            lms_user_id = learners.get(ags_result.user_id)
            if lms_user_id is None:
                result.unmatched += 1
                continue

            fact = CompletionFact(
                provider_id=course.provider_id,
                lms_connection_id=target.connection.id,
                lms_course_id=course.lms_course_id,
                lms_user_id=lms_user_id,
                activity_id=row.activity_id,
                # A score on the platform means the item was graded; the rule's
                # threshold decides whether the grade earns anything.
                state=CompletionState.COMPLETE,
                # AGS results carry no grading time, so the first poll that saw
                # this score dates it.
                occurred_at=utcnow(),
                source=FactSource.POLL,
                grade_percent=round(percent, 4),
                raw_payload={
                    "ags_result": ags_result.raw,
                    "lineitem": row.lineitem_url,
                },
            )
            _, message = record_fact(session, fact)
            if message is not None:
                result.facts_new += 1
                result.message_ids.append(message.id)

    return result


def store_line_items(
    session: Session, target: AgsCourse, items: list[LineItem]
) -> list[AgsLineItem]:
    """Insert new line items and refresh known ones; return their rows in order."""
    course = target.course
    stored = {
        row.lineitem_url_sha256: row
        for row in session.scalars(
            select(AgsLineItem).where(
                AgsLineItem.provider_id == course.provider_id,
                AgsLineItem.lti_course_id == course.id,
            )
        )
    }
    now = utcnow()
    rows = []
    for item in items:
        digest = hashlib.sha256(item.id.encode()).hexdigest()
        row = stored.get(digest)
        if row is None:
            row = AgsLineItem(
                provider_id=course.provider_id,
                lti_course_id=course.id,
                lineitem_url=item.id,
                lineitem_url_sha256=digest,
            )
            session.add(row)
            stored[digest] = row
        row.lms_connection_id = target.connection.id
        row.lms_course_id = course.lms_course_id or course.lti_context_id
        row.label = item.label[:500]
        row.score_maximum = item.score_maximum
        row.resource_link_id = (item.resource_link_id or "")[:255] or None
        row.tag = (item.tag or "")[:255] or None
        row.last_seen_at = now
        rows.append(row)

    session.flush()
    return rows


def rule_activity_ids(
    session: Session, lms_connection_id: int, lms_course_id: str | None
) -> set[str]:
    """Return the AGS activity ids that the course's award rules name."""
    rules = session.scalars(
        select(Achievement.award_rule).where(
            Achievement.lms_connection_id == lms_connection_id,
            Achievement.lms_course_id == lms_course_id,
        )
    )
    return {
        activity_id
        for rule in rules
        for activity_id in _activity_ids(rule)
        if activity_id.startswith(AGS_ACTIVITY_PREFIX)
    }


def _activity_ids(node: object) -> Iterable[str]:
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "activity_id" and isinstance(value, str):
                yield value
            elif key == "activity_ids" and isinstance(value, list):
                yield from (item for item in value if isinstance(item, str))
            else:
                yield from _activity_ids(value)
    elif isinstance(node, list):
        for item in node:
            yield from _activity_ids(item)


def _learners_by_sub(
    session: Session, connection: LmsConnection, subs: Iterable[str]
) -> dict[str, str]:
    unique_subs = sorted(set(subs))
    if not unique_subs:
        return {}

    rows = session.execute(
        select(Learner.lti_sub, Learner.lms_user_id)
        .where(
            Learner.provider_id == connection.provider_id,
            Learner.lms_connection_id == connection.id,
            Learner.lti_sub.in_(unique_subs),
        )
        .order_by(Learner.id)
    )
    # The oldest learner wins where two rows share a sub, so the choice is stable.
    learners: dict[str, str] = {}
    for sub, lms_user_id in rows:
        learners.setdefault(sub, lms_user_id)
    return learners

"""A course's activities for the rule builder, and their names for the learner page.

The instructor page reads the activity list from the LMS while the instructor builds
a rule, because the rule must name activities that exist now. The names are kept in
`course_activity_names`, so the learner page can name what is still missing without
calling the LMS.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import ForeignKey, String, UniqueConstraint, select
from sqlalchemy.orm import Mapped, Session, mapped_column

from badge_engine.db import Base, utcnow
from badge_engine.facts import CompletionState
from badge_engine.models import Achievement, CompletionFactRecord
from badge_engine.rules import ActivityProgress, LearnerProgress
from connectors.models import LmsConnection, LmsKind
from connectors.moodle.conversions import CompletionTracking
from connectors.moodle.errors import MoodleError
from lti_tool.bridge import Bridge
from lti_tool.logs import get_logger
from lti_tool.models import AgsLineItem

log = get_logger(__name__)

# The rule builder lists AGS line items under this section name.
AGS_SECTION = "Grades read through LTI Assignment and Grade Services"
DONE_STATES = (CompletionState.COMPLETE.value, CompletionState.PASSED.value)


class CourseActivityName(Base):
    """The last name the LMS reported for one activity of one course."""

    __tablename__ = "course_activity_names"

    id: Mapped[int] = mapped_column(primary_key=True)
    provider_id: Mapped[int] = mapped_column(ForeignKey("providers.id"), index=True)
    lms_connection_id: Mapped[int] = mapped_column(ForeignKey("lms_connections.id"))
    lms_course_id: Mapped[str] = mapped_column(String(64))
    activity_id: Mapped[str] = mapped_column(String(64))
    name: Mapped[str] = mapped_column(String(500))
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)

    __table_args__ = (
        # Named by hand: the generated name is longer than PostgreSQL's 63 characters.
        UniqueConstraint(
            "lms_connection_id",
            "lms_course_id",
            "activity_id",
            name="uq_course_activity_names_activity",
        ),
    )


# The kind of an AGS line item, which is not an LMS activity type.
AGS_KIND = "ags_line_item"


@dataclass(frozen=True)
class Activity:
    """One activity an award rule can name.

    `kind` is the LMS's own type: the Moodle module name (`quiz`, `page`), the
    Canvas module item type (`Assignment`, `Page`), or `ags_line_item`. It is
    empty when the LMS did not send one.
    """

    activity_id: str
    name: str
    section: str
    tracked: bool
    kind: str = ""


class ActivitiesUnavailable(Exception):
    """The activity list could not be read; the message names the cause and the fix."""


def read_course_activities(
    bridge: Bridge, session: Session, connection: LmsConnection, lms_course_id: str
) -> list[Activity]:
    """Read the course's activities from the LMS and store their names.

    The course's AGS line items, as the last AGS poll stored them, follow the LMS's
    activities, and a rule on one of them reads its grades through AGS. A connection
    without API credentials, or one that is not Moodle, offers those line items alone.
    Raises ActivitiesUnavailable when there is nothing to offer and when the Moodle
    call fails or times out.
    The caller commits.
    """
    from lti_tool.ags_progress import lms_api_available

    line_items = ags_line_item_activities(session, connection, lms_course_id)
    has_api = lms_api_available(session, connection)
    if not has_api or connection.kind != LmsKind.MOODLE.value:
        if line_items:
            _store_names(session, connection, lms_course_id, line_items)
            return line_items

    if not has_api:
        raise ActivitiesUnavailable(
            "this LMS connection has no API credentials, so only the course's AGS line "
            "items can be offered, and none has been read yet; enable the tool's "
            "grade services on the platform, launch the tool from the course, and "
            "reload this page after the next AGS poll (every 15 minutes)"
        )
    if connection.kind != LmsKind.MOODLE.value:
        raise ActivitiesUnavailable(
            "activity lists are read from Moodle only so far; use the course "
            "completion rule"
        )
    if not lms_course_id or not lms_course_id.isdigit():
        raise ActivitiesUnavailable(
            f"the LMS course id {lms_course_id!r} is not a Moodle course id; "
            "launch the tool from the Moodle course"
        )
    from lti_tool.pipeline import moodle_client_for

    try:
        with moodle_client_for(bridge, connection) as client:
            modules = client.get_course_contents(int(lms_course_id))
    except MoodleError as error:
        log.warning(
            "course_activities_unavailable",
            provider_id=connection.provider_id,
            lms_connection_id=connection.id,
            lms_course_id=lms_course_id,
            error=str(error),
        )
        raise ActivitiesUnavailable(str(error)) from None

    activities = moodle_activities(modules) + line_items
    _store_names(session, connection, lms_course_id, activities)
    return activities


def moodle_activities(modules: list) -> list[Activity]:
    """Return Moodle course modules (from `get_course_contents`) as activities."""
    return [
        Activity(
            activity_id=str(module.cmid),
            name=module.name,
            section=module.section_name,
            tracked=module.completion != CompletionTracking.NONE,
            kind=module.modname,
        )
        for module in modules
    ]


def canvas_activities(modules: list) -> list[Activity]:
    """Return the module items of Canvas modules (from `list_modules`) as activities.

    An item is tracked when it has a completion requirement, because only those
    items appear in a learner's activity progress.
    """
    activities = []
    for module in modules:
        if not isinstance(module, dict):
            continue
        for item in module.get("items") or []:
            if not isinstance(item, dict) or item.get("id") is None:
                continue
            activities.append(
                Activity(
                    activity_id=str(item["id"]),
                    name=str(item.get("title") or ""),
                    section=str(module.get("name") or ""),
                    tracked=isinstance(item.get("completion_requirement"), dict),
                    kind=str(item.get("type") or ""),
                )
            )
    return activities


def ags_line_item_activities(
    session: Session, connection: LmsConnection, lms_course_id: str
) -> list[Activity]:
    """Return the course's stored AGS line items as activities for the rule builder."""
    rows = session.scalars(
        select(AgsLineItem)
        .where(
            AgsLineItem.provider_id == connection.provider_id,
            AgsLineItem.lms_connection_id == connection.id,
            AgsLineItem.lms_course_id == lms_course_id,
        )
        .order_by(AgsLineItem.id)
    )
    return [
        Activity(
            activity_id=row.activity_id,
            name=row.label,
            section=AGS_SECTION,
            tracked=True,
            kind=AGS_KIND,
        )
        for row in rows
    ]


def activity_rows(activities: list[Activity]) -> list[dict[str, Any]]:
    """Return activities as the JSON rows that the CLI and the API list."""
    return [
        {
            "id": activity.activity_id,
            "name": activity.name,
            "kind": activity.kind,
            "section": activity.section,
            "tracked": activity.tracked,
        }
        for activity in activities
    ]


def _store_names(
    session: Session,
    connection: LmsConnection,
    lms_course_id: str,
    activities: list[Activity],
) -> None:
    known = {
        row.activity_id: row
        for row in session.scalars(
            select(CourseActivityName).where(
                CourseActivityName.provider_id == connection.provider_id,
                CourseActivityName.lms_connection_id == connection.id,
                CourseActivityName.lms_course_id == lms_course_id,
            )
        )
    }
    for activity in activities:
        row = known.get(activity.activity_id)
        if row is None:
            session.add(
                CourseActivityName(
                    provider_id=connection.provider_id,
                    lms_connection_id=connection.id,
                    lms_course_id=lms_course_id,
                    activity_id=activity.activity_id,
                    name=activity.name[:500],
                )
            )
        elif row.name != activity.name[:500]:
            row.name = activity.name[:500]


def stored_activity_names(
    session: Session, provider_id: int, connection_id: int, lms_course_id: str
) -> dict[str, str]:
    return {
        row.activity_id: row.name
        for row in session.scalars(
            select(CourseActivityName).where(
                CourseActivityName.provider_id == provider_id,
                CourseActivityName.lms_connection_id == connection_id,
                CourseActivityName.lms_course_id == lms_course_id,
            )
        )
    }


def completed_activity_ids(
    session: Session,
    *,
    provider_id: int,
    connection_id: int,
    lms_course_id: str,
    lms_user_id: str,
    activity_ids: list[str],
) -> set[str]:
    """Return the activities whose latest recorded completion fact is complete.

    NOTE: this reads the facts the bridge has received, not the LMS, so it can lag
    behind the LMS until the next event or poll arrives.
    """
    latest: dict[str, tuple[datetime, str]] = {}
    facts = session.execute(
        select(
            CompletionFactRecord.activity_id,
            CompletionFactRecord.occurred_at,
            CompletionFactRecord.state,
        ).where(
            CompletionFactRecord.provider_id == provider_id,
            CompletionFactRecord.lms_connection_id == connection_id,
            CompletionFactRecord.lms_course_id == lms_course_id,
            CompletionFactRecord.lms_user_id == lms_user_id,
            CompletionFactRecord.activity_id.in_(activity_ids),
        )
    )
    for activity_id, occurred_at, state in facts:
        if activity_id not in latest or occurred_at >= latest[activity_id][0]:
            latest[activity_id] = (occurred_at, state)

    return {
        activity_id
        for activity_id, (_, state) in latest.items()
        if state in DONE_STATES
    }


def stored_progress(
    session: Session, achievement: Achievement, lms_user_id: str
) -> tuple[LearnerProgress, datetime]:
    """Rebuild progress from the newest stored fact per activity (and the course).

    Returns the progress and the time the newest of those facts was received, or
    now when there is none. Grades are not included.
    """
    facts = session.scalars(
        select(CompletionFactRecord)
        .where(
            CompletionFactRecord.provider_id == achievement.provider_id,
            CompletionFactRecord.lms_connection_id == achievement.lms_connection_id,
            CompletionFactRecord.lms_course_id == achievement.lms_course_id,
            CompletionFactRecord.lms_user_id == lms_user_id,
        )
        .order_by(CompletionFactRecord.occurred_at)
    ).all()
    course_completed_at = None
    activities: dict[str, ActivityProgress] = {}
    read_at = None
    for fact in facts:
        state = CompletionState(fact.state)
        read_at = max(read_at or fact.received_at, fact.received_at)
        if fact.activity_id is None:
            course_completed_at = fact.occurred_at if state.counts_as_complete else None
        else:
            activities[fact.activity_id] = ActivityProgress(state, fact.occurred_at)
    progress = LearnerProgress(
        course_completed=course_completed_at is not None,
        course_completed_at=course_completed_at,
        activities=activities,
    )
    return progress, read_at or utcnow()

"""Achievement actions: add, list, show and edit badges, preview who earns one, backfill.

An award rule is the same JSON document the instructor's page stores (see
docs/award-rules.md) and passes the same validation.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from badge_engine.alignments import InvalidAlignment, validate_alignments
from badge_engine.models import (
    Achievement,
    Credential,
    CredentialStatus,
    Learner,
    Provider,
    achievement_name_key,
)
from badge_engine.rules import (
    InvalidAwardRule,
    evaluate_award_rule,
    same_award_rule,
    validate_award_rule,
)
from connectors.canvas.errors import CanvasError
from connectors.models import LmsConnection
from lti_tool.badge_text import character_label, first_bidi_control, is_invisible
from lti_tool.bridge import Bridge
from lti_tool.operations import (
    ActionError,
    InvalidInput,
    LmsUnreachable,
    NotFound,
    audit,
    iso,
)
from lti_tool.operations.course_check import (
    check_course_and_rule,
    check_moodle_course_id,
)
from lti_tool.operations.lms import check_connected, find_connection
from lti_tool.operations.next_steps import API_STEPS, CLI_STEPS, NextSteps

# Importing the rosters also registers the Canvas roster for backfill jobs.
from lti_tool.operations.rosters import check_canvas_id, request_roster

NAME_MAX = 200
TEXT_MAX = 4000
COURSE_ID_MAX = 64
PREVIEW_PAGE_SIZE = 100


def parse_rule(rule: Any, field: str = "--rule") -> dict[str, Any]:
    """Return the award rule document from JSON text or a parsed value, checked.

    `field` names the rule as the caller's interface takes it."""
    if isinstance(rule, str):
        try:
            rule = json.loads(rule)
        except json.JSONDecodeError as error:
            raise InvalidInput(
                f"{field} is not valid JSON ({error.msg} at character {error.pos}); "
                'pass a document such as {"version": 1, "rule": {"kind": '
                '"course_completed"}}',
                code="invalid_rule",
            ) from None
    try:
        validate_award_rule(rule)
    except InvalidAwardRule as error:
        raise InvalidInput(str(error), code="invalid_rule") from None

    return rule


def _text(value: str, option: str, limit: int) -> str:
    value = value.strip()
    if not value or len(value) > limit:
        raise InvalidInput(
            f"{option} must be 1 to {limit} characters, got {len(value)}",
            code="invalid_text",
        )
    if is_invisible(value):
        raise InvalidInput(
            f"{option} contains only characters that show nothing (spaces, "
            "format or control characters); enter visible text",
            code="invalid_text",
        )
    bidi_control = first_bidi_control(value)
    if bidi_control is not None:
        position, character = bidi_control
        raise InvalidInput(
            f"{option} contains the direction control character "
            f"{character_label(character)} at position {position + 1}, which can "
            "make the text read differently from what is stored; delete it. "
            "Right-to-left text and the marks U+200E and U+200F are accepted",
            code="invalid_text",
        )

    return value


def achievement_dict(session: Session, achievement: Achievement) -> dict[str, Any]:
    connection = session.get(LmsConnection, achievement.lms_connection_id)
    return {
        "id": achievement.public_id,
        "lms_connection": connection.public_id if connection else None,
        "course_id": achievement.lms_course_id,
        "name": achievement.name,
        "description": achievement.description,
        "criteria": achievement.criteria_narrative,
        "image_url": achievement.image_url,
        "alignments": achievement.alignments or [],
        "award_rule": achievement.award_rule,
        "created_at": iso(achievement.created_at),
    }


def parse_alignments(
    value: Any, field: str = "--alignments"
) -> list[dict[str, str]] | None:
    """Check alignments given as a list or as JSON text; None when there are none.

    `field` names the alignments as the caller's interface takes them."""
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except ValueError as error:
            raise InvalidInput(
                f"{field} is not valid JSON ({error}); give a list such as "
                '[{"targetName": "First aid", "targetUrl": "https://..."}]',
                code="invalid_alignments",
            ) from None
    try:
        return validate_alignments(value) or None
    except InvalidAlignment as error:
        raise InvalidInput(str(error), code="invalid_alignments") from None


class AchievementExists(ActionError):
    """A badge of the same course already has the name given.

    Names are compared by `achievement_name_key`, so letter case and runs of
    whitespace do not count. `identical` is True when every value given equals the
    existing badge's, with award rules compared by `same_award_rule`.
    """

    code = "achievement_exists"
    http_status = 409

    def __init__(
        self,
        existing: Achievement,
        identical: bool = False,
        renamed: Achievement | None = None,
    ) -> None:
        problem = (
            f"course {existing.lms_course_id} already has a badge named "
            f"{existing.name!r} (achievement {existing.public_id})"
        )
        self.existing = existing
        # Read now, because the caller may roll the session back before reporting.
        self.existing_id = existing.public_id
        self.identical = identical
        if renamed is not None:
            super().__init__(
                f"{problem}; give achievement {renamed.public_id} another name",
                code=self.code,
            )
            return
        super().__init__(
            f"{problem}; change that badge with `hpass-bridge achievement edit "
            f"{existing.public_id}` instead of adding another, or choose another name",
            api_message=f"{problem}; change that badge with PATCH "
            f"/api/v1/achievements/{existing.public_id} instead of adding another, "
            "or choose another name",
        )


def same_name_achievement(
    session: Session,
    *,
    provider_id: int,
    connection_id: int,
    course_id: str,
    name: str,
    exclude: Achievement | None = None,
) -> Achievement | None:
    """Return the oldest badge of the course whose name matches `name`, if any.

    A course is one provider's course on one LMS connection. `exclude` is left out,
    so that a badge being renamed does not match itself.
    """
    key = achievement_name_key(name)
    query = (
        select(Achievement)
        .where(
            Achievement.provider_id == provider_id,
            Achievement.lms_connection_id == connection_id,
            Achievement.lms_course_id == course_id,
        )
        .order_by(Achievement.id)
    )
    for candidate in session.scalars(query):
        if candidate is exclude:
            continue
        if achievement_name_key(candidate.name) == key:
            return candidate

    return None


def _same_values(existing: Achievement, new: Achievement) -> bool:
    return (
        existing.name == new.name
        and existing.description == new.description
        and existing.criteria_narrative == new.criteria_narrative
        and (existing.alignments or []) == (new.alignments or [])
        and same_award_rule(existing.award_rule, new.award_rule)
    )


def _name_taken_error(
    session: Session, achievement: Achievement
) -> AchievementExists | None:
    """Return the error for another badge of the course with this name, or None."""
    existing = same_name_achievement(
        session,
        provider_id=achievement.provider_id,
        connection_id=achievement.lms_connection_id,
        course_id=achievement.lms_course_id,
        name=achievement.name,
        exclude=achievement,
    )
    if existing is None:
        return None
    return AchievementExists(existing, _same_values(existing, achievement))


def check_name_free(session: Session, achievement: Achievement) -> None:
    """Raise AchievementExists when another badge of the course has this name."""
    error = _name_taken_error(session, achievement)
    if error is not None:
        raise error


def insert_achievement(session: Session, achievement: Achievement) -> None:
    """Add a new badge to the session, rejecting a name its course already has.

    The unique constraint on the name key catches a badge of the same name that a
    concurrent request committed after the check. That also raises
    AchievementExists, and the savepoint keeps the caller's transaction usable.
    """
    check_name_free(session, achievement)
    try:
        with session.begin_nested():
            session.add(achievement)
            session.flush()
    except IntegrityError:
        error = _name_taken_error(session, achievement)
        if error is None:
            raise
        raise error from None


def add_achievement(
    session: Session,
    actor: str,
    provider: Provider,
    *,
    bridge: Bridge,
    connection_id: str,
    course_id: str,
    name: str,
    description: str,
    criteria: str,
    rule: Any,
    alignments: Any = None,
    skip_lms_check: bool = False,
    steps: NextSteps = CLI_STEPS,
) -> Achievement:
    """Add a badge after checking its input, then its course and rule in the LMS.

    The LMS check (see `lti_tool.operations.course_check`) runs last, so a bad
    value is rejected without an LMS call. With `skip_lms_check` the LMS is not
    called, and the audit event records that. A name that another badge of the
    course has raises AchievementExists, before the LMS check. Error messages name
    the next step in the caller's interface, `steps`.
    """
    connection = find_connection(session, connection_id, provider.id, steps=steps)
    check_connected(connection)
    course_id = _text(str(course_id), steps.field("course"), COURSE_ID_MAX)
    if connection.kind == "canvas":
        check_canvas_id(course_id, "course id")
    elif connection.kind == "moodle":
        check_moodle_course_id(connection, course_id)
    achievement = Achievement(
        provider_id=provider.id,
        lms_connection_id=connection.id,
        lms_course_id=course_id,
        name=_text(name, steps.field("name"), NAME_MAX),
        description=_text(description, steps.field("description"), TEXT_MAX),
        criteria_narrative=_text(criteria, steps.field("criteria"), TEXT_MAX),
        alignments=parse_alignments(alignments, steps.field("alignments")),
        award_rule=parse_rule(rule, steps.field("rule")),
    )
    check_name_free(session, achievement)
    if not skip_lms_check:
        check_course_and_rule(
            bridge,
            session,
            connection,
            course_id,
            achievement.award_rule,
            steps=steps,
        )
    insert_achievement(session, achievement)
    audit(
        session,
        actor,
        "achievement.created",
        provider_id=provider.id,
        target=f"achievement:{achievement.public_id}",
        detail={
            "course_id": course_id,
            "rule": achievement.award_rule["rule"]["kind"],
            "lms_checked": not skip_lms_check,
        },
    )

    return achievement


def achievement_connection(
    session: Session, achievement: Achievement, steps: NextSteps = CLI_STEPS
) -> LmsConnection:
    """Return the badge's LMS connection, scoped to the badge's provider."""
    connection = session.scalar(
        select(LmsConnection).where(
            LmsConnection.id == achievement.lms_connection_id,
            LmsConnection.provider_id == achievement.provider_id,
        )
    )
    if connection is None:
        raise ActionError(
            f"achievement {achievement.public_id} has no LMS connection, so its "
            "course cannot be checked; add the badge again under a connection from "
            f"{steps.list_connections}",
            code="no_lms_connection",
        )

    return connection


def edit_achievement(
    session: Session,
    actor: str,
    achievement: Achievement,
    *,
    bridge: Bridge,
    name: str | None = None,
    description: str | None = None,
    criteria: str | None = None,
    rule: Any = None,
    alignments: Any = None,
    skip_lms_check: bool = False,
    steps: NextSteps = CLI_STEPS,
) -> list[str]:
    """Change the given fields and return their names.

    Every value is checked before anything changes. A rule that awards like the
    stored one (`same_award_rule`) is not a change, so the stored document stays.
    A new rule is then checked against the course in the LMS, as `add_achievement`
    does, unless `skip_lms_check` is set. Returns an empty list, and records
    nothing, when the only value given is a rule equivalent to the stored one.
    """
    changes: dict[str, Any] = {}
    if rule is not None:
        changes["award_rule"] = parse_rule(rule, steps.field("rule"))
    if name is not None:
        changes["name"] = _text(name, steps.field("name"), NAME_MAX)
    if description is not None:
        changes["description"] = _text(
            description, steps.field("description"), TEXT_MAX
        )
    if criteria is not None:
        changes["criteria_narrative"] = _text(
            criteria, steps.field("criteria"), TEXT_MAX
        )
    if alignments is not None:
        changes["alignments"] = parse_alignments(alignments, steps.field("alignments"))
    if not changes:
        fields = steps.field_list(
            ["name", "description", "criteria", "alignments", "rule"]
        )
        raise InvalidInput(
            f"nothing to change; give {fields}",
            code="nothing_to_change",
        )
    if "award_rule" in changes and same_award_rule(
        changes["award_rule"], achievement.award_rule
    ):
        del changes["award_rule"]
        if not changes:
            return []
    if "name" in changes:
        _check_rename(session, achievement, changes["name"])
    if "award_rule" in changes and not skip_lms_check:
        check_course_and_rule(
            bridge,
            session,
            achievement_connection(session, achievement, steps),
            achievement.lms_course_id,
            changes["award_rule"],
            steps=steps,
        )

    detail: dict[str, Any] = {"fields": sorted(changes)}
    if "award_rule" in changes:
        detail.update(rule_change_detail(achievement.award_rule, changes["award_rule"]))
        detail["lms_checked"] = not skip_lms_check
    for field, value in changes.items():
        setattr(achievement, field, value)
    audit(
        session,
        actor,
        "achievement.updated",
        provider_id=achievement.provider_id,
        target=f"achievement:{achievement.public_id}",
        detail=detail,
    )

    return sorted(changes)


def _check_rename(session: Session, achievement: Achievement, name: str) -> None:
    existing = same_name_achievement(
        session,
        provider_id=achievement.provider_id,
        connection_id=achievement.lms_connection_id,
        course_id=achievement.lms_course_id,
        name=name,
        exclude=achievement,
    )
    if existing is not None:
        raise AchievementExists(existing, renamed=achievement)


def rule_change_detail(old_rule: dict, new_rule: dict) -> dict[str, Any]:
    """Return the audit detail of an award rule change: both rule documents."""
    return {"old_rule": old_rule, "new_rule": new_rule}


def list_achievements(
    session: Session, provider: Provider, course_id: str | None = None
) -> list[Achievement]:
    query = select(Achievement).where(Achievement.provider_id == provider.id)
    if course_id is not None:
        query = query.where(Achievement.lms_course_id == course_id)

    return list(session.scalars(query.order_by(Achievement.id)))


def find_achievement(
    session: Session, public_id: str, provider_id: int | None = None
) -> Achievement:
    query = select(Achievement).where(Achievement.public_id == public_id)
    if provider_id is not None:
        query = query.where(Achievement.provider_id == provider_id)
    achievement = session.scalar(query)
    if achievement is None:
        problem = f"no achievement {public_id!r}"
        raise NotFound(
            f"{problem}; see `hpass-bridge achievement list`",
            code="achievement_not_found",
            api_message=f"{problem}; see GET /api/v1/achievements",
        )

    return achievement


def lms_read_failed(
    session: Session, achievement: Achievement, problem: str
) -> LmsUnreachable:
    """Return the error for a failed read of the achievement's LMS, with the
    step that tests its connection in each interface."""
    connection_id = session.scalar(
        select(LmsConnection.public_id).where(
            LmsConnection.id == achievement.lms_connection_id,
            LmsConnection.provider_id == achievement.provider_id,
        )
    )
    return LmsUnreachable(
        f"{problem}; test the connection with {CLI_STEPS.test(connection_id)}",
        api_message=f"{problem}; test the connection with "
        f"{API_STEPS.test(connection_id)}",
    )


def roster_for(bridge: Bridge, session: Session, achievement: Achievement):
    """Return a roster of the achievement's LMS course, with short timeouts."""
    connection = session.scalar(
        select(LmsConnection).where(
            LmsConnection.id == achievement.lms_connection_id,
            LmsConnection.provider_id == achievement.provider_id,
        )
    )
    try:
        roster = request_roster(bridge, session, connection)
    except CanvasError as error:
        problem = (
            f"the Canvas connection {connection.public_id} cannot be used: {error}"
        )
        raise LmsUnreachable(
            f"{problem} Test it with {CLI_STEPS.test(connection.public_id)}",
            api_message=f"{problem} Test it with {API_STEPS.test(connection.public_id)}",
        ) from None
    if roster is None:
        raise ActionError(
            f"LMS kind {connection.kind!r} has no roster reader, so the bridge "
            "cannot read its learners' progress on request",
            code="no_roster_reader",
        )

    return roster


@dataclass(frozen=True)
class PreviewRow:
    lms_user_id: str
    name: str | None
    met: bool
    met_at: str | None
    missing: list[str]
    # Activity ids the LMS reports as completed (or passed) for this learner.
    completed_activities: list[str]
    # True when the learner has a live credential of this badge, which a backfill
    # skips.
    holds: bool = False

    @property
    def would_earn(self) -> bool:
        """The rule is met and the learner does not hold the badge yet."""
        return self.met and not self.holds


def holder_user_ids(session: Session, achievement: Achievement | None) -> set[str]:
    """Return the LMS user ids of learners with a live credential of the badge."""
    if achievement is None or achievement.id is None:
        return set()
    return set(
        session.scalars(
            select(Learner.lms_user_id)
            .join(Credential, Credential.learner_id == Learner.id)
            .where(
                Credential.provider_id == achievement.provider_id,
                Credential.achievement_id == achievement.id,
                Credential.status == CredentialStatus.LIVE.value,
                Learner.lms_connection_id == achievement.lms_connection_id,
            )
        )
    )


def preview(
    session: Session,
    bridge: Bridge,
    achievement: Achievement,
    max_learners: int | None = None,
    holders_of: Achievement | None = None,
) -> list[PreviewRow]:
    """Read enrolled learners' progress and evaluate the rule, issuing nothing.

    Rows of learners who hold a live credential of `holders_of` (by default the
    achievement itself, when it is saved) have `holds` set. With `max_learners`,
    stop after that many learners; the caller reports that the list may be
    incomplete.
    """
    holders = holder_user_ids(session, holders_of or achievement)
    roster = roster_for(bridge, session, achievement)
    rows: list[PreviewRow] = []
    offset = 0
    try:
        while max_learners is None or len(rows) < max_learners:
            page = roster.enrolled_learners(
                achievement.lms_course_id, offset, PREVIEW_PAGE_SIZE
            )
            for learner in page.learners:
                if max_learners is not None and len(rows) >= max_learners:
                    break
                progress = roster.read_progress(
                    achievement.lms_course_id, learner.lms_user_id
                )
                outcome = evaluate_award_rule(achievement.award_rule, progress)
                rows.append(
                    PreviewRow(
                        learner.lms_user_id,
                        learner.name,
                        outcome.met,
                        iso(outcome.met_at),
                        list(outcome.missing),
                        sorted(
                            activity_id
                            for activity_id, state in progress.activities.items()
                            if state.state.counts_as_complete
                        ),
                        learner.lms_user_id in holders,
                    )
                )
            offset += page.users_read
            if page.is_last:
                break
    except ActionError:
        raise
    except Exception as error:  # noqa: BLE001 - reported with the LMS named
        raise lms_read_failed(
            session,
            achievement,
            f"reading course {achievement.lms_course_id} from the LMS failed: {error}",
        ) from None

    return rows

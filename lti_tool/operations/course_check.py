"""Check a badge's course, and the activities its award rule names, against the LMS.

A badge whose course or activity does not exist in the LMS can never be earned, so
`achievement add` and `achievement edit` (and the API routes) read the course's
activities from the LMS before they store anything. The activities are those the
instructor page offers: the LMS's own (Moodle course modules, Canvas module items)
and the course's AGS line items that the last AGS poll stored.

When the LMS cannot be read, the action fails unless the caller asks to skip the
check, and then the badge is stored with a warning. The caller waits for the check,
maybe behind a reverse proxy with its own timeout, so all of its LMS requests share
one time budget (`lms_check_timeout_seconds`) and none is retried.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy.orm import Session

from badge_engine.rules import referenced_activity_ids
from connectors.canvas.client import CANVAS_LIMITS
from connectors.canvas.errors import CanvasError, CanvasNotFound
from connectors.models import LmsConnection, LmsKind
from connectors.moodle.client import MOODLE_LIMITS
from connectors.moodle.errors import MoodleError
from lti_tool.bridge import Bridge
from lti_tool.course_activities import (
    Activity,
    activity_rows,
    ags_line_item_activities,
    canvas_activities,
    moodle_activities,
)
from lti_tool.logs import get_logger
from lti_tool.operations import InvalidInput, LmsUnreachable, audit
from lti_tool.operations.next_steps import CLI_STEPS, NextSteps
from lti_tool.operations.rosters import budget_canvas_client, budget_moodle_client
from lti_tool.operations.time_budget import BudgetSession

log = get_logger(__name__)

# The setting that bounds the check, as the operator sets it.
TIMEOUT_VARIABLE = "HPASS_LMS_CHECK_TIMEOUT_SECONDS"
# Moodle's errorcode for a record that does not exist, here the requested course.
MOODLE_MISSING_RECORD = "invalidrecord"
# Activity ids listed in an error message at most.
LISTED_IDS_MAX = 20
# The longest course id a badge stores (achievements.lms_course_id).
COURSE_ID_MAX = 64

COURSE_ID_HINTS = {
    LmsKind.MOODLE.value: "the number after id= in the course's Moodle URL "
    "(course/view.php?id=...)",
    LmsKind.CANVAS.value: "the number after /courses/ in the course's Canvas URL",
}


def _course_not_found(
    connection: LmsConnection, lms_course_id: str, reason: str, saving: bool
) -> InvalidInput:
    hint = COURSE_ID_HINTS.get(connection.kind, "the LMS's own course id")
    message = (
        f"course {lms_course_id!r} was not found in the {connection.kind} LMS at "
        f"{connection.base_url} (LMS connection {connection.public_id}): {reason} "
        f"Check the course id, which is {hint}"
    )
    if saving:
        message += ". Nothing was saved"
    return InvalidInput(message, code="course_not_found")


def _unreachable(
    connection: LmsConnection,
    lms_course_id: str,
    reason: str,
    steps: NextSteps,
    saving: bool,
) -> LmsUnreachable:
    message = (
        f"the LMS could not be checked for course {lms_course_id!r} (LMS connection "
        f"{connection.public_id}): {reason} "
    )
    test = steps.test(connection.public_id)
    if not saving:
        return LmsUnreachable(
            message + f"Test the connection with {test} and try again"
        )
    return LmsUnreachable(
        message + f"Nothing was saved. Test the connection with {test} and try "
        f"again, or pass {steps.skip_check} to save the badge without the check"
    )


def _timed_out(
    connection: LmsConnection,
    lms_course_id: str,
    budget_seconds: float,
    steps: NextSteps,
    saving: bool,
) -> LmsUnreachable:
    message = (
        f"the {connection.kind} LMS at {connection.base_url} did not respond within "
        f"{budget_seconds:g} s when the bridge read course {lms_course_id!r} (LMS "
        f"connection {connection.public_id}). "
    )
    if saving:
        message += (
            "Nothing was saved. Retry later, or pass "
            f"{steps.skip_check} to save the badge without the check. "
        )
    else:
        message += "Retry later. "
    message += (
        "If the LMS stays slow, test the connection with "
        f"{steps.test(connection.public_id)}. The operator sets the time limit with "
        f"{TIMEOUT_VARIABLE}"
    )
    return LmsUnreachable(message, code="lms_timeout")


def read_lms_activities(
    bridge: Bridge,
    session: Session,
    connection: LmsConnection,
    lms_course_id: str,
    *,
    steps: NextSteps = CLI_STEPS,
    saving: bool = True,
) -> list[Activity]:
    """Read the course's activities from the LMS within the LMS check's time budget.

    Raises InvalidInput (code `course_not_found`) when the LMS reports that the
    course does not exist, and LmsUnreachable when the LMS cannot be read: no API
    credentials, a connection failure or any other LMS error, or code `lms_timeout`
    when the LMS did not respond within `lms_check_timeout_seconds`. With `saving`,
    the messages say that nothing was saved and name the way to store a badge
    anyway. A disconnected connection raises ActionError, because it has no token
    left. A Canvas token refresh writes to `session`, which the caller commits.
    """
    from lti_tool.operations.lms import check_connected

    check_connected(connection)
    budget = bridge.settings.lms_check_timeout_seconds
    policy = bridge.outbound_policy
    if connection.kind == LmsKind.MOODLE.value:
        with BudgetSession(policy, MOODLE_LIMITS, budget) as http:
            modules = _read_moodle(
                bridge, connection, lms_course_id, http, steps, saving
            )
        activities = moodle_activities(modules)
    elif connection.kind == LmsKind.CANVAS.value:
        with BudgetSession(policy, CANVAS_LIMITS, budget) as http:
            modules = _read_canvas(
                bridge, session, connection, lms_course_id, http, steps, saving
            )
        activities = canvas_activities(modules)
    else:
        raise _unreachable(
            connection,
            lms_course_id,
            f"the bridge cannot read courses of LMS kind {connection.kind!r}.",
            steps,
            saving,
        )

    return activities + ags_line_item_activities(session, connection, lms_course_id)


def list_course_activities(
    bridge: Bridge,
    session: Session,
    actor: str,
    connection: LmsConnection,
    lms_course_id: str,
    *,
    steps: NextSteps = CLI_STEPS,
) -> list[dict[str, Any]]:
    """Read the course's activities and return them as rows, with an audit event.

    The rows are those of `activity_rows`. Raises InvalidInput for an empty or
    overlong course id, and what `read_lms_activities` raises. The caller commits.
    """
    lms_course_id = lms_course_id.strip()
    if not lms_course_id or len(lms_course_id) > COURSE_ID_MAX:
        raise InvalidInput(
            f"the course id must be 1 to {COURSE_ID_MAX} characters, got "
            f"{lms_course_id[:40]!r}; use the LMS's own course id, which is "
            f"{COURSE_ID_HINTS.get(connection.kind, 'shown in its course URL')}",
            code="invalid_course_id",
        )
    activities = read_lms_activities(
        bridge, session, connection, lms_course_id, steps=steps, saving=False
    )
    audit(
        session,
        actor,
        "lms_connection.activities_listed",
        provider_id=connection.provider_id,
        target=f"lms_connection:{connection.public_id}",
        detail={"course_id": lms_course_id},
    )
    return activity_rows(activities)


def check_moodle_course_id(connection: LmsConnection, lms_course_id: str) -> None:
    """Raise InvalidInput when the course id cannot be a Moodle course's.

    It needs no request to Moodle, so it runs even when the LMS check is skipped.
    """
    if not (lms_course_id.isascii() and lms_course_id.isdigit()):
        raise _course_not_found(
            connection, lms_course_id, "Moodle course ids are whole numbers.", True
        )


def _read_moodle(
    bridge: Bridge,
    connection: LmsConnection,
    lms_course_id: str,
    http: BudgetSession,
    steps: NextSteps,
    saving: bool,
) -> list:
    if connection.api_token_encrypted is None:
        raise _unreachable(
            connection,
            lms_course_id,
            "the connection has no Moodle web service token, so the bridge cannot "
            "read the course.",
            steps,
            saving,
        )
    if not (lms_course_id.isascii() and lms_course_id.isdigit()):
        raise _course_not_found(
            connection, lms_course_id, "Moodle course ids are whole numbers.", saving
        )
    try:
        with budget_moodle_client(bridge, connection, http) as client:
            return client.get_course_contents(int(lms_course_id))
    except MoodleError as error:
        _log_failure(connection, lms_course_id, error)
        if http.ran_out:
            raise _timed_out(
                connection, lms_course_id, http.budget_seconds, steps, saving
            ) from None
        if error.errorcode == MOODLE_MISSING_RECORD:
            raise _course_not_found(
                connection, lms_course_id, "Moodle has no course with this id.", saving
            ) from None
        raise _unreachable(
            connection, lms_course_id, str(error), steps, saving
        ) from None


def _read_canvas(
    bridge: Bridge,
    session: Session,
    connection: LmsConnection,
    lms_course_id: str,
    http: BudgetSession,
    steps: NextSteps,
    saving: bool,
) -> list:
    if not (lms_course_id.isascii() and lms_course_id.isdigit()):
        raise _course_not_found(
            connection, lms_course_id, "Canvas course ids are whole numbers.", saving
        )
    try:
        client = budget_canvas_client(bridge, session, connection, http)
        return client.list_modules(lms_course_id)
    except CanvasNotFound as error:
        _log_failure(connection, lms_course_id, error)
        raise _course_not_found(
            connection, lms_course_id, "Canvas returned 404 Not Found for it.", saving
        ) from None
    except CanvasError as error:
        _log_failure(connection, lms_course_id, error)
        if http.ran_out:
            raise _timed_out(
                connection, lms_course_id, http.budget_seconds, steps, saving
            ) from None
        raise _unreachable(
            connection, lms_course_id, str(error), steps, saving
        ) from None


def _log_failure(
    connection: LmsConnection, lms_course_id: str, error: Exception
) -> None:
    log.warning(
        "lms_course_check_failed",
        provider_id=connection.provider_id,
        lms_connection_id=connection.id,
        lms_course_id=lms_course_id,
        error=str(error),
    )


def check_course_and_rule(
    bridge: Bridge,
    session: Session,
    connection: LmsConnection,
    lms_course_id: str,
    rule: dict[str, Any],
    *,
    steps: NextSteps = CLI_STEPS,
) -> None:
    """Check that the course exists in the LMS and has every activity the rule names.

    Raises InvalidInput (code `course_not_found` or `activity_not_found`) naming the
    missing id, and LmsUnreachable when the LMS cannot be read (see
    `read_lms_activities`).
    """
    activities = read_lms_activities(
        bridge, session, connection, lms_course_id, steps=steps
    )
    known = {activity.activity_id for activity in activities}
    missing = sorted(referenced_activity_ids(rule) - known)
    if not missing:
        return

    listed = ", ".join(sorted(known)[:LISTED_IDS_MAX]) or "none"
    if len(known) > LISTED_IDS_MAX:
        listed += f" and {len(known) - LISTED_IDS_MAX} more"
    noun = "activity" if len(missing) == 1 else "activities"
    raise InvalidInput(
        f"the award rule names {noun} {', '.join(missing)}, which course "
        f"{lms_course_id} does not have (its activity ids: {listed}). List the "
        "course's activities with "
        f"{steps.activities(connection.public_id, lms_course_id)} and use their ids "
        "in the rule. Nothing was saved",
        code="activity_not_found",
    )


def skipped_check_warning(
    connection: LmsConnection, lms_course_id: str, steps: NextSteps = CLI_STEPS
) -> str:
    """Return the warning shown when a badge is stored without the LMS check."""
    return (
        f"the LMS was not checked, so course {lms_course_id} and the activities of "
        "the award rule may not exist and the badge may never be earned; check them "
        f"with {steps.activities(connection.public_id, lms_course_id)} once the LMS "
        "can be reached"
    )

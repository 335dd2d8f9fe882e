"""Check a badge's course, and the activities its award rule names, against the LMS.

A badge whose course or activity does not exist in the LMS can never be earned, so
`achievement add` and `achievement edit` (and the API routes) read the course's
activities from the LMS before they store anything. The activities are those the
instructor page offers: the LMS's own (Moodle course modules, Canvas module items)
and the course's AGS line items that the last AGS poll stored.

When the LMS cannot be read, the action fails unless the caller asks to skip the
check, and then the badge is stored with a warning.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy.orm import Session

from badge_engine.rules import referenced_activity_ids
from connectors.canvas.errors import CanvasError, CanvasNotFound
from connectors.models import LmsConnection, LmsKind
from connectors.moodle.errors import MoodleError
from lti_tool.bridge import Bridge
from lti_tool.course_activities import (
    Activity,
    ags_line_item_activities,
    canvas_activities,
    moodle_activities,
)
from lti_tool.logs import get_logger
from lti_tool.operations import InvalidInput, LmsUnreachable
from lti_tool.operations.rosters import request_canvas_client, request_moodle_client

log = get_logger(__name__)

# The option that stores a badge without the check, as the command line spells it.
SKIP_OPTION = "--skip-lms-check"
# Moodle's errorcode for a record that does not exist, here the requested course.
MOODLE_MISSING_RECORD = "invalidrecord"
# Activity ids listed in an error message at most.
LISTED_IDS_MAX = 20

COURSE_ID_HINTS = {
    LmsKind.MOODLE.value: "the number after id= in the course's Moodle URL "
    "(course/view.php?id=...)",
    LmsKind.CANVAS.value: "the number after /courses/ in the course's Canvas URL",
}


def activities_command(connection: LmsConnection, lms_course_id: str) -> str:
    return f"hpass-bridge lms activities {connection.public_id} --course {lms_course_id}"


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
    connection: LmsConnection, lms_course_id: str, reason: str, skip_option: str | None
) -> LmsUnreachable:
    message = (
        f"the LMS could not be checked for course {lms_course_id!r} (LMS connection "
        f"{connection.public_id}): {reason} "
    )
    test = f"`hpass-bridge lms test {connection.public_id}`"
    if skip_option is None:
        return LmsUnreachable(message + f"Run {test} and try again")
    return LmsUnreachable(
        message + f"Nothing was saved. Run {test} and try again, or pass "
        f"{skip_option} to save the badge without the check"
    )


def read_lms_activities(
    bridge: Bridge,
    session: Session,
    connection: LmsConnection,
    lms_course_id: str,
    *,
    skip_option: str | None = SKIP_OPTION,
) -> list[Activity]:
    """Read the course's activities from the LMS, with the short request timeouts.

    Raises InvalidInput (code `course_not_found`) when the LMS reports that the
    course does not exist, and LmsUnreachable when the LMS cannot be read: no API
    credentials, a timeout, a connection failure or any other LMS error. The
    messages name `skip_option`, when given, as the way to store a badge anyway.
    A disconnected connection raises ActionError, because it has no token left.
    A Canvas token refresh writes to `session`, which the caller commits.
    """
    from lti_tool.operations.lms import check_connected

    check_connected(connection)
    if connection.kind == LmsKind.MOODLE.value:
        modules = _read_moodle(bridge, connection, lms_course_id, skip_option)
        activities = moodle_activities(modules)
    elif connection.kind == LmsKind.CANVAS.value:
        modules = _read_canvas(bridge, session, connection, lms_course_id, skip_option)
        activities = canvas_activities(modules)
    else:
        raise _unreachable(
            connection,
            lms_course_id,
            f"the bridge cannot read courses of LMS kind {connection.kind!r}.",
            skip_option,
        )

    return activities + ags_line_item_activities(session, connection, lms_course_id)


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
    skip_option: str | None,
) -> list:
    if connection.api_token_encrypted is None:
        raise _unreachable(
            connection,
            lms_course_id,
            "the connection has no Moodle web service token, so the bridge cannot "
            "read the course.",
            skip_option,
        )
    if not (lms_course_id.isascii() and lms_course_id.isdigit()):
        raise _course_not_found(
            connection, lms_course_id, "Moodle course ids are whole numbers.",
            skip_option is not None,
        )
    try:
        with request_moodle_client(bridge, connection) as client:
            return client.get_course_contents(int(lms_course_id))
    except MoodleError as error:
        _log_failure(connection, lms_course_id, error)
        if error.errorcode == MOODLE_MISSING_RECORD:
            raise _course_not_found(
                connection, lms_course_id, "Moodle has no course with this id.",
                skip_option is not None,
            ) from None
        raise _unreachable(connection, lms_course_id, str(error), skip_option) from None


def _read_canvas(
    bridge: Bridge,
    session: Session,
    connection: LmsConnection,
    lms_course_id: str,
    skip_option: str | None,
) -> list:
    if not (lms_course_id.isascii() and lms_course_id.isdigit()):
        raise _course_not_found(
            connection, lms_course_id, "Canvas course ids are whole numbers.",
            skip_option is not None,
        )
    try:
        client = request_canvas_client(bridge, session, connection)
        return client.list_modules(lms_course_id)
    except CanvasNotFound as error:
        _log_failure(connection, lms_course_id, error)
        raise _course_not_found(
            connection, lms_course_id, "Canvas returned 404 Not Found for it.",
            skip_option is not None,
        ) from None
    except CanvasError as error:
        _log_failure(connection, lms_course_id, error)
        raise _unreachable(connection, lms_course_id, str(error), skip_option) from None


def _log_failure(connection: LmsConnection, lms_course_id: str, error: Exception) -> None:
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
    skip_option: str = SKIP_OPTION,
) -> None:
    """Check that the course exists in the LMS and has every activity the rule names.

    Raises InvalidInput (code `course_not_found` or `activity_not_found`) naming the
    missing id, and LmsUnreachable when the LMS cannot be read (see
    `read_lms_activities`).
    """
    activities = read_lms_activities(
        bridge, session, connection, lms_course_id, skip_option=skip_option
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
        f"course's activities with `{activities_command(connection, lms_course_id)}` "
        "and use their ids in the rule. Nothing was saved",
        code="activity_not_found",
    )


def skipped_check_warning(connection: LmsConnection, lms_course_id: str) -> str:
    """Return the warning shown when a badge is stored without the LMS check."""
    return (
        f"the LMS was not checked, so course {lms_course_id} and the activities of "
        "the award rule may not exist and the badge may never be earned; check them "
        f"with `{activities_command(connection, lms_course_id)}` once the LMS "
        "can be reached"
    )

"""Moodle's course data and the web service results the Moodle stand-in returns.

The results follow Moodle 4.5's JSON shapes for `core_webservice_get_site_info`,
`core_completion_get_course_completion_status` and
`core_completion_get_activities_completion_status`. Errors are `MoodleError`, whose
`body` is the object Moodle returns with HTTP 200.

NOTE: the tests check the invalidtoken, accessexception and nocriteriaset errors
against example Moodle responses in tests/fixtures/moodle. The other errors
(invalidparameter, invalidrecord, nottracked) follow Moodle's exception classes and
language strings, but they were not compared with a live Moodle site.
"""

from __future__ import annotations

import typing as t
from collections.abc import Mapping
from dataclasses import dataclass, field

MOODLE_VERSION = "2024100700"
MOODLE_RELEASE = "4.5 (Build: 00000000)"

SERVED_FUNCTIONS = (
    "core_webservice_get_site_info",
    "core_completion_get_course_completion_status",
    "core_completion_get_activities_completion_status",
)

# Activity completion states (Moodle's COMPLETION_* constants).
COMPLETION_INCOMPLETE = 0
COMPLETION_COMPLETE = 1
COMPLETION_COMPLETE_PASS = 2
COMPLETION_COMPLETE_FAIL = 3
COMPLETE_STATES = (COMPLETION_COMPLETE, COMPLETION_COMPLETE_PASS)

# Completion tracking of a course module (COMPLETION_TRACKING_*).
TRACKING_MANUAL = 1
TRACKING_AUTOMATIC = 2

# Course completion criteria type 4 is "activity completion", and aggregation 1
# means all criteria are required.
CRITERIA_TYPE_ACTIVITY = 4
AGGREGATION_ALL = 1

DEMO_LEARNER_ID = 3001
DEMO_INSTRUCTOR_ID = 2
DEMO_COURSE_ID = 101

# (state, timecompleted) of one activity for one user, keyed by course module id.
ActivityStates = Mapping[int, tuple[int, int]]


@dataclass(frozen=True)
class MoodleActivity:
    """A course module with completion tracking.

    `rules` are the automatic completion conditions as (rulename, description),
    for example ("completionview", "View"); manual tracking has none.
    """

    cmid: int
    modname: str
    instance: int
    name: str
    context_id: int
    tracking: int = TRACKING_AUTOMATIC
    rules: tuple[tuple[str, str], ...] = ()


@dataclass
class MoodleCourse:
    """A course, its activities and the users whose completion it tracks."""

    course_id: int
    fullname: str
    context_id: int
    activities: list[MoodleActivity] = field(default_factory=list)
    completion_criteria: bool = True
    tracked_user_ids: set[int] = field(default_factory=set)

    def find_activity(self, cmid: int) -> MoodleActivity | None:
        return next((a for a in self.activities if a.cmid == cmid), None)


class MoodleError(Exception):
    """A web service error; `body` is the JSON object Moodle returns for it."""

    def __init__(
        self,
        exception: str,
        errorcode: str,
        message: str,
        debuginfo: str | None = None,
    ) -> None:
        super().__init__(message)
        self.body: dict[str, str] = {
            "exception": exception,
            "errorcode": errorcode,
            "message": message,
        }
        if debuginfo is not None:
            self.body["debuginfo"] = debuginfo


def invalid_token_error() -> MoodleError:
    return MoodleError(
        "moodle_exception", "invalidtoken", "Invalid token - token not found"
    )


def access_error() -> MoodleError:
    # The stand-in treats every function it does not serve as one outside the
    # token's service, which is what this error means on a Moodle site.
    return MoodleError(
        "webservice_access_exception", "accessexception", "Access control exception"
    )


def missing_record_error(table: str) -> MoodleError:
    return MoodleError(
        "dml_missing_record_exception",
        "invalidrecord",
        f"Can't find data record in database table {table}.",
    )


def not_tracked_error() -> MoodleError:
    return MoodleError(
        "moodle_exception",
        "nottracked",
        "You are currently not being tracked by completion in this course",
    )


def int_param(params: Mapping[str, t.Any], name: str) -> int:
    """Read a PARAM_INT parameter, raising Moodle's invalidparameter error."""
    value = params.get(name)
    if value is None:
        raise MoodleError(
            "invalid_parameter_exception",
            "invalidparameter",
            "Invalid parameter value detected",
            f"Missing required key in single structure: {name}",
        )

    try:
        return int(value)
    except ValueError:
        raise MoodleError(
            "invalid_parameter_exception",
            "invalidparameter",
            "Invalid parameter value detected",
            f"{name} => Invalid parameter value detected: {value!r} is not an integer",
        ) from None


def demo_course() -> MoodleCourse:
    """Return course 101 with the two course modules the Moodle fixtures use."""
    quiz = MoodleActivity(
        cmid=4001,
        modname="quiz",
        instance=301,
        name="Final quiz",
        context_id=6001,
        tracking=TRACKING_AUTOMATIC,
        rules=(
            ("completionview", "View"),
            ("completionpassgrade", "Receive a passing grade"),
        ),
    )
    page = MoodleActivity(
        cmid=4002,
        modname="page",
        instance=302,
        name="Code of conduct",
        context_id=6002,
        tracking=TRACKING_MANUAL,
    )

    return MoodleCourse(
        course_id=DEMO_COURSE_ID,
        fullname="Introduction to Humanitarian Action",
        context_id=5001,
        activities=[quiz, page],
        tracked_user_ids={DEMO_LEARNER_ID},
    )


def site_info(site_url: str) -> dict[str, t.Any]:
    """Build the `core_webservice_get_site_info` result for the connector account."""
    return {
        "sitename": "HPass demo Moodle",
        "username": "badge_connector",
        "firstname": "Badge",
        "lastname": "Connector",
        "fullname": "Badge Connector",
        "lang": "en",
        "userid": 2500,
        "siteurl": site_url,
        "userpictureurl": f"{site_url}/theme/image.php/boost/core/1/u/f1",
        "functions": [
            {"name": name, "version": MOODLE_VERSION} for name in SERVED_FUNCTIONS
        ],
        "downloadfiles": 0,
        "uploadfiles": 0,
        "release": MOODLE_RELEASE,
        "version": MOODLE_VERSION,
        "mobilecssurl": "",
        "advancedfeatures": [
            {"name": "enablecompletion", "value": 1},
            {"name": "enablebadges", "value": 1},
            {"name": "mnet_dispatcher_mode", "value": 0},
        ],
        "usercanmanageownfiles": False,
        "userquota": 0,
        "usermaxuploadfilesize": -1,
        "userhomepage": 1,
    }


def course_completion_status(
    course: MoodleCourse, completed: bool, states: ActivityStates
) -> dict[str, t.Any]:
    """Build the `core_completion_get_course_completion_status` result.

    Each activity with completion tracking is one criterion of type 4. Raises
    the `nocriteriaset` error for a course without completion criteria.
    """
    if not course.completion_criteria:
        raise MoodleError(
            "moodle_exception",
            "nocriteriaset",
            "No completion criteria set for this course",
        )

    completions = []
    for activity in course.activities:
        state, timecompleted = states.get(activity.cmid, (COMPLETION_INCOMPLETE, 0))
        complete = state in COMPLETE_STATES
        details = {
            "type": "Activity completion",
            "criteria": f"{activity.modname.capitalize()}: {activity.name}",
            "requirement": _requirement_text(activity),
            "status": "",
        }
        completions.append(
            {
                "type": CRITERIA_TYPE_ACTIVITY,
                "title": "Activity completion",
                "status": "Yes" if complete else "No",
                "complete": complete,
                "timecompleted": timecompleted if complete else None,
                "details": details,
            }
        )

    return {
        "completionstatus": {
            "completed": completed,
            "aggregation": AGGREGATION_ALL,
            "completions": completions,
        },
        "warnings": [],
    }


def activities_completion_status(
    course: MoodleCourse, states: ActivityStates
) -> dict[str, t.Any]:
    """Build the `core_completion_get_activities_completion_status` result."""
    statuses = []
    for activity in course.activities:
        state, timecompleted = states.get(activity.cmid, (COMPLETION_INCOMPLETE, 0))
        statuses.append(_activity_status(activity, state, timecompleted))

    return {"statuses": statuses, "warnings": []}


def _requirement_text(activity: MoodleActivity) -> str:
    if activity.tracking == TRACKING_MANUAL or not activity.rules:
        return "Marking yourself complete"

    return ", ".join(description for _, description in activity.rules)


def _activity_status(
    activity: MoodleActivity, state: int, timecompleted: int
) -> dict[str, t.Any]:
    details = []
    for rulename, description in activity.rules:
        # A view rule is met by any recorded state; grade rules report the pass
        # or fail state itself.
        if rulename == "completionview":
            rule_status = COMPLETION_COMPLETE if state else COMPLETION_INCOMPLETE
        else:
            rule_status = state
        details.append(
            {
                "rulename": rulename,
                "rulevalue": {"status": rule_status, "description": description},
            }
        )

    return {
        "cmid": activity.cmid,
        "modname": activity.modname,
        "instance": activity.instance,
        "state": state,
        "timecompleted": timecompleted,
        "tracking": activity.tracking,
        "overrideby": None,
        "valueused": False,
        "hascompletion": True,
        "isautomatic": activity.tracking == TRACKING_AUTOMATIC,
        "istrackeduser": True,
        "uservisible": True,
        "details": details,
        "isoverallcomplete": state in COMPLETE_STATES,
    }

"""Moodle's course data and the web service results the Moodle stand-in returns.

The results follow Moodle 4.5's JSON shapes for the functions in `SERVED_FUNCTIONS`.
Errors are `MoodleError`, whose `body` is the object Moodle returns with HTTP 200.

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
    "core_course_get_contents",
    "core_enrol_get_enrolled_users",
    "core_completion_get_course_completion_status",
    "core_completion_get_activities_completion_status",
    "gradereport_user_get_grade_items",
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

# (state, timecompleted, overrideby) of one activity for one user, keyed by course
# module id. overrideby is the teacher who overrode the state, or None.
ActivityStates = Mapping[int, tuple[int, int, int | None]]


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


def site_info(
    site_url: str, functions: t.Sequence[str] = SERVED_FUNCTIONS
) -> dict[str, t.Any]:
    """Build the `core_webservice_get_site_info` result for the connector account.

    `functions` are those of the token's external service.
    """
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
        "functions": [{"name": name, "version": MOODLE_VERSION} for name in functions],
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
        state, timecompleted, _ = states.get(
            activity.cmid, (COMPLETION_INCOMPLETE, 0, None)
        )
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
        state, timecompleted, overrideby = states.get(
            activity.cmid, (COMPLETION_INCOMPLETE, 0, None)
        )
        statuses.append(_activity_status(activity, state, timecompleted, overrideby))

    return {"statuses": statuses, "warnings": []}


def _requirement_text(activity: MoodleActivity) -> str:
    if activity.tracking == TRACKING_MANUAL or not activity.rules:
        return "Marking yourself complete"

    return ", ".join(description for _, description in activity.rules)


def _activity_status(
    activity: MoodleActivity, state: int, timecompleted: int, overrideby: int | None
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
        "overrideby": overrideby,
        "valueused": False,
        "hascompletion": True,
        "isautomatic": activity.tracking == TRACKING_AUTOMATIC,
        "istrackeduser": True,
        "uservisible": True,
        "details": details,
        "isoverallcomplete": state in COMPLETE_STATES,
    }


def course_contents(course: MoodleCourse, site_url: str) -> list[dict[str, t.Any]]:
    """Build the `core_course_get_contents` result: one section with every activity."""
    modules = []
    for activity in course.activities:
        modules.append(
            {
                "id": activity.cmid,
                "url": f"{site_url}/mod/{activity.modname}/view.php?id={activity.cmid}",
                "name": activity.name,
                "instance": activity.instance,
                "contextid": activity.context_id,
                "visible": 1,
                "uservisible": True,
                "visibleoncoursepage": 1,
                "modname": activity.modname,
                "modplural": activity.modname.capitalize() + "s",
                "indent": 0,
                "noviewlink": False,
                "completion": activity.tracking,
            }
        )
    return [
        {
            "id": course.context_id + 2000,
            "name": "Topic 1",
            "visible": 1,
            "summary": "",
            "summaryformat": 1,
            "section": 1,
            "hiddenbynumsections": 0,
            "uservisible": True,
            "modules": modules,
        }
    ]


def enrolled_user(
    user_id: int, fullname: str, role: str, email_visible: bool = True
) -> dict[str, t.Any]:
    """Build one user of the `core_enrol_get_enrolled_users` result."""
    first, _, last = fullname.partition(" ")
    user: dict[str, t.Any] = {
        "id": user_id,
        "username": f"user{user_id}",
        "firstname": first,
        "lastname": last,
        "fullname": fullname,
        "groups": [],
        "roles": [{"roleid": 5, "name": "", "shortname": role, "sortorder": 0}],
    }
    if email_visible:
        user["email"] = f"user{user_id}@example.invalid"
    return user


def enrolment_options(params: Mapping[str, t.Any]) -> tuple[int, int]:
    """Read `limitfrom` and `limitnumber` from the `options` name/value list.

    Returns (offset, limit), where a limit of 0 means all users, as in Moodle.
    """
    options = {}
    for index in range(20):
        name = params.get(f"options[{index}][name]")
        if name is None:
            break
        options[name] = params.get(f"options[{index}][value]")

    try:
        return int(options.get("limitfrom", 0)), int(options.get("limitnumber", 0))
    except ValueError:
        raise MoodleError(
            "invalid_parameter_exception",
            "invalidparameter",
            "Invalid parameter value detected",
            "options => limitfrom and limitnumber must be integers",
        ) from None


def grade_items(
    course: MoodleCourse,
    user_id: int,
    fullname: str,
    grades: Mapping[int, tuple[float, int]],
) -> dict[str, t.Any]:
    """Build the `gradereport_user_get_grade_items` result.

    `grades` maps a course module id to (raw grade out of 100, Unix time graded).
    """
    items = []
    for index, activity in enumerate(course.activities):
        grade, graded = grades.get(activity.cmid, (None, None))
        items.append(
            {
                "id": 500 + index + 1,
                "itemname": activity.name,
                "itemtype": "mod",
                "itemmodule": activity.modname,
                "iteminstance": activity.instance,
                "itemnumber": 0,
                "cmid": activity.cmid,
                "graderaw": grade,
                "gradedategraded": graded,
                "grademin": 0.0,
                "grademax": 100.0,
                "gradeisoverridden": False,
            }
        )
    return {
        "usergrades": [
            {
                "courseid": course.course_id,
                "userid": user_id,
                "userfullname": fullname,
                "maxdepth": 2,
                "gradeitems": items,
            }
        ],
        "warnings": [],
    }

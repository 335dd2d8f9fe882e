"""Parser for Moodle events that an outbound webhook plugin posts to the bridge.

A body is the event's `get_data()` array plus the plugin's `host` and `token` fields.
The webhook endpoint checks `token` with `secret_matches` before it parses a body.
The learner is `relateduserid`. The bridge never uses `userid`, the user who caused
the event, which for course_completed is often the cron user. Integer fields may
arrive as decimal strings, because Moodle fills some events from database records,
and PHP's database layer returns integer columns as strings.
"""

from __future__ import annotations

import copy
import hmac
import re
import time
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any

from badge_engine.facts import CompletionFact, CompletionState, FactSource
from connectors.moodle.conversions import COMPLETION_STATES
from connectors.moodle.errors import MoodleEventInvalid

COURSE_COMPLETED = "\\core\\event\\course_completed"
COURSE_MODULE_COMPLETION_UPDATED = "\\core\\event\\course_module_completion_updated"
USER_GRADED = "\\core\\event\\user_graded"
SUPPORTED_EVENTS = (COURSE_COMPLETED, COURSE_MODULE_COMPLETION_UPDATED)
# Events that carry no completion but may change it (a grade can complete an
# activity), so they trigger a re-read of the learner.
REREAD_EVENTS = (USER_GRADED,)

XAPI_COMPLETED_VERB = "http://adlnet.gov/expapi/verbs/completed"
_COURSE_URL_PATTERN = re.compile(r"/course/view\.php\?id=([0-9]{1,18})$")

# Top-level body fields that carry a secret and are removed before a body is stored.
SECRET_FIELDS = frozenset({"token"})

# A Moodle event class name: a backslash, the component in Moodle's lower-case
# plugin naming (core, mod_quiz, ...), then \event\ and the event's name.
_EVENT_NAME_PATTERN = re.compile(r"\\[a-z][a-z0-9_]*\\event\\[a-z][a-z0-9_]*")
# Moodle ids are signed 64-bit database ids. The bridge accepts at most 18 digits,
# which all fit, and stores them in columns of 64 characters.
MAX_ID_DIGITS = 18
_MAX_INTEGER = 10**MAX_ID_DIGITS - 1
_DECIMAL_PATTERN = re.compile(r"[0-9]{1,18}")
_DIGITS_PATTERN = re.compile(r"[0-9]+")

# Moodle's context level of a course module (CONTEXT_MODULE).
_CONTEXT_MODULE = 70

# 2000-01-01T00:00:00Z, earlier than any Moodle release, so an earlier timecreated
# is not a real event time.
_EARLIEST_EVENT_TIME = 946_684_800
# How far in the future timecreated may be, to allow for clock drift between the
# Moodle server and the bridge.
_MAX_CLOCK_SKEW_SECONDS = 24 * 60 * 60


def parse_webhook_event(
    body: Any, *, provider_id: int, lms_connection_id: int, copy_body: bool = True
) -> CompletionFact | None:
    """Turn a Moodle webhook body into a completion fact.

    Returns a fact for course_completed (activity None, state COMPLETE) and for
    course_module_completion_updated (activity is the course module id, state from
    `other.completionstate`, which drops back to INCOMPLETE when a teacher reverses
    a completion). Returns None for any other Moodle event, such as user_graded or
    badge_awarded: the body is accepted, and there is nothing to do. The fact's
    `raw_payload` is the body without its secret fields: a deep copy, or with
    `copy_body` False, a new top-level dict that shares the nested values of `body`
    (for a caller that parsed the body itself and does not use it again).

    Raises:
        MoodleEventInvalid: the body is not a Moodle event (no valid eventname), or
            a supported event lacks fields or carries wrong ones. The error names
            the first field and the value received, and its `problems` contains one
            error for each bad field.
    """
    if not isinstance(body, dict):
        raise MoodleEventInvalid(
            f"Webhook body must be a JSON object with a Moodle event, "
            f"got {type(body).__name__}.",
            field="body",
            received=type(body).__name__,
        )

    eventname = _event_name(body)
    if eventname not in SUPPORTED_EVENTS:
        return None

    try:
        other = _other_data(body)
        learner_id = _learner_id(body, other)
        course_id = _positive_integer(body.get("courseid"), "courseid")
        object_id = _positive_integer(body.get("objectid"), "objectid")
        timecreated, occurred_at = _event_time(body.get("timecreated"))

        if eventname == COURSE_COMPLETED:
            activity_id = None
            state = CompletionState.COMPLETE
        else:
            activity_id = str(_course_module_id(body))
            state = _completion_state(other.get("completionstate"))
    except MoodleEventInvalid as error:
        # The checks above stop at the first bad field, which keeps a valid body
        # cheap. Only a rejected body is checked again in full, so the sender
        # learns every bad field from one response.
        raise _every_problem(body, eventname, error) from None

    # NOTE: two changes of one completion within the same second (a teacher
    # toggling twice) get the same id, because the state is not part of it.
    source_event_id = f"{eventname}|{object_id}|{learner_id}|{timecreated}"

    return CompletionFact(
        provider_id=provider_id,
        lms_connection_id=lms_connection_id,
        lms_course_id=str(course_id),
        lms_user_id=str(learner_id),
        activity_id=activity_id,
        state=state,
        occurred_at=occurred_at,
        source=FactSource.EVENT,
        source_event_id=source_event_id,
        raw_payload=strip_secrets(body) if copy_body else _without_secrets(body),
    )


@dataclass(frozen=True)
class RereadTrigger:
    """A learner whose completion in a course should be re-read from Moodle.

    `occurred_at` is Unix seconds of the triggering event or statement.
    """

    lms_course_id: str
    lms_user_id: str
    occurred_at: int
    reason: str


def parse_reread_trigger(body: Any) -> RereadTrigger | None:
    """Return the re-read that a webhook body requests, or None for other events.

    Raises MoodleEventInvalid when a re-read event lacks its course, learner or
    time, like `parse_webhook_event`.
    """
    if not isinstance(body, dict) or body.get("eventname") not in REREAD_EVENTS:
        return None

    try:
        other = _other_data(body)
        learner_id = _learner_id(body, other)
        course_id = _positive_integer(body.get("courseid"), "courseid")
        timecreated, _ = _event_time(body.get("timecreated"))
    except MoodleEventInvalid as error:
        raise _every_problem(body, body["eventname"], error) from None

    return RereadTrigger(
        lms_course_id=str(course_id),
        lms_user_id=str(learner_id),
        occurred_at=timecreated,
        reason=str(body["eventname"]),
    )


def parse_xapi_hints(body: Any) -> tuple[list[RereadTrigger], int]:
    """Turn xAPI statements from Moodle's logstore_xapi into re-read triggers.

    A statement is only a hint, because it is a log entry: it never becomes a
    fact by itself. A hint is made from each "completed" statement whose actor is a
    Moodle account (the account name is the Moodle user id) and whose object or
    grouping activity is a course page (`/course/view.php?id=N`). Returns the
    triggers and the number of statements ignored.

    Raises MoodleEventInvalid when the body is not a statement or a list of them.
    """
    statements = body if isinstance(body, list) else [body]
    if not statements or not all(isinstance(item, dict) for item in statements):
        raise MoodleEventInvalid(
            "xAPI body must be a statement object or a non-empty list of them.",
            field="body",
            received=type(body).__name__,
        )

    triggers = []
    ignored = 0
    for statement in statements:
        trigger = _xapi_trigger(statement)
        if trigger is None:
            ignored += 1
        else:
            triggers.append(trigger)
    return triggers, ignored


def _xapi_trigger(statement: dict[str, Any]) -> RereadTrigger | None:
    verb = statement.get("verb")
    if not isinstance(verb, dict) or verb.get("id") != XAPI_COMPLETED_VERB:
        return None

    actor = statement.get("actor")
    account = actor.get("account") if isinstance(actor, dict) else None
    user_id = _integer(account.get("name")) if isinstance(account, dict) else None
    if user_id is None or user_id <= 0:
        return None

    course_id = _xapi_course_id(statement)
    if course_id is None:
        return None

    occurred_at = int(time.time())
    timestamp = statement.get("timestamp")
    if isinstance(timestamp, str):
        try:
            occurred_at = int(datetime.fromisoformat(timestamp).timestamp())
        except ValueError:
            pass
    return RereadTrigger(
        lms_course_id=str(course_id),
        lms_user_id=str(user_id),
        occurred_at=occurred_at,
        reason="xapi",
    )


def _xapi_course_id(statement: dict[str, Any]) -> int | None:
    candidates = []
    target = statement.get("object")
    if isinstance(target, dict):
        candidates.append(target.get("id"))
    context = statement.get("context")
    if isinstance(context, dict):
        activities = context.get("contextActivities")
        grouping = activities.get("grouping") if isinstance(activities, dict) else None
        if isinstance(grouping, list):
            for entry in grouping:
                if isinstance(entry, dict):
                    candidates.append(entry.get("id"))

    for candidate in candidates:
        if isinstance(candidate, str):
            match = _COURSE_URL_PATTERN.search(candidate)
            if match:
                return int(match.group(1))
    return None


def strip_secrets(body: Mapping[str, Any]) -> dict[str, Any]:
    """Return a deep copy of a webhook body without its secret fields (`token`)."""
    return {
        key: copy.deepcopy(value)
        for key, value in body.items()
        if key not in SECRET_FIELDS
    }


def _without_secrets(body: Mapping[str, Any]) -> dict[str, Any]:
    return {key: value for key, value in body.items() if key not in SECRET_FIELDS}


def secret_matches(expected: str, presented: str | None) -> bool:
    """Compare a webhook secret in constant time.

    Returns False when either value is None, empty or not a string, so a connection
    without a configured secret never accepts a body.
    """
    if not isinstance(expected, str) or not isinstance(presented, str):
        return False
    if not expected or not presented:
        return False

    return hmac.compare_digest(expected.encode("utf-8"), presented.encode("utf-8"))


def _every_problem(
    body: dict[str, Any], eventname: str, first: MoodleEventInvalid
) -> MoodleEventInvalid:
    """Check every field an event of this name needs, and return one error for all.

    `first` is the error that stopped the parse. It is returned unchanged when it is
    the only problem, and it comes first in a combined error's `problems`.
    """
    problems: list[MoodleEventInvalid] = [first]

    def check(function, *args) -> None:
        try:
            function(*args)
        except MoodleEventInvalid as problem:
            if problem.field not in {known.field for known in problems}:
                problems.append(problem)

    check(_other_data, body)
    other_valid = all(problem.field != "other" for problem in problems)
    other = _other_data(body) if other_valid else {}
    check(_learner_id, body, other)
    check(_positive_integer, body.get("courseid"), "courseid")
    if eventname in SUPPORTED_EVENTS:
        check(_positive_integer, body.get("objectid"), "objectid")
    check(_event_time, body.get("timecreated"))
    if eventname == COURSE_MODULE_COMPLETION_UPDATED:
        check(_context_level, body)
        check(_positive_integer, body.get("contextinstanceid"), "contextinstanceid")
        if other_valid:
            check(_completion_state, other.get("completionstate"))

    if len(problems) == 1:
        return first
    fields = ", ".join(problem.field for problem in problems)
    return MoodleEventInvalid(
        f"Webhook body has {len(problems)} missing or invalid fields ({fields}). "
        + " ".join(str(problem) for problem in problems),
        field=first.field,
        received=first.received,
        problems=problems,
    )


def _event_name(body: dict[str, Any]) -> str:
    if "eventname" not in body:
        raise MoodleEventInvalid(
            "Webhook body is missing eventname, so it is not a Moodle event. "
            "Configure the Moodle webhook plugin to post the event data.",
            field="eventname",
        )

    eventname = body["eventname"]
    if not isinstance(eventname, str) or not _EVENT_NAME_PATTERN.fullmatch(eventname):
        supported = ", ".join(SUPPORTED_EVENTS)
        raise MoodleEventInvalid(
            f"Webhook body has invalid eventname {eventname!r}, which is not a "
            f"Moodle event class name such as {COURSE_COMPLETED!r}. The bridge "
            f"acts on {supported}.",
            field="eventname",
            received=eventname,
        )

    return eventname


def _other_data(body: dict[str, Any]) -> dict[str, Any]:
    other = body.get("other")
    # PHP encodes an empty array as [], so an event without other data may send it.
    if other is None or other == []:
        return {}
    if not isinstance(other, dict):
        raise MoodleEventInvalid(
            f"Webhook body has invalid other {other!r}, expected a JSON object.",
            field="other",
            received=other,
        )
    return other


def _learner_id(body: dict[str, Any], other: dict[str, Any]) -> int:
    top_level = body.get("relateduserid")
    nested = other.get("relateduserid")
    if top_level is None and nested is None:
        raise MoodleEventInvalid(
            "Webhook body is missing relateduserid and other.relateduserid, so the "
            "learner is unknown. The bridge never uses userid, the user who caused "
            "the event.",
            field="relateduserid",
        )

    if top_level is None:
        return _positive_integer(nested, "other.relateduserid")

    learner_id = _positive_integer(top_level, "relateduserid")
    if nested is None:
        return learner_id

    if _positive_integer(nested, "other.relateduserid") != learner_id:
        raise MoodleEventInvalid(
            f"Webhook body has relateduserid {top_level!r} but other.relateduserid "
            f"{nested!r}, so the learner is ambiguous. Send one learner id.",
            field="other.relateduserid",
            received=nested,
        )
    return learner_id


def _course_module_id(body: dict[str, Any]) -> int:
    _context_level(body)
    return _positive_integer(body.get("contextinstanceid"), "contextinstanceid")


def _context_level(body: dict[str, Any]) -> None:
    contextlevel = body.get("contextlevel")
    if _integer(contextlevel) != _CONTEXT_MODULE:
        raise MoodleEventInvalid(
            f"Webhook body has invalid contextlevel {contextlevel!r}, expected "
            f"{_CONTEXT_MODULE} (a course module), because contextinstanceid must "
            f"be a course module id.",
            field="contextlevel",
            received=contextlevel,
        )


def _completion_state(value: Any) -> CompletionState:
    # NOTE: some third-party plugins (mod_pulse, mod_reengagement) fire this event
    # without other.completionstate. Such a body is rejected here, and the
    # scheduled poll picks up the change.
    if value is None:
        raise MoodleEventInvalid(
            "Webhook body is missing other.completionstate, so the new completion "
            "state is unknown.",
            field="other.completionstate",
        )

    state = _integer(value)
    if state not in COMPLETION_STATES:
        raise MoodleEventInvalid(
            f"Webhook body has invalid other.completionstate {value!r}, expected 0 "
            f"(incomplete), 1 (complete), 2 (complete, pass) or 3 (complete, fail).",
            field="other.completionstate",
            received=value,
        )
    return COMPLETION_STATES[state]


def _event_time(value: Any) -> tuple[int, datetime]:
    if value is None:
        raise MoodleEventInvalid(
            "Webhook body is missing timecreated, so the time of the change is "
            "unknown.",
            field="timecreated",
        )

    seconds = _integer(value)
    latest = time.time() + _MAX_CLOCK_SKEW_SECONDS
    expected = "expected Unix seconds between 2000-01-01 and one day from now"
    if seconds is not None and seconds < 0:
        raise MoodleEventInvalid(
            f"Webhook body has invalid timecreated {value!r}, which is negative; "
            f"{expected}.",
            field="timecreated",
            received=value,
        )
    if seconds is not None and seconds > latest:
        raise MoodleEventInvalid(
            f"Webhook body has invalid timecreated {value!r}, {expected}. A value "
            f"in milliseconds is 1000 times too large.",
            field="timecreated",
            received=value,
        )
    if seconds is None or seconds < _EARLIEST_EVENT_TIME:
        raise MoodleEventInvalid(
            f"Webhook body has invalid timecreated {value!r}, {expected}.",
            field="timecreated",
            received=value,
        )
    return seconds, datetime.fromtimestamp(seconds, tz=timezone.utc)


def _positive_integer(value: Any, field: str) -> int:
    if value is None:
        raise MoodleEventInvalid(
            f"Webhook body is missing {field}, expected a positive integer id.",
            field=field,
        )

    digits = _digit_count(value)
    if digits > MAX_ID_DIGITS:
        # The value is not echoed: it may be thousands of digits long.
        raise MoodleEventInvalid(
            f"Webhook body has invalid {field}, a number of {digits} digits, "
            f"expected a positive integer id of at most {MAX_ID_DIGITS} digits. "
            f"Send Moodle's {field} unchanged.",
            field=field,
            received=f"{digits} digits",
        )

    number = _integer(value)
    if number is None or number <= 0:
        raise MoodleEventInvalid(
            f"Webhook body has invalid {field} {value!r}, expected a positive "
            f"integer id.",
            field=field,
            received=value,
        )
    return number


def _digit_count(value: Any) -> int:
    """Return the number of digits of an int or a decimal string, else 0."""
    if isinstance(value, bool):
        return 0
    if isinstance(value, int):
        return len(str(abs(value)))
    if isinstance(value, str) and _DIGITS_PATTERN.fullmatch(value):
        return len(value)
    return 0


def _integer(value: Any) -> int | None:
    """Return value as an int if it is an int or a decimal string, else None.

    An int of more than 18 digits returns None, like a longer decimal string.
    """
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value if abs(value) <= _MAX_INTEGER else None
    if isinstance(value, str) and _DECIMAL_PATTERN.fullmatch(value):
        return int(value)
    return None

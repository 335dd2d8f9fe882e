"""Tests for parsing Moodle webhook bodies into completion facts."""

from __future__ import annotations

import copy
import json
import time
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import pytest

from badge_engine.facts import CompletionState, FactSource
from connectors.moodle.errors import MoodleError, MoodleEventInvalid
from connectors.moodle.events import (
    COURSE_COMPLETED,
    COURSE_MODULE_COMPLETION_UPDATED,
    parse_reread_trigger,
    parse_webhook_event,
    secret_matches,
    strip_secrets,
)

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures" / "moodle"
IDS = {"provider_id": 7, "lms_connection_id": 11}


def load_event(name: str) -> dict[str, Any]:
    with open(FIXTURES / f"event_{name}.json", encoding="utf-8") as file:
        return json.load(file)


def module_event(**changes: Any) -> dict[str, Any]:
    body = load_event("course_module_completion_updated")
    body.update(changes)
    return body


def test_course_completed_fixture_parses():
    """The course_completed fixture becomes a COMPLETE course fact for the learner."""
    body = load_event("course_completed")

    fact = parse_webhook_event(body, **IDS)

    assert fact is not None
    assert fact.provider_id == 7
    assert fact.lms_connection_id == 11
    assert fact.lms_course_id == "101"
    assert fact.lms_user_id == "3001"
    assert fact.activity_id is None
    assert fact.state is CompletionState.COMPLETE
    assert fact.occurred_at == datetime(2025, 1, 1, tzinfo=timezone.utc)
    assert fact.source is FactSource.EVENT
    assert fact.source_event_id == f"{COURSE_COMPLETED}|90001|3001|1735689600"


def test_course_completed_learner_not_userid():
    """The learner is relateduserid even though userid names the cron user."""
    body = load_event("course_completed")
    assert body["userid"] == 2

    fact = parse_webhook_event(body, **IDS)

    assert fact is not None
    assert fact.lms_user_id == "3001"


def test_module_completion_fixture_parses():
    """The module completion fixture becomes an activity fact keyed by cmid."""
    body = load_event("course_module_completion_updated")

    fact = parse_webhook_event(body, **IDS)

    assert fact is not None
    assert fact.lms_course_id == "101"
    assert fact.lms_user_id == "3001"
    assert fact.activity_id == "4001"
    assert fact.state is CompletionState.COMPLETE
    assert fact.occurred_at == datetime.fromtimestamp(1735689500, tz=timezone.utc)
    assert fact.source is FactSource.EVENT
    assert fact.source_event_id == (
        f"{COURSE_MODULE_COMPLETION_UPDATED}|70001|3001|1735689500"
    )


def test_module_completion_reversal_incomplete():
    """A teacher setting an activity back to incomplete gives an INCOMPLETE fact."""
    body = module_event()
    body["other"]["completionstate"] = 0

    fact = parse_webhook_event(body, **IDS)

    assert fact is not None
    assert fact.state is CompletionState.INCOMPLETE
    assert fact.activity_id == "4001"


@pytest.mark.parametrize(
    ("completionstate", "expected"),
    [
        (0, CompletionState.INCOMPLETE),
        (1, CompletionState.COMPLETE),
        (2, CompletionState.PASSED),
        (3, CompletionState.FAILED),
    ],
)
def test_module_completion_state_mapping(completionstate, expected):
    """Each Moodle completionstate maps to its neutral state."""
    body = module_event()
    body["other"]["completionstate"] = completionstate

    fact = parse_webhook_event(body, **IDS)

    assert fact is not None
    assert fact.state is expected


@pytest.mark.parametrize(
    "body",
    [
        load_event("badge_awarded"),
        load_event("user_graded"),
        {"eventname": "\\mod_quiz\\event\\attempt_submitted"},
    ],
    ids=["badge_awarded", "user_graded", "third_party_event"],
)
def test_irrelevant_event_returns_none(body):
    """A Moodle event that the bridge does not act on is accepted with no fact."""
    assert parse_webhook_event(body, **IDS) is None


def test_raw_payload_drops_token():
    """The stored raw payload keeps the event but not the webhook token."""
    body = load_event("course_completed")

    fact = parse_webhook_event(body, **IDS)

    assert fact is not None
    assert "token" not in fact.raw_payload
    assert "PLACEHOLDER_SHARED_SECRET" not in json.dumps(fact.raw_payload)
    assert fact.raw_payload["eventname"] == COURSE_COMPLETED
    assert fact.raw_payload["host"] == "moodle.example.invalid"
    assert body["token"] == "PLACEHOLDER_SHARED_SECRET"


def test_raw_payload_independent_copy():
    """Changing the body after parsing does not change the stored raw payload."""
    body = module_event()

    fact = parse_webhook_event(body, **IDS)
    body["other"]["completionstate"] = 0

    assert fact is not None
    assert fact.raw_payload["other"]["completionstate"] == 1


def test_strip_secrets_removes_only_token():
    """strip_secrets removes the token and keeps every other field."""
    body = {"token": "s3cret", "eventname": "x", "other": {"token": "kept"}}

    stripped = strip_secrets(body)

    assert stripped == {"eventname": "x", "other": {"token": "kept"}}
    assert body["token"] == "s3cret"


def test_learner_falls_back_to_other():
    """Without a top-level relateduserid the learner comes from other.relateduserid."""
    body = load_event("course_completed")
    del body["relateduserid"]

    fact = parse_webhook_event(body, **IDS)

    assert fact is not None
    assert fact.lms_user_id == "3001"


def test_decimal_string_ids_accepted():
    """Integer fields sent as decimal strings, as PHP database rows give them, parse."""
    body = module_event(
        objectid="70001", courseid="101", relateduserid="3001", timecreated="1735689500"
    )
    body["other"] = {"relateduserid": "3001", "completionstate": "2"}

    fact = parse_webhook_event(body, **IDS)

    assert fact is not None
    assert fact.lms_user_id == "3001"
    assert fact.lms_course_id == "101"
    assert fact.state is CompletionState.PASSED
    assert fact.source_event_id == (
        f"{COURSE_MODULE_COMPLETION_UPDATED}|70001|3001|1735689500"
    )


def test_course_completed_empty_other_list():
    """An empty `other` sent as PHP's empty array [] is accepted."""
    body = load_event("course_completed")
    body["other"] = []

    fact = parse_webhook_event(body, **IDS)

    assert fact is not None
    assert fact.lms_user_id == "3001"


def test_source_event_id_stable():
    """The same event sent twice gets the same id, and another time a different one."""
    first = parse_webhook_event(module_event(), **IDS)
    repeat = parse_webhook_event(module_event(), **IDS)
    later = parse_webhook_event(module_event(timecreated=1735689501), **IDS)

    assert first is not None
    assert repeat is not None
    assert later is not None
    assert first.source_event_id == repeat.source_event_id
    assert first.source_event_id != later.source_event_id


def _without(*path: str):
    def change(body: dict[str, Any]) -> None:
        target = body
        for key in path[:-1]:
            target = target[key]
        del target[path[-1]]

    return change


def _setting(value: Any, *path: str):
    def change(body: dict[str, Any]) -> None:
        target = body
        for key in path[:-1]:
            target = target[key]
        target[path[-1]] = value

    return change


def _without_learner(body: dict[str, Any]) -> None:
    del body["relateduserid"]
    del body["other"]["relateduserid"]


FAR_FUTURE = int(time.time()) + 10 * 24 * 60 * 60

MALFORMED_CASES = [
    pytest.param(_without("eventname"), "eventname", id="no_eventname"),
    pytest.param(_setting(42, "eventname"), "eventname", id="eventname_number"),
    pytest.param(
        _setting("course_completed", "eventname"), "eventname", id="eventname_bare"
    ),
    pytest.param(
        _setting("/core/event/course_completed", "eventname"),
        "eventname",
        id="eventname_slashes",
    ),
    pytest.param(_without_learner, "relateduserid", id="no_learner"),
    pytest.param(_setting("abc", "relateduserid"), "relateduserid", id="learner_text"),
    pytest.param(_setting(0, "relateduserid"), "relateduserid", id="learner_zero"),
    pytest.param(_setting(True, "relateduserid"), "relateduserid", id="learner_bool"),
    pytest.param(
        _setting(3001.5, "relateduserid"), "relateduserid", id="learner_float"
    ),
    pytest.param(
        _setting(3002, "other", "relateduserid"),
        "other.relateduserid",
        id="learner_mismatch",
    ),
    pytest.param(_without("courseid"), "courseid", id="no_courseid"),
    pytest.param(_setting("101a", "courseid"), "courseid", id="courseid_text"),
    pytest.param(_setting(-101, "courseid"), "courseid", id="courseid_negative"),
    pytest.param(_setting(None, "objectid"), "objectid", id="objectid_null"),
    pytest.param(
        _without("contextinstanceid"), "contextinstanceid", id="no_contextinstanceid"
    ),
    pytest.param(_setting(50, "contextlevel"), "contextlevel", id="contextlevel_50"),
    pytest.param(
        _without("other", "completionstate"),
        "other.completionstate",
        id="no_completionstate",
    ),
    pytest.param(
        _setting(4, "other", "completionstate"),
        "other.completionstate",
        id="completionstate_4",
    ),
    pytest.param(
        _setting(-1, "other", "completionstate"),
        "other.completionstate",
        id="completionstate_negative",
    ),
    pytest.param(
        _setting("complete", "other", "completionstate"),
        "other.completionstate",
        id="completionstate_word",
    ),
    pytest.param(_setting("relateduserid=3001", "other"), "other", id="other_text"),
    pytest.param(_without("timecreated"), "timecreated", id="no_timecreated"),
    pytest.param(_setting(0, "timecreated"), "timecreated", id="timecreated_zero"),
    pytest.param(
        _setting(1735689500000, "timecreated"),
        "timecreated",
        id="timecreated_milliseconds",
    ),
    pytest.param(
        _setting(FAR_FUTURE, "timecreated"), "timecreated", id="timecreated_future"
    ),
    pytest.param(
        _setting("yesterday", "timecreated"), "timecreated", id="timecreated_text"
    ),
]


@pytest.mark.parametrize(("change", "field"), MALFORMED_CASES)
def test_malformed_body_names_field(change, field):
    """A malformed module completion body raises MoodleEventInvalid naming the field."""
    body = module_event()
    change(body)

    with pytest.raises(MoodleEventInvalid) as caught:
        parse_webhook_event(body, **IDS)

    assert caught.value.field == field
    assert field in str(caught.value)


def test_every_bad_field_reported():
    """A body with several bad fields raises one error that lists each of them."""
    body = module_event(contextlevel=50, courseid="abc")
    del body["objectid"]
    del body["timecreated"]

    with pytest.raises(MoodleEventInvalid) as caught:
        parse_webhook_event(body, **IDS)

    fields = [problem.field for problem in caught.value.problems]
    message = str(caught.value)
    assert fields == ["courseid", "objectid", "timecreated", "contextlevel"]
    assert caught.value.field == "courseid"
    assert caught.value.received == "abc"
    assert message.startswith("Webhook body has 4 missing or invalid fields")
    for field in fields:
        assert f" {field}" in message


def test_course_completed_bad_fields_listed():
    """A course_completed body is not checked for module-only fields."""
    body = load_event("course_completed")
    del body["objectid"]
    del body["timecreated"]

    with pytest.raises(MoodleEventInvalid) as caught:
        parse_webhook_event(body, **IDS)

    fields = [problem.field for problem in caught.value.problems]
    assert fields == ["objectid", "timecreated"]


def test_invalid_other_skips_completionstate():
    """An unreadable `other` is reported once, not also as a missing completionstate."""
    body = module_event(other="completionstate=1")
    del body["timecreated"]

    with pytest.raises(MoodleEventInvalid) as caught:
        parse_webhook_event(body, **IDS)

    fields = [problem.field for problem in caught.value.problems]
    assert fields == ["other", "timecreated"]


def test_single_problem_lists_itself():
    """With one bad field, `problems` contains only the error itself."""
    body = module_event()
    del body["timecreated"]

    with pytest.raises(MoodleEventInvalid) as caught:
        parse_webhook_event(body, **IDS)

    assert caught.value.problems == (caught.value,)
    assert str(caught.value).startswith("Webhook body is missing timecreated")


def test_reread_event_bad_fields_listed():
    """A user_graded body reports its missing course and time together."""
    body = copy.deepcopy(load_event("user_graded"))
    del body["courseid"]
    del body["timecreated"]

    with pytest.raises(MoodleEventInvalid) as caught:
        parse_reread_trigger(body)

    fields = [problem.field for problem in caught.value.problems]
    assert fields == ["courseid", "timecreated"]


@pytest.mark.parametrize("body", [[], "text", None, 42], ids=repr)
def test_non_object_body_rejected(body):
    """A body that is not a JSON object raises MoodleEventInvalid for `body`."""
    with pytest.raises(MoodleEventInvalid) as caught:
        parse_webhook_event(body, **IDS)

    assert caught.value.field == "body"


def test_malformed_value_in_message():
    """The error message shows the value that was received."""
    body = module_event()
    body["other"]["completionstate"] = 7

    with pytest.raises(MoodleEventInvalid) as caught:
        parse_webhook_event(body, **IDS)

    assert caught.value.received == 7
    assert "completionstate 7" in str(caught.value)


def test_unknown_event_lists_supported():
    """A non-Moodle event name is rejected with the supported events listed."""
    body = {"eventname": "course_completed"}

    with pytest.raises(MoodleEventInvalid) as caught:
        parse_webhook_event(body, **IDS)

    message = str(caught.value)
    assert "'course_completed'" in message
    assert COURSE_COMPLETED in message
    assert COURSE_MODULE_COMPLETION_UPDATED in message


def test_event_error_is_value_error():
    """MoodleEventInvalid is both a ValueError and a MoodleError."""
    with pytest.raises(MoodleEventInvalid) as caught:
        parse_webhook_event({}, **IDS)

    assert isinstance(caught.value, ValueError)
    assert isinstance(caught.value, MoodleError)


def test_irrelevant_event_skips_field_checks():
    """An event the bridge ignores is accepted even without the completion fields."""
    body = copy.deepcopy(load_event("user_graded"))
    del body["relateduserid"]
    del body["timecreated"]

    assert parse_webhook_event(body, **IDS) is None


@pytest.mark.parametrize(
    ("expected", "presented", "result"),
    [
        ("s3cret-value", "s3cret-value", True),
        ("s3cret-value", "s3cret-valuE", False),
        ("s3cret-value", "s3cret", False),
        ("s3cret-value", None, False),
        ("s3cret-value", "", False),
        ("", "", False),
        ("", None, False),
        ("päss-wörd", "päss-wörd", True),
    ],
)
def test_secret_matches_cases(expected, presented, result):
    """secret_matches is True only for equal, non-empty secrets."""
    assert secret_matches(expected, presented) is result


def test_uncopied_body_same_payload():
    """Without a copy, the payload still drops the token and matches the copied one."""
    body = load_event("course_completed")
    body["token"] = "webhook-secret"
    expected = parse_webhook_event(copy.deepcopy(body), **IDS)

    fact = parse_webhook_event(body, copy_body=False, **IDS)

    assert "token" not in fact.raw_payload
    assert fact.raw_payload == expected.raw_payload
    assert fact.dedupe_key == expected.dedupe_key
    assert body["token"] == "webhook-secret"


def test_negative_timecreated_named_negative():
    """A negative timecreated is called negative, not a value in milliseconds."""
    body = load_event("course_completed")
    body["timecreated"] = -5

    with pytest.raises(MoodleEventInvalid) as raised:
        parse_webhook_event(body, provider_id=1, lms_connection_id=1)

    message = str(raised.value)
    assert "invalid timecreated -5, which is negative" in message
    assert "milliseconds" not in message
    assert raised.value.field == "timecreated"


def test_millisecond_timecreated_hinted():
    """A timecreated in milliseconds keeps the hint about milliseconds."""
    body = load_event("course_completed")
    body["timecreated"] = 1735689600000

    with pytest.raises(MoodleEventInvalid) as raised:
        parse_webhook_event(body, provider_id=1, lms_connection_id=1)

    assert "1000 times too large" in str(raised.value)

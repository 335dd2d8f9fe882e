"""The Moodle stand-in's web service results, errors, events and control page."""

from __future__ import annotations

import json
import threading
from pathlib import Path

import pytest
import requests
from flask import Flask, request

from lti_tool.demo.peers.moodle import WS_PATH, MoodleStandIn
from lti_tool.demo.peers.moodle_ws import MoodleCourse
from lti_tool.demo.peers.serving import serve_in_thread

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures" / "moodle"
TOKEN = "test-ws-token"


def load_fixture(name: str):
    return json.loads((FIXTURES / name).read_text(encoding="utf-8"))


def assert_same_shape(actual, expected, path: str = "$") -> None:
    """Assert that both values have the same keys and JSON types, recursively."""
    if isinstance(expected, dict):
        assert isinstance(actual, dict), path
        assert set(actual) == set(expected), path
        for key, value in expected.items():
            assert_same_shape(actual[key], value, f"{path}.{key}")
    elif isinstance(expected, list):
        assert isinstance(actual, list), path
        for item in actual:
            assert_same_shape(item, expected[0], f"{path}[]")
    elif expected is not None and actual is not None:
        assert type(actual) is type(expected), path


@pytest.fixture(scope="module")
def moodle_server():
    moodle = MoodleStandIn(TOKEN)
    server = moodle.start()
    yield moodle, server

    server.stop()


@pytest.fixture
def moodle(moodle_server):
    stand_in, server = moodle_server
    stand_in.reset_progress(101, 3001)

    return stand_in, server


def call_ws(server, wsfunction: str, token: str = TOKEN, **params):
    data = {
        "wstoken": token,
        "wsfunction": wsfunction,
        "moodlewsrestformat": "json",
        **params,
    }
    response = requests.post(server.url + WS_PATH, data=data, timeout=5)
    assert response.status_code == 200

    return response.json()


def test_site_info_matches_fixture(moodle):
    """core_webservice_get_site_info has the fixture's shape and this site's URL."""
    _, server = moodle

    info = call_ws(server, "core_webservice_get_site_info")

    assert_same_shape(info, load_fixture("ws_core_webservice_get_site_info.json"))
    assert info["siteurl"] == server.url
    names = {function["name"] for function in info["functions"]}
    assert "core_completion_get_course_completion_status" in names
    assert "core_completion_get_activities_completion_status" in names


def test_activities_status_equals_fixture(moodle):
    """Activity states set like the fixture's give exactly the fixture's result."""
    stand_in, server = moodle
    stand_in.set_activity_state(101, 3001, 4001, 2, 1735689500)
    stand_in.set_activity_state(101, 3001, 4002, 0)

    result = call_ws(
        server,
        "core_completion_get_activities_completion_status",
        courseid=101,
        userid=3001,
    )

    assert result == load_fixture(
        "ws_core_completion_get_activities_completion_status.json"
    )


def test_course_status_matches_fixture(moodle):
    """Course completion status has the fixture's shape and the values set."""
    stand_in, server = moodle
    stand_in.set_activity_state(101, 3001, 4001, 1, 1735689500)
    stand_in.set_course_completed(101, 3001, True, 1735689600)

    result = call_ws(
        server,
        "core_completion_get_course_completion_status",
        courseid=101,
        userid=3001,
    )

    fixture = load_fixture("ws_core_completion_get_course_completion_status.json")
    assert_same_shape(result, fixture)
    status = result["completionstatus"]
    assert status["completed"] is True
    assert status["completions"][0]["complete"] is True
    assert status["completions"][0]["timecompleted"] == 1735689500
    assert status["completions"][1]["complete"] is False
    assert status["completions"][1]["timecompleted"] is None


def test_course_status_clears_completion(moodle):
    """set_course_completed(False) makes the course incomplete again."""
    stand_in, server = moodle
    stand_in.set_course_completed(101, 3001, True, 1735689600)
    stand_in.set_course_completed(101, 3001, False, 0)

    result = call_ws(
        server,
        "core_completion_get_course_completion_status",
        courseid=101,
        userid=3001,
    )

    assert result["completionstatus"]["completed"] is False


def test_query_parameters_accepted(moodle):
    """Parameters in the query string of a GET work as Moodle accepts them."""
    _, server = moodle
    params = {
        "wstoken": TOKEN,
        "wsfunction": "core_completion_get_activities_completion_status",
        "moodlewsrestformat": "json",
        "courseid": "101",
        "userid": "3001",
    }

    response = requests.get(server.url + WS_PATH, params=params, timeout=5)

    assert response.status_code == 200
    assert [status["cmid"] for status in response.json()["statuses"]] == [4001, 4002]


def test_wrong_token_invalidtoken(moodle):
    """A wrong wstoken gives Moodle's invalidtoken error with HTTP 200."""
    _, server = moodle

    result = call_ws(server, "core_webservice_get_site_info", token="wrong")

    assert result == load_fixture("ws_error_invalidtoken.json")


def test_missing_token_invalidtoken(moodle):
    """A request without wstoken gets the invalidtoken error too."""
    _, server = moodle
    data = {"wsfunction": "core_webservice_get_site_info", "moodlewsrestformat": "json"}

    response = requests.post(server.url + WS_PATH, data=data, timeout=5)

    assert response.json()["errorcode"] == "invalidtoken"


def test_unknown_function_accessexception(moodle):
    """A function the stand-in does not serve gives the accessexception error."""
    _, server = moodle

    result = call_ws(server, "core_user_delete_users")

    assert result == load_fixture("ws_error_accessexception.json")


def test_no_criteria_nocriteriaset(moodle):
    """A course without completion criteria gives the nocriteriaset error."""
    stand_in, server = moodle
    stand_in.add_course(
        MoodleCourse(
            course_id=202,
            fullname="No criteria",
            context_id=5002,
            completion_criteria=False,
            tracked_user_ids={3001},
        )
    )

    result = call_ws(
        server,
        "core_completion_get_course_completion_status",
        courseid=202,
        userid=3001,
    )

    fixture = load_fixture("ws_error_nocriteriaset.json")
    assert set(result) == set(fixture)
    assert result["exception"] == fixture["exception"]
    assert result["errorcode"] == "nocriteriaset"


def test_missing_courseid_invalidparameter(moodle):
    """A missing courseid gives invalidparameter naming the key."""
    _, server = moodle

    result = call_ws(
        server, "core_completion_get_course_completion_status", userid=3001
    )

    assert result["errorcode"] == "invalidparameter"
    assert "courseid" in result["debuginfo"]


def test_unknown_course_invalidrecord(moodle):
    """An unknown course id gives Moodle's missing-record error."""
    _, server = moodle

    result = call_ws(
        server,
        "core_completion_get_activities_completion_status",
        courseid=999,
        userid=3001,
    )

    assert result["errorcode"] == "invalidrecord"
    assert "course" in result["message"]


def test_untracked_user_nottracked(moodle):
    """The instructor is not tracked by completion, as in Moodle."""
    _, server = moodle

    result = call_ws(
        server,
        "core_completion_get_activities_completion_status",
        courseid=101,
        userid=2,
    )

    assert result["errorcode"] == "nottracked"


def test_non_json_format_rejected(moodle):
    """A format other than json gets 400 with a plain-text message."""
    _, server = moodle
    data = {"wstoken": TOKEN, "wsfunction": "core_webservice_get_site_info"}

    response = requests.post(server.url + WS_PATH, data=data, timeout=5)

    assert response.status_code == 400
    assert "moodlewsrestformat" in response.text


def test_course_event_equals_fixture():
    """build_course_completed_event returns the fixture's event for its inputs."""
    stand_in = MoodleStandIn(
        site_url="http://moodle.example.invalid",
        webhook_url="http://127.0.0.1:9/hook",
        webhook_secret="PLACEHOLDER_SHARED_SECRET",
    )

    event = stand_in.build_course_completed_event(101, 3001, 1735689600)

    assert event == load_fixture("event_course_completed.json")


def test_module_event_equals_fixture():
    """build_module_completion_event returns the fixture's event for its inputs."""
    stand_in = MoodleStandIn(
        site_url="http://moodle.example.invalid",
        webhook_url="http://127.0.0.1:9/hook",
        webhook_secret="PLACEHOLDER_SHARED_SECRET",
    )

    event = stand_in.build_module_completion_event(101, 3001, 4001, 1, 1735689500)

    assert event == load_fixture("event_course_module_completion_updated.json")


def test_event_objectid_stable():
    """Two events about the same completion row carry the same objectid."""
    stand_in = MoodleStandIn(site_url="http://127.0.0.1:1")

    first = stand_in.build_course_completed_event(101, 3001, 1)
    second = stand_in.build_course_completed_event(101, 3001, 2)

    assert first["objectid"] == second["objectid"]


def test_webhook_url_must_be_loopback():
    """A webhook URL on another host is rejected at construction."""
    with pytest.raises(ValueError, match="webhook_url"):
        MoodleStandIn(webhook_url="https://bridge.example.org/hook", webhook_secret="s")


@pytest.fixture
def webhook_receiver():
    received: list[dict] = []
    lock = threading.Lock()
    app = Flask("webhook_receiver")

    @app.post("/hook")
    def hook():
        with lock:
            received.append(request.get_json())
        return "", 204

    server = serve_in_thread(app)
    yield f"{server.url}/hook", received

    server.stop()


def test_control_page_sends_webhook(webhook_receiver):
    """The page's complete button marks the course complete and posts the event."""
    hook_url, received = webhook_receiver
    stand_in = MoodleStandIn(TOKEN, webhook_url=hook_url, webhook_secret="s3cret")

    with stand_in.start() as server, requests.Session() as session:
        page = session.get(server.url + "/", timeout=5)
        response = session.post(server.url + "/complete", timeout=5)

    assert 'action="/complete"' in page.text
    assert response.status_code == 200
    assert len(received) == 1
    event = received[0]
    assert event["eventname"] == "\\core\\event\\course_completed"
    assert event["token"] == "s3cret"
    assert event["courseid"] == 101
    assert event["relateduserid"] == 3001
    assert event["timecreated"] == stand_in.course_completion_time(101, 3001)
    assert event["host"] == server.url.removeprefix("http://")
    assert stand_in.deliveries[0].status_code == 204


def test_complete_course_sends_once(webhook_receiver):
    """Completing an already completed course sends no second event."""
    hook_url, received = webhook_receiver
    stand_in = MoodleStandIn(
        site_url="http://127.0.0.1:1", webhook_url=hook_url, webhook_secret="s"
    )

    first = stand_in.complete_course(101, 3001, time=1735689600)
    second = stand_in.complete_course(101, 3001, time=1735689700)

    assert first is not None
    assert second is None
    assert len(received) == 1
    assert stand_in.activity_states(101, 3001)[4002] == (1, 1735689600)


def test_complete_course_records_failure():
    """An unreachable webhook is recorded in deliveries, not raised."""
    stand_in = MoodleStandIn(
        site_url="http://127.0.0.1:1",
        webhook_url="http://127.0.0.1:9/hook",
        webhook_secret="s",
        webhook_timeout_seconds=1,
    )

    event = stand_in.complete_course(101, 3001, time=1735689600)

    assert event is not None
    assert stand_in.deliveries[0].status_code is None
    assert stand_in.deliveries[0].error


def test_control_page_shows_utc_dates():
    """The control page shows completion times as UTC dates, in English under ?lang=."""
    stand_in = MoodleStandIn(TOKEN, site_url="http://127.0.0.1:1")
    stand_in.complete_course(101, 3001, time=1796536805, send_event=False)

    with stand_in.start() as server:
        page = requests.get(server.url + "/", params={"lang": "fr"}, timeout=5)

    assert page.status_code == 200
    assert "Course:\ncompleted at 2026-12-06 06:00 UTC" in page.text
    assert "course module 4001):\n      completed at 2026-12-06 06:00 UTC" in page.text
    assert "Unix time" not in page.text
    assert "1796536805" not in page.text
    assert '<html lang="en">' in page.text


def test_control_page_activity_buttons():
    """The control page has one labelled button per activity, posting its cmid."""
    stand_in = MoodleStandIn(TOKEN, site_url="http://127.0.0.1:1")

    with stand_in.start() as server:
        page = requests.get(server.url + "/", timeout=5).text

    assert page.count('action="/complete-activity"') == 2
    assert '<input type="hidden" name="cmid" value="4001">' in page
    assert '<input type="hidden" name="cmid" value="4002">' in page
    assert (
        '<button type="submit">Mark Final quiz complete for Learner One</button>'
        in page
    )
    assert (
        '<button type="submit">Mark Code of conduct complete for Learner One'
        "</button>" in page
    )
    assert 'action="/complete"' in page
    assert 'action="/reset"' in page


def test_activity_button_sends_module_event(webhook_receiver):
    """An activity's button completes that activity only and posts its event."""
    hook_url, received = webhook_receiver
    stand_in = MoodleStandIn(TOKEN, webhook_url=hook_url, webhook_secret="s3cret")

    with stand_in.start() as server, requests.Session() as session:
        response = session.post(
            server.url + "/complete-activity", data={"cmid": "4001"}, timeout=5
        )

    states = stand_in.activity_states(101, 3001)
    assert response.status_code == 200
    assert response.url == server.url + "/"
    assert states[4001][0] == 1
    assert states[4001][1] > 0
    assert states[4002] == (0, 0)
    assert stand_in.course_completion_time(101, 3001) is None
    assert len(received) == 1
    event = received[0]
    assert event["eventname"] == "\\core\\event\\course_module_completion_updated"
    assert event["token"] == "s3cret"
    assert event["courseid"] == 101
    assert event["contextinstanceid"] == 4001
    assert event["userid"] == 3001
    assert event["relateduserid"] == 3001
    assert event["other"]["completionstate"] == 1
    assert event["other"]["overrideby"] is None
    assert event["timecreated"] == states[4001][1]
    assert stand_in.deliveries[0].status_code == 204


def test_complete_activity_sends_once(webhook_receiver):
    """Completing an already complete activity sends no second event."""
    hook_url, received = webhook_receiver
    stand_in = MoodleStandIn(
        site_url="http://127.0.0.1:1", webhook_url=hook_url, webhook_secret="s"
    )

    first = stand_in.complete_activity(101, 3001, 4002, time=1735689600)
    second = stand_in.complete_activity(101, 3001, 4002, time=1735689700)

    assert first is not None
    assert second is None
    assert len(received) == 1
    assert stand_in.activity_states(101, 3001)[4002] == (1, 1735689600)


def test_complete_activity_unknown_cmid_raises():
    """complete_activity rejects a course module the course lacks."""
    stand_in = MoodleStandIn(site_url="http://127.0.0.1:1")

    with pytest.raises(ValueError, match="no course module 9999"):
        stand_in.complete_activity(101, 3001, 9999, send_event=False)


@pytest.mark.parametrize(
    ("form", "received"),
    [({"cmid": "9999"}, "'9999'"), ({"cmid": "quiz"}, "'quiz'"), ({}, "''")],
)
def test_activity_form_invalid_cmid_400(form, received):
    """An unknown, non-numeric or missing cmid gets 400 naming the valid ids."""
    stand_in = MoodleStandIn(TOKEN, site_url="http://127.0.0.1:1")
    client = stand_in.create_app().test_client()

    response = client.post("/complete-activity", data=form)

    text = response.get_data(as_text=True)
    assert response.status_code == 400
    assert response.content_type == "text/plain; charset=utf-8"
    assert "activity of course 101 (4001, 4002)" in text
    assert text.endswith(f"got {received}")
    assert stand_in.activity_states(101, 3001) == {4001: (0, 0), 4002: (0, 0)}

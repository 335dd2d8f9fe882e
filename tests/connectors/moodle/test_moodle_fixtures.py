"""Every Moodle fixture is accepted or rejected as its kind should be.

Events and xAPI statements are posted over real HTTP to the bridge's webhook
endpoints. Web service responses are served by a loopback HTTP server in Moodle's
place and read through MoodleClient: results parse, error bodies raise their typed
errors, and none of them is accepted as a webhook event.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import requests
from flask import Flask, Response, request

from badge_engine.models import Provider
from connectors.models import LmsConnection, LmsKind
from connectors.moodle.client import MoodleClient
from connectors.moodle.errors import (
    MoodleAccessDenied,
    MoodleNoCompletionCriteria,
    MoodleTokenInvalid,
)
from lti_tool.demo.peers.serving import serve_in_thread
from lti_tool.views.webhooks import secret_digest
from tests.support.outbound import LOOPBACK_POLICY

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures" / "moodle"
FIXTURE_SECRET = "PLACEHOLDER_SHARED_SECRET"

# Fixture name -> (HTTP status, response status) when posted as a webhook event.
EVENT_OUTCOMES = {
    "event_course_completed": (202, "accepted"),
    "event_course_module_completion_updated": (202, "accepted"),
    "event_user_graded": (202, "reread_queued"),
    "event_badge_awarded": (202, "ignored"),
}
XAPI_FIXTURES = ("xapi_statement_course_completed", "xapi_statement_module_completed")
WS_RESULTS = {
    "ws_core_webservice_get_site_info": lambda c: c.get_site_info(),
    "ws_core_course_get_contents_excerpt": lambda c: c.get_course_contents(101),
    "ws_core_enrol_get_enrolled_users": lambda c: c.get_enrolled_users(101),
    "ws_core_completion_get_course_completion_status": (
        lambda c: c.get_course_completion_status(101, 3001)
    ),
    "ws_core_completion_get_activities_completion_status": (
        lambda c: c.get_activities_completion_status(101, 3001)
    ),
    "ws_gradereport_user_get_grade_items": lambda c: c.get_grade_items(101, 3001),
}
WS_ERRORS = {
    "ws_error_invalidtoken": MoodleTokenInvalid,
    "ws_error_accessexception": MoodleAccessDenied,
    "ws_error_nocriteriaset": MoodleNoCompletionCriteria,
}


def fixture_names() -> set[str]:
    return {path.stem for path in FIXTURES.glob("*.json")}


def load(name: str):
    return json.loads((FIXTURES / f"{name}.json").read_text())


@pytest.fixture
def bridge_url(app):
    """The bridge served on loopback with a Moodle connection using the fixtures'
    shared secret; yields the connection's webhook URL."""
    bridge = app.extensions["hpass"]
    with bridge.session() as session:
        provider = Provider(slug="fixtures", name="Fixtures", url="https://x.invalid")
        session.add(provider)
        session.flush()
        connection = LmsConnection(
            provider_id=provider.id,
            kind=LmsKind.MOODLE.value,
            name="Fixture Moodle",
            base_url="http://127.0.0.1:9",
            webhook_secret_sha256=secret_digest(FIXTURE_SECRET),
        )
        session.add(connection)
        session.commit()
        public_id = connection.public_id

    server = serve_in_thread(app)
    yield f"{server.url}/webhooks/moodle/{public_id}"
    server.stop()


@pytest.fixture
def served_fixture():
    """A loopback server in Moodle's place that returns the fixture set on it."""
    current = {"name": None}
    fake = Flask(__name__)

    @fake.post("/webservice/rest/server.php")
    def rest_server():
        assert request.form["wstoken"] == "fixture-token"
        body = (FIXTURES / f"{current['name']}.json").read_text()
        return Response(body, content_type="application/json")

    server = serve_in_thread(fake)
    client = MoodleClient(
        server.url, "fixture-token", max_retries=0, policy=LOOPBACK_POLICY
    )

    def serve(name: str) -> MoodleClient:
        current["name"] = name
        return client

    yield serve
    client.close()
    server.stop()


def test_fixture_tables_cover_every_fixture():
    """Each fixture file has an expected outcome in one of the tables."""
    covered = {*EVENT_OUTCOMES, *XAPI_FIXTURES, *WS_RESULTS, *WS_ERRORS}

    assert fixture_names() == covered


@pytest.mark.parametrize("name", sorted(EVENT_OUTCOMES))
def test_event_fixture_outcome(bridge_url, name):
    """Each event fixture is accepted, queued for a re-read or ignored."""
    http_status, status = EVENT_OUTCOMES[name]

    response = requests.post(bridge_url, json=load(name), timeout=10)

    assert response.status_code == http_status, response.text
    assert response.json()["status"] == status


@pytest.mark.parametrize("name", XAPI_FIXTURES)
def test_xapi_fixture_is_hint(bridge_url, name):
    """xAPI statements are accepted on the xAPI endpoint as hints only."""
    response = requests.post(
        f"{bridge_url}/xapi/statements",
        json=load(name),
        auth=("moodle", FIXTURE_SECRET),
        timeout=10,
    )

    assert response.status_code == 200, response.text
    assert response.json() == {
        "status": "accepted_as_hints",
        "hints": 1,
        "ignored": 0,
    }


@pytest.mark.parametrize("name", XAPI_FIXTURES)
def test_xapi_fixture_not_an_event(bridge_url, name):
    """An xAPI statement list posted as a webhook event is rejected with a 400."""
    response = requests.post(bridge_url, json=load(name), timeout=10)

    assert response.status_code == 400, response.text


def test_xapi_wrong_secret_rejected(bridge_url):
    """The xAPI endpoint rejects a wrong password with a 401."""
    response = requests.post(
        f"{bridge_url}/xapi/statements",
        json=load(XAPI_FIXTURES[0]),
        auth=("moodle", "wrong"),
        timeout=10,
    )

    assert response.status_code == 401


@pytest.mark.parametrize("name", sorted({*WS_RESULTS, *WS_ERRORS}))
def test_ws_fixture_not_an_event(bridge_url, name):
    """A web service response posted as a webhook event is rejected with a 400."""
    body = load(name)
    if isinstance(body, dict):
        body["token"] = FIXTURE_SECRET

    response = requests.post(bridge_url, json=body, timeout=10)

    assert response.status_code == 400, response.text


@pytest.mark.parametrize("name", sorted(WS_RESULTS))
def test_ws_fixture_result_parses(served_fixture, name):
    """Each web service result fixture is read by the client without error."""
    client = served_fixture(name)

    result = WS_RESULTS[name](client)

    assert result


@pytest.mark.parametrize("name", sorted(WS_ERRORS))
def test_ws_fixture_error_raises(served_fixture, name):
    """Each web service error fixture raises the typed error for its errorcode."""
    client = served_fixture(name)

    with pytest.raises(WS_ERRORS[name]):
        client.get_course_completion_status(101, 3001)

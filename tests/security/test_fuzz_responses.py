"""Fuzz the bridge's readers of LMS and portfolio responses over real loopback HTTP.

One scripted server sends whatever status, headers and body the current example
draws. The Moodle and Canvas clients may raise only their connector errors, and
the portfolio readers only delivery or setup errors.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field

import pytest
from flask import Flask, Response
from hypothesis import given
from hypothesis import strategies as st

from badge_engine.outbound import OutboundPolicy
from connectors.canvas.client import CanvasClient
from connectors.canvas.errors import CanvasError
from connectors.hpass.errors import DeliveryError, PortfolioSetupError
from connectors.hpass.http import PortfolioHttp
from connectors.hpass.models import PortfolioClient
from connectors.hpass.ob3_api import Ob3ApiClient
from connectors.hpass.ob3_oauth import discover_ob3, exchange_code
from connectors.moodle.client import MoodleClient
from connectors.moodle.errors import MoodleError
from lti_tool.demo.peers.serving import serve_in_thread
from tests.security.fuzzing import fuzz_settings, json_values, load_fixture, mutated
from tests.support.outbound import LOOPBACK_POLICY

MOODLE_BODIES = [
    load_fixture(f"moodle/{name}.json")
    for name in (
        "ws_core_completion_get_activities_completion_status",
        "ws_core_completion_get_course_completion_status",
        "ws_core_course_get_contents_excerpt",
        "ws_core_enrol_get_enrolled_users",
        "ws_core_webservice_get_site_info",
        "ws_error_accessexception",
        "ws_error_invalidtoken",
        "ws_gradereport_user_get_grade_items",
    )
]
CANVAS_BODIES = [
    load_fixture(f"canvas/{name}.json")
    for name in (
        "rest_bulk_user_progress",
        "rest_enrollments_with_grades",
        "rest_modules_include_items_student",
        "rest_user_progress_200",
        "rest_user_progress_400_not_module_based",
    )
]
DISCOVERY = {
    "info": {"title": "Portfolio"},
    "servers": [{"url": "{base}/ims/ob/v3p0"}],
    "components": {
        "securitySchemes": {
            "OAuth2ACG": {
                "x-imssf-registrationUrl": "{base}/register",
                "flows": {
                    "authorizationCode": {
                        "authorizationUrl": "{base}/authorize",
                        "tokenUrl": "{base}/token",
                        "scopes": {
                            "https://purl.imsglobal.org/spec/ob/v3p0/scope/credential.upsert": "",
                        },
                    }
                },
            }
        }
    },
}
TOKEN = {"access_token": "a", "refresh_token": "r", "expires_in": 3600}


@dataclass
class Script:
    status: int = 200
    headers: dict = field(default_factory=dict)
    body: bytes = b"{}"


@pytest.fixture(scope="module")
def scripted():
    """A loopback server that returns the current script on every path."""
    script = Script()
    app = Flask("scripted")

    @app.route("/", defaults={"path": ""}, methods=["GET", "POST"])
    @app.route("/<path:path>", methods=["GET", "POST"])
    def answer(path):
        return Response(script.body, status=script.status, headers=script.headers)

    server = serve_in_thread(app)
    yield server.url, script
    server.stop()


statuses = st.sampled_from(
    [200, 200, 200, 201, 204, 301, 400, 401, 403, 404, 429, 500, 503]
)
header_sets = st.fixed_dictionaries(
    {},
    optional={
        "Content-Type": st.sampled_from(["application/json", "text/html", "x/y"]),
        "Retry-After": st.text(max_size=20) | st.sampled_from(["0", "1e9", "-5"]),
        "Link": st.text(max_size=80) | st.just('<http://127.0.0.1:1/next>; rel="next"'),
        "X-Rate-Limit-Remaining": st.text(max_size=10) | st.sampled_from(["nan", "-1"]),
        "Location": st.text(max_size=40),
    },
).map(lambda headers: {k: v for k, v in headers.items() if v.isprintable()})


def _bodies(documents):
    as_json = (
        json_values
        | st.sampled_from(documents).flatmap(mutated)
        | st.sampled_from(documents)
    ).map(lambda value: json.dumps(value).encode())
    return as_json | st.binary(max_size=200)


def _play(script: Script, status, headers, body) -> None:
    script.status, script.headers, script.body = status, headers, body


@fuzz_settings
@given(status=statuses, headers=header_sets, body=_bodies(MOODLE_BODIES))
def test_moodle_response_fuzz(scripted, status, headers, body):
    """Every Moodle web service reader returns a value or raises a MoodleError."""
    url, script = scripted
    _play(script, status, headers, body)
    with MoodleClient(
        url, "token", max_retries=0, backoff=0, policy=LOOPBACK_POLICY
    ) as client:
        for call in (
            client.get_site_info,
            lambda: client.get_course_completion_status(101, 3001),
            lambda: client.get_activities_completion_status(101, 3001),
            lambda: client.get_course_contents(101),
            lambda: client.get_enrolled_users(101),
            lambda: client.get_grade_items(101, 3001),
        ):
            try:
                call()
            except MoodleError:
                pass


class _Token:
    can_refresh = False

    def access_token(self) -> str:
        return "token"

    def refresh(self) -> None:
        raise AssertionError("the fuzz token never refreshes")


@fuzz_settings
@given(status=statuses, headers=header_sets, body=_bodies(CANVAS_BODIES))
def test_canvas_response_fuzz(scripted, status, headers, body):
    """Every Canvas REST reader returns a value or raises a CanvasError."""
    url, script = scripted
    _play(script, status, headers, body)
    client = CanvasClient(
        url,
        _Token(),
        max_retries=1,
        sleep=lambda seconds: None,
        policy=LOOPBACK_POLICY,
    )
    for call in (
        lambda: client.list_modules("1", "2"),
        lambda: client.list_student_enrollments("1"),
        lambda: client.get_user_progress("1", "2"),
        lambda: list(client.iter_bulk_user_progress("1")),
    ):
        try:
            call()
        except CanvasError:
            pass


def _portfolio_documents(base: str) -> list:
    text = json.dumps(DISCOVERY).replace("{base}", base)
    return [json.loads(text), TOKEN]


@fuzz_settings
@given(status=statuses, headers=header_sets, data=st.data())
def test_portfolio_response_fuzz(scripted, status, headers, data):
    """Discovery, token and upsert readers raise only delivery or setup errors."""
    url, script = scripted
    body = data.draw(_bodies(_portfolio_documents(url)))
    _play(script, status, headers, body)
    policy = OutboundPolicy(allow_loopback=True)
    http = PortfolioHttp(policy, portfolio_url=url, timeout=(2, 2))
    try:
        discover_ob3(http)
    except (DeliveryError, PortfolioSetupError):
        pass
    client = PortfolioClient(
        token_url=url + "/token", client_id="bridge", client_secret_encrypted=None
    )
    try:
        exchange_code(
            http, client, None, code="c", code_verifier="v", redirect_uri=url + "/cb"
        )
    except (DeliveryError, PortfolioSetupError):
        pass
    try:
        Ob3ApiClient(url, "token", policy=policy, timeout=(2, 2)).upsert_credential(
            {"id": "urn:uuid:1"}
        )
    except DeliveryError:
        pass

"""Launches from the real platform implementation with Moodle and Canvas claim sets."""

from __future__ import annotations

import socket

import pytest
import requests
from cryptography.fernet import Fernet
from sqlalchemy import select

from badge_engine.models import Learner
from lti_tool.app import create_app
from lti_tool.config import load_settings
from lti_tool.demo.peers.platform import CANVAS_ISSUER, PlatformPeer, ToolRegistration
from lti_tool.demo.peers.serving import serve_in_thread
from lti_tool.lti.registrations import create_registration
from lti_tool.models import Deployment, LtiCourse
from lti_tool.schema import upgrade
from lti_tool.urls_for import lti_jwks_url, lti_launch_url, lti_login_url
from tests.lti_tool.lti.harness import stop_server
from tests.support.seed import add_moodle_connection, add_provider


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture
def bridge_app(tmp_path):
    """The bridge on a known port, so its public base URL is the served one."""
    port = _free_port()
    settings = load_settings(
        environ={},
        overrides={
            "instance_path": tmp_path / "instance",
            "public_base_url": f"http://127.0.0.1:{port}",
        },
    )
    settings.loopback_dev = True
    settings.secret_key = b"claim-set-test-secret"
    settings.encryption_keys = [Fernet.generate_key()]
    settings.instance_path.mkdir(parents=True)
    upgrade(settings.database_url)
    app = create_app(settings)
    server = serve_in_thread(app, port=port)
    yield app, server.url
    stop_server(server)
    app.extensions["hpass"].engine.dispose()


@pytest.fixture(params=["moodle", "canvas"])
def launch_setup(request, bridge_app):
    app, base = bridge_app
    peer = PlatformPeer(claim_set=request.param, deployment_id="deployment-7")
    peer_server = peer.start()
    bridge = app.extensions["hpass"]
    with bridge.session() as session:
        provider = add_provider(session)
        connection = add_moodle_connection(
            session, bridge.vault, provider, "http://127.0.0.1:9", "t"
        )
        registration = create_registration(
            session,
            bridge.vault,
            provider,
            issuer=peer.token_issuer,
            client_id=peer.client_id,
            auth_login_url=f"{peer.issuer}/auth",
            key_set_url=f"{peer.issuer}/jwks",
            lms_connection_id=connection.id,
        )
        registration.platform_family = request.param
        session.commit()
        public_id = registration.public_id
    peer.register_tool(
        ToolRegistration(
            login_url=lti_login_url(base, public_id),
            launch_url=lti_launch_url(base, public_id),
            jwks_url=lti_jwks_url(base, public_id),
        )
    )
    yield request.param, peer, bridge
    stop_server(peer_server)


def test_learner_lands_on_learner_page(launch_setup):
    """A learner launch lands on the learner's badge page and records the learner."""
    family, peer, bridge = launch_setup

    page = peer.launch_with_session(requests.Session(), "learner")

    assert page.status_code == 200, page.text
    assert "/course/" in page.url
    assert "Your badges in" in page.text
    with bridge.session() as session:
        learner = session.scalar(select(Learner))
        assert learner.lms_user_id == "3001"
        course = session.scalar(select(LtiCourse))
        assert course.lms_course_id == "101"


def test_instructor_lands_on_instructor_page(launch_setup):
    """An instructor launch lands on the instructor's page and records no learner."""
    family, peer, bridge = launch_setup

    page = peer.launch_with_session(requests.Session(), "instructor")

    assert page.status_code == 200, page.text
    assert "Badges of" in page.text
    with bridge.session() as session:
        assert session.scalar(select(Learner)) is None


def test_first_launch_reveals_deployment(launch_setup):
    """The deployment id sent at the first launch is stored (accept policy)."""
    family, peer, bridge = launch_setup

    peer.launch_with_session(requests.Session(), "learner")

    with bridge.session() as session:
        deployment = session.scalar(select(Deployment))
        assert deployment.deployment_id == "deployment-7"


def test_canvas_issuer_is_shared(launch_setup):
    """The Canvas claim set signs with Canvas's shared issuer."""
    family, peer, bridge = launch_setup

    expected = CANVAS_ISSUER if family == "canvas" else peer.issuer

    assert peer.token_issuer == expected


def test_course_page_framed_by_launching_host(launch_setup):
    """The host that posted the launch (a school's own Canvas) may frame the course page."""
    family, peer, bridge = launch_setup
    browser = requests.Session()
    browser.headers["Origin"] = "https://school.instructure.com"

    page = peer.launch_with_session(browser, "learner")

    policy = page.headers["Content-Security-Policy"]
    ancestors = policy.split("frame-ancestors", 1)[1].split(";")[0].split()
    assert page.status_code == 200, page.text
    assert "https://school.instructure.com" in ancestors
    assert "https://other.instructure.com" not in ancestors

"""LTI Dynamic Registration over real HTTP with Moodle- and Canvas-shaped platforms."""

from __future__ import annotations

import html

import pytest
import requests
from sqlalchemy import func, select

from lti_tool.demo.peers.registration_platform import CANVAS_ISSUER
from lti_tool.models import Deployment, Registration, RegistrationLink
from tests.lti_tool.lti.registration_harness import new_link_url, register
from tests.support.seed import add_provider


@pytest.fixture
def provider(db):
    provider = add_provider(db)
    db.commit()
    return provider


@pytest.fixture
def register_url(db, provider, tool_url):
    return new_link_url(db, tool_url, provider.id)


def _registrations(db) -> int:
    db.expire_all()
    return db.scalar(select(func.count()).select_from(Registration))


def test_moodle_registration_stores_deployment(db, register_url, platforms):
    """A Moodle exchange stores issuer, client_id and the returned deployment id."""
    moodle = platforms("moodle")

    response = register(register_url, moodle)

    assert response.status_code == 200, response.text
    assert "registration-done.js" in response.text
    registration = db.scalar(select(Registration))
    assert registration.issuer == moodle.url
    assert registration.client_id == moodle.registrations[0]["client_id"]
    assert registration.platform_family == "moodle"
    deployment = db.scalar(select(Deployment))
    assert deployment.deployment_id == "1"


def test_moodle_request_shape(register_url, platforms):
    """The tool asks for supported scopes only and both message types."""
    moodle = platforms("moodle")

    register(register_url, moodle)

    sent = moodle.registrations[0]
    tool = sent["https://purl.imsglobal.org/spec/lti-tool-configuration"]
    assert "contextmembership.readonly" in sent["scope"]
    assert [m["type"] for m in tool["messages"]] == [
        "LtiResourceLinkRequest",
        "LtiDeepLinkingRequest",
    ]
    assert sent["initiate_login_uri"].endswith("/login")
    assert sent["jwks_uri"].endswith("/jwks")


def test_moodle_messages_as_strings(db, register_url, platforms):
    """Message types listed as plain strings are read like objects."""
    moodle = platforms("moodle", messages_as_strings=True)

    response = register(register_url, moodle)

    assert response.status_code == 200, response.text
    tool = moodle.registrations[0][
        "https://purl.imsglobal.org/spec/lti-tool-configuration"
    ]
    assert len(tool["messages"]) == 2


def test_canvas_registration_without_deployment(db, register_url, platforms):
    """A Canvas exchange stores the shared issuer and no deployment yet."""
    canvas = platforms("canvas")

    response = register(register_url, canvas)

    assert response.status_code == 200, response.text
    registration = db.scalar(select(Registration))
    assert registration.issuer == CANVAS_ISSUER
    assert registration.platform_family == "canvas"
    assert db.scalar(select(func.count()).select_from(Deployment)) == 0


def test_canvas_two_customers_share_issuer(
    db, provider, tool_url, register_url, platforms
):
    """Two Canvas customers register under one issuer with distinct client ids."""
    first, second = platforms("canvas"), platforms("canvas")

    register(register_url, first)
    response = register(new_link_url(db, tool_url, provider.id), second)

    assert response.status_code == 200, response.text
    assert _registrations(db) == 2


def test_canvas_custom_variables(register_url, platforms):
    """Canvas gets Canvas variable substitutions for course and user ids."""
    canvas = platforms("canvas")

    register(register_url, canvas)

    tool = canvas.registrations[0][
        "https://purl.imsglobal.org/spec/lti-tool-configuration"
    ]
    assert tool["custom_parameters"]["lms_course_id"] == "$Canvas.course.id"


@pytest.mark.parametrize("family", ["moodle", "canvas"])
def test_bad_registration_token(db, register_url, platforms, family):
    """A rejected registration token gets 400 quoting the platform's error body."""
    platform = platforms(family)

    response = register(register_url, platform, token="wrong-token")

    page = html.unescape(response.text)
    assert response.status_code == 400
    assert "HTTP 401" in page
    assert "invalid or expired registration token" in page
    assert _registrations(db) == 0


def test_canvas_rejected_scope(db, register_url, platforms):
    """Canvas's 422 for a scope it refuses is shown with its message."""
    canvas = platforms(
        "canvas",
        extra_scopes=(
            "https://purl.imsglobal.org/spec/lti-ags/scope/lineitem.readonly",
        ),
    )

    response = register(register_url, canvas)

    page = html.unescape(response.text)
    assert response.status_code == 400
    assert "HTTP 422" in page
    assert "Invalid scope" in page
    assert _registrations(db) == 0


def test_issuer_not_prefix_rejected(db, register_url, platforms):
    """A Moodle whose issuer is not a prefix of its configuration URL is rejected."""
    moodle = platforms("moodle", issuer="https://moodle.example.org")

    response = register(register_url, moodle)

    assert response.status_code == 400
    assert "not a prefix" in html.unescape(response.text)
    assert _registrations(db) == 0


@pytest.mark.parametrize(
    "configuration_url",
    [
        "http://10.0.0.8/.well-known/openid-configuration",
        "http://169.254.169.254/latest/meta-data",
        "https://192.168.1.10/.well-known/openid-configuration",
        "file:///etc/passwd",
    ],
    ids=["private", "metadata", "private_https", "file"],
)
def test_private_configuration_url_rejected(
    db, register_url, platforms, configuration_url
):
    """A configuration URL on a private or metadata address is never fetched."""
    moodle = platforms("moodle")

    response = register(register_url, moodle, configuration_url=configuration_url)

    assert response.status_code == 400
    assert "What to check" in html.unescape(response.text)
    assert moodle.registrations == []
    assert _registrations(db) == 0


def test_invalid_registration_url(db, tool_url, platforms):
    """A registration URL with a forged token gets 400."""
    moodle = platforms("moodle")

    response = register(f"{tool_url}/lti/register/forged", moodle)

    assert response.status_code == 400
    assert "not valid" in html.unescape(response.text)


def test_missing_openid_configuration(register_url):
    """Opening the registration URL directly explains where to paste it."""
    response = requests.get(register_url, headers={"Accept": "text/html"}, timeout=10)

    assert response.status_code == 400
    assert "openid_configuration" in html.unescape(response.text)


def test_unreachable_platform(db, register_url):
    """A configuration URL where nothing listens gets 400 naming it."""
    response = requests.get(
        register_url,
        params={"openid_configuration": "http://127.0.0.1:9/.well-known/openid"},
        headers={"Accept": "text/html"},
        timeout=10,
    )

    assert response.status_code == 400
    assert "could not be reached" in html.unescape(response.text)


SHARED_CLIENT_ID = "10000001234"


def _provider_registrations(db, provider_id: int) -> list[Registration]:
    db.expire_all()
    return list(
        db.scalars(select(Registration).where(Registration.provider_id == provider_id))
    )


@pytest.mark.parametrize("family", ["moodle", "canvas"])
def test_two_providers_register_same_pair(
    db, provider, tool_url, register_url, platforms, family
):
    """One platform that returns the same client id registers for two providers,
    and each provider gets a registration of its own."""
    college = add_provider(db, slug="college", name="College")
    db.commit()
    platform = platforms(family, client_id=SHARED_CLIENT_ID)

    first = register(register_url, platform)
    second = register(new_link_url(db, tool_url, college.id), platform)

    assert first.status_code == 200, first.text
    assert second.status_code == 200, second.text
    academy_rows = _provider_registrations(db, provider.id)
    college_rows = _provider_registrations(db, college.id)
    assert len(academy_rows) == 1
    assert len(college_rows) == 1
    assert academy_rows[0].issuer == college_rows[0].issuer == platform.issuer
    assert academy_rows[0].client_id == college_rows[0].client_id == SHARED_CLIENT_ID
    assert academy_rows[0].public_id != college_rows[0].public_id


def test_same_pair_twice_in_provider(db, provider, tool_url, register_url, platforms):
    """A second registration of a pair in one provider is rejected naming only that
    provider, although another provider registered the pair too, and its link
    stays open."""
    college = add_provider(db, slug="college", name="College")
    db.commit()
    platform = platforms("canvas", client_id=SHARED_CLIENT_ID)
    register(new_link_url(db, tool_url, college.id), platform)
    register(register_url, platform)
    second_url = new_link_url(db, tool_url, provider.id)

    again = register(second_url, platform)
    page = html.unescape(again.text)

    assert again.status_code == 400
    assert "already registered for provider 'academy'" in page
    assert "was not used up" in page
    assert "college" not in page.lower()
    assert len(_provider_registrations(db, provider.id)) == 1
    assert len(_provider_registrations(db, college.id)) == 1
    db.expire_all()
    open_links = db.scalars(
        select(RegistrationLink).where(RegistrationLink.used_at.is_(None))
    ).all()
    assert len(open_links) == 1

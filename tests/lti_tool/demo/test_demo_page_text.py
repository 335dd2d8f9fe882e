"""The /demo page's sign-in step names where provider admins come from."""

from __future__ import annotations

import html

import pytest

from lti_tool.app import create_app
from lti_tool.schema import upgrade


@pytest.fixture
def demo_app(settings):
    settings.demo = True
    upgrade(settings.database_url)
    app = create_app(settings)
    app.config["TESTING"] = True
    yield app
    app.extensions["hpass"].engine.dispose()


@pytest.mark.parametrize(
    ("language", "expected"),
    [
        ("en", "with the account of an invitation sent from /admin/invitations"),
        ("fr", "avec le compte d'une invitation envoyée depuis /admin/invitations"),
    ],
)
def test_demo_sign_in_step_names_invitation(demo_app, language, expected):
    """A provider admin is invited; `operator create` makes the operator who invites."""
    response = demo_app.test_client().get(
        "/demo/", headers={"Accept-Language": language}
    )
    page = html.unescape(response.get_data(as_text=True))

    assert response.status_code == 200
    assert expected in page
    assert "account created by an operator" not in page


@pytest.mark.parametrize(
    ("language", "colon"),
    [("en", ":"), ("fr", "\u00a0:"), ("es", ":")],
)
def test_demo_step_colons_follow_language(demo_app, language, colon):
    """Each step's colon after its link is written as the page language writes it."""
    response = demo_app.test_client().get(
        "/demo/", headers={"Accept-Language": language}
    )
    page = html.unescape(response.get_data(as_text=True))

    assert response.status_code == 200
    for path in ("/launch/instructor", "/launch/learner"):
        link_end = page.index("</a>", page.index(path))
        assert page[link_end + len("</a>"):].startswith(colon + " ")

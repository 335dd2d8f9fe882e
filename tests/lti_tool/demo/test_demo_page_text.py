"""The /demo page's steps: the operator account for the admin pages, and colons."""

from __future__ import annotations

import html
from pathlib import Path

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
        ("en", "then choose “HPass Demo Academy” under “Work on provider”."),
        (
            "fr",
            "choisissez ensuite «\u00a0HPass Demo Academy\u00a0» sous "
            "«\u00a0Travailler sur le fournisseur\u00a0».",
        ),
        ("es", "luego elija «HPass Demo Academy» en «Trabajar con el proveedor»."),
    ],
)
def test_demo_sign_in_step_names_provider(demo_app, language, expected):
    """The sign-in step names the demo provider to choose as the dashboard does."""
    response = demo_app.test_client().get(
        "/demo/", headers={"Accept-Language": language}
    )
    page = html.unescape(response.get_data(as_text=True))

    assert response.status_code == 200
    assert expected in page


def test_demo_sign_in_step_gives_command(demo_app):
    """The sign-in step gives the command that creates the operator account."""
    response = demo_app.test_client().get("/demo/")
    page = html.unescape(response.get_data(as_text=True))

    command = ".venv/bin/hpass-bridge operator create --email you@example.org"
    assert f'<code dir="ltr">{command}</code>' in page
    assert ">Sign in as the operator</a>: then choose" in page
    assert "/admin/invitations" in page
    assert "Sign in as a provider admin" not in page


def test_readme_gives_operator_command():
    """The README's quick start shows how to get an account for the admin pages."""
    readme = (Path(__file__).resolve().parents[3] / "README.md").read_text(
        encoding="utf-8"
    )
    quick_start = readme[
        readme.index("## Quick start") : readme.index("## Screenshots")
    ]

    assert (
        ".venv/bin/hpass-bridge operator create --email you@example.org" in quick_start
    )
    assert "Work on provider" in quick_start


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
        assert page[link_end + len("</a>") :].startswith(colon + " ")

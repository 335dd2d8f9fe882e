"""Language choices of the admin area and the course pages: each area stores the
switcher's choice in its own cookie, so one never changes the other's language."""

from __future__ import annotations

import pytest

from lti_tool.accounts import AccountRole
from lti_tool.views.account_session import ACCOUNT_BLUEPRINTS, ACCOUNT_PATH_PREFIXES
from tests.support.account_cookie import account_session_transaction

from .conftest import add_account, launch_as, sign_in

EMAIL = "admin@alpha.org"
COURSE_COOKIE = "hpass_session"


def _html_tag(client, path: str, language: str = "en") -> str:
    response = client.get(path, headers={"Accept-Language": language})
    assert response.status_code == 200, path
    page = response.get_data(as_text=True)
    start = page.index("<html")
    return page[start : page.index(">", start) + 1]


def _stored_account_choice(client) -> str | None:
    with account_session_transaction(client) as session:
        return session.get("locale_choice")


def _stored_course_choice(client) -> str | None:
    with client.session_transaction() as session:
        return session.get("locale_choice")


@pytest.fixture
def signed_in(client, tenants, db):
    alpha, _ = tenants
    add_account(db, EMAIL, AccountRole.PROVIDER_ADMIN, alpha.provider_id)
    sign_in(client, EMAIL)
    return alpha


def test_admin_choice_in_account_cookie(client, signed_in):
    """A ?lang= on an admin page is stored in the account cookie only."""
    response = client.get("/admin/?lang=ar")
    set_cookies = response.headers.getlist("Set-Cookie")

    assert response.status_code == 200
    assert '<html lang="ar" dir="rtl">' in response.get_data(as_text=True)
    assert _stored_account_choice(client) == "ar"
    assert not any(cookie.startswith(COURSE_COOKIE + "=") for cookie in set_cookies)
    assert client.get_cookie(COURSE_COOKIE) is None


def test_admin_choice_kept_on_later_pages(client, signed_in):
    """The admin choice outlives its request and beats Accept-Language."""
    client.get("/admin/?lang=es")

    assert _html_tag(client, "/admin/audit", "fr") == '<html lang="es" dir="ltr">'


def test_admin_choice_leaves_course_language(client, signed_in):
    """A course launched beside the admin pages keeps its language."""
    launch_as(client, signed_in, "learner", locale="fr")
    course = f"/course/{signed_in.course_id}"

    client.get("/admin/?lang=ar")

    assert _stored_course_choice(client) is None
    assert _html_tag(client, course) == '<html lang="fr" dir="ltr">'


def test_course_choice_leaves_admin_language(client, signed_in):
    """A choice or a launch locale of a course does not change the admin pages."""
    launch_as(client, signed_in, "learner", locale="fr")
    course = f"/course/{signed_in.course_id}"

    client.get(course + "?lang=ar")

    assert _html_tag(client, course) == '<html lang="ar" dir="rtl">'
    assert _html_tag(client, "/admin/") == '<html lang="en" dir="ltr">'
    assert _stored_account_choice(client) is None


def test_choice_on_sign_in_page_kept(client, tenants, db):
    """A choice made on the sign-in page stays after signing in."""
    alpha, _ = tenants
    add_account(db, EMAIL, AccountRole.PROVIDER_ADMIN, alpha.provider_id)
    client.get("/account/sign-in?lang=ar")

    response = sign_in(client, EMAIL)

    assert response.status_code == 303
    assert _html_tag(client, "/admin/") == '<html lang="ar" dir="rtl">'


def test_choice_kept_after_sign_out(client, signed_in):
    """Signing out ends the sign-in but keeps the browser's language choice."""
    client.get("/admin/?lang=es")

    signed_out = client.post("/account/sign-out", data={"csrf": "test-csrf"})

    assert signed_out.status_code == 303
    assert client.get("/admin/").status_code == 303
    assert _stored_account_choice(client) == "es"
    assert _html_tag(client, "/account/sign-in") == '<html lang="es" dir="ltr">'


def test_account_paths_match_blueprints(app):
    """Every route of the account area, and only those, is under an account path
    prefix, because the rate limiter picks the cookie by path before routing."""
    for rule in app.url_map.iter_rules():
        blueprint = rule.endpoint.rpartition(".")[0]
        under_prefix = rule.rule.startswith(ACCOUNT_PATH_PREFIXES)
        assert under_prefix == (blueprint in ACCOUNT_BLUEPRINTS), rule.rule

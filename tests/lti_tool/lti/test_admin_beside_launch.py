"""An admin sign-in and a course launch in one browser: each keeps its own cookie."""

from __future__ import annotations

import re

import pytest

from lti_tool.accounts import AccountRole, create_account
from lti_tool.views.account_session import ACCOUNT_COOKIE_NAME

EMAIL = "admin@academy.example"
PASSWORD = "a long test admin password"
CSRF_FIELD = re.compile(r'name="csrf" value="([^"]+)"')


@pytest.fixture
def admin(db, registration):
    create_account(
        db,
        email=EMAIL,
        password=PASSWORD,
        role=AccountRole.PROVIDER_ADMIN,
        provider_id=registration.provider_id,
    )
    db.commit()


def _get(tool, path: str):
    return tool.http.get(tool.tool_url + path, allow_redirects=False, timeout=10)


def _csrf_of(page) -> str:
    found = CSRF_FIELD.search(page.text)
    assert found, page.text[:300]
    return found.group(1)


def _sign_in(tool):
    form = _get(tool, "/account/sign-in")
    return tool.http.post(
        tool.tool_url + "/account/sign-in",
        data={"email": EMAIL, "password": PASSWORD, "csrf": _csrf_of(form)},
        allow_redirects=False,
        timeout=10,
    )


def _launch(tool, platform) -> str:
    """Launch into the course and return the course page's path."""
    login = tool.start()
    response = tool.launch(
        platform.sign(platform.claims(login.nonce, tool.target_link_uri)), login.state
    )
    assert response.status_code == 302, response.text
    return response.headers["Location"]


def _assert_admin_page_opens(tool) -> None:
    page = _get(tool, "/admin/")
    assert page.status_code == 200, page.headers.get("Location")
    assert EMAIL in page.text


def test_launch_keeps_admin_sign_in(tool, platform, admin):
    """A course launch after sign-in leaves the admin pages open."""
    assert _sign_in(tool).status_code == 303
    _assert_admin_page_opens(tool)

    course_path = _launch(tool, platform)

    _assert_admin_page_opens(tool)
    assert _get(tool, course_path).status_code == 200


def test_launch_leaves_account_cookie(tool, platform, admin):
    """The launch response sets the course session and no account cookie."""
    _sign_in(tool)
    login = tool.start()
    response = tool.launch(
        platform.sign(platform.claims(login.nonce, tool.target_link_uri)), login.state
    )

    set_cookies = response.raw.headers.getlist("Set-Cookie")
    assert any(cookie.startswith("hpass_session=") for cookie in set_cookies)
    assert not any(cookie.startswith(ACCOUNT_COOKIE_NAME) for cookie in set_cookies)


def test_sign_in_keeps_course_session(tool, platform, admin):
    """Signing in after a launch leaves the course page open."""
    course_path = _launch(tool, platform)

    assert _sign_in(tool).status_code == 303

    _assert_admin_page_opens(tool)
    assert _get(tool, course_path).status_code == 200


def test_sign_out_keeps_course_session(tool, platform, admin):
    """Signing out ends the admin pages only, not the course launched beside them."""
    course_path = _launch(tool, platform)
    _sign_in(tool)
    admin_page = _get(tool, "/admin/")

    signed_out = tool.http.post(
        tool.tool_url + "/account/sign-out",
        data={"csrf": _csrf_of(admin_page)},
        allow_redirects=False,
        timeout=10,
    )

    assert signed_out.status_code == 303
    assert "/account/sign-in" in _get(tool, "/admin/").headers["Location"]
    assert _get(tool, course_path).status_code == 200


def test_course_token_rejected_by_admin(tool, platform, admin):
    """A course page's CSRF token does not pass an admin form, nor the reverse."""
    course_path = _launch(tool, platform)
    _sign_in(tool)
    course_token = _csrf_of(_get(tool, course_path))
    admin_token = _csrf_of(_get(tool, "/admin/"))

    signed_out = tool.http.post(
        tool.tool_url + "/account/sign-out",
        data={"csrf": course_token},
        allow_redirects=False,
        timeout=10,
    )

    assert course_token != admin_token
    assert signed_out.status_code == 400
    _assert_admin_page_opens(tool)


def test_account_cookie_flags(tool, admin):
    """The account cookie is HttpOnly and SameSite=Lax, on every path."""
    response = _sign_in(tool)

    cookie = next(
        header
        for header in response.raw.headers.getlist("Set-Cookie")
        if header.startswith(ACCOUNT_COOKIE_NAME + "=")
    )
    assert "HttpOnly" in cookie
    assert "SameSite=Lax" in cookie
    assert "Path=/" in cookie


def test_account_cookie_secure_outside_loopback(app):
    """Outside loopback development the account cookie is Secure, like the session's."""
    from lti_tool.views.account_session import account_interface

    app.config["SESSION_COOKIE_SECURE"] = True

    assert account_interface.get_cookie_secure(app) is True
    assert account_interface.get_cookie_samesite(app) == "Lax"

"""The admin area's own signed cookie, kept apart from the course launch's session.

A course launch replaces Flask's session cookie (`hpass_session`) with the launch's
state (see `lti_tool.lti.session_cookie`). An account's sign-in is therefore stored in
a second cookie, `hpass_account`, which launches never write, so one browser can be
signed in to the admin area and launched into courses at the same time. The sign-in
pages (`/account/`) and the admin pages (`/admin/`, `/lti/admin/`) keep their
state, CSRF token and language choice included, in this cookie only. Every other page
uses Flask's session.

The cookie is signed as Flask signs its session, with the app's secret key but its
own salt, so neither cookie's value is accepted as the other. It is SameSite=Lax in
every mode: the admin pages are never framed and take no cross-site POSTs, so they
do not need the SameSite=None that launches inside the LMS iframe need. HttpOnly and
Secure follow the Flask session's settings.
"""

from __future__ import annotations

from flask import Flask, Response, current_app, g, request, session
from flask.sessions import SecureCookieSession, SecureCookieSessionInterface

ACCOUNT_COOKIE_NAME = "hpass_account"
# The blueprints whose pages use the account cookie instead of Flask's session.
# The held deployment pages (/lti/admin/) are nested in the `lti` blueprint.
ACCOUNT_BLUEPRINTS = frozenset({"admin", "lti.lti_admin", "auth", "accounts"})
# The URL prefixes of those blueprints' routes, for code that runs before Flask
# matches a route, such as the rate limiter's 429 page.
ACCOUNT_PATH_PREFIXES = ("/account/", "/admin/", "/lti/admin/")
# Account session keys that belong to the browser rather than to a sign-in, so
# signing in, signing out and expiry keep them.
BROWSER_KEYS = ("locale_choice",)


class AccountSessionInterface(SecureCookieSessionInterface):
    """Flask's signed-cookie session under the account cookie's name, salt and flags."""

    salt = "hpass-account-session"

    def get_cookie_name(self, app: Flask) -> str:
        return ACCOUNT_COOKIE_NAME

    def get_cookie_samesite(self, app: Flask) -> str:
        return "Lax"

    def get_cookie_partitioned(self, app: Flask) -> bool:
        return False


account_interface = AccountSessionInterface()


def account_session() -> SecureCookieSession:
    """Return this request's account session, read from its cookie on first use."""
    if "account_session" not in g:
        opened = account_interface.open_session(current_app, request)
        if opened is None:
            raise RuntimeError("the app has no secret key to sign the account cookie")
        g.account_session = opened
    return g.account_session


def reset_account_session() -> SecureCookieSession:
    """Empty the account session except its `BROWSER_KEYS`, and return it."""
    session = account_session()
    browser_values = {key: session[key] for key in BROWSER_KEYS if key in session}
    session.clear()
    session.update(browser_values)
    return session


def in_account_area() -> bool:
    """Return True when this request is for a sign-in or admin page."""
    return request.blueprint in ACCOUNT_BLUEPRINTS


def page_session():
    """Return the session of this page's area: the account session or Flask's."""
    return account_session() if in_account_area() else session


def _save_account_session(response: Response) -> Response:
    opened = g.get("account_session")
    if opened is not None:
        account_interface.save_session(current_app, opened, response)
    return response


def register(app: Flask) -> None:
    """Write the account cookie after every request that read or changed it."""
    app.after_request(_save_account_session)

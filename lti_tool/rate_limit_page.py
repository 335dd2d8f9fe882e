"""The HTML page of a request rejected by the rate limits, in the visitor's language.

The limiter runs before Flask, so this page is built without a request context. Its
language is, in order: a `?lang=` choice, the choices stored in the cookie of the
path's area (the switcher's choice in the account cookie for sign-in and admin paths,
and the switcher's choice or the LTI launch's locale in the session cookie for the
others), the Accept-Language header, then English. That is the order of the other
pages (`lti_tool/i18n.py`), with `?lang=` first because a rejected request cannot
store it.
"""

from __future__ import annotations

from collections.abc import Callable
from html import escape
from http.cookies import CookieError, SimpleCookie
from urllib.parse import parse_qs

from flask import Flask
from itsdangerous import BadSignature
from werkzeug.datastructures import LanguageAccept
from werkzeug.http import parse_accept_header

from lti_tool.i18n import (
    DEFAULT_LOCALE,
    RTL_LANGUAGES,
    supported_locale,
    translations_for,
)
from lti_tool.views.account_session import (
    ACCOUNT_COOKIE_NAME,
    ACCOUNT_PATH_PREFIXES,
    account_interface,
)

# Reads the session's stored language choices from a WSGI environ.
SessionLocales = Callable[[dict], list]


def _(message: str) -> str:
    """Mark a message for extraction; it is translated when the page is built."""
    return message


# Reasons shown on the page, per limit class; the English texts are the message ids.
PAGE_MESSAGES = {
    "sign_in": _("Too many sign-in attempts from your network or for this account."),
    "lti_launch": _("Too many course launches from your network at once."),
}


def page_locale(environ: dict, session_locales: SessionLocales | None = None) -> str:
    """Return the supported language of the 429 page for this request."""
    query = parse_qs(environ.get("QUERY_STRING", ""), max_num_fields=20)
    candidates = list(query.get("lang", [])[:1])
    if session_locales is not None:
        candidates += session_locales(environ)
    for candidate in candidates:
        chosen = supported_locale(candidate if isinstance(candidate, str) else None)
        if chosen:
            return chosen
    accepted = parse_accept_header(environ.get("HTTP_ACCEPT_LANGUAGE"), LanguageAccept)
    for tag, _quality in accepted:
        chosen = supported_locale(tag)
        if chosen:
            return chosen

    return DEFAULT_LOCALE


def render_page(
    environ: dict,
    limit_class: str,
    retry_after: int,
    session_locales: SessionLocales | None = None,
) -> bytes:
    """Build the translated 429 page for `limit_class` with the wait in seconds."""
    locale = page_locale(environ, session_locales)
    catalog = translations_for(locale)
    direction = "rtl" if locale in RTL_LANGUAGES else "ltr"
    title = catalog.ugettext("Too many requests")
    reason = catalog.ugettext(PAGE_MESSAGES[limit_class])
    wait = catalog.ungettext(
        "Wait %(num)d second and try again.",
        "Wait %(num)d seconds and try again.",
        retry_after,
    ) % {"num": retry_after}
    page = (
        f'<!doctype html><html lang="{locale}" dir="{direction}"><head>'
        '<meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{escape(title)}</title></head><body><main>"
        f"<h1>{escape(title)}</h1><p>{escape(reason)}</p><p>{escape(wait)}</p>"
        "</main></body></html>"
    )

    return page.encode()


def session_locale_reader(app: Flask) -> SessionLocales:
    """Return a reader of the language choices in the signed cookie of a path's area:
    the account cookie for sign-in and admin paths, else the app's session cookie.

    A missing, unsigned or tampered cookie gives no choices, so the page falls back
    to Accept-Language.
    """
    course_serializer = app.session_interface.get_signing_serializer(app)
    course_cookie = app.config["SESSION_COOKIE_NAME"]
    account_serializer = account_interface.get_signing_serializer(app)

    def read(environ: dict) -> list:
        if environ.get("PATH_INFO", "").startswith(ACCOUNT_PATH_PREFIXES):
            data = _signed_cookie(environ, ACCOUNT_COOKIE_NAME, account_serializer)
            return [data.get("locale_choice")]
        data = _signed_cookie(environ, course_cookie, course_serializer)
        return [data.get("locale_choice"), data.get("launch_locale")]

    return read


def _signed_cookie(environ: dict, name: str, serializer) -> dict:
    """Return the data of a signed session cookie, or {} when it is missing or its
    signature is invalid."""
    if serializer is None:
        return {}
    cookies = SimpleCookie()
    try:
        cookies.load(environ.get("HTTP_COOKIE", ""))
    except CookieError:
        return {}
    morsel = cookies.get(name)
    if morsel is None:
        return {}
    try:
        data = serializer.loads(morsel.value)
    except BadSignature:
        return {}
    if not isinstance(data, dict):
        return {}

    return data

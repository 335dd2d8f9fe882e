"""Form and error page messages in plain, translated words, with details in the log.

No test sends a request off this machine: the outbound guard checks addresses
through `resolve_host`, which the tests replace, and it rejects a blocked address
before any connection.
"""

from __future__ import annotations

import html
import ipaddress
import logging

import pytest
from sqlalchemy import func, select

from badge_engine.models import Achievement
from badge_engine.outbound import policy as policy_module
from connectors.models import LmsConnection
from lti_tool.accounts import AccountRole
from lti_tool.views.admin import HOST_NAME_MAX, URL_MAX

from .conftest import add_account, launch_as, sign_in
from .test_activity_rules import QUIZ, activity_form, post_form

UNKNOWN_REGISTRATION = "00000000-0000-0000-0000-000000000000"
METADATA_ADDRESS = "169.254.169.254"


@pytest.fixture
def alpha_admin(client, tenants, db):
    alpha, _ = tenants
    add_account(db, "admin@alpha.org", AccountRole.PROVIDER_ADMIN, alpha.provider_id)
    sign_in(client, "admin@alpha.org")
    return alpha


@pytest.fixture
def resolved_hosts(monkeypatch):
    """Resolve every host name to the metadata address, and record each name.

    An IP literal resolves to itself. No system resolver is asked.
    """
    names = []

    def resolve(host, port, *, url):
        names.append(host)
        try:
            return [ipaddress.ip_address(host.strip("[]"))]
        except ValueError:
            return [ipaddress.ip_address(METADATA_ADDRESS)]

    monkeypatch.setattr(policy_module, "resolve_host", resolve)
    return names


def _connections(db) -> int:
    db.expire_all()
    return db.scalar(select(func.count(LmsConnection.id)))


def _connect_lms(client, url: str, language: str = "en", field: str = "lms_url"):
    response = client.post(
        f"/admin/connect/lms?lang={language}",
        data={
            "csrf": "test-csrf",
            "lms_name": "Another Moodle",
            field: url,
            "lms_token": "token",
        },
    )
    return response, html.unescape(response.get_data(as_text=True))


def test_long_lms_address_too_long(client, db, alpha_admin):
    """A 3000-character host name is reported as too long, with the limit."""
    url = "https://" + "a" * 3000 + ".example.org"
    before = _connections(db)

    response, page = _connect_lms(client, url)

    assert response.status_code == 400
    assert (
        f"This address is {len(url)} characters long. Shorten it to {URL_MAX} "
        "characters or fewer." in page
    )
    assert "not a web address" not in page
    assert _connections(db) == before


def test_long_host_name_too_long(client, db, alpha_admin, resolved_hosts):
    """A host name over the DNS limit, in a short enough address, names the limit."""
    host = "a" * 300
    before = _connections(db)

    response, page = _connect_lms(client, f"https://{host}")

    assert response.status_code == 400
    assert (
        f"The host name in this address is 300 characters long, but a host name "
        f"has at most {HOST_NAME_MAX}." in page
    )
    assert resolved_hosts == []
    assert _connections(db) == before


@pytest.mark.parametrize(
    ("language", "phrase"),
    [
        ("fr", "Cette adresse compte 3020 caractères."),
        ("es", "Esta dirección tiene 3020 caracteres."),
        ("ar", "يبلغ طول هذا العنوان 3020 حرفًا."),
    ],
)
def test_long_lms_address_translated(client, alpha_admin, language, phrase):
    """The too-long address message is translated."""
    url = "https://" + "a" * 3000 + ".example.org"

    response, page = _connect_lms(client, url, language=language)

    assert response.status_code == 400
    assert phrase in page


BLOCKED_LMS = {
    "en": "The host resolves to the non-public address",
    "fr": "L'hôte correspond à l'adresse non publique",
    "es": "El host se resuelve en la dirección no pública",
    "ar": "يُحَلّ اسم المضيف إلى العنوان غير العام",
}


@pytest.mark.parametrize("language", sorted(BLOCKED_LMS))
@pytest.mark.parametrize(
    "url", [f"http://{METADATA_ADDRESS}/", "https://metadata.example.org"]
)
def test_blocked_lms_address_translated(
    client, db, alpha_admin, resolved_hosts, caplog, language, url
):
    """A blocked LMS address gets a translated message without the field name."""
    caplog.set_level(logging.INFO)
    before = _connections(db)

    response, page = _connect_lms(client, url, language=language)

    assert response.status_code == 400
    assert BLOCKED_LMS[language] in page
    assert f'<bdi dir="ltr">{METADATA_ADDRESS}</bdi>' in page
    assert "lms_url '" not in page
    assert "enter the LMS site's public" not in page
    assert _connections(db) == before
    assert "lms_url_rejected" in caplog.text
    assert "non-public address" in caplog.text


def test_blocked_canvas_address_plain(client, db, alpha_admin, resolved_hosts):
    """The Canvas form shows the same plain message for a blocked address."""
    response = client.post(
        "/admin/connect/canvas",
        data={
            "csrf": "test-csrf",
            "canvas_name": "Canvas",
            "canvas_url": f"http://{METADATA_ADDRESS}",
            "canvas_token": "token",
            "canvas_course": "1",
        },
    )
    page = html.unescape(response.get_data(as_text=True))

    assert response.status_code == 400
    assert BLOCKED_LMS["en"] in page
    assert "canvas_url 'http" not in page


def test_lms_address_with_query_plain(client, alpha_admin, resolved_hosts):
    """An LMS address with a query gets a plain message naming what to remove."""
    response, page = _connect_lms(client, "https://moodle.example.org/?a=1")

    assert response.status_code == 400
    assert "without a part starting with ? or #" in page
    assert "must not contain" not in page


def test_lms_address_with_password_plain(client, alpha_admin, resolved_hosts):
    """An LMS address with a user name and password gets a plain message."""
    response, page = _connect_lms(client, "https://user:secret@moodle.example.org")

    assert response.status_code == 400
    assert "This address contains a user name or password." in page
    assert "Enter the site's address without them." in page


@pytest.mark.parametrize("url", ["https://[abc", "http://[::1"])
def test_lms_address_unclosed_bracket(client, alpha_admin, url):
    """An address that urlsplit cannot parse is not a web address, not a 500."""
    response, page = _connect_lms(client, url)

    assert response.status_code == 400
    assert "This is not a web address." in page


UNKNOWN_LINK = {
    "en": "This tool link points to the LTI registration",
    "fr": "Ce lien d'outil pointe vers l'enregistrement LTI",
    "es": "Este enlace de herramienta apunta al registro LTI",
    "ar": "يشير رابط الأداة هذا إلى تسجيل LTI",
}


@pytest.mark.parametrize("language", sorted(UNKNOWN_LINK))
def test_unknown_registration_login_translated(client, caplog, language):
    """A login to an unknown registration is explained in the page's language."""
    caplog.set_level(logging.INFO)

    response = client.get(f"/lti/{UNKNOWN_REGISTRATION}/login?lang={language}")
    page = html.unescape(response.get_data(as_text=True))

    assert response.status_code == 404
    assert UNKNOWN_LINK[language] in page
    assert f"\u2068{UNKNOWN_REGISTRATION}\u2069" in page
    assert "no LTI registration" not in page
    assert UNKNOWN_REGISTRATION in caplog.text
    assert "no LTI registration" in caplog.text


def test_unknown_registration_login_rtl(client):
    """The Arabic page of an unknown registration is laid out right to left."""
    response = client.get(f"/lti/{UNKNOWN_REGISTRATION}/login?lang=ar")

    assert '<html lang="ar" dir="rtl">' in response.get_data(as_text=True)


UNKNOWN_PORTFOLIO = {
    "en": "You have no linked portfolio with the number 999.",
    "fr": "Vous n'avez aucun portfolio lié portant le numéro 999.",
    "es": "No tiene ningún portafolio vinculado con el número 999.",
    "ar": "ليس لديك ملف إنجاز مرتبط بالرقم 999.",
}


@pytest.mark.parametrize("language", sorted(UNKNOWN_PORTFOLIO))
def test_unlink_unknown_portfolio_translated(client, tenants, caplog, language):
    """Unlinking a portfolio the learner does not have is explained in plain words."""
    caplog.set_level(logging.INFO)
    alpha, _ = tenants
    launch_as(client, alpha, "learner")

    response = client.post(
        f"/portfolio/accounts/999/unlink?lang={language}",
        data={"csrf": "test-csrf"},
    )
    page = html.unescape(response.get_data(as_text=True))

    assert response.status_code == 404
    assert UNKNOWN_PORTFOLIO[language] in page
    assert "you have no linked portfolio" not in page
    assert "no linked portfolio account 999" in caplog.text


@pytest.mark.parametrize("activity_id", ["abc", "4001; DROP", "ags-x", " 4001"])
def test_malformed_activity_id_not_valid(client, tenants, db, caplog, activity_id):
    """An activity id no LMS gives is reported as not valid, not as deleted."""
    caplog.set_level(logging.INFO)
    alpha, _ = tenants
    launch_as(client, alpha, "instructor")
    before = db.scalar(select(func.count(Achievement.id)))

    response = post_form(
        client,
        f"/course/{alpha.course_id}/achievements",
        activity_form(QUIZ, activity_id),
    )
    page = html.unescape(response.get_data(as_text=True))

    assert response.status_code == 400
    assert f"These are not valid activity ids: {activity_id}." in page
    assert "no longer exist" not in page
    assert db.scalar(select(func.count(Achievement.id))) == before
    assert "activity_ids_rejected" in caplog.text


def test_malformed_activity_id_arabic(client, tenants):
    """The invalid activity id message is translated."""
    alpha, _ = tenants
    launch_as(client, alpha, "instructor", locale="ar")

    response = post_form(
        client, f"/course/{alpha.course_id}/achievements", activity_form("abc")
    )
    page = html.unescape(response.get_data(as_text=True))

    assert response.status_code == 400
    assert "معرّفات الأنشطة هذه غير صالحة: abc." in page


def test_deleted_activity_still_no_longer_exists(client, tenants):
    """A well-formed id the course lacks is still reported as deleted."""
    alpha, _ = tenants
    launch_as(client, alpha, "instructor")

    response = post_form(
        client, f"/course/{alpha.course_id}/achievements", activity_form("ags-9999")
    )
    page = response.get_data(as_text=True)

    assert response.status_code == 400
    assert "no longer exist in the course: ags-9999" in page

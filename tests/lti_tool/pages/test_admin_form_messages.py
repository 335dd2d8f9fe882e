"""Messages of the admin forms: required fields, invalid values, duplicate sites."""

from __future__ import annotations

import html

import pytest

from lti_tool.accounts import AccountRole

from .conftest import add_account, sign_in
from .test_admin_pages import SECOND_MOODLE_TOKEN, second_moodle  # noqa: F401


@pytest.fixture
def admin(client, tenants, db):
    alpha, _ = tenants
    add_account(db, "admin@alpha.org", AccountRole.PROVIDER_ADMIN, alpha.provider_id)
    sign_in(client, "admin@alpha.org")
    return alpha


def _connect(client, url: str, name: str = "Second Moodle", language: str = "en"):
    response = client.post(
        "/admin/connect/lms",
        data={
            "csrf": "test-csrf",
            "lms_name": name,
            "lms_url": url,
            "lms_token": SECOND_MOODLE_TOKEN,
        },
        headers={"Accept-Language": language},
    )
    return response, html.unescape(response.get_data(as_text=True))


def test_empty_address_required(client, admin):
    """An empty LMS address is reported as a required field."""
    response, page = _connect(client, "")

    assert response.status_code == 400
    assert "This field is required. Enter the address, starting with https://." in page


def test_empty_address_required_french(client, admin):
    """The required-address message is translated."""
    response, page = _connect(client, "", language="fr")

    assert response.status_code == 400
    assert "Ce champ est obligatoire. Saisissez l'adresse" in page


def test_duplicate_site_names_disconnect(client, admin, second_moodle):  # noqa: F811
    """A site connected already points to the Disconnect button, the page's word."""
    _connect(client, second_moodle.site_url)

    response, page = _connect(client, second_moodle.site_url, name="Third")

    assert response.status_code == 400
    assert "press its Disconnect button under LMS sites" in page
    assert "remove it" not in page


def _invite(client, email: str, language: str = "en"):
    response = client.post(
        "/admin/invitations",
        data={"csrf": "test-csrf", "email": email},
        headers={"Accept-Language": language},
    )
    return response, html.unescape(response.get_data(as_text=True))


def test_invite_empty_email_required(client, admin):
    """An empty invitation email is reported as a required field."""
    response, page = _invite(client, "")

    assert response.status_code == 400
    assert "This field is required. Enter the email address" in page


@pytest.mark.parametrize("email", ["not-an-address", "a" * 320 + "@example.org"])
def test_invite_invalid_email(client, admin, email):
    """A malformed invitation email is reported as not valid, not as missing."""
    response, page = _invite(client, email)

    assert response.status_code == 400
    assert "This is not a valid email address." in page
    assert "This field is required" not in page


def test_invite_invalid_email_arabic(client, admin):
    """The invalid-email message is translated into Arabic."""
    response, page = _invite(client, "not-an-address", language="ar")

    assert response.status_code == 400
    assert "هذا ليس عنوان بريد إلكتروني صالحًا." in page

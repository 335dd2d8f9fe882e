"""Messages of the admin forms: required fields, invalid values, duplicate sites."""

from __future__ import annotations

import html

import pytest
from sqlalchemy import func, select

from lti_tool.accounts import AccountRole
from lti_tool.models import Registration

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


def _registrations(db) -> int:
    db.expire_all()
    return db.scalar(select(func.count()).select_from(Registration))


def _connect_lti(client, language: str = "en", **urls):
    data = {
        "csrf": "test-csrf",
        "issuer": "http://127.0.0.1:9",
        "client_id": "client-1",
        "auth_login_url": "http://127.0.0.1:9/auth",
        "key_set_url": "http://127.0.0.1:9/jwks",
        "deployment_id": "1",
    }
    data.update(urls)
    response = client.post(
        "/admin/connect/lti", data=data, headers={"Accept-Language": language}
    )
    return response, html.unescape(response.get_data(as_text=True))


@pytest.mark.parametrize(
    ("field", "url", "address"),
    [
        ("key_set_url", "https://169.254.169.254/latest/meta-data", "169.254.169.254"),
        ("key_set_url", "https://10.0.0.1/jwks", "10.0.0.1"),
        ("auth_login_url", "https://10.0.0.1/auth", "10.0.0.1"),
        ("issuer", "https://[fd00::1]", "fd00::1"),
    ],
)
def test_platform_private_address_rejected(client, db, admin, field, url, address):
    """A platform URL on a non-public address is rejected before anything is stored.

    The hosts are IP literals, so the check resolves nothing and sends no request.
    """
    before = _registrations(db)

    response, page = _connect_lti(client, **{field: url})

    assert response.status_code == 400
    assert f'the non-public address <bdi dir="ltr">{address}</bdi> (private' in page
    assert "Give the platform's public https URL." in page
    assert _registrations(db) == before


def test_platform_credentials_url_rejected(client, db, admin):
    """A platform URL with a user name and password is rejected."""
    before = _registrations(db)

    response, page = _connect_lti(
        client, key_set_url="http://user:pass@127.0.0.1:9/jwks"
    )

    assert response.status_code == 400
    assert "This address contains a user name or password." in page
    assert _registrations(db) == before


@pytest.mark.parametrize(
    ("language", "phrase"),
    [
        ("fr", 'l\'adresse non publique <bdi dir="ltr">10.0.0.1</bdi>'),
        ("es", 'la dirección no pública <bdi dir="ltr">10.0.0.1</bdi>'),
        ("ar", 'العنوان غير العام <bdi dir="ltr">10.0.0.1</bdi>'),
    ],
)
def test_platform_private_address_translated(client, admin, language, phrase):
    """The non-public address message is translated."""
    response, page = _connect_lti(
        client, language=language, key_set_url="https://10.0.0.1/jwks"
    )

    assert response.status_code == 400
    assert phrase in page


def test_platform_allowed_urls_registered(client, db, admin):
    """Platform URLs the outbound policy allows are registered."""
    before = _registrations(db)

    response, _ = _connect_lti(client)

    assert response.status_code == 303
    assert _registrations(db) == before + 1

"""Ids typed into admin forms and query strings: too large, not numbers, or empty.

SQLite cannot bind a Python int over 2**63 - 1, so such an id once ended in a 500.
Each case must get the message an unknown id gets, with nothing saved, on SQLite
and on PostgreSQL.
"""

from __future__ import annotations

import html

import pytest
from sqlalchemy import func, select

from lti_tool.accounts import AccountRole
from lti_tool.models import Registration
from lti_tool.row_ids import ROW_ID_MAX, parse_row_id, shortened
from tests.support.databases import reset_postgres

from .conftest import add_account, sign_in

HUGE_ID = "99999999999999999999999"
CHOOSE_SITE = "Choose one of this provider&#39;s LMS sites."


@pytest.fixture(params=["sqlite", "postgresql"])
def settings(request, settings):
    """The shared settings, on a fresh PostgreSQL database in the postgresql runs."""
    if request.param == "postgresql":
        settings.database_url = reset_postgres()
    return settings


@pytest.fixture
def operator(client, tenants, db):
    add_account(db, "op@hpass.org", AccountRole.OPERATOR, None)
    sign_in(client, "op@hpass.org")
    return tenants


@pytest.fixture
def alpha_admin(client, tenants, db):
    alpha, _ = tenants
    add_account(db, "admin@alpha.org", AccountRole.PROVIDER_ADMIN, alpha.provider_id)
    sign_in(client, "admin@alpha.org")
    return alpha


def _registrations(db) -> int:
    db.expire_all()
    return db.scalar(select(func.count(Registration.id)))


def _connect_lti(client, connection_id: str):
    return client.post(
        "/admin/connect/lti",
        data={
            "csrf": "test-csrf",
            "issuer": "http://127.0.0.1:9",
            "client_id": "client-ids",
            "auth_login_url": "http://127.0.0.1:9/auth",
            "key_set_url": "http://127.0.0.1:9/jwks",
            "deployment_id": "1",
            "lms_connection_id": connection_id,
        },
    )


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("0", 0),
        ("42", 42),
        (" 42 ", 42),
        ("007", 7),
        (str(ROW_ID_MAX), ROW_ID_MAX),
        (str(ROW_ID_MAX + 1), None),
        (HUGE_ID, None),
        ("9" * 5000, None),
        ("0" * 30 + "5", 5),
        ("", None),
        (None, None),
        ("abc", None),
        ("-1", None),
        ("+1", None),
        ("1_000", None),
        ("4.5", None),
        ("٣", None),
        ("²", None),
    ],
)
def test_parse_row_id(text, expected):
    """Only ASCII digits within the signed 64-bit range are row ids."""
    assert parse_row_id(text) == expected


def test_shortened_typed_id():
    """A long typed id is cut to 40 characters for a message."""
    assert shortened("123") == "123"
    assert shortened("9" * 41) == "9" * 39 + "…"
    assert len(shortened("9" * 5000)) == 40


@pytest.mark.parametrize("provider_id", [HUGE_ID, "abc", "-1"])
def test_pick_provider_invalid_id(client, operator, provider_id):
    """A provider id that no row can have is an unknown provider, not a 500."""
    response = client.post(
        "/admin/provider", data={"csrf": "test-csrf", "provider_id": provider_id}
    )
    page = response.get_data(as_text=True)

    assert response.status_code == 404
    assert f"No provider with the number {provider_id} exists on the bridge." in page


def test_pick_provider_long_id_shortened(client, operator):
    """A very long typed provider id is shown cut, not in full."""
    response = client.post(
        "/admin/provider", data={"csrf": "test-csrf", "provider_id": "9" * 3000}
    )
    page = response.get_data(as_text=True)

    assert response.status_code == 404
    assert "9" * 39 + "…" in page
    assert "9" * 41 not in page


@pytest.mark.parametrize("provider_id", ["", "   "])
def test_pick_provider_empty_id(client, operator, provider_id):
    """An empty provider choice gets a message that no provider was chosen."""
    response = client.post(
        "/admin/provider", data={"csrf": "test-csrf", "provider_id": provider_id}
    )
    page = html.unescape(response.get_data(as_text=True))

    assert response.status_code == 400
    assert "No provider was chosen." in page
    assert "with the number  exists" not in page


def test_pick_provider_empty_id_french(client, operator):
    """The empty provider choice message is translated."""
    response = client.post(
        "/admin/provider",
        data={"csrf": "test-csrf", "provider_id": ""},
        headers={"Accept-Language": "fr"},
    )
    page = html.unescape(response.get_data(as_text=True))

    assert response.status_code == 400
    assert "Aucun fournisseur n'a été choisi." in page


@pytest.mark.parametrize("connection_id", [HUGE_ID, "abc", "-1", "1.5"])
def test_connect_lti_invalid_site_id(client, db, alpha_admin, connection_id):
    """An LMS site id that is not a row id gets the unknown site's message."""
    before = _registrations(db)

    response = _connect_lti(client, connection_id)
    page = response.get_data(as_text=True)

    assert response.status_code == 400
    assert CHOOSE_SITE in page
    assert _registrations(db) == before


def test_connect_lti_blank_site_id(client, db, alpha_admin):
    """A blank LMS site choice registers the platform with no site."""
    before = _registrations(db)

    response = _connect_lti(client, "")

    assert response.status_code == 303
    assert _registrations(db) == before + 1
    registration = db.scalar(
        select(Registration).where(Registration.client_id == "client-ids")
    )
    assert registration.lms_connection_id is None


def test_connect_lti_own_site_id(client, db, alpha_admin):
    """The provider's own LMS site id is accepted."""
    response = _connect_lti(client, str(alpha_admin.connection_id))

    assert response.status_code == 303
    registration = db.scalar(
        select(Registration).where(Registration.client_id == "client-ids")
    )
    assert registration.lms_connection_id == alpha_admin.connection_id


@pytest.mark.parametrize("connection_id", [HUGE_ID, "abc"])
def test_edit_registration_invalid_site_id(client, db, alpha_admin, connection_id):
    """Editing a registration with an invalid LMS site id changes nothing."""
    registration = db.get(Registration, alpha_admin.registration_id)
    public_id = registration.public_id
    # The site can be changed only while the registration has no course.
    from lti_tool.models import LtiCourse

    db.execute(
        LtiCourse.__table__.delete().where(
            LtiCourse.registration_id == alpha_admin.registration_id
        )
    )
    db.commit()

    response = client.post(
        f"/admin/registrations/{public_id}/edit",
        data={
            "csrf": "test-csrf",
            "auth_login_url": registration.auth_login_url,
            "key_set_url": registration.key_set_url,
            "auth_token_url": registration.auth_token_url or "",
            "new_deployment_policy": registration.new_deployment_policy,
            "lms_connection_id": connection_id,
        },
    )
    page = response.get_data(as_text=True)

    assert response.status_code == 400
    assert CHOOSE_SITE in page
    db.expire_all()
    kept = db.get(Registration, alpha_admin.registration_id)
    assert kept.lms_connection_id == alpha_admin.connection_id


@pytest.mark.parametrize("name", ["disabled", "enabled", "withdrawn", "links_revoked"])
def test_accounts_page_huge_query_id(client, alpha_admin, name):
    """A notice id beyond the id range shows the page with no notice."""
    response = client.get(f"/admin/accounts?{name}={HUGE_ID}")

    assert response.status_code == 200
    assert HUGE_ID not in response.get_data(as_text=True)


@pytest.mark.parametrize("retried", [HUGE_ID, "abc", "9" * 5000])
def test_dead_letters_huge_query_id(client, alpha_admin, retried):
    """A retried message id beyond the id range shows the list with no notice."""
    response = client.get(f"/admin/dead-letters?retried={retried}")

    assert response.status_code == 200

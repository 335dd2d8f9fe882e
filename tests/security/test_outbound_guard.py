"""LMS addresses: a provider cannot point the bridge's LMS token at a private address."""

from __future__ import annotations

import pytest

from lti_tool.operations import InvalidInput
from lti_tool.operations.lms import check_lms_url
from tests.lti_tool.pages.conftest import add_account, sign_in

PRIVATE_URLS = [
    "https://169.254.169.254",
    "https://10.0.0.5",
    "https://192.168.1.1/moodle",
    "https://[fd00::1]",
    "https://0.0.0.0",
]


@pytest.mark.parametrize("url", PRIVATE_URLS)
def test_lms_url_private_rejected(app, url):
    """A private, link-local or unspecified LMS address is an invalid_url error."""
    with app.app_context():
        with pytest.raises(InvalidInput) as raised:
            check_lms_url(app.extensions["hpass"], url)

    assert raised.value.code == "invalid_url"
    assert "non-public address" in raised.value.message


def test_lms_url_loopback_in_dev(app):
    """Loopback development mode allows a loopback LMS, as the demo and tests need."""
    with app.app_context():
        assert check_lms_url(app.extensions["hpass"], "http://127.0.0.1:8080/") == (
            "http://127.0.0.1:8080"
        )


def test_admin_form_private_rejected(app, db):
    """The admin's connect form rejects a metadata address and stores nothing."""
    from sqlalchemy import func, select

    from connectors.models import LmsConnection
    from lti_tool.accounts import AccountRole
    from tests.support.seed import add_provider

    provider = add_provider(db, slug="gamma")
    db.commit()
    add_account(db, "admin@gamma.example.org", AccountRole.PROVIDER_ADMIN, provider.id)
    client = app.test_client()
    sign_in(client, "admin@gamma.example.org")

    response = client.post(
        "/admin/connect/lms",
        data={
            "csrf": "test-csrf",
            "lms_name": "Metadata",
            "lms_url": "http://169.254.169.254",
            "lms_token": "t",
        },
    )

    assert response.status_code == 400
    assert "non-public address" in response.get_data(as_text=True)
    assert db.scalar(select(func.count()).select_from(LmsConnection)) == 0

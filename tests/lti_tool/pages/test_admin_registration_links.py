"""The registration links page: create a link once, list open links, revoke one."""

from __future__ import annotations

import hashlib
import html
import re
from datetime import timedelta

import pytest
from sqlalchemy import select

from badge_engine.db import utcnow
from lti_tool.accounts import AccountRole, AuditEvent
from lti_tool.lti.registration_links import issue_registration_link
from lti_tool.models import RegistrationLink

from .conftest import add_account, sign_in

CONFIRMATION = '<div class="notice" role="status" tabindex="-1" data-confirmation>'


@pytest.fixture
def admin(client, tenants, db):
    alpha, _ = tenants
    account = add_account(
        db, "admin@alpha.org", AccountRole.PROVIDER_ADMIN, alpha.provider_id
    )
    sign_in(client, "admin@alpha.org")
    return alpha, account


def _page(response) -> str:
    return html.unescape(response.get_data(as_text=True))


def _link_row(db, link_id: int) -> RegistrationLink:
    db.expire_all()
    return db.get(RegistrationLink, link_id)


def _audit_events(db, action: str) -> list[AuditEvent]:
    db.expire_all()
    return list(db.scalars(select(AuditEvent).where(AuditEvent.action == action)))


def test_create_shows_link_once(client, admin, db):
    """Creating a link shows its URL in a focused confirmation, stores only the
    digest with the admin as creator, and audits it."""
    alpha, account = admin

    response = client.post("/admin/registration-links", data={"csrf": "test-csrf"})
    page = _page(response)
    shown = re.search(r'value="(http[^"]+/lti/register/([\w-]+))"', page)
    again = _page(client.get("/admin/registration-links"))

    assert response.status_code == 200
    assert CONFIRMATION in page
    assert "It works once, until" in page
    assert shown is not None
    token = shown.group(2)
    link = db.scalar(select(RegistrationLink))
    assert link.provider_id == alpha.provider_id
    assert link.token_sha256 == hashlib.sha256(token.encode()).hexdigest()
    assert link.created_by == f"account:{account.id}"
    assert token not in again
    events = _audit_events(db, "lti_registration.url_issued")
    assert [event.actor for event in events] == [f"account:{account.id}"]
    assert events[0].target == f"lti_registration_link:{link.id}"


def test_create_needs_csrf(client, admin, db):
    """A create request without the form token stores no link."""
    response = client.post("/admin/registration-links")

    assert response.status_code in (400, 403)
    assert db.scalar(select(RegistrationLink)) is None


def test_list_shows_open_links(client, admin, db):
    """The list names each open link's creator, creation and expiry, and leaves out
    used, revoked and expired links."""
    alpha, _ = admin
    issue_registration_link(db, provider_id=alpha.provider_id, actor="os:deploy")
    used, _ = issue_registration_link(
        db, provider_id=alpha.provider_id, actor="os:used"
    )
    used.used_at = utcnow()
    revoked, _ = issue_registration_link(
        db, provider_id=alpha.provider_id, actor="os:revoked"
    )
    revoked.revoked_at = utcnow()
    issue_registration_link(
        db,
        provider_id=alpha.provider_id,
        actor="os:expired",
        now=utcnow() - timedelta(days=8),
    )
    db.commit()

    page = _page(client.get("/admin/registration-links"))

    assert "Open registration links" in page
    assert 'Command line, as <bdi dir="ltr">deploy</bdi>' in page
    for hidden in ("as used", "as revoked", "as expired"):
        assert hidden not in page
    assert len(re.findall(r'action="/admin/registration-links/\d+/revoke"', page)) == 1


def test_list_names_admin_creator(client, admin, db):
    """A link created on the page lists the admin's email as its creator."""
    client.post("/admin/registration-links", data={"csrf": "test-csrf"})

    page = _page(client.get("/admin/registration-links"))

    assert '<td dir="auto">admin@alpha.org</td>' in page


def test_revoke_confirms_and_audits(client, admin, db):
    """Revoking an open link closes it, confirms with a focused notice, audits it,
    and the link's registration page then states that it was revoked."""
    alpha, account = admin
    link, token = issue_registration_link(
        db, provider_id=alpha.provider_id, actor="os:deploy"
    )
    db.commit()

    response = client.post(
        f"/admin/registration-links/{link.id}/revoke", data={"csrf": "test-csrf"}
    )
    page = _page(response)
    registration_page = client.get(
        f"/lti/register/{token}", headers={"Accept": "text/html"}
    )

    assert response.status_code == 200
    assert CONFIRMATION in page
    assert "is revoked. It no longer works." in page
    assert "No registration link is open." in page
    assert _link_row(db, link.id).revoked_at is not None
    events = _audit_events(db, "lti_registration.url_revoked")
    assert [event.actor for event in events] == [f"account:{account.id}"]
    assert events[0].target == f"lti_registration_link:{link.id}"
    assert events[0].provider_id == alpha.provider_id
    assert registration_page.status_code == 410
    assert "was revoked" in _page(registration_page)


def test_revoke_needs_csrf(client, admin, db):
    """A revocation without the form token leaves the link open."""
    alpha, _ = admin
    link, _ = issue_registration_link(
        db, provider_id=alpha.provider_id, actor="os:deploy"
    )
    db.commit()

    response = client.post(f"/admin/registration-links/{link.id}/revoke")

    assert response.status_code in (400, 403)
    assert _link_row(db, link.id).revoked_at is None


@pytest.mark.parametrize("state", ["used", "revoked", "unknown"])
def test_revoke_closed_link_not_found(client, admin, db, state):
    """A used, revoked or unknown link gets 404 with the list, and nothing changes."""
    alpha, _ = admin
    link, _ = issue_registration_link(
        db, provider_id=alpha.provider_id, actor="os:deploy"
    )
    if state == "used":
        link.used_at = utcnow()
    elif state == "revoked":
        link.revoked_at = utcnow()
    db.commit()
    link_id = link.id if state != "unknown" else link.id + 100

    response = client.post(
        f"/admin/registration-links/{link_id}/revoke", data={"csrf": "test-csrf"}
    )

    assert response.status_code == 404
    assert "no open registration link with this number" in _page(response)
    assert _audit_events(db, "lti_registration.url_revoked") == []


def test_other_provider_link_walled(client, admin, db, tenants):
    """Beta's link is neither listed nor revocable for alpha's admin."""
    _, beta = tenants
    add_account(db, "admin@beta.org", AccountRole.PROVIDER_ADMIN, beta.provider_id)
    link, _ = issue_registration_link(
        db, provider_id=beta.provider_id, actor="os:beta-operator"
    )
    db.commit()

    listed = _page(client.get("/admin/registration-links"))
    response = client.post(
        f"/admin/registration-links/{link.id}/revoke", data={"csrf": "test-csrf"}
    )

    assert "beta-operator" not in listed
    assert f"/admin/registration-links/{link.id}/revoke" not in listed
    assert response.status_code == 404
    assert "beta-operator" not in _page(response)
    assert _link_row(db, link.id).revoked_at is None
    assert _audit_events(db, "lti_registration.url_revoked") == []


def test_creator_of_other_provider_hidden(client, admin, db, tenants):
    """A link whose creator account belongs to another provider never shows that
    account's email."""
    alpha, _ = admin
    _, beta = tenants
    beta_admin = add_account(
        db, "admin@beta.org", AccountRole.PROVIDER_ADMIN, beta.provider_id
    )
    issue_registration_link(
        db, provider_id=alpha.provider_id, actor=f"account:{beta_admin.id}"
    )
    db.commit()

    page = _page(client.get("/admin/registration-links"))

    assert "admin@beta.org" not in page
    assert f"Removed account (number {beta_admin.id})" in page


def test_connect_page_links_to_links_page(client, admin):
    """The LTI section of the connect page leads to the registration links page."""
    page = _page(client.get("/admin/connect"))

    assert 'href="/admin/registration-links"' in page

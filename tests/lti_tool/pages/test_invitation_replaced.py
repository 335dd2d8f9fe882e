"""A new invitation to an address replaces the provider's pending one to it."""

from __future__ import annotations

import html
import re

from sqlalchemy import select

from lti_tool.accounts import (
    AccountRole,
    AccountToken,
    AuditEvent,
    TokenPurpose,
    find_usable_token,
    issue_token,
)

from .conftest import add_account, sign_in

LINK = re.compile(r"http://127\.0\.0\.1:5999(/account/invitation/([\w-]+))")
REPLACED = (
    'This invitation replaces the earlier one for <bdi dir="ltr">'
    "admin2@example.org</bdi>, so the earlier link no longer works."
)


def _invite(client, address: str, language: str = "en"):
    return client.post(
        "/admin/invitations",
        data={"csrf": "test-csrf", "email": address},
        headers={"Accept-Language": language},
    )


def _pending(db, provider_id: int) -> list[AccountToken]:
    db.expire_all()
    return list(
        db.scalars(
            select(AccountToken).where(
                AccountToken.purpose == TokenPurpose.INVITATION.value,
                AccountToken.provider_id == provider_id,
            )
        )
    )


def test_second_invitation_replaces_first(client, tenants, db):
    """Inviting an address twice leaves one working link, and the old link gets
    the no-longer-valid page. The second address differs only in case and spaces,
    which `normalize_email` removes."""
    alpha, _ = tenants
    admin = add_account(
        db, "admin@alpha.org", AccountRole.PROVIDER_ADMIN, alpha.provider_id
    )
    sign_in(client, "admin@alpha.org")

    first = _invite(client, "admin2@example.org")
    first_page = first.get_data(as_text=True)
    first_path = LINK.search(first_page).group(1)
    second = _invite(client, "  Admin2@Example.ORG ")
    second_page = second.get_data(as_text=True)
    second_path = LINK.search(second_page).group(1)
    pending = _pending(db, alpha.provider_id)
    old_link = client.get(first_path)
    new_link = client.get(second_path)
    events = db.scalars(
        select(AuditEvent).where(AuditEvent.action == "invitation.withdrawn")
    ).all()

    assert first.status_code == 200
    assert "replaces the earlier one" not in first_page
    assert second.status_code == 200
    assert REPLACED in second_page
    assert len(pending) == 1
    assert pending[0].email == "admin2@example.org"
    assert old_link.status_code == 404
    assert "This link no longer works" in old_link.get_data(as_text=True)
    assert new_link.status_code == 200
    assert len(events) == 1
    assert events[0].provider_id == alpha.provider_id
    assert events[0].actor == f"account:{admin.id}"
    assert events[0].target == "email:admin2@example.org"
    assert events[0].detail == {
        "invited_by": admin.id,
        "withdrawn_because": "replaced",
    }


def test_replacement_leaves_other_provider(client, tenants, db):
    """An invitation to the same address for another provider keeps working, and
    the page does not mention it."""
    alpha, beta = tenants
    beta_token = issue_token(
        db,
        TokenPurpose.INVITATION,
        email="admin2@example.org",
        provider_id=beta.provider_id,
        role=AccountRole.PROVIDER_ADMIN,
    )
    db.commit()
    add_account(db, "admin@alpha.org", AccountRole.PROVIDER_ADMIN, alpha.provider_id)
    sign_in(client, "admin@alpha.org")

    page = _invite(client, "admin2@example.org").get_data(as_text=True)
    db.expire_all()
    beta_row = find_usable_token(db, beta_token, TokenPurpose.INVITATION)
    beta_link = client.get(f"/account/invitation/{beta_token}")

    assert "replaces the earlier one" not in page
    assert beta_row is not None
    assert beta_row.provider_id == beta.provider_id
    assert beta_link.status_code == 200
    assert len(_pending(db, alpha.provider_id)) == 1
    assert len(_pending(db, beta.provider_id)) == 1
    assert (
        db.scalar(select(AuditEvent).where(AuditEvent.action == "invitation.withdrawn"))
        is None
    )


def test_replacement_notice_and_audit_translated(client, tenants, db):
    """The replacement notice and its audit reason appear in French."""
    alpha, _ = tenants
    add_account(db, "admin@alpha.org", AccountRole.PROVIDER_ADMIN, alpha.provider_id)
    sign_in(client, "admin@alpha.org")

    _invite(client, "admin2@example.org", "fr")
    page = _invite(client, "admin2@example.org", "fr").get_data(as_text=True)
    audit = html.unescape(
        client.get("/admin/audit", headers={"Accept-Language": "fr"}).get_data(
            as_text=True
        )
    )

    assert (
        'Cette invitation remplace la précédente pour <bdi dir="ltr">'
        "admin2@example.org</bdi>, dont le lien ne fonctionne plus."
    ) in page
    assert "une invitation plus récente à la même adresse l'a remplacée" in audit

"""Sign-in, invitations, resets, and the provider admin pages."""

from __future__ import annotations

import email
import email.policy
import re
import time

import pytest
from sqlalchemy import func, select

from badge_engine.outbox import OutboxMessage
from connectors.models import LmsConnection
from lti_tool.account_mail import send_password_reset
from lti_tool.accounts import Account, AccountRole, AuditEvent
from lti_tool.demo.peers.moodle import MoodleStandIn
from lti_tool.views.auth import IDLE_MINUTES
from tests.support.account_cookie import account_session_transaction

from .conftest import PASSWORD, add_account, sign_in


def add_dead_message(db, provider_id: int, key: str) -> OutboxMessage:
    message = OutboxMessage(
        provider_id=provider_id,
        kind="deliver_credential",
        idempotency_key=key,
        payload={},
        status="dead",
        attempts=12,
        last_error="portfolio returned HTTP 500",
    )
    db.add(message)
    db.commit()
    return message


def test_sign_in_opens_dashboard(client, tenants, db):
    """A provider admin with the right password reaches the dashboard."""
    alpha, _ = tenants
    add_account(db, "admin@alpha.org", AccountRole.PROVIDER_ADMIN, alpha.provider_id)

    response = sign_in(client, "admin@alpha.org")
    dashboard = client.get("/admin/")

    assert response.status_code == 303
    assert dashboard.status_code == 200
    assert "admin@alpha.org" in dashboard.get_data(as_text=True)


def test_wrong_password_same_message(client, tenants, db):
    """Wrong passwords and unknown emails get the same message beside the field."""
    alpha, _ = tenants
    add_account(db, "admin@alpha.org", AccountRole.PROVIDER_ADMIN, alpha.provider_id)

    wrong = sign_in(client, "admin@alpha.org", "not the password")
    unknown = sign_in(client, "nobody@alpha.org", "not the password")

    assert wrong.status_code == 401
    assert unknown.status_code == 401
    assert 'id="password-error"' in wrong.get_data(as_text=True)
    assert "The email or password is wrong" in unknown.get_data(as_text=True)


def test_sign_in_locks_after_failures(client, tenants, db):
    """After five wrong passwords even the right one is refused, as a wrong one is."""
    alpha, _ = tenants
    add_account(db, "admin@alpha.org", AccountRole.PROVIDER_ADMIN, alpha.provider_id)

    statuses = [
        sign_in(client, "admin@alpha.org", "nope nope").status_code for _ in range(5)
    ]
    right = sign_in(client, "admin@alpha.org")

    assert statuses == [401] * 5
    assert right.status_code == 401
    assert "locked for 15 minutes" in right.get_data(as_text=True)
    assert "/admin" not in right.headers.get("Location", "")


def test_lockout_reveals_no_account(client, tenants, db):
    """A locked account and an unknown email get the same status and page text."""
    alpha, _ = tenants
    add_account(db, "admin@alpha.org", AccountRole.PROVIDER_ADMIN, alpha.provider_id)
    for _ in range(5):
        sign_in(client, "admin@alpha.org", "nope nope")

    locked = sign_in(client, "admin@alpha.org", "nope nope")
    unknown = sign_in(client, "nobody@alpha.org", "nope nope")

    def error_text(response):
        page = response.get_data(as_text=True)
        return page[page.index('id="password-error"') :].split("</p>")[0]

    assert locked.status_code == unknown.status_code == 401
    assert error_text(locked) == error_text(unknown)


def test_session_expires_when_idle(client, tenants, db):
    """A session idle for longer than the limit is sent back to sign-in."""
    alpha, _ = tenants
    add_account(db, "admin@alpha.org", AccountRole.PROVIDER_ADMIN, alpha.provider_id)
    sign_in(client, "admin@alpha.org")
    with account_session_transaction(client) as session:
        session["account_seen"] = time.time() - IDLE_MINUTES * 60 - 1

    response = client.get("/admin/")

    assert response.status_code == 303
    assert "/account/sign-in?expired=1" in response.headers["Location"]


def test_admin_pages_need_sign_in(client, tenants):
    """Every admin page redirects to sign-in without an account session."""
    for path in ("/admin/", "/admin/connect", "/admin/dead-letters", "/admin/audit"):
        response = client.get(path)
        assert response.status_code == 303, path
        assert "/account/sign-in" in response.headers["Location"]


def test_admin_pages_not_framable(client, tenants):
    """Sign-in and admin pages refuse to be framed."""
    response = client.get("/account/sign-in")

    assert response.headers["X-Frame-Options"] == "DENY"
    assert "frame-ancestors 'none'" in response.headers["Content-Security-Policy"]


def test_invitation_creates_admin_once(client, tenants, db):
    """An invitation link creates the provider admin account and then stops working."""
    alpha, _ = tenants
    add_account(db, "admin@alpha.org", AccountRole.PROVIDER_ADMIN, alpha.provider_id)
    sign_in(client, "admin@alpha.org")

    page = client.post(
        "/admin/invitations", data={"csrf": "test-csrf", "email": "new@alpha.org"}
    ).get_data(as_text=True)
    link = re.search(r"http://127\.0\.0\.1:5999(/account/invitation/[\w-]+)", page)
    assert link is not None
    form = {"csrf": "test-csrf", "password": PASSWORD, "password_repeat": PASSWORD}
    accepted = client.post(link.group(1), data=form)
    # Accepting signs the new admin in, which starts a new session and form token.
    with account_session_transaction(client) as session:
        session["csrf"] = "test-csrf"
    again = client.post(link.group(1), data=form)

    assert accepted.status_code == 303
    created = db.scalar(select(Account).where(Account.email == "new@alpha.org"))
    assert created.provider_id == alpha.provider_id
    assert created.role == "provider_admin"
    assert again.status_code == 404


def test_invitation_records_sign_in(client, tenants, db):
    """Accepting an invitation signs in, so the accounts page shows a last sign-in."""
    alpha, _ = tenants
    add_account(db, "admin@alpha.org", AccountRole.PROVIDER_ADMIN, alpha.provider_id)
    sign_in(client, "admin@alpha.org")
    page = client.post(
        "/admin/invitations", data={"csrf": "test-csrf", "email": "new@alpha.org"}
    ).get_data(as_text=True)
    link = re.search(r"http://127\.0\.0\.1:5999(/account/invitation/[\w-]+)", page)
    form = {"csrf": "test-csrf", "password": PASSWORD, "password_repeat": PASSWORD}

    client.post(link.group(1), data=form)
    accounts = client.get("/admin/accounts").get_data(as_text=True)

    db.expire_all()
    created = db.scalar(select(Account).where(Account.email == "new@alpha.org"))
    assert created.last_sign_in_at is not None
    row = accounts[accounts.index("new@alpha.org") :]
    row = row[: row.index("</tr>")]
    assert "<time datetime=" in row
    assert "Never" not in row


@pytest.mark.parametrize("email", ["admin@example", "admin@localhost", "a b@x.org"])
def test_invitation_rejects_invalid_email(client, tenants, db, email):
    """The invitation form applies the sign-up check, so a dotless domain fails."""
    from lti_tool.accounts import AccountToken

    alpha, _ = tenants
    add_account(db, "admin@alpha.org", AccountRole.PROVIDER_ADMIN, alpha.provider_id)
    sign_in(client, "admin@alpha.org")

    response = client.post(
        "/admin/invitations", data={"csrf": "test-csrf", "email": email}
    )

    assert response.status_code == 400
    assert 'id="email-error"' in response.get_data(as_text=True)
    assert db.scalar(select(func.count(AccountToken.id))) == 0


def test_invitation_link_names_email_and_provider(client, tenants, db):
    """The link notice and the link's own page name the invited email and provider."""
    alpha, _ = tenants
    add_account(db, "admin@alpha.org", AccountRole.PROVIDER_ADMIN, alpha.provider_id)
    sign_in(client, "admin@alpha.org")

    page = client.post(
        "/admin/invitations", data={"csrf": "test-csrf", "email": "New@Alpha.org"}
    ).get_data(as_text=True)
    link = re.search(r"http://127\.0\.0\.1:5999(/account/invitation/[\w-]+)", page)
    accept_page = client.get(link.group(1)).get_data(as_text=True)

    assert (
        'Invitation for <bdi dir="ltr">new@alpha.org</bdi> to administer '
        "<bdi>Alpha</bdi>."
    ) in page
    assert 'Account: <bdi dir="ltr">new@alpha.org</bdi>' in accept_page
    assert "You are invited to administer <bdi>Alpha</bdi>." in accept_page


def test_invitation_listed_and_withdrawn(client, tenants, db):
    """A pending invitation is listed, and withdrawing it ends its link and is audited."""
    alpha, _ = tenants
    admin = add_account(
        db, "admin@alpha.org", AccountRole.PROVIDER_ADMIN, alpha.provider_id
    )
    sign_in(client, "admin@alpha.org")
    page = client.post(
        "/admin/invitations", data={"csrf": "test-csrf", "email": "new@alpha.org"}
    ).get_data(as_text=True)
    link = re.search(r"http://127\.0\.0\.1:5999(/account/invitation/[\w-]+)", page)

    listed = client.get("/admin/invitations").get_data(as_text=True)
    number = re.search(r"/admin/invitations/(\d+)/withdraw", listed).group(1)
    withdrawn = client.post(
        f"/admin/invitations/{number}/withdraw", data={"csrf": "test-csrf"}
    )
    after = withdrawn.get_data(as_text=True)
    event = db.scalar(
        select(AuditEvent).where(AuditEvent.action == "invitation.withdrawn")
    )

    assert '<td dir="ltr">new@alpha.org</td>' in listed
    assert "<td>admin@alpha.org</td>" in listed
    assert withdrawn.status_code == 200
    assert 'role="status"' in after
    assert (
        'The invitation for <bdi dir="ltr">new@alpha.org</bdi> is withdrawn.' in after
    )
    assert "No invitation is waiting to be accepted." in after
    assert event.actor == f"account:{admin.id}"
    assert event.target == "email:new@alpha.org"
    assert client.get(link.group(1)).status_code == 404


def test_invitation_withdraw_scoped(client, tenants, db):
    """Another provider's invitation cannot be withdrawn, and its id is not revealed."""
    from lti_tool.accounts import AccountToken, TokenPurpose, issue_token

    alpha, beta = tenants
    issue_token(
        db,
        TokenPurpose.INVITATION,
        email="new@beta.org",
        provider_id=beta.provider_id,
        role=AccountRole.PROVIDER_ADMIN,
    )
    db.commit()
    foreign = db.scalar(select(AccountToken))
    add_account(db, "admin@alpha.org", AccountRole.PROVIDER_ADMIN, alpha.provider_id)
    sign_in(client, "admin@alpha.org")

    listed = client.get("/admin/invitations").get_data(as_text=True)
    response = client.post(
        f"/admin/invitations/{foreign.id}/withdraw", data={"csrf": "test-csrf"}
    )
    missing = client.post(
        "/admin/invitations/999999/withdraw", data={"csrf": "test-csrf"}
    )

    assert "new@beta.org" not in listed
    assert response.status_code == 404
    assert missing.status_code == 404
    assert db.scalar(select(func.count(AccountToken.id))) == 1


def test_invitation_withdraw_needs_csrf(client, tenants, db):
    """A withdrawal without the form token changes nothing."""
    from lti_tool.accounts import AccountToken, TokenPurpose, issue_token

    alpha, _ = tenants
    issue_token(
        db,
        TokenPurpose.INVITATION,
        email="new@alpha.org",
        provider_id=alpha.provider_id,
        role=AccountRole.PROVIDER_ADMIN,
    )
    db.commit()
    invitation = db.scalar(select(AccountToken))
    add_account(db, "admin@alpha.org", AccountRole.PROVIDER_ADMIN, alpha.provider_id)
    sign_in(client, "admin@alpha.org")

    response = client.post(f"/admin/invitations/{invitation.id}/withdraw", data={})

    assert response.status_code in (400, 403)
    assert db.scalar(select(func.count(AccountToken.id))) == 1


def test_invitation_notice_translated(client, tenants, db):
    """The new invitation texts appear in French."""
    alpha, _ = tenants
    add_account(db, "admin@alpha.org", AccountRole.PROVIDER_ADMIN, alpha.provider_id)
    sign_in(client, "admin@alpha.org")

    page = client.post(
        "/admin/invitations",
        data={"csrf": "test-csrf", "email": "new@alpha.org"},
        headers={"Accept-Language": "fr"},
    ).get_data(as_text=True)

    assert (
        'Invitation adressée à <bdi dir="ltr">new@alpha.org</bdi> pour administrer '
        "<bdi>Alpha</bdi>."
    ) in page
    assert "Invitations en attente" in page


def test_invitation_password_mismatch(client, tenants, db):
    """Two different passwords are refused beside the repeat field."""
    from lti_tool.accounts import TokenPurpose, issue_token

    alpha, _ = tenants
    token = issue_token(
        db,
        TokenPurpose.INVITATION,
        email="new@alpha.org",
        provider_id=alpha.provider_id,
        role=AccountRole.PROVIDER_ADMIN,
    )
    db.commit()
    with account_session_transaction(client) as session:
        session["csrf"] = "test-csrf"

    response = client.post(
        f"/account/invitation/{token}",
        data={"csrf": "test-csrf", "password": PASSWORD, "password_repeat": "other"},
    )

    assert response.status_code == 400
    assert 'id="password_repeat-error"' in response.get_data(as_text=True)


def test_password_reset_by_mail(app, client, settings, tenants, db, monkeypatch):
    """A reset request mails a one-time link that sets a new password."""
    alpha, _ = tenants
    add_account(db, "admin@alpha.org", AccountRole.PROVIDER_ADMIN, alpha.provider_id)
    with account_session_transaction(client) as session:
        session["csrf"] = "test-csrf"

    queued = []
    monkeypatch.setattr(
        app.extensions["celery"], "send_task", lambda name, args: queued.append(args)
    )
    monkeypatch.delenv("HPASS_SMTP_URL", raising=False)

    sent = client.post(
        "/account/reset", data={"csrf": "test-csrf", "email": "admin@alpha.org"}
    )
    unknown = client.post(
        "/account/reset", data={"csrf": "test-csrf", "email": "x@alpha.org"}
    )
    for args in queued:
        with app.app_context():
            send_password_reset.run(*args)
    mails = list((settings.instance_path / "mail").glob("*.eml"))
    body = email.message_from_bytes(mails[0].read_bytes(), policy=email.policy.default)
    link = re.search(
        r"http://127\.0\.0\.1:5999(/account/reset/[\w-]+)", body.get_content()
    )
    new_password = "a brand new passphrase"
    changed = client.post(
        link.group(1),
        data={
            "csrf": "test-csrf",
            "password": new_password,
            "password_repeat": new_password,
        },
    )

    assert sent.status_code == 200
    # bridge.js moves the focus to the element marked data-confirmation.
    assert 'role="status" tabindex="-1" data-confirmation>' in sent.get_data(
        as_text=True
    )
    assert unknown.get_data(as_text=True) == sent.get_data(as_text=True).replace(
        "admin@alpha.org", "x@alpha.org"
    )
    assert len(mails) == 1
    assert changed.status_code == 303
    db.expire_all()
    reset_account = db.scalar(select(Account).where(Account.email == "admin@alpha.org"))
    assert reset_account.last_sign_in_at is not None
    assert sign_in(client, "admin@alpha.org", new_password).status_code == 303


def test_dead_letters_scoped_and_retried(client, tenants, db):
    """An admin sees and retries their own dead messages, and not another provider's."""
    alpha, beta = tenants
    own = add_dead_message(db, alpha.provider_id, "alpha-1")
    foreign = add_dead_message(db, beta.provider_id, "beta-1")
    add_account(db, "admin@alpha.org", AccountRole.PROVIDER_ADMIN, alpha.provider_id)
    sign_in(client, "admin@alpha.org")

    page = client.get("/admin/dead-letters").get_data(as_text=True)
    foreign_retry = client.post(
        f"/admin/dead-letters/{foreign.id}/retry", data={"csrf": "test-csrf"}
    )
    own_retry = client.post(
        f"/admin/dead-letters/{own.id}/retry", data={"csrf": "test-csrf"}
    )

    assert f"/admin/dead-letters/{own.id}/retry" in page
    assert f"/admin/dead-letters/{foreign.id}/retry" not in page
    assert foreign_retry.status_code == 404
    assert own_retry.status_code == 303
    db.expire_all()
    assert db.get(OutboxMessage, own.id).status == "pending"
    assert db.get(OutboxMessage, own.id).attempts == 0
    assert db.get(OutboxMessage, foreign.id).status == "dead"
    event = db.scalar(select(AuditEvent).where(AuditEvent.action == "outbox.retried"))
    assert event.provider_id == alpha.provider_id


def test_audit_log_scoped(client, tenants, db):
    """The audit log lists the provider's own events only."""
    from lti_tool.accounts import record_audit

    alpha, beta = tenants
    record_audit(db, provider_id=alpha.provider_id, actor="lti:1", action="alpha.did")
    record_audit(db, provider_id=beta.provider_id, actor="lti:2", action="beta.did")
    db.commit()
    add_account(db, "admin@alpha.org", AccountRole.PROVIDER_ADMIN, alpha.provider_id)
    sign_in(client, "admin@alpha.org")

    page = client.get("/admin/audit").get_data(as_text=True)

    assert "alpha.did" in page
    assert "beta.did" not in page


def test_audit_log_names_accounts(client, tenants, db):
    """The Who column shows an admin's email while the stored actor keeps the id."""
    alpha, _ = tenants
    admin = add_account(
        db, "admin@alpha.org", AccountRole.PROVIDER_ADMIN, alpha.provider_id
    )
    sign_in(client, "admin@alpha.org")
    add_dead_message(db, alpha.provider_id, "alpha-1")
    dead = db.scalar(select(OutboxMessage).where(OutboxMessage.status == "dead"))
    client.post(f"/admin/dead-letters/{dead.id}/retry", data={"csrf": "test-csrf"})

    page = client.get("/admin/audit").get_data(as_text=True)
    event = db.scalar(select(AuditEvent).where(AuditEvent.action == "outbox.retried"))

    assert f'<td title="account:{admin.id}">admin@alpha.org</td>' in page
    assert event.actor == f"account:{admin.id}"


def test_audit_log_actor_scoped(client, tenants, db):
    """Another provider's account shows as removed, never with its email."""
    from lti_tool.accounts import record_audit

    alpha, beta = tenants
    foreign = add_account(
        db, "admin@beta.org", AccountRole.PROVIDER_ADMIN, beta.provider_id
    )
    operator = add_account(db, "op@hpass.org", AccountRole.OPERATOR, None)
    for actor in (f"account:{foreign.id}", f"account:{operator.id}", "account:9999"):
        record_audit(db, provider_id=alpha.provider_id, actor=actor, action="x.did")
    db.commit()
    add_account(db, "admin@alpha.org", AccountRole.PROVIDER_ADMIN, alpha.provider_id)
    sign_in(client, "admin@alpha.org")

    page = client.get("/admin/audit").get_data(as_text=True)

    assert "admin@beta.org" not in page
    assert f"Removed account (number {foreign.id})" in page
    assert "Removed account (number 9999)" in page
    assert '<bdi dir="ltr">op@hpass.org</bdi> (HPass operator)' in page


def test_audit_log_removed_account_french(client, tenants, db):
    """A deleted account's row is labelled in the page's language."""
    from lti_tool.accounts import record_audit

    alpha, _ = tenants
    record_audit(
        db, provider_id=alpha.provider_id, actor="account:9999", action="x.did"
    )
    db.commit()
    add_account(db, "admin@alpha.org", AccountRole.PROVIDER_ADMIN, alpha.provider_id)
    sign_in(client, "admin@alpha.org")

    page = client.get("/admin/audit", headers={"Accept-Language": "fr"})

    assert "Compte supprimé (numéro 9999)" in page.get_data(as_text=True)


SECOND_MOODLE_TOKEN = "ws-token-123"


@pytest.fixture(scope="module")
def second_moodle():
    """A second Moodle site on loopback, for the connect form to test."""
    stand_in = MoodleStandIn(token=SECOND_MOODLE_TOKEN)
    server = stand_in.start()
    yield stand_in
    server.stop()


def _connect_form(
    url: str, token: str = SECOND_MOODLE_TOKEN, name: str = "Second Moodle"
):
    return {"csrf": "test-csrf", "lms_name": name, "lms_url": url, "lms_token": token}


def _moodle_connection_count(db, provider_id: int) -> int:
    return db.scalar(
        select(func.count(LmsConnection.id)).where(
            LmsConnection.provider_id == provider_id
        )
    )


def test_connect_lms_shows_secret_once(client, app, tenants, db, second_moodle):
    """A connected Moodle site stores its token encrypted and shows the secret once."""
    alpha, _ = tenants
    add_account(db, "admin@alpha.org", AccountRole.PROVIDER_ADMIN, alpha.provider_id)
    sign_in(client, "admin@alpha.org")

    response = client.post(
        "/admin/connect/lms", data=_connect_form(second_moodle.site_url + "/")
    )
    page = response.get_data(as_text=True)
    later = client.get("/admin/connect").get_data(as_text=True)

    assert response.status_code == 200
    connection = db.scalar(
        select(LmsConnection).where(LmsConnection.name == "Second Moodle")
    )
    assert connection.base_url == second_moodle.site_url
    assert connection.state == "ok"
    assert app.extensions["hpass"].vault.decrypt(connection.api_token_encrypted) in (
        SECOND_MOODLE_TOKEN.encode(),
        SECOND_MOODLE_TOKEN,
    )
    secret = re.search(
        r'id="new-webhook-secret" class="secret" type="text" readonly value="([\w-]+)"',
        page,
    ).group(1)
    webhook_url = f"http://127.0.0.1:5999/webhooks/moodle/{connection.public_id}"
    assert (
        f'id="new-webhook-url" class="secret" type="text" readonly value="{webhook_url}"'
        in page
    )
    assert f'value="{webhook_url}"' in later
    assert secret not in later
    assert SECOND_MOODLE_TOKEN not in page


def test_connect_lms_same_site_twice(client, tenants, db, second_moodle):
    """A second connection to the provider's Moodle site is refused beside the field."""
    alpha, _ = tenants
    add_account(db, "admin@alpha.org", AccountRole.PROVIDER_ADMIN, alpha.provider_id)
    sign_in(client, "admin@alpha.org")
    client.post("/admin/connect/lms", data=_connect_form(second_moodle.site_url + "/"))
    before = _moodle_connection_count(db, alpha.provider_id)

    respelled = second_moodle.site_url.replace("http://", "HTTP://")
    response = client.post(
        "/admin/connect/lms", data=_connect_form(respelled, name="Third")
    )
    page = response.get_data(as_text=True)

    assert response.status_code == 400
    assert 'id="lms_url-error"' in page
    assert "already connected to this Moodle site as “<bdi>Second Moodle</bdi>”" in page
    assert _moodle_connection_count(db, alpha.provider_id) == before


def test_connect_lms_unreachable_site(client, tenants, db):
    """A site that does not respond is reported beside the address and not stored."""
    alpha, _ = tenants
    add_account(db, "admin@alpha.org", AccountRole.PROVIDER_ADMIN, alpha.provider_id)
    sign_in(client, "admin@alpha.org")
    before = _moodle_connection_count(db, alpha.provider_id)

    # Nothing listens on the discard port of loopback, so the connection is refused.
    response = client.post(
        "/admin/connect/lms", data=_connect_form("http://127.0.0.1:9")
    )
    page = response.get_data(as_text=True)

    assert response.status_code == 400
    assert 'id="lms_url-error"' in page
    assert (
        'The bridge could not reach Moodle at <bdi dir="ltr">http://127.0.0.1:9</bdi>.'
    ) in page
    assert "Nothing was saved" in page
    assert "NewConnectionError" not in page
    assert "attempt" not in page
    assert _moodle_connection_count(db, alpha.provider_id) == before
    created = db.scalar(
        select(func.count(AuditEvent.id)).where(
            AuditEvent.action == "lms_connection.created"
        )
    )
    assert created == 0


def test_connect_lms_failed_test_detail(client, tenants, db):
    """A site that responds but is not Moodle gets a message with the error below."""
    from flask import Flask

    from lti_tool.demo.peers.serving import serve_in_thread

    alpha, _ = tenants
    add_account(db, "admin@alpha.org", AccountRole.PROVIDER_ADMIN, alpha.provider_id)
    sign_in(client, "admin@alpha.org")
    not_moodle = Flask("not_moodle")
    not_moodle.add_url_rule(
        "/webservice/rest/server.php",
        "server",
        lambda: ("<html><b>Not a Moodle</b></html>", 200),
        methods=["GET", "POST"],
    )
    before = _moodle_connection_count(db, alpha.provider_id)

    with serve_in_thread(not_moodle) as server:
        response = client.post("/admin/connect/lms", data=_connect_form(server.url))
    page = response.get_data(as_text=True)
    error = page.split('id="lms_url-error">')[1].split("</p>")[0]

    assert response.status_code == 400
    assert error.startswith(
        f'Moodle at <bdi dir="ltr">{server.url}</bdi> failed the connection test, '
        "so nothing was saved."
    )
    assert '<span class="error-detail">Details: <span lang="en" dir="ltr">' in error
    assert "&lt;b&gt;Not a Moodle&lt;/b&gt;" in error
    assert "<b>" not in error
    assert _moodle_connection_count(db, alpha.provider_id) == before


def test_connect_lms_rejected_token(client, tenants, db, second_moodle):
    """A token Moodle rejects is reported beside the token field and not stored."""
    alpha, _ = tenants
    add_account(db, "admin@alpha.org", AccountRole.PROVIDER_ADMIN, alpha.provider_id)
    sign_in(client, "admin@alpha.org")
    before = _moodle_connection_count(db, alpha.provider_id)

    response = client.post(
        "/admin/connect/lms",
        data=_connect_form(second_moodle.site_url, token="mistyped-token"),
    )
    page = response.get_data(as_text=True)

    assert response.status_code == 400
    assert 'id="lms_token-error"' in page
    assert "Moodle rejected this web service token" in page
    assert (
        "Site administration &gt; Server &gt; Web services &gt; Manage tokens" in page
    )
    assert "the external service that contains" in page
    assert "docs/moodle-setup.md" not in page
    assert "Stop polling" not in page
    assert "mistyped-token" not in page
    assert _moodle_connection_count(db, alpha.provider_id) == before


@pytest.mark.parametrize(
    ("language", "words"),
    [
        ("fr", "et créez un jeton pour l’utilisateur Moodle du pont"),
        ("es", "y cree un token para el usuario de Moodle del puente"),
        ("ar", "وأنشئ رمزًا لمستخدم Moodle الخاص بالجسر"),
    ],
)
def test_connect_lms_rejected_token_translated(
    client, tenants, db, second_moodle, language, words
):
    """The steps to create a token are translated, with Moodle's own menu names."""
    alpha, _ = tenants
    add_account(db, "admin@alpha.org", AccountRole.PROVIDER_ADMIN, alpha.provider_id)
    sign_in(client, "admin@alpha.org")

    response = client.post(
        f"/admin/connect/lms?lang={language}",
        data=_connect_form(second_moodle.site_url, token="mistyped-token"),
    )
    page = response.get_data(as_text=True)

    assert response.status_code == 400
    assert words in page
    assert "Manage tokens" in page
    assert "docs/moodle-setup.md" not in page


def test_connect_lms_bad_url(client, tenants, db):
    """A site address that is not a URL is refused beside its field."""
    alpha, _ = tenants
    add_account(db, "admin@alpha.org", AccountRole.PROVIDER_ADMIN, alpha.provider_id)
    sign_in(client, "admin@alpha.org")

    response = client.post(
        "/admin/connect/lms",
        data={
            "csrf": "test-csrf",
            "lms_name": "M",
            "lms_url": "moodle",
            "lms_token": "t",
        },
    )

    assert response.status_code == 400
    assert 'id="lms_url-error"' in response.get_data(as_text=True)


def test_operator_picks_provider(client, tenants, db):
    """An operator picks a provider and then sees that provider's pages."""
    _, beta = tenants
    add_account(db, "op@hpass.org", AccountRole.OPERATOR, None)
    add_dead_message(db, beta.provider_id, "beta-1")
    sign_in(client, "op@hpass.org")

    before = client.get("/admin/dead-letters")
    client.post(
        "/admin/provider", data={"csrf": "test-csrf", "provider_id": beta.provider_id}
    )
    after = client.get("/admin/dead-letters").get_data(as_text=True)

    assert before.status_code == 303
    assert "portfolio returned HTTP 500" in after


def test_provider_admin_cannot_pick_provider(client, tenants, db):
    """A provider admin cannot switch to another provider."""
    alpha, beta = tenants
    add_account(db, "admin@alpha.org", AccountRole.PROVIDER_ADMIN, alpha.provider_id)
    sign_in(client, "admin@alpha.org")

    response = client.post(
        "/admin/provider", data={"csrf": "test-csrf", "provider_id": beta.provider_id}
    )

    assert response.status_code == 404


def test_invitation_link_has_copy_button(client, tenants, db):
    """The new invitation link sits in a labelled read-only field with a copy button."""
    alpha, _ = tenants
    add_account(db, "admin@alpha.org", AccountRole.PROVIDER_ADMIN, alpha.provider_id)
    sign_in(client, "admin@alpha.org")

    page = client.post(
        "/admin/invitations", data={"csrf": "test-csrf", "email": "new@alpha.org"}
    ).get_data(as_text=True)

    assert '<label for="invitation-link">Invitation link</label>' in page
    field = re.search(r'<input id="invitation-link"[^>]*>', page).group(0)
    assert "readonly" in field
    assert 'value="http://127.0.0.1:5999/account/invitation/' in field
    assert 'data-copy="invitation-link"' in page
    assert "Copy the invitation link" in page

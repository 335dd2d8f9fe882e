"""The language of account emails, on SQLite and PostgreSQL: stored when the account
holder accepts an invitation, signs in or resets the password on a page whose language
was chosen, or picks a language with the switcher (an audited change), and used by the
password reset email and the invitation notice."""

from __future__ import annotations

import email
import email.policy

import pytest
from sqlalchemy import event, select

from lti_tool.account_mail import send_invitation_notice, send_password_reset
from lti_tool.accounts import (
    Account,
    AccountRole,
    AccountToken,
    AuditEvent,
    TokenPurpose,
    issue_token,
    record_locale,
)
from tests.support.account_cookie import account_session_transaction
from tests.support.databases import reset_postgres
from tests.support.seed import add_provider

from .conftest import PASSWORD, add_account, sign_in

ADMIN = "admin@academy.org"
OPERATOR = "operator@hpass.example"
INVITED = "new@academy.org"
FRENCH_RESET = "Réinitialisez votre mot de passe Badges HPass"
ARABIC_NOTICE = "دعوة إلى شارات HPass لعنوانك"


@pytest.fixture(params=["sqlite", "postgresql"])
def settings(request, settings):
    """The shared settings, on a fresh PostgreSQL database in the postgresql runs."""
    if request.param == "postgresql":
        settings.database_url = reset_postgres()
    return settings


@pytest.fixture
def admin_id(db) -> int:
    provider = add_provider(db)
    return add_account(db, ADMIN, AccountRole.PROVIDER_ADMIN, provider.id).id


@pytest.fixture(autouse=True)
def mail_to_files(monkeypatch):
    """Write emails to `<instance>/mail/` so the tests can read them."""
    monkeypatch.delenv("HPASS_SMTP_URL", raising=False)
    monkeypatch.delenv("HPASS_MAIL_FROM", raising=False)


@pytest.fixture
def account_updates(app) -> list[str]:
    """The UPDATE statements on the accounts table, as the database receives them."""
    statements = []
    engine = app.extensions["hpass"].engine

    def record(_connection, _cursor, statement, *_args):
        if statement.lstrip().upper().startswith("UPDATE ACCOUNTS"):
            statements.append(statement)

    event.listen(engine, "before_cursor_execute", record)
    yield statements
    event.remove(engine, "before_cursor_execute", record)


def _stored_locale(app, email_address: str) -> str | None:
    """Read the account's language in a session of its own, so no test session
    keeps a transaction open while the app writes."""
    with app.extensions["hpass"].session() as session:
        return session.scalar(
            select(Account.locale).where(Account.email == email_address)
        )


def _set_stored_locale(app, email_address: str, locale: str | None) -> None:
    """Write a language straight into the row, bypassing `record_locale`."""
    with app.extensions["hpass"].session() as session:
        account = session.scalar(select(Account).where(Account.email == email_address))
        account.locale = locale
        session.commit()


def _mails(settings) -> list[email.message.EmailMessage]:
    folder = settings.instance_path / "mail"
    return [
        email.message_from_bytes(path.read_bytes(), policy=email.policy.default)
        for path in sorted(folder.glob("*.eml"))
    ]


def _accept_invitation(client, db, admin_id: int, accept_language: str):
    """Invite `INVITED` to the admin's provider and accept on a page whose browser
    sends `accept_language`."""
    provider_id = db.get(Account, admin_id).provider_id
    token = issue_token(
        db,
        TokenPurpose.INVITATION,
        email=INVITED,
        provider_id=provider_id,
        role=AccountRole.PROVIDER_ADMIN,
        created_by_account_id=admin_id,
    )
    db.commit()
    with account_session_transaction(client) as session:
        session["csrf"] = "test-csrf"

    return client.post(
        f"/account/invitation/{token}",
        data={"csrf": "test-csrf", "password": PASSWORD, "password_repeat": PASSWORD},
        headers={"Accept-Language": accept_language},
    )


def _reset_password(client, db, admin_id: int, accept_language: str):
    """Set a new password for `ADMIN` from a reset link, on a page whose browser
    sends `accept_language`."""
    token = issue_token(
        db, TokenPurpose.PASSWORD_RESET, email=ADMIN, account_id=admin_id
    )
    db.commit()
    with account_session_transaction(client) as session:
        session["csrf"] = "test-csrf"
    new_password = "a brand new passphrase"

    return client.post(
        f"/account/reset/{token}",
        data={
            "csrf": "test-csrf",
            "password": new_password,
            "password_repeat": new_password,
        },
        headers={"Accept-Language": accept_language},
    )


def test_acceptance_stores_page_language(app, client, db, admin_id):
    """Accepting an invitation on a French page stores French on the new account."""
    accepted = _accept_invitation(client, db, admin_id, "fr-CA,fr;q=0.9,en;q=0.5")

    assert accepted.status_code == 303
    assert _stored_locale(app, INVITED) == "fr"


def test_acceptance_fallback_stores_nothing(app, client, db, admin_id):
    """Accepting on a page that fell back to English leaves the new account without
    a language, so its emails follow a later choice."""
    accepted = _accept_invitation(client, db, admin_id, "de")

    assert accepted.status_code == 303
    assert _stored_locale(app, INVITED) is None


def test_sign_in_stores_page_language(app, client, admin_id):
    """Signing in on an Arabic page stores Arabic, and a later sign-in on a page
    the switcher set to Spanish stores Spanish."""
    first = sign_in(client, ADMIN, accept_language="ar")
    after_first = _stored_locale(app, ADMIN)
    # The sign-in page keeps the switcher's choice in the account cookie.
    with account_session_transaction(client) as session:
        session["locale_choice"] = "es"
    second = sign_in(client, ADMIN, accept_language="ar")

    assert first.status_code == 303
    assert after_first == "ar"
    assert second.status_code == 303
    assert _stored_locale(app, ADMIN) == "es"


def test_password_reset_stores_page_language(app, client, db, admin_id):
    """Setting a new password from a reset link signs in, so it stores the page's
    language too."""
    response = _reset_password(client, db, admin_id, "es-MX,es;q=0.9")

    assert response.status_code == 303
    assert _stored_locale(app, ADMIN) == "es"


def test_password_reset_fallback_keeps_stored(app, client, db, admin_id):
    """A new password set on a page that fell back to English keeps the stored
    language."""
    _set_stored_locale(app, ADMIN, "ar")

    response = _reset_password(client, db, admin_id, "")

    assert response.status_code == 303
    assert _stored_locale(app, ADMIN) == "ar"


def test_reset_request_fallback_stored_language(
    app, client, settings, admin_id, monkeypatch
):
    """A reset requested on a page that fell back to English queues no language,
    so the email is in the account's stored one."""
    _set_stored_locale(app, ADMIN, "fr")
    queued = []
    monkeypatch.setattr(
        app.extensions["celery"],
        "send_task",
        lambda name, args=None, **_: queued.append(args),
    )
    with account_session_transaction(client) as session:
        session["csrf"] = "test-csrf"

    response = client.post(
        "/account/reset",
        data={"csrf": "test-csrf", "email": ADMIN},
        headers={"Accept-Language": "de"},
    )
    with app.app_context():
        outcomes = [send_password_reset.run(*args) for args in queued]
    [mail] = _mails(settings)

    assert response.status_code == 200
    assert queued == [[admin_id, None]]
    assert outcomes == ["sent"]
    assert mail["Subject"] == FRENCH_RESET


def test_sign_in_same_language_no_write(app, client, admin_id, account_updates):
    """A sign-in in the stored language leaves the language column out of the
    sign-in's update."""
    _set_stored_locale(app, ADMIN, "fr")
    account_updates.clear()

    response = sign_in(client, ADMIN, accept_language="fr")

    assert response.status_code == 303
    assert account_updates, "a sign-in updates last_sign_in_at"
    assert not [statement for statement in account_updates if "locale" in statement]
    assert _stored_locale(app, ADMIN) == "fr"


@pytest.mark.parametrize("accept_language", ["", "de", "de-AT,it;q=0.5"])
def test_sign_in_fallback_keeps_stored(
    app, client, admin_id, account_updates, accept_language
):
    """A sign-in on a page that fell back to English, because the browser sent no
    supported language and nothing was picked, keeps the stored language."""
    _set_stored_locale(app, ADMIN, "fr")
    account_updates.clear()

    response = sign_in(client, ADMIN, accept_language=accept_language)

    assert response.status_code == 303
    assert account_updates, "a sign-in updates last_sign_in_at"
    assert not [statement for statement in account_updates if "locale" in statement]
    assert _stored_locale(app, ADMIN) == "fr"


def test_sign_in_browser_english_stored(app, client, admin_id):
    """English named by the browser is a language like any other, so it replaces a
    stored one."""
    _set_stored_locale(app, ADMIN, "fr")

    response = sign_in(client, ADMIN, accept_language="en-GB,de;q=0.5")

    assert response.status_code == 303
    assert _stored_locale(app, ADMIN) == "en"


def test_sign_in_language_link_stored(app, client, admin_id):
    """A sign-in posted to a `?lang=` address stores that choice over the browser's
    language."""
    response = sign_in(client, ADMIN, accept_language="fr", lang="ar")

    assert response.status_code == 303
    assert _stored_locale(app, ADMIN) == "ar"


def test_failed_sign_in_stores_nothing(app, client, admin_id):
    """A wrong password stores no language, whatever the page's language."""
    response = sign_in(client, ADMIN, "not the password", accept_language="fr")

    assert response.status_code == 401
    assert _stored_locale(app, ADMIN) is None


def test_switcher_stores_language_once(app, client, admin_id, account_updates):
    """Picking a language with the switcher on an admin page stores it, picking it
    again writes nothing, and pages without `?lang=` write nothing."""
    sign_in(client, ADMIN)
    account_updates.clear()

    picked = client.get("/admin/?lang=fr")
    updates_after_pick = list(account_updates)
    picked_again = client.get("/admin/?lang=fr")
    plain = client.get("/admin/")

    assert picked.status_code == 200
    assert picked_again.status_code == 200
    assert plain.status_code == 200
    assert len(updates_after_pick) == 1
    assert "locale" in updates_after_pick[0]
    assert account_updates == updates_after_pick
    assert _stored_locale(app, ADMIN) == "fr"


def test_switcher_on_password_page_stores(app, client, admin_id):
    """The switcher on the password change page, outside /admin/, stores too."""
    sign_in(client, ADMIN)

    response = client.get("/account/password?lang=ar")

    assert response.status_code == 200
    assert _stored_locale(app, ADMIN) == "ar"


@pytest.mark.parametrize("value", ["de", "xx-YY", "", "../fr"])
def test_switcher_unsupported_not_stored(app, client, admin_id, account_updates, value):
    """An unsupported `?lang=` value stores nothing after a sign-in that chose no
    language, and writes nothing."""
    sign_in(client, ADMIN)
    account_updates.clear()

    response = client.get("/admin/", query_string={"lang": value})

    assert response.status_code == 200
    assert account_updates == []
    assert _stored_locale(app, ADMIN) is None


@pytest.mark.parametrize("value", ["de", "xx-YY", "", None, "français"])
def test_record_locale_rejects_unsupported(db, admin_id, value):
    """`record_locale` ignores a value that is no supported language."""
    account = db.get(Account, admin_id)

    changed = record_locale(account, value)

    assert changed is False
    assert account.locale is None


def test_record_locale_keeps_language_only(db, admin_id):
    """A regional tag is stored as its supported language."""
    account = db.get(Account, admin_id)

    changed = record_locale(account, "fr-CA")
    changed_again = record_locale(account, "fr")

    assert changed is True
    assert changed_again is False
    assert account.locale == "fr"


def test_reset_without_language_uses_stored(app, settings, admin_id):
    """A reset task queued without the page's language sends French to an account
    that stores French."""
    _set_stored_locale(app, ADMIN, "fr")

    with app.app_context():
        outcome = send_password_reset.run(admin_id)
    [mail] = _mails(settings)

    assert outcome == "sent"
    assert mail["Subject"] == FRENCH_RESET


def test_reset_stored_unsupported_english(app, settings, admin_id):
    """A stored value that is no longer a supported language gives English."""
    _set_stored_locale(app, ADMIN, "de")

    with app.app_context():
        outcome = send_password_reset.run(admin_id)
    [mail] = _mails(settings)

    assert outcome == "sent"
    assert mail["Subject"] == "Reset your HPass badges password"


def test_invitation_notice_uses_stored(app, db, settings, admin_id):
    """The notice to an address with an account in another provider is in the
    language that account stores."""
    inviting = add_provider(db, slug="college", name="College")
    issue_token(
        db,
        TokenPurpose.INVITATION,
        email=ADMIN,
        provider_id=inviting.id,
        role=AccountRole.PROVIDER_ADMIN,
    )
    invitation_id = db.scalar(
        select(AccountToken.id).where(AccountToken.email == ADMIN)
    )
    db.commit()
    _set_stored_locale(app, ADMIN, "ar")

    with app.app_context():
        outcome = send_invitation_notice.run(invitation_id)
    [mail] = _mails(settings)

    assert outcome == "sent"
    assert mail["Subject"] == ARABIC_NOTICE
    assert "College" in mail.get_content()


def _language_events(app) -> list[AuditEvent]:
    """Read the language change events in a session of their own, oldest first."""
    with app.extensions["hpass"].session() as session:
        events = session.scalars(
            select(AuditEvent)
            .where(AuditEvent.action == "account.language_changed")
            .order_by(AuditEvent.id)
        ).all()
        session.expunge_all()
    return list(events)


def test_switcher_change_audited(app, client, db, admin_id):
    """Each change of language with the switcher is one audit event in the
    holder's provider, and picking the stored language again records none."""
    provider_id = db.get(Account, admin_id).provider_id
    sign_in(client, ADMIN)

    client.get("/admin/?lang=fr")
    client.get("/admin/?lang=ar")
    client.get("/admin/?lang=ar")
    first, second = _language_events(app)

    assert first.provider_id == provider_id
    assert first.actor == f"account:{admin_id}"
    assert first.target == f"account:{admin_id}"
    assert first.detail == {"locale": "fr"}
    assert second.provider_id == provider_id
    assert second.detail == {"locale": "ar", "previous_locale": "fr"}


def test_operator_switcher_change_audited(app, client, db):
    """An operator's change of language is audited in no provider, as the
    operator's other account changes are."""
    operator = add_account(db, OPERATOR, AccountRole.OPERATOR, None)
    sign_in(client, OPERATOR)

    response = client.get("/account/password?lang=es")
    [event] = _language_events(app)

    assert response.status_code == 200
    assert event.provider_id is None
    assert event.actor == f"account:{operator.id}"
    assert event.detail == {"locale": "es"}


def test_sign_in_language_not_audited(app, client, admin_id):
    """A language stored by a sign-in is no switcher change, so it is not audited."""
    response = sign_in(client, ADMIN, accept_language="fr")

    assert response.status_code == 303
    assert _stored_locale(app, ADMIN) == "fr"
    assert _language_events(app) == []


def test_audit_page_names_languages(client, admin_id):
    """The audit log page labels the event in the page's language and names each
    language in itself. Opening the page with `?lang=fr` is the second change."""
    sign_in(client, ADMIN)
    client.get("/admin/?lang=es")

    page = client.get("/admin/audit?lang=fr").get_data(as_text=True)

    assert "Langue du compte changée" in page
    assert "Langue précédente" in page
    assert '<span dir="auto">Español</span>' in page
    assert '<span dir="auto">Français</span>' in page

"""Password reset emails: queued by the reset page, sent by the worker's task through
a real SMTP server (aiosmtpd) on loopback, or written to an owner-only file."""

from __future__ import annotations

import re
import stat
from email import message_from_bytes, policy

import pytest
from structlog.testing import capture_logs

from lti_tool import account_mail
from lti_tool.account_mail import SEND_PASSWORD_RESET, send_password_reset
from lti_tool.accounts import AccountRole, create_account
from tests.support.account_cookie import account_session_transaction
from tests.support.smtp import free_port

EMAIL = "operator@bridge.example"
LINK = re.compile(r"http://127\.0\.0\.1:5999(/account/reset/[\w-]+)")
NBSP = "\u00a0"


@pytest.fixture
def account_id(db):
    account = create_account(
        db,
        email=EMAIL,
        password="correct horse battery staple",
        role=AccountRole.OPERATOR,
        provider_id=None,
    )
    db.commit()
    return account.id


@pytest.fixture
def queued(app, monkeypatch):
    """The (task name, arguments) pairs the app hands to the broker."""
    sent = []
    celery = app.extensions["celery"]
    monkeypatch.setattr(
        celery, "send_task", lambda name, args=None, **_: sent.append((name, args))
    )
    return sent


def _request_reset(client, email: str, language: str = "en"):
    with account_session_transaction(client) as session:
        session["csrf"] = "test-csrf"
    return client.post(
        "/account/reset",
        data={"csrf": "test-csrf", "email": email},
        headers={"Accept-Language": language},
    )


def _run_queued(app, queued) -> list[str]:
    outcomes = []
    for name, args in queued:
        assert name == SEND_PASSWORD_RESET
        with app.app_context():
            outcomes.append(send_password_reset.run(*args))
    return outcomes


def test_reset_queues_account_id_only(client, account_id, queued):
    """The reset page queues the account id and the page's language, so no link is
    stored in the broker."""
    known = _request_reset(client, EMAIL)
    unknown = _request_reset(client, "nobody@bridge.example")

    assert known.status_code == 200
    assert unknown.status_code == 200
    assert queued == [(SEND_PASSWORD_RESET, [account_id, "en"])]


def test_reset_email_sent_by_smtp(
    app, client, settings, account_id, queued, smtp_server, monkeypatch
):
    """With an SMTP URL the reset email reaches the server from the configured
    sender, and its link sets a new password."""
    controller, inbox = smtp_server
    monkeypatch.setenv("HPASS_SMTP_URL", f"smtp://127.0.0.1:{controller.port}")
    monkeypatch.setenv("HPASS_MAIL_FROM", "badges@bridge.example")

    _request_reset(client, EMAIL)
    outcomes = _run_queued(app, queued)

    assert outcomes == ["sent"]
    [envelope] = inbox.messages
    assert envelope.mail_from == "badges@bridge.example"
    assert envelope.rcpt_tos == [EMAIL]
    message = message_from_bytes(envelope.content, policy=policy.default)
    assert message["From"] == "badges@bridge.example"
    assert message["Subject"] == "Reset your HPass badges password"
    link = LINK.search(message.get_content())
    assert link is not None
    assert not (settings.instance_path / "mail").exists()

    form = client.get(link.group(1))
    new_password = "a brand new passphrase"
    changed = client.post(
        link.group(1),
        data={
            "csrf": "test-csrf",
            "password": new_password,
            "password_repeat": new_password,
        },
    )

    assert form.status_code == 200
    assert changed.status_code == 303


def test_reset_email_file_owner_only(
    app, client, settings, account_id, queued, monkeypatch
):
    """Without an SMTP URL the reset email is a file that only its owner can read."""
    monkeypatch.delenv("HPASS_SMTP_URL", raising=False)
    monkeypatch.delenv("HPASS_MAIL_FROM", raising=False)

    _request_reset(client, EMAIL)
    outcomes = _run_queued(app, queued)

    assert outcomes == ["sent"]
    folder = settings.instance_path / "mail"
    [path] = folder.glob("*.eml")
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE(folder.stat().st_mode) == 0o700
    message = message_from_bytes(path.read_bytes(), policy=policy.default)
    assert message["From"] == "badges@127.0.0.1"
    assert message["To"] == EMAIL
    assert LINK.search(message.get_content()) is not None


def test_reset_smtp_down_logged(app, client, account_id, queued, monkeypatch):
    """An SMTP server that refuses connections is logged with the account id, and
    the reset page looks the same as for an unknown email."""
    monkeypatch.setenv("HPASS_SMTP_URL", f"smtp://127.0.0.1:{free_port()}")

    known = _request_reset(client, EMAIL)
    unknown = _request_reset(client, "nobody@bridge.example")
    with capture_logs() as logs:
        outcomes = _run_queued(app, queued)

    assert outcomes == ["failed"]
    assert unknown.get_data(as_text=True) == known.get_data(as_text=True).replace(
        EMAIL, "nobody@bridge.example"
    )
    [failure] = [
        entry for entry in logs if entry["event"] == "password_reset_email_failed"
    ]
    assert failure["account_id"] == account_id
    assert failure["error"] == "ConnectionRefusedError"


def test_reset_broker_down_page_neutral(app, client, account_id, monkeypatch):
    """A broker that cannot take the task is logged, and the page still shows the
    neutral response instead of an error that would reveal the account."""

    def refuse(*_args, **_kwargs):
        raise ConnectionError("broker unreachable")

    monkeypatch.setattr(app.extensions["celery"], "send_task", refuse)

    with capture_logs() as logs:
        known = _request_reset(client, EMAIL)
    unknown = _request_reset(client, "nobody@bridge.example")

    assert known.status_code == 200
    assert unknown.get_data(as_text=True) == known.get_data(as_text=True).replace(
        EMAIL, "nobody@bridge.example"
    )
    [failure] = [
        entry for entry in logs if entry["event"] == "password_reset_queue_failed"
    ]
    assert failure["account_id"] == account_id


def _file_email(settings):
    [path] = (settings.instance_path / "mail").glob("*.eml")
    return message_from_bytes(path.read_bytes(), policy=policy.default)


def test_reset_email_english_by_default(app, client, settings, account_id, queued):
    """An account with no known language gets the reset email in English."""
    _request_reset(client, EMAIL)
    _run_queued(app, queued)
    message = _file_email(settings)

    assert message["Subject"] == "Reset your HPass badges password"
    assert "Open this link within an hour to choose a new password:" in (
        message.get_content()
    )


@pytest.mark.parametrize(
    ("locale", "subject", "line"),
    [
        (
            "fr",
            "Réinitialisez votre mot de passe Badges HPass",
            f"Ouvrez ce lien dans l’heure pour choisir un nouveau mot de passe{NBSP}:",
        ),
        (
            "es",
            "Restablezca su contraseña de Insignias HPass",
            "Abra este enlace antes de una hora para elegir una contraseña nueva:",
        ),
        (
            "ar",
            "أعد تعيين كلمة مرور شارات HPass",
            "افتح هذا الرابط خلال ساعة لاختيار كلمة مرور جديدة:",
        ),
    ],
)
def test_reset_email_in_page_language(
    app, client, settings, account_id, queued, locale, subject, line
):
    """The reset email is in the reset page's language and keeps its reset link."""
    _request_reset(client, EMAIL, f"{locale};q=1, en;q=0.5")
    outcomes = _run_queued(app, queued)
    message = _file_email(settings)
    body = message.get_content()

    assert outcomes == ["sent"]
    assert message["Subject"] == subject
    assert line in body
    assert LINK.search(body) is not None


def test_reset_queued_without_language(app, client, settings, account_id, monkeypatch):
    """A task queued without a language, or with an unsupported one, uses the
    account's language."""
    monkeypatch.setattr(account_mail, "_email_locale", lambda account: "es")

    with app.app_context():
        without = send_password_reset.run(account_id)
        unsupported = send_password_reset.run(account_id, "xx-YY")
    subjects = sorted(
        message_from_bytes(path.read_bytes(), policy=policy.default)["Subject"]
        for path in (settings.instance_path / "mail").glob("*.eml")
    )

    assert without == "sent"
    assert unsupported == "sent"
    assert subjects == ["Restablezca su contraseña de Insignias HPass"] * 2

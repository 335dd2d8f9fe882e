"""Password reset emails and invitation notices, sent by Celery tasks that take ids.

A reset link is a secret for an hour, so it never enters a stored payload. The
outbox keeps its payloads as plain JSON in the database, and the broker keeps task
arguments as plain JSON too. The request only queues the account id. The worker
issues the one-time token, stores its digest, and sends the link through the same
transport as every other email (`lti_tool.mail`): SMTP when `HPASS_SMTP_URL` is set,
otherwise an owner-only .eml file in `<instance>/mail/`. The reset page looks the same
whether the account exists, the task was queued or the email was sent.

Every admin invitation queues a notice task too. When the invited address already has
an account in another provider, the worker emails that account's owner a notice
without a link, and the invitation page looks the same as for a new address.

A notice is in the account's stored language (`Account.locale`). A reset email is in
the language of the page that requested it, or the account's when that page fell back
to English because nothing chose a language, or when the task has none.
"""

from __future__ import annotations

import smtplib
import uuid

from celery import shared_task
from flask import current_app

from badge_engine.models import Provider
from lti_tool.accounts import (
    Account,
    AccountToken,
    TokenPurpose,
    find_account,
    issue_token,
    record_audit,
)
from lti_tool.bridge import current_bridge
from lti_tool.i18n import (
    DEFAULT_LOCALE,
    force_locale,
    gettext,
    isolate_ltr_text,
    isolate_text,
    supported_locale,
)
from lti_tool.logs import get_logger
from lti_tool.mail import MailConfigError, MailSettings, build_message, deliver

log = get_logger(__name__)

# A Celery task name, not a secret.
SEND_PASSWORD_RESET = "lti_tool.account_mail.send_password_reset"  # noqa: S105
SEND_INVITATION_NOTICE = "lti_tool.account_mail.send_invitation_notice"


def password_reset_url(base: str, token: str) -> str:
    return f"{base}/account/reset/{token}"


def queue_password_reset(account_id: int, locale: str | None) -> None:
    """Queue the reset email of an account in `locale`, the reset page's language,
    and log a broker failure without raising. With None, the email is in the
    account's stored language.

    Raising would turn the neutral reset page into an error page for known emails
    only, which would reveal which emails have accounts.
    """
    celery = current_app.extensions["celery"]
    try:
        celery.send_task(SEND_PASSWORD_RESET, args=[account_id, locale])
    except Exception as error:  # noqa: BLE001 - the person can ask again
        log.warning(
            "password_reset_queue_failed",
            account_id=account_id,
            error=type(error).__name__,
        )


@shared_task(name=SEND_PASSWORD_RESET)
def send_password_reset(account_id: int, locale: str | None = None) -> str:
    """Issue a reset token for the account and email its link.

    The email is in `locale`, the language of the page that requested it, when the
    bridge supports it. A task queued without one uses the account's language.
    Returns "sent", "no_account", "disabled" (no email for a disabled account) or
    "failed". A failed send is logged with the account id and not retried, because
    a retry would issue a second link. The person can ask for a new one on the
    reset page.
    """
    bridge = current_bridge()
    settings = bridge.settings
    mail_settings = _mail_settings(
        settings, "password_reset_email", account_id=account_id
    )
    if mail_settings is None:
        return "failed"

    with bridge.session() as session:
        account = session.get(Account, account_id)
        if account is None:
            log.warning("password_reset_account_not_found", account_id=account_id)
            return "no_account"
        # The account may have been disabled after the request was queued.
        if account.is_disabled:
            log.info("password_reset_skipped_disabled", account_id=account_id)
            return "disabled"
        # The digest is committed before the email leaves, so a delivered link
        # always works.
        token = issue_token(
            session,
            TokenPurpose.PASSWORD_RESET,
            email=account.email,
            provider_id=account.provider_id,
            account_id=account.id,
        )
        session.commit()
        recipient = account.email
        provider_id = account.provider_id
        locale = supported_locale(locale) or _email_locale(account)

    link = password_reset_url(settings.public_base_url, token)
    with force_locale(locale):
        subject = gettext("Reset your HPass badges password")
        body = _password_reset_body(link)
    sent = _send_email(
        mail_settings,
        "password_reset_email",
        recipient=recipient,
        subject=subject,
        body=body,
        file_stem=f"password-reset-{account_id}",
        account_id=account_id,
        provider_id=provider_id,
    )
    return "sent" if sent else "failed"


def queue_invitation_notice(invitation_id: int) -> None:
    """Queue the notice check of an invitation, and log a broker failure.

    A broker error is logged, not raised, because the invitation is already
    committed and its link must still be shown.
    """
    celery = current_app.extensions["celery"]
    try:
        celery.send_task(SEND_INVITATION_NOTICE, args=[invitation_id])
    except Exception as error:  # noqa: BLE001 - the invitation itself is stored
        log.warning(
            "invitation_notice_queue_failed",
            invitation_id=invitation_id,
            error=type(error).__name__,
        )


def _email_locale(account: Account) -> str:
    """Return the account's stored language, or English when it stores none.

    Accounts created before the language was stored, and operator accounts created
    on the command line without `--locale`, store none until their holder signs in
    or picks a language on the admin pages.
    """
    return supported_locale(account.locale) or DEFAULT_LOCALE


def _password_reset_body(link: str) -> str:
    paragraphs = [
        gettext("Open this link within an hour to choose a new password:"),
        link,
        gettext("If you did not ask for it, ignore this email."),
    ]
    return "\n\n".join(paragraphs)


def _invitation_notice_body(email: str, provider_name: str | None) -> str:
    """Write the notice's text, naming "another provider" for a deleted provider.

    The address and the provider's name are isolated as on the admin pages, so each
    keeps its own direction inside a sentence in Arabic or another language.
    """
    email = isolate_ltr_text(email)
    if provider_name is None:
        provider_name = gettext("another provider")
    else:
        provider_name = isolate_text(provider_name)
    paragraphs = [
        gettext(
            "An admin of %(provider)s on HPass badges invited %(email)s to "
            "administer %(provider)s too.",
            provider=provider_name,
            email=email,
        ),
        gettext(
            "This address already has an HPass badges account, and an address can "
            "have only one account, so this invitation cannot be accepted with it. "
            "Nothing was changed on your account, and this email contains no link."
        ),
        gettext(
            "If you want to administer %(provider)s, ask its admins to invite "
            "another address. Otherwise you can ignore this email.",
            provider=provider_name,
        ),
    ]
    return "\n\n".join(paragraphs)


@shared_task(name=SEND_INVITATION_NOTICE)
def send_invitation_notice(invitation_id: int) -> str:
    """Email the owner of an invited address that has an account in another provider.

    Returns "sent", "no_account" (the usual case, a new address), "not_found" (the
    invitation was withdrawn meanwhile), "same_provider" (it was accepted meanwhile),
    "disabled" or "failed". The notice is audited in the account's own provider, or among the
    operators' events for an operator, without naming the inviting provider.
    """
    bridge = current_bridge()
    settings = bridge.settings
    with bridge.session() as session:
        invitation = session.get(AccountToken, invitation_id)
        if invitation is None or invitation.purpose != TokenPurpose.INVITATION.value:
            log.info("invitation_notice_skipped", invitation_id=invitation_id)
            return "not_found"
        account = find_account(session, invitation.email)
        if account is None:
            return "no_account"
        if account.provider_id == invitation.provider_id:
            return "same_provider"
        if account.is_disabled:
            log.info(
                "invitation_notice_skipped_disabled",
                invitation_id=invitation_id,
                account_id=account.id,
            )
            return "disabled"
        provider = session.get(Provider, invitation.provider_id)
        inviting_provider_name = provider.name if provider is not None else None
        recipient = account.email
        account_id = account.id
        account_provider_id = account.provider_id
        inviting_provider_id = invitation.provider_id
        locale = _email_locale(account)

    mail_settings = _mail_settings(
        settings,
        "invitation_notice_email",
        invitation_id=invitation_id,
        account_id=account_id,
    )
    if mail_settings is None:
        return "failed"
    with force_locale(locale):
        subject = gettext("An invitation to HPass badges for your address")
        body = _invitation_notice_body(recipient, inviting_provider_name)
    sent = _send_email(
        mail_settings,
        "invitation_notice_email",
        recipient=recipient,
        subject=subject,
        body=body,
        file_stem=f"invitation-notice-{account_id}",
        invitation_id=invitation_id,
        account_id=account_id,
        provider_id=account_provider_id,
        inviting_provider_id=inviting_provider_id,
    )
    if not sent:
        return "failed"

    with bridge.session() as session:
        record_audit(
            session,
            provider_id=account_provider_id,
            actor="bridge",
            action="account.invitation_notice_sent",
            target=f"account:{account_id}",
        )
        session.commit()
    return "sent"


def _mail_settings(settings, event: str, **ids) -> MailSettings | None:
    """Read the mail settings, or log `<event>_failed` with the ids and return None."""
    try:
        return MailSettings.from_environ(
            settings.instance_path, settings.public_base_url
        )
    except MailConfigError as error:
        log.error(f"{event}_failed", error=str(error), **ids)
        return None


def _send_email(
    mail_settings: MailSettings,
    event: str,
    *,
    recipient: str,
    subject: str,
    body: str,
    file_stem: str,
    **ids,
) -> bool:
    """Deliver one email and log `<event>_sent` or `<event>_failed` with the ids.

    Returns whether the email was delivered. `file_stem` starts the name of the
    .eml file when no SMTP server is configured.
    """
    message = build_message(
        mail_settings.sender, {"to": recipient, "subject": subject, "body": body}
    )
    try:
        where = deliver(mail_settings, message, f"{file_stem}-{uuid.uuid4().hex}")
    except (smtplib.SMTPException, OSError) as error:
        log.warning(f"{event}_failed", error=type(error).__name__, **ids)
        return False

    log.info(f"{event}_sent", transport=where.split(":")[0], **ids)
    return True

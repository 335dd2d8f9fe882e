"""Outgoing email: the transport, and the outbox handler for `email.send` messages.

With `HPASS_SMTP_URL` unset (the embedded default) each message is written as an
owner-only (mode 0600) .eml file to `<instance>/mail/`, so a single-machine install
needs no mail server. In production `HPASS_SMTP_URL` names the server:

    smtp://host:25            plain SMTP, upgraded with STARTTLS when offered
    smtp+starttls://host:587  STARTTLS required
    smtps://user:pass@host:465  implicit TLS, with login

`HPASS_MAIL_FROM` sets the sender (default `badges@<public host>`). The password in
the URL is a secret: it is never logged.
"""

from __future__ import annotations

import os
import re
import smtplib
import ssl
from dataclasses import dataclass, field
from datetime import timedelta
from email.message import EmailMessage
from email.utils import format_datetime, make_msgid
from pathlib import Path
from urllib.parse import unquote, urlsplit

from badge_engine.db import utcnow
from badge_engine.renewal import SEND_EMAIL
from lti_tool.logs import get_logger

log = get_logger(__name__)

# SEND_EMAIL is the outbox kind this module's handler serves.
__all__ = [
    "SEND_EMAIL",
    "MailSettings",
    "build_message",
    "deliver",
    "send_email_message",
]

SMTP_SCHEMES = ("smtp", "smtp+starttls", "smtps")
_SAFE_NAME = re.compile(r"[^A-Za-z0-9_.-]")


class MailConfigError(ValueError):
    """HPASS_SMTP_URL is not a usable SMTP URL."""


@dataclass(frozen=True)
class MailSettings:
    sender: str
    outbox_dir: Path
    smtp_url: str | None = field(default=None, repr=False)
    timeout_seconds: float = 10.0

    @classmethod
    def from_environ(
        cls, instance_path: Path, public_base_url: str, environ=None
    ) -> MailSettings:
        env = os.environ if environ is None else environ
        smtp_url = env.get("HPASS_SMTP_URL") or None
        if smtp_url is not None and urlsplit(smtp_url).scheme not in SMTP_SCHEMES:
            raise MailConfigError(
                f"HPASS_SMTP_URL must start with {', '.join(SMTP_SCHEMES)}://, got "
                f"scheme {urlsplit(smtp_url).scheme!r}"
            )
        host = urlsplit(public_base_url).hostname or "localhost"
        return cls(
            sender=env.get("HPASS_MAIL_FROM") or f"badges@{host}",
            outbox_dir=instance_path / "mail",
            smtp_url=smtp_url,
        )


def build_message(sender: str, payload: dict) -> EmailMessage:
    """Build the email of an `email.send` payload ({"to", "subject", "body"}).

    Raises ValueError naming the missing or invalid field.
    """
    recipients = payload.get("to")
    if isinstance(recipients, str):
        recipients = [recipients]
    if not recipients or not all(isinstance(r, str) and "@" in r for r in recipients):
        raise ValueError(f"email payload 'to' must list addresses, got {recipients!r}")
    for name in ("subject", "body"):
        if not isinstance(payload.get(name), str) or not payload[name]:
            raise ValueError(f"email payload {name!r} is missing or empty")

    message = EmailMessage()
    message["From"] = sender
    message["To"] = ", ".join(recipients)
    message["Subject"] = payload["subject"]
    message["Date"] = format_datetime(utcnow())
    message["Message-ID"] = make_msgid(domain=sender.rpartition("@")[2] or None)
    message.set_content(payload["body"])
    return message


def deliver(settings: MailSettings, message: EmailMessage, name: str) -> str:
    """Send the message by SMTP, or write it to the instance folder without SMTP.

    Returns where it went. Raises smtplib.SMTPException or OSError on failure.
    """
    if settings.smtp_url is None:
        return _write_message_file(settings.outbox_dir, message, name)

    parts = urlsplit(settings.smtp_url)
    scheme = parts.scheme
    port = parts.port or {"smtps": 465, "smtp+starttls": 587}.get(scheme, 25)
    context = ssl.create_default_context()
    if scheme == "smtps":
        client = smtplib.SMTP_SSL(
            parts.hostname, port, timeout=settings.timeout_seconds, context=context
        )
    else:
        client = smtplib.SMTP(parts.hostname, port, timeout=settings.timeout_seconds)
    with client:
        client.ehlo()
        if scheme == "smtp+starttls" or (
            scheme == "smtp" and client.has_extn("starttls")
        ):
            client.starttls(context=context)
            client.ehlo()
        if parts.username:
            client.login(unquote(parts.username), unquote(parts.password or ""))
        client.send_message(message)
    return f"{scheme}://{parts.hostname}:{port}"


def _write_message_file(folder: Path, message: EmailMessage, name: str) -> str:
    """Write the message as `<folder>/<name>.eml`, readable by its owner only.

    A message can carry a password reset link, so no other local user may read it.
    """
    folder.mkdir(mode=0o700, parents=True, exist_ok=True)
    path = folder / f"{_SAFE_NAME.sub('_', name)}.eml"
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    # os.open sets the mode only on a new file, so fchmod also covers an older one.
    os.fchmod(descriptor, 0o600)
    with os.fdopen(descriptor, "wb") as file:
        file.write(bytes(message))
    return str(path)


def send_email_message(context) -> None:
    """Outbox handler for `email.send`: build the message and deliver it.

    A malformed payload goes to the dead-letter list; a failed SMTP exchange is
    retried with the outbox's backoff. A retry after a crash may send the email
    twice, which SMTP cannot prevent.
    """
    from lti_tool.pipeline import GiveUp, RetryLater

    bridge, message = context.bridge, context.message
    settings = MailSettings.from_environ(
        bridge.settings.instance_path, bridge.settings.public_base_url
    )
    try:
        email = build_message(settings.sender, message.payload)
    except ValueError as error:
        raise GiveUp(f"outbox message {message.id}: {error}") from None

    try:
        where = deliver(settings, email, f"{message.id}-{message.idempotency_key}")
    except (smtplib.SMTPException, OSError) as error:
        log.warning(
            "email_send_failed",
            error=type(error).__name__,
            outbox_message_id=message.id,
            provider_id=message.provider_id,
        )
        raise RetryLater(
            f"sending email failed: {type(error).__name__}: {error}",
            retry_after=timedelta(minutes=5),
        ) from None
    log.info(
        "email_sent",
        outbox_message_id=message.id,
        provider_id=message.provider_id,
        transport=where.split(":")[0],
    )

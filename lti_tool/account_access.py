"""Disabling and enabling accounts of provider admins and HPass operators.

A disabled account keeps its row, so its audit history still names it, but it cannot
sign in, its sessions end at once, and its password reset requests send no email.
The invitations it sent that are still pending are withdrawn with it, so they cannot
bring in new admins, and the open LTI Dynamic Registration links it created are
revoked, so they cannot register a platform for the provider. Enabling it again
does not bring back old sessions, withdrawn invitations or revoked links. API
tokens belong to a provider, not to an account, so disabling an admin leaves the
provider's tokens working.

Provider admins disable and enable other admins of their provider on the admin
pages. Operators do the same there for the provider they act for, and for any
account with `hpass-bridge account disable|enable`.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from badge_engine.db import utcnow
from badge_engine.models import Provider
from lti_tool.accounts import (
    Account,
    AccountRole,
    AccountToken,
    TokenPurpose,
    end_account_sessions,
    normalize_email,
    record_audit,
)
from lti_tool.logs import get_logger
from lti_tool.lti.registration_links import revoke_registration_link
from lti_tool.models import RegistrationLink
from lti_tool.operations import ActionError

log = get_logger(__name__)

REASON_MAX = 500


class OwnAccount(ActionError):
    """An admin tried to disable the account they are signed in with."""

    code = "own_account"


class LastEnabledAdmin(ActionError):
    """Disabling the account would leave its provider without an enabled admin."""

    code = "last_enabled_admin"


@dataclass(frozen=True)
class DisableOutcome:
    """Result of `disable_account`: whether the account changed, how many pending
    invitations it had sent were withdrawn and how many open registration links it
    had created were revoked."""

    changed: bool
    invitations_withdrawn: int = 0
    registration_links_revoked: int = 0


def enabled_admin_count(session: Session, provider_id: int) -> int:
    return session.scalar(
        select(func.count(Account.id)).where(
            Account.provider_id == provider_id,
            Account.role == AccountRole.PROVIDER_ADMIN.value,
            Account.disabled_at.is_(None),
        )
    )


def disable_account(
    session: Session,
    account: Account,
    *,
    actor: str,
    acting_account: Account | None = None,
    reason: str | None = None,
    now: datetime | None = None,
) -> DisableOutcome:
    """Disable `account`, end its sessions, withdraw its pending invitations and
    revoke its open registration links.

    `acting_account` is the signed-in account that disables from the admin pages,
    or None for the command line. An acting account cannot disable itself
    (`OwnAccount`) nor a provider's last enabled admin (`LastEnabledAdmin`), so a
    provider always keeps an admin who can enable the others again. The command
    line has neither rule, because an operator at the host can always enable the
    account again. A `reason` longer than `REASON_MAX` characters is cut to it;
    the page and the CLI refuse one first.
    An account that is already disabled is left as it is, with
    `DisableOutcome.changed` False. The caller commits.
    """
    if account.is_disabled:
        return DisableOutcome(changed=False)
    if acting_account is not None:
        _check_may_disable(session, account, acting_account)

    now = now or utcnow()
    account.disabled_at = now
    end_account_sessions(session, account)
    withdrawn = withdraw_invitations_sent_by(session, account, actor=actor, now=now)
    revoked = revoke_registration_links_created_by(
        session, account, actor=actor, now=now
    )
    detail = {
        "email": account.email,
        "invitations_withdrawn": withdrawn,
        "registration_links_revoked": revoked,
    }
    if reason:
        detail["reason"] = reason[:REASON_MAX]
    record_audit(
        session,
        provider_id=account.provider_id,
        actor=actor,
        action="account.disabled",
        target=f"account:{account.id}",
        detail=detail,
    )
    log.info(
        "account_disabled",
        account_id=account.id,
        provider_id=account.provider_id,
        actor=actor,
        invitations_withdrawn=withdrawn,
        registration_links_revoked=revoked,
    )
    return DisableOutcome(
        changed=True,
        invitations_withdrawn=withdrawn,
        registration_links_revoked=revoked,
    )


def withdraw_invitations_sent_by(
    session: Session, account: Account, *, actor: str, now: datetime | None = None
) -> int:
    """Withdraw the pending invitations that `account` created; return the count.

    Withdrawing deletes the row, as the invitation page's Withdraw button does. Each
    one gets an `invitation.withdrawn` audit event in its own provider. The
    rows are locked first, so on PostgreSQL an acceptance of one of them that is
    under way finishes before it is withdrawn, or finds the link gone. The caller
    commits.
    """
    now = now or utcnow()
    pending = session.scalars(
        select(AccountToken)
        .where(
            AccountToken.purpose == TokenPurpose.INVITATION.value,
            AccountToken.created_by_account_id == account.id,
            AccountToken.used_at.is_(None),
            AccountToken.expires_at > now,
        )
        .order_by(AccountToken.id)
        .with_for_update()
    ).all()
    _withdraw(session, pending, actor=actor, reason="inviter_disabled")

    return len(pending)


def _withdraw(
    session: Session, invitations: list[AccountToken], *, actor: str, reason: str
) -> None:
    """Delete locked pending invitations, with an audit event and a log line each."""
    for invitation in invitations:
        record_audit(
            session,
            provider_id=invitation.provider_id,
            actor=actor,
            action="invitation.withdrawn",
            target=f"email:{invitation.email}",
            detail={
                "invited_by": invitation.created_by_account_id,
                "withdrawn_because": reason,
            },
        )
        log.info(
            "invitation_withdrawn",
            provider_id=invitation.provider_id,
            invitation_id=invitation.id,
            inviter_account_id=invitation.created_by_account_id,
            actor=actor,
            reason=reason,
        )
        session.delete(invitation)
    session.flush()


def withdraw_pending_invitations_to(
    session: Session,
    *,
    provider_id: int,
    email: str,
    actor: str,
    now: datetime | None = None,
) -> int:
    """Withdraw the provider's pending invitations to `email`; return the count.

    The invitation page calls it before it issues a new invitation, so only the
    newest link to an address works in a provider. Invitations to the same address
    in other providers stay. `email` is compared after `normalize_email`, the form
    that `issue_token` stores. Each withdrawal deletes the row and gets an
    `invitation.withdrawn` audit event, with the same row lock as
    `withdraw_invitations_sent_by`. The caller commits.
    """
    now = now or utcnow()
    pending = session.scalars(
        select(AccountToken)
        .where(
            AccountToken.purpose == TokenPurpose.INVITATION.value,
            AccountToken.provider_id == provider_id,
            AccountToken.email == normalize_email(email),
            AccountToken.used_at.is_(None),
            AccountToken.expires_at > now,
        )
        .order_by(AccountToken.id)
        .with_for_update()
    ).all()
    _withdraw(session, pending, actor=actor, reason="replaced")

    return len(pending)


def revoke_registration_links_created_by(
    session: Session, account: Account, *, actor: str, now: datetime | None = None
) -> int:
    """Revoke the open registration links that `account` created; return the count.

    A link records its creator as the audit actor "account:<id>". A provider
    admin's links are looked for in its own provider only, and an operator's in
    every provider it created links for. Each link is revoked with the same
    conditional update as the Revoke button, so a link that a platform uses at the
    same moment ends up either used or revoked, never both, and only a revoked
    one is counted. Each revocation gets an `lti_registration.url_revoked` audit
    event in the link's provider. The caller commits.
    """
    now = now or utcnow()
    query = select(RegistrationLink.id, RegistrationLink.provider_id).where(
        RegistrationLink.created_by == f"account:{account.id}",
        RegistrationLink.used_at.is_(None),
        RegistrationLink.revoked_at.is_(None),
        RegistrationLink.expires_at > now,
    )
    if account.provider_id is not None:
        query = query.where(RegistrationLink.provider_id == account.provider_id)
    open_links = session.execute(query.order_by(RegistrationLink.id)).all()
    revoked = 0
    for link_id, provider_id in open_links:
        link = revoke_registration_link(
            session,
            provider_id=provider_id,
            link_id=link_id,
            actor=actor,
            because="creator_disabled",
            now=now,
        )
        if link is None:
            continue
        revoked += 1
        log.info(
            "registration_link_revoked",
            provider_id=provider_id,
            registration_link_id=link_id,
            creator_account_id=account.id,
            actor=actor,
        )
    session.flush()

    return revoked


def _check_may_disable(session: Session, account: Account, acting: Account) -> None:
    if account.id == acting.id:
        raise OwnAccount(
            f"account {account.email} is the signed-in account, so it cannot "
            "disable itself. Another admin of the provider or an HPass operator "
            "can disable it"
        )
    if account.provider_id is None:
        return

    # Two admins disabling each other at the same moment would both count the
    # other as still enabled. On PostgreSQL the row lock makes the second one wait
    # and count again. SQLite runs one write transaction at a time anyway.
    provider_row = select(Provider.id).where(Provider.id == account.provider_id)
    session.execute(provider_row.with_for_update())
    if enabled_admin_count(session, account.provider_id) <= 1:
        raise LastEnabledAdmin(
            f"account {account.email} is the last enabled admin of its provider, "
            "so it stays enabled. Invite or enable another admin first"
        )


def enable_account(session: Session, account: Account, *, actor: str) -> bool:
    """Enable a disabled account and record an audit event. The caller commits.

    Returns False, and changes nothing, when the account is already enabled. The
    account signs in again with its old password; sessions from before it was
    disabled stay ended.
    """
    if not account.is_disabled:
        return False

    account.disabled_at = None
    record_audit(
        session,
        provider_id=account.provider_id,
        actor=actor,
        action="account.enabled",
        target=f"account:{account.id}",
        detail={"email": account.email},
    )
    log.info(
        "account_enabled",
        account_id=account.id,
        provider_id=account.provider_id,
        actor=actor,
    )
    return True

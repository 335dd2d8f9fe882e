"""`hpass-bridge operator`: accounts of HPass operators, created from the command line.

The first operator account cannot be invited by anyone, so it is created here, and so
are further operators. Provider admins arrive by invitation links.
"""

from __future__ import annotations

import click

from lti_tool.cli import EXIT_INVALID_INPUT, emit, fail, json_option


def _prompt_new_password(email: str) -> str:
    """Ask for a password until one passes the rules and is typed the same twice.

    The rules are checked before the confirmation prompt, so a rejected password
    is not typed twice. The prompts go to stderr, so --json output stays one
    document. End of input aborts the command.
    """
    from lti_tool.accounts import PasswordRejected, check_new_password

    while True:
        password = click.prompt("Password", hide_input=True, err=True)
        try:
            check_new_password(password, email)
        except PasswordRejected as error:
            click.echo(f"error: {error}; type another password", err=True)
            continue
        repeated = click.prompt("Repeat for confirmation", hide_input=True, err=True)
        if repeated == password:
            return password
        click.echo("error: the two passwords differ; type the password again", err=True)


def _fail_if_account_exists(session, email: str, as_json: bool) -> None:
    from lti_tool.accounts import find_account

    if find_account(session, email) is not None:
        fail(
            f"an account for {email} already exists; reset its password from the "
            "sign-in page instead",
            as_json,
            code="account_exists",
        )


@click.group()
def operator() -> None:
    """Manage HPass operator accounts."""


@operator.command("create")
@click.option(
    "--email", required=True, help="The operator's email address (sign-in name)."
)
@click.option(
    "--password",
    help="The password (at least 12 characters); asked for twice when omitted.",
)
@click.option(
    "--locale",
    help="Language of the account's emails: en, fr, es or ar. When omitted, emails "
    "are in English until the operator signs in, which stores the page's language.",
)
@json_option
def create_operator(
    email: str, password: str | None, locale: str | None, as_json: bool
) -> None:
    """Create an HPass operator account that signs in with email and password."""
    from lti_tool.accounts import (
        AccountRole,
        InvalidEmail,
        PasswordRejected,
        check_email_address,
        create_account,
        record_audit,
        record_locale,
    )
    from lti_tool.app import create_app
    from lti_tool.cli import _instance_or_fail
    from lti_tool.i18n import LANGUAGES, supported_locale
    from lti_tool.operations import operating_system_actor

    try:
        check_email_address(email.strip())
    except InvalidEmail as error:
        fail(
            f"{email!r} is not an email address: {error}; pass --email "
            "name@example.org",
            as_json,
            code="invalid_email",
            exit_code=EXIT_INVALID_INPUT,
        )
    if locale is not None and supported_locale(locale) is None:
        fail(
            f"{locale!r} is not a supported language; pass --locale with one of "
            f"{', '.join(LANGUAGES)}",
            as_json,
            code="invalid_locale",
            exit_code=EXIT_INVALID_INPUT,
        )
    settings = _instance_or_fail(as_json)
    bridge = create_app(settings).extensions["hpass"]
    sign_in_url = settings.public_base_url.rstrip("/") + "/account/sign-in"
    # The address is checked before the password prompts, so a taken address
    # fails at once, and checked again below, because another process may create
    # the account while the password is typed.
    with bridge.session() as session:
        _fail_if_account_exists(session, email, as_json)
    if password is None:
        password = _prompt_new_password(email)
    with bridge.session() as session:
        _fail_if_account_exists(session, email, as_json)
        try:
            account = create_account(
                session,
                email=email,
                password=password,
                role=AccountRole.OPERATOR,
                provider_id=None,
            )
        except PasswordRejected as error:
            fail(
                f"{error}; run the command again",
                as_json,
                code="invalid_password",
                exit_code=EXIT_INVALID_INPUT,
            )
        record_locale(account, locale)
        record_audit(
            session,
            provider_id=None,
            actor=operating_system_actor(),
            action="account.created",
            target=f"account:{account.id}",
            detail={"role": account.role},
        )
        session.commit()
        emit(
            {
                "status": "ok",
                "account_id": account.id,
                "email": account.email,
                "locale": account.locale,
                "sign_in_url": sign_in_url,
            },
            as_json,
            f"operator account {account.email} created; sign in at {sign_in_url}",
        )


@click.group()
def account() -> None:
    """Disable and enable the accounts of provider admins and HPass operators."""


def _account_or_fail(session, email: str):
    from lti_tool.accounts import find_account
    from lti_tool.operations import NotFound

    found = find_account(session, email)
    if found is None:
        raise NotFound(
            f"no account has the email {email!r}. Check the address the person "
            "signs in with",
            code="account_not_found",
        )
    return found


def _account_result(found, changed: bool, **extra) -> dict:
    return {
        "status": "disabled" if found.is_disabled else "enabled",
        "changed": changed,
        "account_id": found.id,
        "email": found.email,
        "role": found.role,
        "provider_id": found.provider_id,
        **extra,
    }


def _withdrawn_text(count: int) -> str:
    if count == 1:
        return "1 pending invitation it sent was withdrawn"
    return f"{count} pending invitations it sent were withdrawn"


def _links_revoked_text(count: int) -> str:
    if count == 1:
        return "1 open registration link it created was revoked"
    return f"{count} open registration links it created were revoked"


@account.command("disable")
@click.argument("email")
@click.option("--reason", help="Why the account is disabled, stored in the audit log.")
@json_option
def disable_account_command(email: str, reason: str | None, as_json: bool) -> None:
    """Disable the account EMAIL, which then cannot sign in. Its sessions end at once.

    The pending invitations the account sent are withdrawn, so their links no longer
    work, and the open LTI Dynamic Registration links it created are revoked. The
    provider's API tokens are not tied to an account and keep working. Revoke
    them with `hpass-bridge api-token revoke` when needed.
    """
    from lti_tool.account_access import REASON_MAX, disable_account
    from lti_tool.cli_support import operator_session
    from lti_tool.operations import InvalidInput

    with operator_session(as_json) as op:
        if reason is not None and len(reason) > REASON_MAX:
            # The admin page refuses it too, rather than storing a cut reason.
            raise InvalidInput(
                f"the reason is {len(reason)} characters long, more than the "
                f"{REASON_MAX} the audit log keeps; shorten it and run the command "
                "again",
                code="reason_too_long",
            )
        found = _account_or_fail(op.session, email)
        outcome = disable_account(op.session, found, actor=op.actor, reason=reason)
        op.session.commit()
        result = _account_result(
            found,
            outcome.changed,
            invitations_withdrawn=outcome.invitations_withdrawn,
            registration_links_revoked=outcome.registration_links_revoked,
        )
    text = (
        f"account {result['email']} disabled; its sessions have ended, "
        f"{_withdrawn_text(outcome.invitations_withdrawn)} and "
        f"{_links_revoked_text(outcome.registration_links_revoked)}"
        if outcome.changed
        else f"account {result['email']} was already disabled; nothing changed"
    )
    emit(result, as_json, text)


@account.command("enable")
@click.argument("email")
@json_option
def enable_account_command(email: str, as_json: bool) -> None:
    """Enable the disabled account EMAIL, which signs in with its old password."""
    from lti_tool.account_access import enable_account
    from lti_tool.cli_support import operator_session

    with operator_session(as_json) as op:
        found = _account_or_fail(op.session, email)
        changed = enable_account(op.session, found, actor=op.actor)
        op.session.commit()
        result = _account_result(found, changed)
    text = (
        f"account {result['email']} enabled; it can sign in again"
        if changed
        else f"account {result['email']} was already enabled; nothing changed"
    )
    emit(result, as_json, text)

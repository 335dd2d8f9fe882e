"""`hpass-bridge operator`: accounts of HPass operators, created from the command line.

The first operator account cannot be invited by anyone, so it is created here, and so
are further operators. Provider admins arrive by invitation links.
"""

from __future__ import annotations

import click

from lti_tool.cli import EXIT_INVALID_INPUT, emit, fail, json_option


@click.group()
def operator() -> None:
    """Manage HPass operator accounts."""


@operator.command("create")
@click.option("--email", required=True, help="The operator's email address (sign-in name).")
@click.password_option(
    "--password",
    help="The password (at least 12 characters); asked for twice when omitted.",
)
@json_option
def create_operator(email: str, password: str, as_json: bool) -> None:
    """Create an HPass operator account that signs in with email and password."""
    from lti_tool.accounts import (
        AccountRole,
        InvalidEmail,
        PasswordRejected,
        check_email_address,
        create_account,
        find_account,
        record_audit,
    )
    from lti_tool.app import create_app
    from lti_tool.cli import _instance_or_fail
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
    settings = _instance_or_fail(as_json)
    bridge = create_app(settings).extensions["hpass"]
    sign_in_url = settings.public_base_url.rstrip("/") + "/account/sign-in"
    with bridge.session() as session:
        if find_account(session, email) is not None:
            fail(
                f"an account for {email} already exists; reset its password from the "
                "sign-in page instead",
                as_json,
                code="account_exists",
            )
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
                "sign_in_url": sign_in_url,
            },
            as_json,
            f"operator account {account.email} created; sign in at {sign_in_url}",
        )

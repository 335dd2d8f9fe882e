"""Sign-in for provider admins and HPass operators: password, invitations, resets.

A signed-in session ends after `IDLE_MINUTES` without a request or `MAX_HOURS` after
sign-in, whichever comes first. These pages may never be framed.
"""

from __future__ import annotations

from datetime import datetime

from flask import (
    Blueprint,
    Response,
    g,
    redirect,
    render_template,
    request,
    url_for,
)

from sqlalchemy.exc import IntegrityError

from badge_engine.db import utcnow
from badge_engine.models import Provider
from lti_tool.account_mail import queue_password_reset
from lti_tool.accounts import (
    LOCKOUT_MINUTES,
    MAX_FAILED_SIGN_INS,
    Account,
    AccountRole,
    PasswordRejected,
    TokenPurpose,
    authenticate,
    check_new_password,
    claim_token,
    create_account,
    end_account_sessions,
    find_account,
    find_usable_token,
    normalize_email,
    record_audit,
    record_locale,
    set_password,
)
from lti_tool.bridge import db_session
from lti_tool.i18n import chosen_locale, current_locale, language_choice
from lti_tool.i18n import gettext as _
from lti_tool.logs import get_logger
from lti_tool.urls_for import base_url
from lti_tool.views.account_session import account_session, reset_account_session
from lti_tool.views.headers import forbid_framing
from lti_tool.views.pages import check_csrf

bp = Blueprint("auth", __name__, url_prefix="/account")
log = get_logger(__name__)

IDLE_MINUTES = 30
MAX_HOURS = 12
EMAIL_MAX = 320


@bp.after_request
def _no_framing(response: Response) -> Response:
    return forbid_framing(response)


def _timestamp(now: datetime) -> float:
    return now.timestamp()


def start_account_session(account: Account) -> None:
    """Sign `account` in with a new account session; a course session stays."""
    now = utcnow()
    session = reset_account_session()
    session.update(
        account_id=account.id,
        account_generation=account.session_generation,
        account_started=_timestamp(now),
        account_seen=_timestamp(now),
    )


def signed_in_account() -> Account | None:
    """Return the session's account, or None when absent, expired or ended.

    A session ends when its account's session generation has moved on since sign-in
    (a sign-out, password change or reset elsewhere, see `end_account_sessions`),
    or the account is disabled or gone. Such a session is cleared like an expired
    one, so the next page requests the password again.
    """
    if "account" in g:
        return g.account
    account = None
    session = account_session()
    account_id = session.get("account_id")
    if account_id is not None:
        now = _timestamp(utcnow())
        started = session.get("account_started", 0)
        seen = session.get("account_seen", 0)
        expired = now - seen > IDLE_MINUTES * 60 or now - started > MAX_HOURS * 3600
        if not expired:
            account = db_session().get(Account, account_id)
            generation = session.get("account_generation")
            if (
                account is None
                or account.is_disabled
                or generation != account.session_generation
            ):
                log.info("account_session_ended", account_id=account_id)
                account = None
                expired = True
        if expired:
            reset_account_session()
            g.session_expired = True
        else:
            session["account_seen"] = now
    g.account = account
    return account


def record_language_choice(account: Account) -> None:
    """Store and audit the language that the signed-in holder picks with the switcher.

    Only a request with a supported `?lang=` is a pick, and it writes only when the
    language differs from the stored one, so other page views write nothing. The
    event is in the holder's provider, or in no provider for an operator, as a
    password change is.
    """
    if language_choice() is None:
        return
    previous = account.locale
    if not record_locale(account, current_locale()):
        return

    db = db_session()
    detail = {"locale": account.locale}
    if previous is not None:
        detail["previous_locale"] = previous
    record_audit(
        db,
        provider_id=account.provider_id,
        actor=f"account:{account.id}",
        action="account.language_changed",
        target=f"account:{account.id}",
        detail=detail,
    )
    db.commit()
    log.info("account_locale_changed", account_id=account.id, locale=account.locale)


def _sign_in_page(
    form: dict,
    errors: dict,
    status: int = 200,
    message: str = "",
    confirms_sign_out: bool = False,
):
    page = render_template(
        "auth/sign_in.html",
        form=form,
        errors=errors,
        message=message,
        confirms_sign_out=confirms_sign_out,
    )
    return page, status


@bp.get("/sign-in")
def sign_in_form():
    message = ""
    confirms_sign_out = False
    if request.args.get("expired"):
        message = _("Your session ended. Sign in again to continue.")
    elif request.args.get("signed_out"):
        message = _(
            "You are signed out. Sessions of this account in other browsers and on "
            "other devices have ended too."
        )
        confirms_sign_out = True
    return _sign_in_page({}, {}, message=message, confirms_sign_out=confirms_sign_out)


@bp.post("/sign-in")
def sign_in():
    check_csrf()
    email = (request.form.get("email") or "").strip()
    password = request.form.get("password") or ""
    form = {"email": email}
    errors = {}
    if not email:
        errors["email"] = _("Enter your email address.")
    if not password:
        errors["password"] = _("Enter your password.")
    if errors:
        return _sign_in_page(form, errors, 400)

    db = db_session()
    account, outcome = authenticate(db, email[:EMAIL_MAX], password[:1024])
    if outcome == "ok":
        # The sign-in updates the row anyway, so this adds no separate write.
        record_locale(account, chosen_locale())
    db.commit()
    if outcome == "disabled":
        # Only the right password gets here, so this message reveals nothing to
        # someone guessing passwords.
        log.info("sign_in_disabled", account_id=account.id)
        errors["email"] = disabled_account_message(account)
        return _sign_in_page(form, errors, 403)
    if outcome != "ok":
        if outcome == "locked":
            log.warning("sign_in_locked", account_id=account.id)
        else:
            log.info("sign_in_failed", account_id=account and account.id)
        # One message for an unknown email, a wrong password and a locked account,
        # because only real accounts lock, so a separate lockout message would tell
        # a guesser which emails have accounts.
        errors["password"] = " ".join(
            (
                _("The email or password is wrong. Check both and try again."),
                _(
                    "After %(count)s wrong passwords an account is locked for "
                    "%(minutes)s minutes; reset your password if you cannot wait.",
                    count=MAX_FAILED_SIGN_INS,
                    minutes=LOCKOUT_MINUTES,
                ),
            )
        )
        return _sign_in_page(form, errors, 401)

    start_account_session(account)
    log.info("sign_in_succeeded", account_id=account.id)
    return redirect(url_for("admin.dashboard"), code=303)


def disabled_account_message(account: Account) -> str:
    if account.is_operator:
        return _(
            "This account is disabled, so it cannot sign in. Ask another HPass "
            "operator to enable it again."
        )
    return _(
        "This account is disabled, so it cannot sign in. Ask an admin of your "
        "provider to enable it again."
    )


@bp.post("/sign-out")
def sign_out():
    """End this account session and every other session of its account.

    A course launched in the same browser keeps its own session.

    Clearing the cookie alone would leave a copy of it (taken from a shared computer
    or a proxy log) valid until it expires, so the account's session generation moves
    on instead.
    """
    check_csrf()
    account = signed_in_account()
    reset_account_session()
    if account is None:
        return redirect(url_for("auth.sign_in_form"), code=303)

    db = db_session()
    end_account_sessions(db, account)
    db.commit()
    log.info("signed_out", account_id=account.id)
    return redirect(url_for("auth.sign_in_form", signed_out=1), code=303)


def _password_errors(email: str) -> tuple[str, dict]:
    password = request.form.get("password") or ""
    repeated = request.form.get("password_repeat") or ""
    errors = {}
    try:
        check_new_password(password, email)
    except PasswordRejected as error:
        errors["password"] = _(
            "The password was not accepted: %(reason)s.", reason=str(error)
        )
    if not errors and password != repeated:
        errors["password_repeat"] = _("The two passwords differ. Type the same twice.")
    return password, errors


def _set_password_page(token_row, errors: dict, status: int, purpose: TokenPurpose):
    provider = (
        db_session().get(Provider, token_row.provider_id)
        if token_row.provider_id is not None
        else None
    )
    return (
        render_template(
            "auth/set_password.html",
            email=token_row.email,
            errors=errors,
            invitation=purpose is TokenPurpose.INVITATION,
            provider_name=provider.name if provider else None,
        ),
        status,
    )


def _link_expired_page():
    return (
        render_template("auth/link_expired.html"),
        404,
    )


def _disabled_account_page(account: Account):
    return (
        render_template(
            "auth/link_expired.html", message=disabled_account_message(account)
        ),
        403,
    )


def _disabled_inviter(invitation) -> Account | None:
    """Return the invitation's inviter when that account is disabled, else None.

    Disabling an account withdraws its pending invitations, but one can still be
    pending: its inviter was disabled before disabling withdrew invitations, or the
    inviter's invitation request was still running when the disable committed.
    """
    if invitation.created_by_account_id is None:
        return None
    inviter = db_session().get(Account, invitation.created_by_account_id)
    if inviter is None or not inviter.is_disabled:
        return None
    return inviter


def _disabled_inviter_page(invitation, inviter: Account):
    log.warning(
        "invitation_rejected_inviter_disabled",
        invitation_id=invitation.id,
        provider_id=invitation.provider_id,
        inviter_account_id=inviter.id,
    )
    message = _(
        "This invitation was sent by an account that has since been disabled, so it "
        "no longer works. Ask an admin of the provider to send you a new invitation."
    )
    return (
        render_template("auth/link_expired.html", message=message),
        403,
    )


def _token_form(token: str, purpose: TokenPurpose):
    """Show the set-password form of a usable token, or the expired-link page."""
    db = db_session()
    row = find_usable_token(db, token, purpose)
    if row is None:
        return _link_expired_page()
    if purpose is TokenPurpose.PASSWORD_RESET:
        account = db.get(Account, row.account_id)
        if account is not None and account.is_disabled:
            return _disabled_account_page(account)
    if purpose is TokenPurpose.INVITATION:
        inviter = _disabled_inviter(row)
        if inviter is not None:
            return _disabled_inviter_page(row, inviter)
    return _set_password_page(row, {}, 200, purpose)


@bp.get("/invitation/<token>")
def invitation_form(token: str):
    return _token_form(token, TokenPurpose.INVITATION)


@bp.post("/invitation/<token>")
def accept_invitation(token: str):
    check_csrf()
    db = db_session()
    # The lock makes a disable that withdraws this invitation wait for the
    # acceptance, or the acceptance wait and then find the link gone.
    row = find_usable_token(db, token, TokenPurpose.INVITATION, for_update=True)
    if row is None:
        return _link_expired_page()
    inviter = _disabled_inviter(row)
    if inviter is not None:
        return _disabled_inviter_page(row, inviter)
    password, errors = _password_errors(row.email)
    if find_account(db, row.email) is not None:
        errors["password"] = _(
            "An account with this email already exists. Sign in, or reset its password."
        )
    if errors:
        return _set_password_page(row, errors, 400, TokenPurpose.INVITATION)

    # The link is claimed before the account is created, so only one of several
    # requests that accept it at once goes on. The others get the used-link page
    # and write nothing. On SQLite the row lock above does nothing.
    now = utcnow()
    if not claim_token(db, row, now):
        db.rollback()
        log.info(
            "invitation_already_used",
            invitation_id=row.id,
            provider_id=row.provider_id,
        )
        return _link_expired_page()
    try:
        account = create_account(
            db,
            email=row.email,
            password=password,
            role=AccountRole(row.role),
            provider_id=row.provider_id,
        )
    except IntegrityError as error:
        # An account with this email was stored after the check above, by an
        # acceptance of another invitation to the same address.
        db.rollback()
        log.warning(
            "invitation_rejected_email_taken",
            invitation_id=row.id,
            provider_id=row.provider_id,
            error=str(error.orig),
        )
        return _link_expired_page()
    # Accepting signs the new account in below, so this is its first sign-in.
    account.last_sign_in_at = now
    record_locale(account, chosen_locale())
    record_audit(
        db,
        provider_id=row.provider_id,
        actor=f"account:{account.id}",
        action="account.created",
        target=f"account:{account.id}",
        detail={"role": account.role, "invited_by": row.created_by_account_id},
    )
    db.commit()
    start_account_session(account)

    return redirect(url_for("admin.dashboard"), code=303)


@bp.get("/reset")
def reset_request_form():
    return render_template("auth/reset_request.html", form={}, errors={}, sent=False)


@bp.post("/reset")
def request_reset():
    check_csrf()
    email = (request.form.get("email") or "").strip()
    if not email or "@" not in email or len(email) > EMAIL_MAX:
        errors = {"email": _("Enter the email address of your account.")}
        return (
            render_template(
                "auth/reset_request.html",
                form={"email": email},
                errors=errors,
                sent=False,
            ),
            400,
        )
    db = db_session()
    account = find_account(db, email)
    if account is not None and account.is_disabled:
        log.info("password_reset_skipped_disabled", account_id=account.id)
    elif account is not None:
        queue_password_reset(account.id, chosen_locale())
        log.info("password_reset_queued", account_id=account.id)
    # The same page either way, so the form does not reveal which emails exist.
    return render_template(
        "auth/reset_request.html",
        form={"email": normalize_email(email)},
        errors={},
        sent=True,
    )


@bp.get("/reset/<token>")
def reset_form(token: str):
    return _token_form(token, TokenPurpose.PASSWORD_RESET)


@bp.post("/reset/<token>")
def reset_password(token: str):
    check_csrf()
    db = db_session()
    row = find_usable_token(db, token, TokenPurpose.PASSWORD_RESET)
    if row is None:
        return _link_expired_page()
    account = db.get(Account, row.account_id)
    if account is None:
        return _link_expired_page()
    # A link sent before the account was disabled must not start a session.
    if account.is_disabled:
        return _disabled_account_page(account)
    password, errors = _password_errors(row.email)
    if errors:
        return _set_password_page(row, errors, 400, TokenPurpose.PASSWORD_RESET)

    set_password(db, account, password)
    row.used_at = utcnow()
    # A reset signs the account in below, as a sign-in with the password does.
    account.last_sign_in_at = row.used_at
    record_locale(account, chosen_locale())
    record_audit(
        db,
        provider_id=account.provider_id,
        actor=f"account:{account.id}",
        action="account.password_reset",
        target=f"account:{account.id}",
    )
    db.commit()
    start_account_session(account)

    return redirect(url_for("admin.dashboard"), code=303)


def invitation_link(token: str) -> str:
    return base_url() + url_for("auth.invitation_form", token=token)

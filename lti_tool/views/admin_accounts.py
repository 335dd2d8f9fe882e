"""Account pages behind the sign-in: changing one's own password, and the list of a
provider's admin accounts where admins disable and enable each other.

A password change ends every other session of the account, as a reset does, and
keeps the session that made it. A wrong current password counts towards the same
lockout as a wrong password at sign-in.
"""

from __future__ import annotations

from flask import (
    Blueprint,
    Response,
    redirect,
    render_template,
    request,
    url_for,
)
from sqlalchemy import select

from badge_engine.models import Provider

from lti_tool.account_access import (
    REASON_MAX,
    LastEnabledAdmin,
    OwnAccount,
    disable_account,
    enable_account,
)
from lti_tool.accounts import (
    LOCKOUT_MINUTES,
    MAX_FAILED_SIGN_INS,
    Account,
    AccountRole,
    PasswordRejected,
    check_new_password,
    record_audit,
    set_password,
    verify_password,
)
from lti_tool.bridge import db_session
from lti_tool.errors import NotFound
from lti_tool.i18n import gettext as _
from lti_tool.i18n import gettext_html, isolate_ltr
from lti_tool.logs import get_logger
from lti_tool.row_ids import parse_row_id
from lti_tool.views.account_session import account_session
from lti_tool.views.admin import (
    _provider_or_pick,
    account_required,
    current_provider_id,
)
from lti_tool.views.headers import forbid_framing
from lti_tool.views.pages import check_csrf

bp = Blueprint("accounts", __name__)
log = get_logger(__name__)

# Longer current-password input is cut before hashing, as at sign-in. New
# passwords are checked against `PASSWORD_MAX` by `check_new_password`.
PASSWORD_INPUT_MAX = 1024


@bp.after_request
def _no_framing(response: Response) -> Response:
    return forbid_framing(response)


def _actor(account: Account) -> str:
    return f"account:{account.id}"


def _current_provider(account: Account) -> Provider | None:
    provider_id = current_provider_id(account)
    if provider_id is None:
        return None
    return db_session().get(Provider, provider_id)


def _password_page(account: Account, errors: dict, status: int = 200, changed=False):
    return (
        render_template(
            "admin/password.html",
            account=account,
            provider=_current_provider(account),
            errors=errors,
            changed=changed,
        ),
        status,
    )


@bp.get("/account/password")
@account_required
def password_form(account: Account):
    return _password_page(account, {}, changed=bool(request.args.get("changed")))


@bp.post("/account/password")
@account_required
def change_password(account: Account):
    check_csrf()
    current = (request.form.get("current_password") or "")[:PASSWORD_INPUT_MAX]
    new = request.form.get("password") or ""
    repeated = request.form.get("password_repeat") or ""
    db = db_session()

    errors = {}
    current_ok = False
    if not current:
        errors["current_password"] = _("Enter your current password.")
    else:
        outcome = verify_password(account, current)
        # A wrong password raised the lockout counter, which must be kept.
        db.commit()
        current_ok = outcome == "ok"
        if outcome == "locked":
            log.warning("password_change_locked", account_id=account.id)
            errors["current_password"] = _(
                "This account is locked for up to %(minutes)s minutes after "
                "%(count)s wrong passwords in a row, so the password was not "
                "changed. Try again later, or sign out and reset the password by "
                "email.",
                minutes=LOCKOUT_MINUTES,
                count=MAX_FAILED_SIGN_INS,
            )
        elif outcome == "wrong_password":
            log.info("password_change_wrong_password", account_id=account.id)
            errors["current_password"] = _(
                "The current password is wrong. After %(count)s wrong passwords in "
                "a row the account is locked for %(minutes)s minutes.",
                count=MAX_FAILED_SIGN_INS,
                minutes=LOCKOUT_MINUTES,
            )
    errors.update(_new_password_errors(account, new, repeated))
    if current_ok and not errors and new == current:
        errors["password"] = _(
            "The new password is the same as the current one. Choose a different "
            "password."
        )
    if errors:
        return _password_page(account, errors, 400)

    set_password(db, account, new)
    record_audit(
        db,
        provider_id=account.provider_id,
        actor=_actor(account),
        action="account.password_changed",
        target=f"account:{account.id}",
    )
    db.commit()
    # Every session of the account ended with the change; this one carries on
    # under the new generation.
    account_session()["account_generation"] = account.session_generation
    log.info("password_changed", account_id=account.id)
    return redirect(url_for("accounts.password_form", changed=1), code=303)


def _new_password_errors(account: Account, new: str, repeated: str) -> dict:
    if not new:
        return {"password": _("Enter the new password.")}
    try:
        check_new_password(new, account.email)
    except PasswordRejected as error:
        return {
            "password": _(
                "The password was not accepted: %(reason)s.", reason=str(error)
            )
        }
    if new != repeated:
        return {"password_repeat": _("The two passwords differ. Type the same twice.")}
    return {}


def _accounts_page(
    account: Account,
    provider,
    status: int = 200,
    *,
    form: dict | None = None,
    errors: dict | None = None,
    error_labels: dict | None = None,
    **notices,
):
    admins = (
        db_session()
        .scalars(
            select(Account)
            .where(
                Account.provider_id == provider.id,
                Account.role == AccountRole.PROVIDER_ADMIN.value,
            )
            .order_by(Account.email)
        )
        .all()
    )
    return (
        render_template(
            "admin/accounts.html",
            account=account,
            provider=provider,
            admins=admins,
            reason_max=REASON_MAX,
            form=form or {},
            errors=errors or {},
            error_labels=error_labels or {},
            **notices,
        ),
        status,
    )


def _provider_admin(provider, account_id: int) -> Account | None:
    return db_session().scalar(
        select(Account).where(
            Account.id == account_id,
            Account.provider_id == provider.id,
            Account.role == AccountRole.PROVIDER_ADMIN.value,
        )
    )


def _own_admin_or_404(provider, account_id: int) -> Account:
    """Return the provider's admin account with this id, or raise a 404.

    Unknown ids, operator accounts and other providers' admins get the same
    response, so the page does not reveal which accounts exist elsewhere.
    """
    target = _provider_admin(provider, account_id)
    if target is None:
        raise NotFound(
            "the provider has no admin account with this id",
            shown_message=_(
                "This provider has no admin account number %(number)s. Nothing was "
                "changed; go back to the list of admin accounts.",
                number=account_id,
            ),
            back_link=(url_for("accounts.account_list"), _("Back to admin accounts")),
            provider_id=provider.id,
            target_account_id=account_id,
        )
    return target


@bp.get("/admin/accounts")
@account_required
def account_list(account: Account):
    provider = _provider_or_pick(account)
    notices = {}
    for name in ("disabled", "enabled"):
        # An id that is not a row id gets no notice, as an unknown id does.
        changed_id = parse_row_id(request.args.get(name))
        if changed_id is not None:
            notices[name] = _provider_admin(provider, changed_id)
    for name in ("withdrawn", "links_revoked"):
        # Counts are parsed as ids are: whole numbers within the row id range.
        count = parse_row_id(request.args.get(name))
        if count is not None:
            notices[name] = count
    return _accounts_page(account, provider, **notices)


@bp.post("/admin/accounts/<int:admin_account_id>/disable")
@account_required
def disable(account: Account, admin_account_id: int):
    check_csrf()
    provider = _provider_or_pick(account)
    target = _own_admin_or_404(provider, admin_account_id)
    reason = (request.form.get("reason") or "").strip()
    if len(reason) > REASON_MAX:
        return _reason_too_long_page(account, provider, target, reason)
    db = db_session()
    try:
        outcome = disable_account(
            db,
            target,
            actor=_actor(account),
            acting_account=account,
            reason=reason or None,
        )
    except OwnAccount as error:
        db.rollback()
        _log_rejected(error, provider, account)
        problem = _(
            "You cannot disable the account you are signed in with. Another admin "
            "of the provider, or an HPass operator, can disable it."
        )
        return _accounts_page(account, provider, 409, problem=problem)
    except LastEnabledAdmin as error:
        db.rollback()
        _log_rejected(error, provider, account)
        problem = gettext_html(
            "%(email)s is the last enabled admin of this provider, so it stays "
            "enabled. Invite or enable another admin first.",
            email=isolate_ltr(target.email),
        )
        return _accounts_page(account, provider, 409, problem=problem)
    db.commit()
    return redirect(
        url_for(
            "accounts.account_list",
            disabled=target.id,
            withdrawn=outcome.invitations_withdrawn,
            links_revoked=outcome.registration_links_revoked,
        ),
        code=303,
    )


def _reason_too_long_page(account: Account, provider, target: Account, reason: str):
    """Show the list again with the reason kept in its field and the error beside it."""
    log.info(
        "request_rejected",
        status=400,
        code="reason_too_long",
        reason_length=len(reason),
        provider_id=provider.id,
        account_id=account.id,
        target_account_id=target.id,
    )
    field = f"reason-{target.id}"
    message = _(
        "The reason has %(count)s characters, more than the maximum of %(max)s. "
        "Shorten it, then disable the account again.",
        count=len(reason),
        max=REASON_MAX,
    )
    label = gettext_html(
        "Reason for disabling %(email)s", email=isolate_ltr(target.email)
    )
    return _accounts_page(
        account,
        provider,
        400,
        form={field: reason},
        errors={field: message},
        error_labels={field: label},
    )


def _log_rejected(error, provider, account: Account) -> None:
    log.warning(
        "request_rejected",
        status=409,
        code=error.code,
        reason=error.message,
        provider_id=provider.id,
        account_id=account.id,
    )


@bp.post("/admin/accounts/<int:admin_account_id>/enable")
@account_required
def enable(account: Account, admin_account_id: int):
    check_csrf()
    provider = _provider_or_pick(account)
    target = _own_admin_or_404(provider, admin_account_id)
    db = db_session()
    enable_account(db, target, actor=_actor(account))
    db.commit()
    return redirect(url_for("accounts.account_list", enabled=target.id), code=303)

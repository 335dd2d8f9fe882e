"""Pages for provider admins and HPass operators, behind an account sign-in.

A provider admin works on their own provider. An operator first picks a provider on
the dashboard and then sees the same pages for it. Every query is scoped by
`current_provider_id()`, so an id that belongs to another provider is a 404.
"""

from __future__ import annotations

import secrets
from functools import wraps
from urllib.parse import urlsplit

from flask import (
    Blueprint,
    Response,
    abort,
    g,
    redirect,
    render_template,
    request,
    url_for,
)
from markupsafe import Markup
from sqlalchemy import func, or_, select
from sqlalchemy.orm import selectinload

from badge_engine.db import utcnow
from badge_engine.models import Provider
from badge_engine.outbound import (
    OutboundBlocked,
    OutboundConnectionFailed,
    redact_url,
)
from badge_engine.outbox import OutboxMessage, OutboxStatus
from connectors.contacts import last_contact_outcome, record_success
from connectors.hpass.models import DeliveryStatus
from connectors.models import ConnectionState, ContactSource, LmsConnection, LmsKind
from lti_tool.accounts import (
    Account,
    AccountRole,
    AccountToken,
    InvalidEmail,
    TokenPurpose,
    check_email_address,
    find_account,
    find_usable_token,
    issue_token,
    normalize_email,
    record_audit,
)
from lti_tool.account_access import withdraw_pending_invitations_to
from lti_tool.account_mail import queue_invitation_notice
from lti_tool.bridge import current_bridge, db_session
from lti_tool.errors import BadRequest, NotFound, admin_dashboard_link
from lti_tool import i18n
from lti_tool.i18n import gettext as _
from lti_tool.logs import get_logger
from lti_tool.lti.registrations import create_registration, provider_registration
from lti_tool.models import Registration
from lti_tool.operations import ActionError
from lti_tool.operations.lms import (
    LMS_URL_BLOCKED,
    LMS_URL_NOT_PUBLIC_HTTPS,
    LMS_URL_QUERY,
    InvalidLmsUrl,
    check_lms_url,
    connection_status,
    connection_usage,
    connection_webhook_url,
    disconnect_connection,
    find_same_site,
    issue_webhook_secret,
    run_connection_test,
    site_not_connected_on_insert,
)
from lti_tool.row_ids import parse_row_id, shortened
from lti_tool.tasks import dispatch
from lti_tool.urls_for import base_url, launch_url_of, lti_jwks_url, lti_login_url
from lti_tool.views.account_session import account_session
from lti_tool.views.auth import (
    invitation_link,
    record_language_choice,
    signed_in_account,
)
from lti_tool.views.failed_deliveries import FailedRow, failed_rows
from lti_tool.views.field_errors import FieldError
from lti_tool.views.headers import forbid_framing
from lti_tool.views.pages import check_csrf

bp = Blueprint("admin", __name__, url_prefix="/admin")
log = get_logger(__name__)

PAGE_SIZE = 50
URL_MAX = 500
# Longest DNS host name, in characters written without the trailing dot.
HOST_NAME_MAX = 253
NAME_MAX = 200


@bp.after_request
def _no_framing(response: Response) -> Response:
    return forbid_framing(response)


def account_required(view):
    @wraps(view)
    def wrapper(*args, **kwargs):
        account = signed_in_account()
        if account is None:
            expired = "1" if g.get("session_expired") else None
            return redirect(url_for("auth.sign_in_form", expired=expired), code=303)
        record_language_choice(account)
        return view(account, *args, **kwargs)

    return wrapper


def current_provider_id(account: Account) -> int | None:
    if account.is_operator:
        return account_session().get("acting_provider_id")
    return account.provider_id


def _provider_or_pick(account: Account) -> Provider:
    provider_id = current_provider_id(account)
    if provider_id is None:
        abort(redirect(url_for("admin.dashboard"), code=303))
    provider = db_session().get(Provider, provider_id)
    if provider is None:
        # An operator's chosen provider, or an admin's own, was deleted meanwhile.
        raise NotFound(
            "the provider this session works on no longer exists",
            shown_message=_(
                "The provider you were working on no longer exists on the bridge. "
                "Go back to the admin overview and choose another provider."
            ),
            back_link=admin_dashboard_link(),
            provider_id=provider_id,
        )
    return provider


def _actor(account: Account) -> str:
    return f"account:{account.id}"


@bp.get("/")
@account_required
def dashboard(account: Account):
    db = db_session()
    provider_id = current_provider_id(account)
    providers = []
    if account.is_operator:
        providers = list(db.scalars(select(Provider).order_by(Provider.name)))
    provider = db.get(Provider, provider_id) if provider_id is not None else None
    summary = {}
    if provider is not None:
        summary = {
            "connections": db.scalar(
                select(func.count(LmsConnection.id)).where(
                    LmsConnection.provider_id == provider.id,
                    LmsConnection.state != ConnectionState.DISCONNECTED.value,
                )
            ),
            "registrations": db.scalar(
                select(func.count(Registration.id)).where(
                    Registration.provider_id == provider.id
                )
            ),
            "dead": db.scalar(
                select(func.count(OutboxMessage.id)).where(
                    OutboxMessage.provider_id == provider.id,
                    OutboxMessage.status == OutboxStatus.DEAD.value,
                )
            ),
        }
    return render_template(
        "admin/dashboard.html",
        account=account,
        provider=provider,
        providers=providers,
        summary=summary,
    )


@bp.post("/provider")
@account_required
def pick_provider(account: Account):
    check_csrf()
    if not account.is_operator:
        raise NotFound(
            "only operators choose a provider",
            shown_message=_(
                "Only HPass operators choose a provider. Your account works on its "
                "own provider; go back to the admin overview."
            ),
            back_link=admin_dashboard_link(),
            account_id=account.id,
        )
    typed_id = (request.form.get("provider_id") or "").strip()
    if not typed_id:
        raise BadRequest(
            "provider_id is missing; choose a provider on the admin overview",
            shown_message=_(
                "No provider was chosen. Go back to the admin overview, choose a "
                "provider from its list and press Open."
            ),
            back_link=admin_dashboard_link(),
            account_id=account.id,
        )
    provider_id = parse_row_id(typed_id)
    if provider_id is None or db_session().get(Provider, provider_id) is None:
        raise NotFound(
            "no provider has this id",
            shown_message=_(
                "No provider with the number %(number)s exists on the bridge. Go back "
                "to the admin overview and choose a provider from its list.",
                number=shortened(typed_id),
            ),
            back_link=admin_dashboard_link(),
            account_id=account.id,
            typed_id=shortened(typed_id),
        )
    account_session()["acting_provider_id"] = provider_id
    return redirect(url_for("admin.dashboard"), code=303)


def _connections_page(
    account,
    provider,
    form=None,
    errors=None,
    created=None,
    status=200,
    disconnected=None,
    problem=None,
    saved_registration=None,
    removed_registration=None,
):
    db = db_session()
    # What stays on a connection the admin just disconnected, counted as on the
    # confirmation page.
    disconnected_usage = connection_usage(db, disconnected) if disconnected else None
    connections = db.scalars(
        select(LmsConnection)
        .where(LmsConnection.provider_id == provider.id)
        .options(selectinload(LmsConnection.contact))
        .order_by(LmsConnection.id)
    ).all()
    registrations = db.scalars(
        select(Registration)
        .where(Registration.provider_id == provider.id)
        .options(selectinload(Registration.deployments))
        .order_by(Registration.id)
    ).all()
    connections_by_id = {connection.id: connection for connection in connections}
    return (
        render_template(
            "admin/connect.html",
            account=account,
            provider=provider,
            connections=connections,
            registrations=registrations,
            form=form or {},
            errors=errors or {},
            created=created,
            disconnected=disconnected,
            disconnected_usage=disconnected_usage,
            problem=problem,
            saved_registration=saved_registration,
            removed_registration=removed_registration,
            connections_by_id=connections_by_id,
            webhook_url=lambda connection: connection_webhook_url(
                current_bridge(), connection
            ),
            last_contact_outcome=last_contact_outcome,
            connection_status=connection_status,
            tool_urls=lambda registration: {
                "login": lti_login_url(base_url(), registration.public_id),
                "launch": launch_url_of(registration),
                "jwks": lti_jwks_url(base_url(), registration.public_id),
            },
        ),
        status,
    )


@bp.get("/connect")
@account_required
def connect_form(account: Account):
    provider = _provider_or_pick(account)
    disconnected = None
    public_id = request.args.get("disconnected")
    if public_id:
        disconnected = _own_connection(provider, public_id, missing_ok=True)
    if disconnected is not None and not disconnected.disconnected:
        disconnected = None
    saved = None
    if request.args.get("saved"):
        saved = db_session().scalar(
            select(Registration).where(
                Registration.public_id == request.args["saved"],
                Registration.provider_id == provider.id,
            )
        )
    return _connections_page(
        account, provider, disconnected=disconnected, saved_registration=saved
    )


def _own_connection(
    provider: Provider, public_id: str, missing_ok: bool = False
) -> LmsConnection | None:
    """Return the provider's connection with this public id; 404 for any other."""
    connection = db_session().scalar(
        select(LmsConnection).where(
            LmsConnection.public_id == public_id,
            LmsConnection.provider_id == provider.id,
        )
    )
    if connection is None and not missing_ok:
        abort(404)
    return connection


def _unknown_connection_page(account: Account, provider: Provider):
    # Unknown ids and other providers' ids get the same response, so the page
    # does not reveal whether a connection exists for another provider.
    problem = _(
        "This provider has no LMS site at this address. Nothing was changed; "
        "choose a site from the list below."
    )
    log.warning(
        "request_rejected",
        status=404,
        code="connection_not_found",
        reason="the provider has no LMS connection with this id",
        path=request.path,
        provider_id=provider.id,
    )
    return _connections_page(account, provider, problem=problem, status=404)


def _connected_site_for_form(account: Account, public_id: str):
    """Find the provider's connected site for a confirmation form.

    Returns (provider, connection, None), or (provider, None, response) with the
    response to send instead: the 404 list page for an id the provider does not
    have, or a redirect to the list for a site that is already disconnected.
    """
    provider = _provider_or_pick(account)
    connection = _own_connection(provider, public_id, missing_ok=True)
    if connection is None:
        return provider, None, _unknown_connection_page(account, provider)
    if connection.disconnected:
        return provider, None, redirect(url_for("admin.connect_form"), code=303)
    return provider, connection, None


@bp.get("/connections/<public_id>/disconnect")
@account_required
def disconnect_form(account: Account, public_id: str):
    provider, connection, response = _connected_site_for_form(account, public_id)
    if response is not None:
        return response
    return render_template(
        "admin/disconnect.html",
        account=account,
        provider=provider,
        connection=connection,
        usage=connection_usage(db_session(), connection),
    )


@bp.post("/connections/<public_id>/disconnect")
@account_required
def disconnect_lms(account: Account, public_id: str):
    check_csrf()
    provider = _provider_or_pick(account)
    connection = _own_connection(provider, public_id, missing_ok=True)
    if connection is None:
        return _unknown_connection_page(account, provider)
    if connection.disconnected:
        problem = i18n.gettext_html(
            "“%(name)s” was already disconnected. Nothing was changed.",
            name=i18n.isolate(connection.name),
        )
        return _connections_page(account, provider, problem=problem, status=409)
    db = db_session()
    usage = disconnect_connection(db, _actor(account), connection)
    db.commit()
    log.info(
        "lms_connection_disconnected",
        provider_id=provider.id,
        connection=connection.id,
        account_id=account.id,
        **usage.as_dict(),
    )
    return redirect(
        url_for("admin.connect_form", disconnected=connection.public_id), code=303
    )


def _read_url(
    form: dict, errors: dict, name: str, not_a_url_message: str | None = None
) -> str:
    """Read a web address field; `not_a_url_message` replaces the Moodle example."""
    value = (request.form.get(name) or "").strip()
    form[name] = value
    try:
        parts = urlsplit(value)
    except ValueError:
        # An unclosed "[" of an IPv6 host, for one.
        parts = urlsplit("")
    if not value:
        errors[name] = _(
            "This field is required. Enter the address, starting with https://."
        )
    elif len(value) > URL_MAX:
        errors[name] = _(
            "This address is %(length)s characters long. Shorten it to %(limit)s "
            "characters or fewer.",
            length=len(value),
            limit=URL_MAX,
        )
    elif parts.scheme not in ("http", "https") or not parts.netloc:
        errors[name] = not_a_url_message or _(
            "This is not a web address. Enter a full address such as "
            "https://moodle.example.org."
        )
    elif len(parts.hostname or "") > HOST_NAME_MAX:
        errors[name] = _(
            "The host name in this address is %(length)s characters long, but a "
            "host name has at most %(limit)s. Check the address.",
            length=len(parts.hostname or ""),
            limit=HOST_NAME_MAX,
        )
    elif parts.scheme == "http" and not current_bridge().settings.loopback_dev:
        errors[name] = _("Use an https:// address; plain http is not accepted.")
    return value.rstrip("/")


def _read_platform_url(form: dict, errors: dict, name: str) -> str:
    """Read a URL of an LTI platform and check it as `hpass-bridge platform add` does.

    The bridge fetches these URLs later (the JWKS at each launch), so a URL whose
    host is a private, loopback, link-local or reserved address is rejected when it
    is saved. The fetch is checked again when it connects, because DNS answers
    change.
    """
    value = _read_url(form, errors, name)
    if name in errors:
        return value

    try:
        current_bridge().outbound_policy.check_url_now(value)
    except OutboundBlocked as error:
        errors[name] = _blocked_url_message(error, value)
    except OutboundConnectionFailed:
        # A name that does not resolve yet is stored; each fetch then fails with
        # the guard's error naming the host.
        pass
    return value


def _blocked_url_message(error: OutboundBlocked, value: str) -> str:
    if error.code == "blocked_address":
        return i18n.gettext_html(
            "The host resolves to the non-public address %(address)s (private, "
            "loopback, link-local or reserved), which the bridge does not call. "
            "Give the platform's public https URL.",
            address=i18n.isolate_ltr(error.address),
        )
    if error.code == "insecure_url":
        return _("Use an https:// address; plain http is not accepted.")
    parts = urlsplit(value)
    if parts.username or parts.password:
        return _(
            "This address contains a user name or password. Give the platform's "
            "public https URL without them."
        )
    return _(
        "This is not a web address. Enter a full address such as "
        "https://moodle.example.org."
    )


def read_lms_url(
    form: dict,
    errors: dict,
    name: str,
    not_a_url_message: str | None = None,
    **log_ids: object,
) -> str:
    """Read an LMS site address field and check it as the CLI and the API do.

    The page shows a translated message for each kind of rejected address, and
    the log line, with `log_ids`, keeps the check's English detail.
    """
    url = _read_url(form, errors, name, not_a_url_message)
    if name in errors:
        return url
    try:
        return check_lms_url(current_bridge(), url, option=name)
    except InvalidLmsUrl as error:
        log.info(
            "lms_url_rejected",
            field=name,
            reason=error.reason,
            detail=str(error.blocked) if error.blocked else error.reason,
            url=redact_url(url),
            **log_ids,
        )
        errors[name] = lms_url_message(error, url, not_a_url_message)
    return url


def lms_url_message(
    error: InvalidLmsUrl, url: str, not_a_url_message: str | None
) -> str:
    """Return the page's translated text for an address `check_lms_url` rejected."""
    blocked = error.blocked
    if error.reason == LMS_URL_QUERY:
        return _(
            "Enter the site's root address, without a part starting with ? or #, "
            "such as https://moodle.example.org."
        )
    if error.reason == LMS_URL_NOT_PUBLIC_HTTPS or (
        blocked is not None and blocked.code == "insecure_url"
    ):
        return _(
            "Enter the site's public https:// address. The bridge does not connect "
            "to plain http or loopback addresses."
        )
    if blocked is not None and blocked.code == "blocked_address":
        return i18n.gettext_html(
            "The host resolves to the non-public address %(address)s (private, "
            "loopback, link-local or reserved), which the bridge does not call. "
            "Enter the site's public https:// address.",
            address=i18n.isolate_ltr(blocked.address),
        )
    # check_lms_url has parsed `url` by now, so urlsplit raises no ValueError.
    parts = urlsplit(url)
    if error.reason == LMS_URL_BLOCKED and (parts.username or parts.password):
        return _(
            "This address contains a user name or password. Enter the site's "
            "address without them."
        )
    return not_a_url_message or _(
        "This is not a web address. Enter a full address such as "
        "https://moodle.example.org."
    )


def _read_field(
    form: dict, errors: dict, name: str, limit: int = NAME_MAX, *, required: bool = True
) -> str:
    """Read a form field into `form`, noting in `errors` one that is missing (when
    `required`) or longer than `limit`."""
    value = (request.form.get(name) or "").strip()
    form[name] = value
    if not value and required:
        errors[name] = _("This field is required.")
    elif len(value) > limit:
        errors[name] = _(
            "This is %(length)s characters long. Shorten it to %(limit)s or fewer.",
            length=len(value),
            limit=limit,
        )
    return value


def _site_connected_message(provider: Provider, existing: LmsConnection) -> Markup:
    return i18n.gettext_html(
        "%(provider)s is already connected to this Moodle site as "
        "“%(name)s”. Use that connection, or press its Disconnect button under "
        "LMS sites before connecting the site again.",
        provider=i18n.isolate(provider.name),
        name=i18n.isolate(existing.name),
    )


@bp.post("/connect/lms")
@account_required
def connect_lms(account: Account):
    from lti_tool.views.webhooks import secret_digest

    check_csrf()
    provider = _provider_or_pick(account)
    form: dict = {}
    errors: dict = {}
    name = _read_field(form, errors, "lms_name")
    url = read_lms_url(
        form, errors, "lms_url", provider_id=provider.id, account_id=account.id
    )
    token = _read_field(form, errors, "lms_token", limit=500)
    form.pop("lms_token", None)
    db = db_session()
    if "lms_url" not in errors:
        existing = find_same_site(db, provider.id, LmsKind.MOODLE.value, url)
        if existing is not None:
            errors["lms_url"] = _site_connected_message(provider, existing)
    if errors:
        return _connections_page(account, provider, form, errors, status=400)

    webhook_secret = secrets.token_urlsafe(32)
    connection = LmsConnection(
        provider_id=provider.id,
        kind=LmsKind.MOODLE.value,
        name=name,
        base_url=url,
        api_token_encrypted=current_bridge().vault.encrypt(token),
        webhook_secret_sha256=secret_digest(webhook_secret),
    )
    # Test before inserting, as `lms connect moodle` and the API do, so a mistyped
    # address or token is corrected here instead of stored as a connection that
    # never works. The test runs outside the write transaction because it waits
    # on the LMS.
    result = run_connection_test(current_bridge(), db, connection)
    if result.error is not None:
        log.info(
            "lms_connection_test_failed",
            provider_id=provider.id,
            base_url=url,
            token_invalid=result.token_invalid,
            error=result.error,
        )
        if result.token_invalid:
            # The test's own message is meant for the admin of a stored connection
            # (stop polling it), and nothing is stored yet.
            errors["lms_token"] = _(
                "Moodle rejected this web service token: the token does not exist, "
                "or it was deleted or expired. Nothing was saved. In Moodle, go to "
                "Site administration > Server > Web services > Manage tokens and "
                "create a token for the bridge's Moodle user and for the external "
                "service that contains the bridge's web service functions. Then "
                "enter the new token here."
            )
        elif result.site_unavailable:
            # The full error, with its retries, is in the log line above.
            errors["lms_url"] = i18n.gettext_html(
                "The bridge could not reach Moodle at %(url)s. Check the address and "
                "that the site is up, then connect again. Nothing was saved.",
                url=i18n.isolate_ltr(url),
            )
        else:
            # Moodle returned an error, so its English text follows the message.
            errors["lms_url"] = FieldError(
                i18n.gettext_html(
                    "Moodle at %(url)s failed the connection test, so nothing was "
                    "saved. Check the site address and the web service token, then "
                    "connect again.",
                    url=i18n.isolate_ltr(url),
                ),
                detail=result.error,
            )
        return _connections_page(account, provider, form, errors, status=400)
    try:
        with site_not_connected_on_insert(db, provider, LmsKind.MOODLE.value, url):
            db.add(connection)
            db.flush()
        record_success(db, connection, ContactSource.TEST)
    except ActionError:
        # A concurrent request connected the site after the check above.
        existing = find_same_site(db, provider.id, LmsKind.MOODLE.value, url)
        errors["lms_url"] = _site_connected_message(provider, existing)
        return _connections_page(account, provider, form, errors, status=400)
    record_audit(
        db,
        provider_id=provider.id,
        actor=_actor(account),
        action="lms_connection.created",
        target=f"lms_connection:{connection.public_id}",
        detail={"base_url": url},
    )
    db.commit()
    log.info(
        "lms_connection_created", provider_id=provider.id, connection=connection.id
    )
    # The webhook secret is shown this once; only its digest is stored.
    created = {
        "connection": connection,
        "webhook_url": connection_webhook_url(current_bridge(), connection),
        "webhook_secret": webhook_secret,
    }
    return _connections_page(account, provider, created=created)


@bp.get("/connections/<public_id>/webhook-secret")
@account_required
def webhook_secret_form(account: Account, public_id: str):
    provider, connection, response = _connected_site_for_form(account, public_id)
    if response is not None:
        return response
    return render_template(
        "admin/webhook_secret.html",
        account=account,
        provider=provider,
        connection=connection,
    )


@bp.post("/connections/<public_id>/webhook-secret")
@account_required
def issue_new_webhook_secret(account: Account, public_id: str):
    check_csrf()
    provider = _provider_or_pick(account)
    connection = _own_connection(provider, public_id, missing_ok=True)
    if connection is None:
        return _unknown_connection_page(account, provider)
    db = db_session()
    try:
        issued = issue_webhook_secret(db, current_bridge(), _actor(account), connection)
    except ActionError as error:
        db.rollback()
        log.warning(
            "request_rejected",
            status=409,
            code=error.code,
            reason="the LMS connection is disconnected",
            provider_id=provider.id,
            connection=connection.id,
        )
        problem = i18n.gettext_html(
            "“%(name)s” is disconnected, so it has no webhook secret. Nothing was "
            "changed.",
            name=i18n.isolate(connection.name),
        )
        return _connections_page(account, provider, problem=problem, status=409)
    db.commit()
    log.info(
        "lms_webhook_secret_issued",
        provider_id=provider.id,
        connection=connection.id,
        account_id=account.id,
    )
    # Shown this once, as after connecting; only the digest is stored.
    created = {
        "connection": connection,
        "webhook_url": issued.webhook_url,
        "webhook_secret": issued.webhook_secret,
        "renewed": True,
    }
    return _connections_page(account, provider, created=created)


@bp.post("/connect/lti")
@account_required
def connect_lti(account: Account):
    check_csrf()
    provider = _provider_or_pick(account)
    form: dict = {}
    errors: dict = {}
    issuer = _read_platform_url(form, errors, "issuer")
    client_id = _read_field(form, errors, "client_id")
    login_url = _read_platform_url(form, errors, "auth_login_url")
    key_set_url = _read_platform_url(form, errors, "key_set_url")
    deployment_id = _read_field(form, errors, "deployment_id")
    # A blank or missing choice registers the platform with no LMS site, because
    # the form has no site list while the provider has no usable site.
    typed_id = (request.form.get("lms_connection_id") or "").strip()
    db = db_session()
    connection = None
    if typed_id:
        connection_id = parse_row_id(typed_id)
        if connection_id is not None:
            connection = db.scalar(
                select(LmsConnection).where(
                    LmsConnection.id == connection_id,
                    LmsConnection.provider_id == provider.id,
                    LmsConnection.state != ConnectionState.DISCONNECTED.value,
                )
            )
        if connection is None:
            log.info(
                "lti_registration_site_rejected",
                provider_id=provider.id,
                account_id=account.id,
                typed_id=shortened(typed_id),
            )
            errors["lms_connection_id"] = _("Choose one of this provider's LMS sites.")
    if provider_registration(db, provider.id, issuer, client_id) is not None:
        errors["client_id"] = _(
            "This provider already has a registration with this issuer and client "
            "id. Edit or remove it in the LTI registrations list above instead of "
            "adding it again."
        )
    if errors:
        return _connections_page(account, provider, form, errors, status=400)

    registration = create_registration(
        db,
        current_bridge().vault,
        provider,
        issuer=issuer,
        client_id=client_id,
        auth_login_url=login_url,
        key_set_url=key_set_url,
        deployment_ids=(deployment_id,),
        lms_connection_id=connection.id if connection else None,
    )
    record_audit(
        db,
        provider_id=provider.id,
        actor=_actor(account),
        action="lti_registration.created",
        target=f"lti_registration:{registration.public_id}",
        detail={"issuer": issuer, "client_id": client_id},
    )
    db.commit()
    return redirect(
        url_for("admin.connect_form", saved=registration.public_id), code=303
    )


@bp.get("/dead-letters")
@account_required
def dead_letters(account: Account):
    provider = _provider_or_pick(account)
    messages = (
        db_session()
        .scalars(
            select(OutboxMessage)
            .where(
                OutboxMessage.provider_id == provider.id,
                OutboxMessage.status == OutboxStatus.DEAD.value,
            )
            .order_by(OutboxMessage.id.desc())
            .limit(PAGE_SIZE)
        )
        .all()
    )
    return render_template(
        "admin/dead_letters.html",
        account=account,
        provider=provider,
        rows=failed_rows(db_session(), provider.id, messages),
        retried=_retried_row(provider.id, parse_row_id(request.args.get("retried"))),
    )


def _retried_row(provider_id: int, message_id: int | None) -> FailedRow | None:
    """Return the row of a message the admin just retried, while it waits to run."""
    if message_id is None:
        return None
    db = db_session()
    message = db.scalar(
        select(OutboxMessage).where(
            OutboxMessage.id == message_id,
            OutboxMessage.provider_id == provider_id,
            OutboxMessage.status != OutboxStatus.DEAD.value,
        )
    )
    if message is None:
        return None
    return failed_rows(db, provider_id, [message])[0]


@bp.post("/dead-letters/<int:message_id>/retry")
@account_required
def retry_dead_letter(account: Account, message_id: int):
    check_csrf()
    provider = _provider_or_pick(account)
    db = db_session()
    message = db.scalar(
        select(OutboxMessage).where(
            OutboxMessage.id == message_id,
            OutboxMessage.provider_id == provider.id,
            OutboxMessage.status == OutboxStatus.DEAD.value,
        )
    )
    if message is None:
        # Unknown ids and other providers' ids get the same response.
        raise NotFound(
            "the provider has no failed delivery with this id",
            shown_message=_(
                "This provider has no failed delivery number %(number)s. It may have "
                "been retried already. Nothing was changed; go back to the list of "
                "failed deliveries.",
                number=message_id,
            ),
            back_link=(url_for("admin.dead_letters"), _("Back to failed deliveries")),
            provider_id=provider.id,
            outbox_id=message_id,
        )
    # Back to pending with a fresh attempt budget. It is sent below, after the
    # commit, and the sweep sends it later if that send fails.
    message.status = OutboxStatus.PENDING.value
    message.attempts = 0
    message.next_attempt_at = utcnow()
    message.dispatched_at = None
    message.locked_until = None
    delivery = failed_rows(db, provider.id, [message])[0].delivery
    if delivery is not None and delivery.status != DeliveryStatus.DELIVERED.value:
        # The delivery's attempt count also sets its retry waits, so it restarts
        # with the message's budget, and the instructor, learner and CLI views
        # show it as waiting to be sent instead of failed.
        delivery.status = DeliveryStatus.QUEUED.value
        delivery.attempts = 0
    record_audit(
        db,
        provider_id=provider.id,
        actor=_actor(account),
        action="outbox.retried",
        target=f"outbox:{message.id}",
        detail={"kind": message.kind, "last_error": (message.last_error or "")[:200]},
    )
    db.commit()
    dispatch([message.id])
    log.info("dead_letter_retried", provider_id=provider.id, outbox_id=message.id)
    return redirect(url_for("admin.dead_letters", retried=message.id), code=303)


def _pending_invitations(provider_id: int) -> list[AccountToken]:
    """Return the provider's invitations that are unused and not yet expired."""
    return list(
        db_session().scalars(
            select(AccountToken)
            .where(
                AccountToken.purpose == TokenPurpose.INVITATION.value,
                AccountToken.provider_id == provider_id,
                AccountToken.used_at.is_(None),
                AccountToken.expires_at > utcnow(),
            )
            .order_by(AccountToken.created_at.desc(), AccountToken.id.desc())
        )
    )


def _invitation_page(
    account: Account,
    provider: Provider,
    *,
    form: dict | None = None,
    errors: dict | None = None,
    invited: dict | None = None,
    replaced: bool = False,
    withdrawn: str | None = None,
    problem: str | None = None,
    status: int = 200,
):
    pending = _pending_invitations(provider.id)
    inviter_ids = {row.created_by_account_id for row in pending}
    inviters = {
        found.id: found.email
        for found in db_session().scalars(
            select(Account).where(
                Account.id.in_(inviter_ids - {None}),
                or_(Account.provider_id == provider.id, Account.provider_id.is_(None)),
            )
        )
    }
    return (
        render_template(
            "admin/invite.html",
            account=account,
            provider=provider,
            form=form or {},
            errors=errors or {},
            invited=invited,
            replaced=replaced,
            withdrawn=withdrawn,
            problem=problem,
            pending=pending,
            inviters=inviters,
        ),
        status,
    )


@bp.get("/invitations")
@account_required
def invitation_form(account: Account):
    provider = _provider_or_pick(account)
    return _invitation_page(account, provider)


@bp.post("/invitations")
@account_required
def invite(account: Account):
    check_csrf()
    provider = _provider_or_pick(account)
    email = (request.form.get("email") or "").strip()
    errors = {}
    db = db_session()

    if not email:
        errors["email"] = _(
            "This field is required. Enter the email address of the person to invite."
        )
    else:
        try:
            check_email_address(email)
        except InvalidEmail:
            errors["email"] = _(
                "This is not a valid email address. Enter an address with a name, "
                "an @ and a domain that contains a dot, such as name@example.org."
            )
    existing = None if errors else find_account(db, email)
    # An operator can list every account, and an admin their own provider's, so
    # this error reveals nothing outside their tenant.
    if existing is not None and (
        account.is_operator or existing.provider_id == provider.id
    ):
        errors["email"] = _("This email already has an account.")
    if errors:
        return _invitation_page(
            account, provider, form={"email": email}, errors=errors, status=400
        )

    # An address with an account in another provider gets the same page, link and
    # database work as a new one, as the password reset form does, so an admin
    # cannot find out which emails have accounts elsewhere. The worker emails that
    # account's owner a notice instead (lti_tool.account_mail).
    # NOTE: accepting such a link still fails with "An account with this email
    # already exists", so whoever holds the link learns it on acceptance.
    # A new invitation replaces the provider's pending one to the same address, so
    # only the newest link works.
    # NOTE: two invitations to one address sent at the same moment can both stay
    # pending, because neither request reads the other's uncommitted row.
    replaced = withdraw_pending_invitations_to(
        db, provider_id=provider.id, email=email, actor=_actor(account)
    )
    token = issue_token(
        db,
        TokenPurpose.INVITATION,
        email=email,
        provider_id=provider.id,
        role=AccountRole.PROVIDER_ADMIN,
        created_by_account_id=account.id,
    )
    invitation = find_usable_token(db, token, TokenPurpose.INVITATION)
    record_audit(
        db,
        provider_id=provider.id,
        actor=_actor(account),
        action="account.invited",
        target=f"email:{normalize_email(email)}",
    )
    db.commit()
    queue_invitation_notice(invitation.id)
    # The link is shown once to the person who invites, who passes it on.
    invited = {"email": normalize_email(email), "link": invitation_link(token)}
    return _invitation_page(account, provider, invited=invited, replaced=replaced > 0)


@bp.post("/invitations/<int:invitation_id>/withdraw")
@account_required
def withdraw_invitation(account: Account, invitation_id: int):
    """Delete a pending invitation, so its link shows the expired-link page."""
    check_csrf()
    provider = _provider_or_pick(account)
    db = db_session()
    invitation = next(
        (row for row in _pending_invitations(provider.id) if row.id == invitation_id),
        None,
    )
    if invitation is None:
        # Unknown ids, used or expired invitations and other providers' ids get
        # the same response.
        log.warning(
            "request_rejected",
            status=404,
            code="invitation_not_found",
            reason="the provider has no pending invitation with this id",
            path=request.path,
            provider_id=provider.id,
            account_id=account.id,
            invitation_id=invitation_id,
        )
        problem = _(
            "This provider has no pending invitation with this number. It may have "
            "been accepted or withdrawn already. Nothing was changed."
        )
        return _invitation_page(account, provider, problem=problem, status=404)

    record_audit(
        db,
        provider_id=provider.id,
        actor=_actor(account),
        action="invitation.withdrawn",
        target=f"email:{invitation.email}",
        detail={"invited_by": invitation.created_by_account_id},
    )
    db.delete(invitation)
    db.commit()
    log.info(
        "invitation_withdrawn",
        provider_id=provider.id,
        account_id=account.id,
        invitation_id=invitation_id,
    )
    # The page is sent in reply to the POST, as after inviting, so the email does
    # not go into a URL and the access log.
    return _invitation_page(account, provider, withdrawn=invitation.email)

"""Admin pages that correct or remove an LTI registration of the provider.

The issuer and client id identify a registration on the platform's side and key
every launch, so they are not editable: a registration with other values is a new
registration. The platform URLs and the new-deployment policy can change at any
time. The linked LMS site can change only while no launch has created a course,
because a course's badges and learners belong to the site it was launched with.
"""

from __future__ import annotations

from flask import redirect, render_template, request, url_for
from sqlalchemy import select

from connectors.models import ConnectionState, LmsConnection
from lti_tool.accounts import Account, record_audit
from lti_tool.bridge import db_session
from lti_tool.i18n import gettext as _
from lti_tool.i18n import gettext_html, isolate_ltr
from lti_tool.logs import get_logger
from lti_tool.models import Registration
from lti_tool.operations import ActionError
from lti_tool.row_ids import parse_row_id, shortened
from lti_tool.operations.deployments import (
    registration_course_count,
    remove_registration,
)
from lti_tool.views.admin import (
    _actor,
    _connections_page,
    _provider_or_pick,
    _read_platform_url,
    account_required,
    bp,
)
from lti_tool.views.pages import check_csrf

log = get_logger(__name__)

POLICIES = ("accept", "hold")


def _own_registration(provider_id: int, public_id: str) -> Registration | None:
    return db_session().scalar(
        select(Registration).where(
            Registration.public_id == public_id,
            Registration.provider_id == provider_id,
        )
    )


def _unknown_registration_page(account: Account, provider):
    # Unknown ids and other providers' ids get the same response.
    log.warning(
        "request_rejected",
        status=404,
        code="registration_not_found",
        reason="the provider has no LTI registration with this id",
        path=request.path,
        provider_id=provider.id,
    )
    problem = _(
        "This provider has no LTI registration at this address. It may have been "
        "removed already. Nothing was changed; choose a registration from the list "
        "below."
    )
    return _connections_page(account, provider, problem=problem, status=404)


def _usable_connections(provider_id: int) -> list[LmsConnection]:
    return list(
        db_session().scalars(
            select(LmsConnection)
            .where(
                LmsConnection.provider_id == provider_id,
                LmsConnection.state != ConnectionState.DISCONNECTED.value,
            )
            .order_by(LmsConnection.id)
        )
    )


def _site_editable(registration: Registration, courses: int) -> bool:
    return registration.lms_connection_id is None or courses == 0


@bp.get("/registrations/<public_id>/remove")
@account_required
def remove_registration_form(account: Account, public_id: str):
    provider = _provider_or_pick(account)
    registration = _own_registration(provider.id, public_id)
    if registration is None:
        return _unknown_registration_page(account, provider)
    return render_template(
        "admin/registration_remove.html",
        account=account,
        provider=provider,
        registration=registration,
        courses=registration_course_count(db_session(), registration),
    )


@bp.post("/registrations/<public_id>/remove")
@account_required
def remove_lti_registration(account: Account, public_id: str):
    check_csrf()
    provider = _provider_or_pick(account)
    registration = _own_registration(provider.id, public_id)
    if registration is None:
        return _unknown_registration_page(account, provider)
    db = db_session()
    removed = {"issuer": registration.issuer, "client_id": registration.client_id}
    try:
        remove_registration(db, _actor(account), registration)
    except ActionError:
        db.rollback()
        problem = gettext_html(
            "The registration of %(issuer)s with client id %(client_id)s has courses "
            "with badges, so it was not removed. Nothing was changed.",
            issuer=isolate_ltr(registration.issuer),
            client_id=isolate_ltr(registration.client_id),
        )
        return _connections_page(account, provider, problem=problem, status=409)
    db.commit()
    log.info(
        "lti_registration_removed",
        provider_id=provider.id,
        account_id=account.id,
        registration=public_id,
    )
    # The page is sent in reply to the POST, because the registration no longer
    # exists for a later page to look up.
    return _connections_page(account, provider, removed_registration=removed)


def _edit_page(account, provider, registration, form, errors, status=200):
    courses = registration_course_count(db_session(), registration)
    return (
        render_template(
            "admin/registration_edit.html",
            account=account,
            provider=provider,
            registration=registration,
            form=form,
            errors=errors,
            connections=_usable_connections(provider.id),
            site_editable=_site_editable(registration, courses),
            courses=courses,
        ),
        status,
    )


@bp.get("/registrations/<public_id>/edit")
@account_required
def edit_registration_form(account: Account, public_id: str):
    provider = _provider_or_pick(account)
    registration = _own_registration(provider.id, public_id)
    if registration is None:
        return _unknown_registration_page(account, provider)
    form = {
        "auth_login_url": registration.auth_login_url,
        "key_set_url": registration.key_set_url,
        "auth_token_url": registration.auth_token_url or "",
        "new_deployment_policy": registration.new_deployment_policy,
        "lms_connection_id": registration.lms_connection_id,
    }
    return _edit_page(account, provider, registration, form, {})


@bp.post("/registrations/<public_id>/edit")
@account_required
def edit_registration(account: Account, public_id: str):
    check_csrf()
    provider = _provider_or_pick(account)
    registration = _own_registration(provider.id, public_id)
    if registration is None:
        return _unknown_registration_page(account, provider)
    db = db_session()
    form: dict = {}
    errors: dict = {}
    values = {
        "auth_login_url": _read_platform_url(form, errors, "auth_login_url"),
        "key_set_url": _read_platform_url(form, errors, "key_set_url"),
    }
    token_url = (request.form.get("auth_token_url") or "").strip()
    form["auth_token_url"] = token_url
    values["auth_token_url"] = (
        _read_platform_url(form, errors, "auth_token_url") if token_url else None
    )
    policy = request.form.get("new_deployment_policy", "")
    form["new_deployment_policy"] = policy
    if policy not in POLICIES:
        errors["new_deployment_policy"] = _(
            "Choose whether new deployments are accepted or held."
        )
    values["new_deployment_policy"] = policy

    courses = registration_course_count(db, registration)
    form["lms_connection_id"] = registration.lms_connection_id
    if _site_editable(registration, courses) and "lms_connection_id" in request.form:
        # The blank choice is the form's "No LMS site".
        typed_id = (request.form.get("lms_connection_id") or "").strip()
        connection_id = parse_row_id(typed_id)
        form["lms_connection_id"] = connection_id
        usable = {connection.id for connection in _usable_connections(provider.id)}
        if typed_id and connection_id not in usable:
            errors["lms_connection_id"] = _("Choose one of this provider's LMS sites.")
            log.info(
                "lti_registration_site_rejected",
                provider_id=provider.id,
                account_id=account.id,
                registration=public_id,
                typed_id=shortened(typed_id),
            )
        values["lms_connection_id"] = connection_id
    if errors:
        return _edit_page(account, provider, registration, form, errors, status=400)

    changed = sorted(
        name for name, value in values.items() if getattr(registration, name) != value
    )
    if changed:
        for name in changed:
            setattr(registration, name, values[name])
        record_audit(
            db,
            provider_id=provider.id,
            actor=_actor(account),
            action="lti_registration.updated",
            target=f"lti_registration:{registration.public_id}",
            detail={
                "issuer": registration.issuer,
                "client_id": registration.client_id,
                "changed": changed,
            },
        )
        db.commit()
        log.info(
            "lti_registration_updated",
            provider_id=provider.id,
            account_id=account.id,
            registration=public_id,
            changed=changed,
        )
    return redirect(
        url_for("admin.connect_form", saved=registration.public_id), code=303
    )

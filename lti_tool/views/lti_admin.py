"""Provider admin page for LTI deployments held for approval.

A registration whose policy is "hold" keeps each deployment id it has not seen before
until an admin approves it; launches from it end on an error page until then. This
page lists the provider's held deployments and approves them. It is nested in the LTI
blueprint, so its URLs are under /lti/admin.
"""

from __future__ import annotations

from flask import Blueprint, Response, redirect, render_template, url_for
from sqlalchemy import select

from lti_tool.accounts import Account
from lti_tool.bridge import db_session
from lti_tool.errors import NotFound
from lti_tool.i18n import gettext as _
from lti_tool.logs import get_logger
from lti_tool.models import Deployment, DeploymentStatus, Registration
from lti_tool.operations.deployments import approve_deployment
from lti_tool.views.admin import _actor, _provider_or_pick, account_required
from lti_tool.views.headers import forbid_framing
from lti_tool.views.pages import check_csrf

bp = Blueprint("lti_admin", __name__, url_prefix="/admin")
log = get_logger(__name__)


@bp.after_request
def _no_framing(response: Response) -> Response:
    return forbid_framing(response)


def _held(provider_id: int):
    return (
        db_session()
        .execute(
            select(Deployment, Registration)
            .join(Registration, Registration.id == Deployment.registration_id)
            .where(
                Deployment.provider_id == provider_id,
                Registration.provider_id == provider_id,
                Deployment.status == DeploymentStatus.HELD.value,
            )
            .order_by(Registration.issuer, Deployment.deployment_id)
        )
        .all()
    )


@bp.get("/deployments")
@account_required
def held_deployments(account: Account):
    provider = _provider_or_pick(account)
    return render_template(
        "admin/lti_deployments.html", provider=provider, held=_held(provider.id)
    )


@bp.post("/deployments/<int:deployment_key>/approve")
@account_required
def approve(account: Account, deployment_key: int):
    check_csrf()
    provider = _provider_or_pick(account)
    db = db_session()
    row = db.execute(
        select(Deployment, Registration)
        .join(Registration, Registration.id == Deployment.registration_id)
        .where(
            Deployment.id == deployment_key,
            Deployment.provider_id == provider.id,
            Registration.provider_id == provider.id,
        )
    ).first()
    if row is None:
        raise NotFound(
            "no deployment of this provider has that number",
            shown_message=_(
                "This provider has no LTI deployment number %(number)s. It may have "
                "been approved already. Nothing was changed; go back to the list of "
                "held deployments.",
                number=deployment_key,
            ),
            back_link=(
                url_for("lti.lti_admin.held_deployments"),
                _("Back to held deployments"),
            ),
            provider_id=provider.id,
            deployment=deployment_key,
        )
    deployment, registration = row
    approve_deployment(db, _actor(account), registration, deployment.deployment_id)
    db.commit()
    log.info(
        "lti_deployment_approved",
        provider_id=provider.id,
        issuer=registration.issuer,
        client_id=registration.client_id,
        deployment_id=deployment.deployment_id,
    )
    return redirect(url_for("lti.lti_admin.held_deployments"), code=303)

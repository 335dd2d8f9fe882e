"""Deployment actions: approve an LTI deployment held at its first launch."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from lti_tool.models import Deployment, DeploymentStatus, Registration
from lti_tool.operations import InvalidInput, NotFound, audit

DEPLOYMENT_ID_MAX = 255


def find_registration(
    session: Session, issuer: str, client_id: str, provider_id: int | None = None
) -> Registration:
    """Return the registration of an issuer and client id; with `provider_id`,
    only that provider's."""
    query = select(Registration).where(
        Registration.issuer == issuer.rstrip("/"),
        Registration.client_id == client_id,
    )
    if provider_id is not None:
        query = query.where(Registration.provider_id == provider_id)
    registration = session.scalar(query)
    if registration is None:
        problem = (
            f"no registration with issuer {issuer!r} and client id {client_id!r}"
        )
        raise NotFound(
            f"{problem}; see `hpass-bridge platform list`",
            code="registration_not_found",
            # The API lists no registrations; the admin pages do.
            api_message=f"{problem}; copy both from the LTI deployments list on "
            "the bridge's admin pages",
        )

    return registration


def approve_deployment(
    session: Session, actor: str, registration: Registration, deployment_id: str
) -> Deployment:
    """Mark a deployment active, adding it when no launch has come from it yet."""
    if not deployment_id.strip() or len(deployment_id) > DEPLOYMENT_ID_MAX:
        raise InvalidInput(
            f"the deployment id must be 1 to {DEPLOYMENT_ID_MAX} characters, as the "
            f"platform shows it, got {len(deployment_id)}",
            code="invalid_deployment_id",
        )
    deployment = session.scalar(
        select(Deployment).where(
            Deployment.provider_id == registration.provider_id,
            Deployment.registration_id == registration.id,
            Deployment.deployment_id == deployment_id,
        )
    )
    if deployment is None:
        deployment = Deployment(
            provider_id=registration.provider_id,
            registration_id=registration.id,
            deployment_id=deployment_id,
        )
        session.add(deployment)
    deployment.status = DeploymentStatus.ACTIVE.value
    audit(
        session,
        actor,
        "deployment.approved",
        provider_id=registration.provider_id,
        target=f"deployment:{deployment_id}",
        detail={"issuer": registration.issuer, "client_id": registration.client_id},
    )

    return deployment

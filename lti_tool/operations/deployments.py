"""Registration and deployment actions: approve an LTI deployment held at its first
launch, and remove a registration that no course uses yet."""

from __future__ import annotations

from sqlalchemy import delete, func, select
from sqlalchemy.orm import Session

from badge_engine.models import Provider
from lti_tool.models import (
    Deployment,
    DeploymentStatus,
    LtiCourse,
    LtiUsedNonce,
    Registration,
)
from lti_tool.operations import ActionError, InvalidInput, NotFound, audit

DEPLOYMENT_ID_MAX = 255


def find_registration(
    session: Session, issuer: str, client_id: str, provider_id: int | None = None
) -> Registration:
    """Return the registration of an issuer and client id; with `provider_id`,
    only that provider's.

    Each provider may register the same issuer and client id, so without
    `provider_id` a pair that several providers hold raises `InvalidInput` (code
    "registration_ambiguous") instead of picking one of them.
    """
    query = select(Registration).where(
        Registration.issuer == issuer.rstrip("/"),
        Registration.client_id == client_id,
    )
    if provider_id is not None:
        query = query.where(Registration.provider_id == provider_id)
    registrations = session.scalars(query.order_by(Registration.id).limit(2)).all()
    if not registrations:
        problem = f"no registration with issuer {issuer!r} and client id {client_id!r}"
        raise NotFound(
            f"{problem}; see `hpass-bridge platform list`",
            code="registration_not_found",
            # The API lists no registrations; the admin pages do.
            api_message=f"{problem}; copy both from the LTI deployments list on "
            "the bridge's admin pages",
        )
    if len(registrations) > 1:
        slugs = session.scalars(
            select(Provider.slug)
            .join(Registration, Registration.provider_id == Provider.id)
            .where(
                Registration.issuer == issuer.rstrip("/"),
                Registration.client_id == client_id,
            )
            .order_by(Provider.slug)
        ).all()
        # Only the CLI calls without a provider; the API always names one.
        raise InvalidInput(
            f"issuer {issuer!r} with client id {client_id!r} is registered by "
            f"several providers ({', '.join(slugs)}); choose one with "
            "--provider SLUG",
            code="registration_ambiguous",
        )

    return registrations[0]


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


def registration_course_count(session: Session, registration: Registration) -> int:
    return session.scalar(
        select(func.count())
        .select_from(LtiCourse)
        .where(
            LtiCourse.provider_id == registration.provider_id,
            LtiCourse.registration_id == registration.id,
        )
    )


def remove_registration(
    session: Session, actor: str, registration: Registration
) -> None:
    """Delete a registration with its deployments and used nonces; the caller commits.

    Raises `ActionError` (code "in_use") when a launch already created a course
    for it, because its badges and awards hang on that course.
    """
    courses = registration_course_count(session, registration)
    if courses:
        raise ActionError(
            f"registration {registration.issuer!r} / {registration.client_id!r} has "
            f"{courses} course(s) with badges set up; it cannot be removed without "
            "losing them",
            code="in_use",
        )
    for model in (LtiUsedNonce, Deployment):
        session.execute(
            delete(model).where(
                model.provider_id == registration.provider_id,
                model.registration_id == registration.id,
            )
        )
    audit(
        session,
        actor,
        "lti_registration.removed",
        provider_id=registration.provider_id,
        target=f"lti_registration:{registration.public_id}",
        detail={"issuer": registration.issuer, "client_id": registration.client_id},
    )
    session.delete(registration)

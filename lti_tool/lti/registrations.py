"""Create LTI registrations with their own tool key pair."""

from __future__ import annotations

import uuid

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from sqlalchemy import select
from sqlalchemy.orm import Session

from badge_engine.models import Provider
from badge_engine.vault import Vault
from lti_tool.models import Deployment, Registration


def provider_registration(
    session: Session, provider_id: int, issuer: str, client_id: str
) -> Registration | None:
    """Return the provider's registration of `issuer` and `client_id`, if any.

    Launches find their registration by the public id in the tool URLs, so each
    provider may register the same pair, and a check for a duplicate looks only at
    the provider's own registrations. Its message must not reveal whether another
    provider has the pair.
    """
    return session.scalar(
        select(Registration).where(
            Registration.provider_id == provider_id,
            Registration.issuer == issuer,
            Registration.client_id == client_id,
        )
    )


def create_registration(
    session: Session,
    vault: Vault,
    provider: Provider,
    *,
    issuer: str,
    client_id: str,
    auth_login_url: str,
    key_set_url: str,
    auth_token_url: str | None = None,
    deployment_ids: tuple[str, ...] = (),
    lms_connection_id: int | None = None,
) -> Registration:
    """Add a registration with a new RSA key; the caller commits.

    The caller first checks with `provider_registration` that the provider has no
    registration of the pair, which the database's unique constraint rejects.
    """
    private_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    private_pem = private_key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    public_pem = private_key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    registration = Registration(
        provider_id=provider.id,
        issuer=issuer,
        client_id=client_id,
        auth_login_url=auth_login_url,
        auth_token_url=auth_token_url,
        key_set_url=key_set_url,
        tool_key_id=uuid.uuid4().hex,
        tool_private_key_encrypted=vault.encrypt(private_pem),
        tool_public_key_pem=public_pem.decode(),
        lms_connection_id=lms_connection_id,
    )
    session.add(registration)
    session.flush()
    for deployment_id in deployment_ids:
        session.add(
            Deployment(
                provider_id=provider.id,
                registration_id=registration.id,
                deployment_id=deployment_id,
            )
        )
    session.flush()

    return registration

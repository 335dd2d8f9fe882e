"""pylti1p3 tool configuration read from the database, scoped to one registration.

Each registration has its own login and launch URLs, so the registration is known
before the id_token is read; pylti1p3's issuer and client_id lookups are then checked
against that registration, and a token from any other (issuer, client_id) is rejected.
"""

from __future__ import annotations

import typing as t

from pylti1p3.deployment import Deployment as PyltiDeployment
from pylti1p3.registration import Registration as PyltiRegistration
from pylti1p3.tool_config.abstract import ToolConfAbstract
from sqlalchemy import select
from sqlalchemy.orm import Session

from badge_engine.vault import Vault
from lti_tool.models import Deployment, DeploymentStatus, Registration


class RegistrationToolConf(ToolConfAbstract):
    def __init__(self, session: Session, vault: Vault, registration: Registration) -> None:
        super().__init__()
        self._session = session
        self._vault = vault
        self.registration = registration
        # Canvas shares one issuer among many clients, so always look up by both.
        self.issuers_relation_types = {registration.issuer: "one-issuer-many-client-ids"}

    def _matches(self, iss: str, client_id: str | None) -> bool:
        if iss != self.registration.issuer:
            return False
        return client_id is None or client_id == self.registration.client_id

    def _to_pylti(self) -> PyltiRegistration:
        reg = self.registration
        private_key = self._vault.decrypt(
            reg.tool_private_key_encrypted, what=f"LTI key of registration {reg.id}"
        ).decode()
        return (
            PyltiRegistration()
            .set_auth_login_url(reg.auth_login_url)
            .set_auth_token_url(reg.auth_token_url)
            .set_client_id(reg.client_id)
            .set_key_set_url(reg.key_set_url)
            .set_issuer(reg.issuer)
            .set_tool_private_key(private_key)
            .set_tool_public_key(reg.tool_public_key_pem)
        )

    def find_registration_by_issuer(self, iss: str, *args, **kwargs):
        return None

    def find_registration_by_params(self, iss: str, client_id: str, *args, **kwargs):
        if not self._matches(iss, client_id):
            return None
        return self._to_pylti()

    def find_deployment(self, iss: str, deployment_id: str):
        return None

    def find_deployment_by_params(
        self, iss: str, deployment_id: str, client_id: str, *args, **kwargs
    ) -> t.Optional[PyltiDeployment]:
        if not self._matches(iss, client_id):
            return None
        deployment = self._session.scalar(
            select(Deployment).where(
                Deployment.registration_id == self.registration.id,
                Deployment.provider_id == self.registration.provider_id,
                Deployment.deployment_id == deployment_id,
                Deployment.status == DeploymentStatus.ACTIVE.value,
            )
        )
        if deployment is None:
            return None
        return PyltiDeployment().set_deployment_id(deployment_id)

    def get_jwks(self, iss=None, client_id=None, **kwargs):
        return {"keys": self._to_pylti().get_jwks()}

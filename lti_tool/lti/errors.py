"""Errors of LTI launches and registrations, each with the LTI ids a reader needs.

    LaunchRejected (lti_tool.errors)     400, rendered as an error page and logged
    └── LtiError                         carries issuer, client_id, deployment_id
        ├── MalformedRequest             400: no id_token, not a JWT
        │   └── TokenTooLarge            413: id_token over 16 KiB
        ├── StateInvalid                 400: state cookie, state or nonce wrong
        ├── TokenInvalid                 400: signature, algorithm, key id, times
        ├── RegistrationUnknown          400: issuer or client_id of another platform
        ├── DeploymentHeld               403: deployment waits for an admin
        ├── ClaimInvalid                 400: a required claim missing or wrong
        ├── MessageNotSupported          400: message type the tool does not handle
        └── PlatformUnreachable          424: the platform's JWKS could not be read

Every message has two parts: what failed, on which value, and what the provider
admin (or the learner) should check or do next.
"""

from __future__ import annotations

from lti_tool.errors import LaunchRejected


class LtiError(LaunchRejected):
    code = "lti_error"

    def __init__(
        self,
        message: str,
        *,
        check: str,
        code: str | None = None,
        issuer: str | None = None,
        client_id: str | None = None,
        deployment_id: str | None = None,
        **ids: object,
    ) -> None:
        super().__init__(
            f"{message}. What to check: {check}",
            code=code,
            issuer=issuer,
            client_id=client_id,
            deployment_id=deployment_id,
            **ids,
        )
        self.problem = message
        self.check = check


class MalformedRequest(LtiError):
    status = 400
    code = "malformed_request"


class TokenTooLarge(MalformedRequest):
    status = 413
    code = "id_token_too_large"


class StateInvalid(LtiError):
    status = 400
    code = "state_invalid"


class TokenInvalid(LtiError):
    status = 400
    code = "token_invalid"


class RegistrationUnknown(LtiError):
    status = 400
    code = "registration_unknown"


class DeploymentHeld(LtiError):
    status = 403
    code = "deployment_held"


class ClaimInvalid(LtiError):
    status = 400
    code = "claim_invalid"


class MessageNotSupported(LtiError):
    status = 400
    code = "message_type_not_supported"


class PlatformUnreachable(LtiError):
    # 424 Failed Dependency: the request was fine but a call it depends on failed.
    status = 424
    code = "platform_unreachable"


class RegistrationFailed(LtiError):
    """Dynamic or manual registration could not complete."""

    status = 400
    code = "registration_failed"

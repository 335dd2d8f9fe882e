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
        │   └── LaunchIdentityUnverified 400: custom LMS ids the LMS did not confirm
        ├── MessageNotSupported          400: message type the tool does not handle
        ├── PlatformUnreachable          424: the platform's JWKS could not be read
        └── RegistrationFailed           400: Dynamic or manual registration failed
            └── RegistrationLinkClosed   410: the registration link no longer works
                ├── RegistrationLinkUsed       it registered a platform already
                ├── RegistrationLinkRevoked    an admin revoked it
                ├── RegistrationLinkExpired    older than 7 days
                └── RegistrationLinkOutdated   issued before links were single-use

Every message has two parts: what failed, on which value, and what the provider
admin (or the learner) should check or do next.
"""

from __future__ import annotations

from collections.abc import Callable

from markupsafe import Markup

from lti_tool.errors import LaunchRejected
from lti_tool.i18n import gettext


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
        page_detail: Callable[[], Markup] | None = None,
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
        # Writes the problem and the check in the page language, while the page
        # renders. Without it the page shows the English message.
        self.page_detail = page_detail

    def page_text(self) -> tuple[str, str | Markup | None]:
        """Return a translated summary of this kind of error, and the detail.

        The detail names the values and the check. It is the English message, as
        the log records it, unless the raiser gave a `page_detail` that writes it
        in the page language.
        """
        # The class, not a per-raise code such as blocked_address, sets the kind.
        summary = launch_error_summary(type(self).code)
        if self.page_detail is not None:
            return summary, self.page_detail()
        return summary, self.message


def launch_error_summary(code: str) -> str:
    """Return, in the page language, what an LTI error code means for the reader."""
    summaries = {
        "malformed_request": gettext(
            "The LMS sent a launch request that the tool cannot read. Open the tool "
            "again from your course; if this keeps happening, tell your provider admin."
        ),
        "id_token_too_large": gettext(
            "The LMS sent a launch request that is too large. Tell your provider "
            "admin, who can remove large custom parameters from the tool link."
        ),
        "state_invalid": gettext(
            "This launch expired or was already used. Open the tool again from your "
            "course."
        ),
        "token_invalid": gettext(
            "The tool could not verify the launch sent by the LMS. Open the tool "
            "again from your course; if this keeps happening, tell your provider admin."
        ),
        "registration_unknown": gettext(
            "This tool link belongs to another LMS registration. Tell your provider "
            "admin, who must check the tool's URLs in the LMS."
        ),
        "deployment_held": gettext(
            "This tool is waiting for the provider admin to approve its deployment in "
            "the LMS. Try again after the approval."
        ),
        "claim_invalid": gettext(
            "The LMS left out or sent wrong launch information. Tell your provider "
            "admin, who must check the tool's settings in the LMS."
        ),
        "launch_identity_unverified": gettext(
            "The tool could not confirm with the LMS which course or learner this "
            "launch is for, so it did not open. Ask your provider admin, who can read "
            "the details below."
        ),
        "message_type_not_supported": gettext(
            "The LMS sent a kind of launch this tool does not support. Tell your "
            "provider admin, who must check how the tool is placed in the LMS."
        ),
        "platform_unreachable": gettext(
            "The tool could not reach the LMS to verify the launch. Try again in a "
            "few minutes."
        ),
        "registration_failed": gettext(
            "Registering the tool with the LMS failed. Read the details below, "
            "correct the setting they name and register again."
        ),
        "registration_link_used": gettext(
            "This registration link was already used to register a platform, and "
            "each link works only once. Ask your provider admin to create a new "
            "registration link on the bridge's admin pages, and paste that one."
        ),
        "registration_link_revoked": gettext(
            "This registration link was revoked, so it no longer works. Ask your "
            "provider admin to create a new registration link on the bridge's admin "
            "pages, and paste that one."
        ),
        "registration_link_expired": gettext(
            "This registration link has expired, because links work for 7 days. Ask "
            "your provider admin to create a new registration link on the bridge's "
            "admin pages, and paste that one."
        ),
        "registration_link_outdated": gettext(
            "This registration link was created before registration links became "
            "single-use, so it no longer works. Ask your provider admin to create a "
            "new registration link on the bridge's admin pages, and paste that one."
        ),
    }
    return summaries.get(
        code,
        gettext(
            "The launch from the LMS failed. Open the tool again from your course; if "
            "this keeps happening, tell your provider admin."
        ),
    )


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


class LaunchIdentityUnverified(ClaimInvalid):
    """Custom LMS ids that the bridge could not confirm with the LMS before binding."""

    code = "launch_identity_unverified"


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


class RegistrationLinkClosed(RegistrationFailed):
    """A Dynamic Registration link that exists but no longer works.

    410 Gone, because the link was valid once. The fix is always a new link.
    """

    status = 410
    code = "registration_link_closed"


class RegistrationLinkUsed(RegistrationLinkClosed):
    code = "registration_link_used"


class RegistrationLinkRevoked(RegistrationLinkClosed):
    code = "registration_link_revoked"


class RegistrationLinkExpired(RegistrationLinkClosed):
    code = "registration_link_expired"


class RegistrationLinkOutdated(RegistrationLinkClosed):
    code = "registration_link_outdated"

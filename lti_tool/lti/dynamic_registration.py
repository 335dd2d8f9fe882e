"""LTI Dynamic Registration 1.0: the tool side of the exchange.

A provider admin pastes the tool's registration URL into Moodle or Canvas. The
platform opens it with `openid_configuration` (its configuration URL) and
`registration_token`; the tool reads the configuration, posts its own configuration
to the platform's `registration_endpoint`, stores the registration it gets back and
tells the platform's window to close (`org.imsglobal.lti.close`). The URL is a
single-use link of the provider (`lti_tool.lti.registration_links`).

Where Moodle (4.x) and Canvas differ:

- Moodle returns the deployment id in the response's LTI tool configuration; Canvas
  returns none, so the first launch reveals it.
- Canvas rejects a scope it does not list in `scopes_supported`, so only supported
  scopes are requested.
- `messages_supported` lists message types as strings (older Moodle) or as objects
  with a `type` (Canvas, newer Moodle).
- Error bodies differ: OAuth-style `{"error", "error_description"}`, Canvas's
  `{"errors": [...]}` or `{"errors": {field: [...]}}`, or plain text.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass

import requests

from badge_engine.outbound import (
    GuardedSession,
    OutboundBlocked,
    OutboundError,
    OutboundLimits,
    OutboundPolicy,
    OutboundTooLarge,
    redact_url,
)
from lti_tool.lti.errors import RegistrationFailed
from lti_tool.logs import get_logger

log = get_logger(__name__)

PLATFORM_CONFIGURATION = "https://purl.imsglobal.org/spec/lti-platform-configuration"
TOOL_CONFIGURATION = "https://purl.imsglobal.org/spec/lti-tool-configuration"
# The OpenID configuration and the registration response are small JSON
# documents; redirects are not followed because the registration token goes along.
REGISTRATION_LIMITS = OutboundLimits(max_bytes=256 * 1024, max_redirects=0)

# NRPS to list a course's learners; AGS only where a rule needs grades.
WANTED_SCOPES = (
    "https://purl.imsglobal.org/spec/lti-nrps/scope/contextmembership.readonly",
    "https://purl.imsglobal.org/spec/lti-ags/scope/result.readonly",
    "https://purl.imsglobal.org/spec/lti-ags/scope/lineitem.readonly",
)
WANTED_MESSAGES = ("LtiResourceLinkRequest", "LtiDeepLinkingRequest")

# Canvas signs launches as one of these issuers for every customer, so its issuer is
# never a prefix of the customer's configuration URL.
CANVAS_ISSUERS = (
    "https://canvas.instructure.com",
    "https://canvas.beta.instructure.com",
    "https://canvas.test.instructure.com",
)


@dataclass
class PlatformConfiguration:
    issuer: str
    authorization_endpoint: str
    token_endpoint: str
    jwks_uri: str
    registration_endpoint: str
    scopes_supported: list[str]
    messages_supported: list[str]
    product_family_code: str

    @property
    def family(self) -> str:
        code = self.product_family_code.lower()
        return code if code in ("moodle", "canvas") else "other"


@dataclass
class RegisteredClient:
    client_id: str
    deployment_id: str | None
    scopes: list[str]


class DynamicRegistration:
    """One exchange with one platform; `policy` decides which addresses it may call."""

    def __init__(self, *, policy: OutboundPolicy, timeout: float = 10.0) -> None:
        self.policy = policy
        self.timeout = timeout
        self.http = GuardedSession(policy, REGISTRATION_LIMITS)

    def _check(self, url: object, name: str) -> str:
        if not isinstance(url, str):
            raise RegistrationFailed(
                f"the platform's {name} is missing",
                check="the platform's registration support must be enabled",
            )
        try:
            self.policy.check_url_now(url)
        except OutboundError as error:
            raise RegistrationFailed(
                f"the platform's {name}: {error}",
                check="register from a platform reachable on the public internet",
            ) from None

        return url

    def fetch_configuration(self, url: str, token: str | None) -> PlatformConfiguration:
        """Read and check the platform's OpenID configuration."""
        self._check(url, "openid_configuration URL")
        headers = {"Accept": "application/json"}
        if token:
            headers["Authorization"] = f"Bearer {token}"
        document = self._json(self._send("GET", url, headers=headers), url)

        issuer = document.get("issuer")
        lti = document.get(PLATFORM_CONFIGURATION)
        family = (
            str(lti.get("product_family_code") or "") if isinstance(lti, dict) else ""
        )
        canvas = family.lower() == "canvas" and issuer in CANVAS_ISSUERS
        # LTI Dynamic Registration 1.0: the configuration URL starts with the issuer.
        if not isinstance(issuer, str) or not (url.startswith(issuer) or canvas):
            raise RegistrationFailed(
                f"the platform's issuer {issuer!r} is not a prefix of its configuration "
                f"URL {redact_url(url)!r}",
                check="the platform's configured issuer (its wwwroot or Canvas "
                "domain) must match the address it is reached at",
            )
        if not isinstance(lti, dict):
            raise RegistrationFailed(
                "the platform's configuration has no LTI platform configuration",
                check="the platform must support LTI Dynamic Registration 1.0",
            )
        scopes = document.get("scopes_supported")
        return PlatformConfiguration(
            issuer=issuer.rstrip("/"),
            authorization_endpoint=self._check(
                document.get("authorization_endpoint"), "authorization_endpoint"
            ),
            token_endpoint=self._check(
                document.get("token_endpoint"), "token_endpoint"
            ),
            jwks_uri=self._check(document.get("jwks_uri"), "jwks_uri"),
            registration_endpoint=self._check(
                document.get("registration_endpoint"), "registration_endpoint"
            ),
            scopes_supported=[s for s in scopes or [] if isinstance(s, str)],
            messages_supported=_message_types(lti.get("messages_supported")),
            product_family_code=family,
        )

    def tool_configuration(
        self,
        platform: PlatformConfiguration,
        *,
        base_url: str,
        login_url: str,
        launch_url: str,
        jwks_url: str,
    ) -> dict:
        """Build the client registration request the tool posts to the platform."""
        scopes = [s for s in WANTED_SCOPES if s in platform.scopes_supported]
        messages = [
            {"type": message}
            for message in WANTED_MESSAGES
            if not platform.messages_supported or message in platform.messages_supported
        ]
        domain = base_url.split("://", 1)[1].split("/", 1)[0]
        return {
            "application_type": "web",
            "response_types": ["id_token"],
            "grant_types": ["implicit", "client_credentials"],
            "initiate_login_uri": login_url,
            "redirect_uris": [launch_url],
            "client_name": "HPass badges",
            "jwks_uri": jwks_url,
            "token_endpoint_auth_method": "private_key_jwt",
            "scope": " ".join(scopes),
            TOOL_CONFIGURATION: {
                "domain": domain,
                "target_link_uri": launch_url,
                "claims": ["iss", "sub", "name", "given_name", "family_name", "email"],
                "messages": messages,
                "custom_parameters": {
                    "lms_course_id": (
                        "$Canvas.course.id"
                        if platform.family == "canvas"
                        else "$Context.id"
                    ),
                    "lms_user_id": (
                        "$Canvas.user.id" if platform.family == "canvas" else "$User.id"
                    ),
                },
            },
        }

    def register(
        self, platform: PlatformConfiguration, token: str | None, configuration: dict
    ) -> RegisteredClient:
        """Post the tool configuration; return the client the platform created."""
        headers = {"Content-Type": "application/json", "Accept": "application/json"}
        if token:
            headers["Authorization"] = f"Bearer {token}"
        response = self._send(
            "POST", platform.registration_endpoint, headers=headers, json=configuration
        )
        document = self._json(response, platform.registration_endpoint)

        client_id = document.get("client_id")
        if not isinstance(client_id, str) or not client_id:
            raise RegistrationFailed(
                "the platform's registration response has no client_id",
                check="the platform must support LTI Dynamic Registration 1.0",
            )
        tool = document.get(TOOL_CONFIGURATION) or {}
        deployment_id = tool.get("deployment_id") if isinstance(tool, dict) else None
        granted = document.get("scope")
        return RegisteredClient(
            client_id=client_id,
            deployment_id=str(deployment_id) if deployment_id else None,
            scopes=granted.split() if isinstance(granted, str) else [],
        )

    def _send(self, method: str, url: str, **kwargs) -> requests.Response:
        try:
            response = self.http.request(
                method,
                url,
                timeout=(3.05, self.timeout),
                allow_redirects=False,
                **kwargs,
            )
        except OutboundBlocked as error:
            raise RegistrationFailed(
                str(error),
                check="register from a platform reachable on the public internet",
            ) from None
        except OutboundTooLarge:
            raise RegistrationFailed(
                f"the response from {redact_url(url)!r} is larger than "
                f"{REGISTRATION_LIMITS.max_bytes // 1024} KiB",
                check="the URL must be the platform's registration address",
            ) from None
        except (OutboundError, requests.RequestException) as error:
            raise RegistrationFailed(
                f"the platform at {redact_url(url)!r} could not be reached: "
                f"{type(error).__name__}",
                check="the platform must be reachable from the bridge; try again",
            ) from None
        if response.status_code >= 300:
            raise RegistrationFailed(
                f"the platform returned HTTP {response.status_code} from "
                f"{redact_url(url)!r}: "
                f"{_error_text(response)}",
                check=_hint_for(response.status_code),
            )
        return response

    @staticmethod
    def _json(response: requests.Response, url: str) -> dict:
        try:
            document = response.json()
        except ValueError:
            document = None
        if not isinstance(document, dict):
            raise RegistrationFailed(
                f"the response from {redact_url(url)!r} is not a JSON object",
                check="the URL must be the platform's registration address",
            )
        return document


def _message_types(value: object) -> list[str]:
    """Return message type names from strings or `{"type": ...}` objects."""
    types = []
    for item in value if isinstance(value, list) else []:
        if isinstance(item, str):
            types.append(item)
        elif isinstance(item, dict) and isinstance(item.get("type"), str):
            types.append(item["type"])
    return types


def _error_text(response: requests.Response) -> str:
    """Return the platform's error message from any of the body shapes it uses."""
    try:
        body = response.json()
    except ValueError:
        return response.text.strip()[:300] or "(empty body)"

    if isinstance(body, dict):
        if "error_description" in body or "error" in body:
            parts = [
                str(body.get("error") or ""),
                str(body.get("error_description") or ""),
            ]
            return ": ".join(part for part in parts if part)[:300]
        errors = body.get("errors")
        if isinstance(errors, list):
            return "; ".join(
                str(e.get("message", e)) if isinstance(e, dict) else str(e)
                for e in errors
            )[:300]
        if isinstance(errors, dict):
            return "; ".join(
                f"{field}: {problems}" for field, problems in errors.items()
            )[:300]
    return str(body)[:300]


def _hint_for(status: int) -> str:
    if status in (401, 403):
        return (
            "the registration token was rejected or expired; start the "
            "registration again from the platform"
        )
    if status in (400, 422):
        return (
            "the platform rejected the tool's configuration; the message above says why"
        )
    return "try again later; if it keeps failing, register the tool manually"


def new_public_id() -> str:
    return str(uuid.uuid4())

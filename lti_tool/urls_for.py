"""Absolute URLs of the bridge's LTI and webhook endpoints under the public base URL.

{base}/lti/{registration}/login          OIDC login initiation
{base}/lti/{registration}/launch         launch (redirect URI and target link)
{base}/lti/{registration}/jwks           the tool's public keys for that registration
{base}/webhooks/moodle/{connection}      Moodle events of one LMS connection
"""

from __future__ import annotations

from lti_tool.bridge import current_bridge
from lti_tool.models import Registration


def base_url() -> str:
    return current_bridge().settings.public_base_url


def lti_login_url(base: str, registration_public_id: str) -> str:
    return f"{base}/lti/{registration_public_id}/login"


def lti_launch_url(base: str, registration_public_id: str) -> str:
    return f"{base}/lti/{registration_public_id}/launch"


def lti_jwks_url(base: str, registration_public_id: str) -> str:
    return f"{base}/lti/{registration_public_id}/jwks"


def moodle_webhook_url(base: str, connection_public_id: str) -> str:
    return f"{base}/webhooks/moodle/{connection_public_id}"


def launch_url_of(registration: Registration) -> str:
    return lti_launch_url(base_url(), registration.public_id)

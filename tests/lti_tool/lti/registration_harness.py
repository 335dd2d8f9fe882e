"""Helpers for LTI Dynamic Registration tests: links and the platform's request."""

from __future__ import annotations

import requests

from lti_tool.demo.peers.registration_platform import RegistrationPlatform
from lti_tool.lti.registration_links import issue_registration_link, registration_url


def new_link_url(db, tool_url: str, provider_id: int, **options) -> str:
    """Create and commit an open registration link of the provider; return its URL."""
    _, token = issue_registration_link(
        db, provider_id=provider_id, actor="os:test", **options
    )
    db.commit()
    return registration_url(tool_url, token)


def register(
    url: str,
    platform: RegistrationPlatform,
    token: str | None = None,
    configuration_url: str | None = None,
) -> requests.Response:
    """Open the registration URL as the platform's registration window does."""
    return requests.get(
        url,
        params={
            "openid_configuration": configuration_url or platform.configuration_url,
            "registration_token": token or platform.registration_token,
        },
        headers={"Accept": "text/html"},
        timeout=10,
    )

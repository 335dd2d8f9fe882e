"""Admin actions shared by the `hpass-bridge` commands and the JSON API.

Each action takes a session and the provider it acts for, checks its input, makes
the change and records an audit event in the same transaction, and leaves the
commit to the caller. A rejected action raises `ActionError` before it writes
anything, so nothing is half-written:

    ActionError            the action failed (CLI exit 1, HTTP 409 or 502)
    └── InvalidInput       a value the caller must correct (CLI exit 2, HTTP 400)
        └── NotFound       an unknown slug or id (CLI exit 2, HTTP 404)
"""

from __future__ import annotations

import getpass
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from badge_engine.models import Provider
from lti_tool.accounts import record_audit


class ActionError(Exception):
    """An action could not be done; the message names the value and the fix.

    `message` names the fix as an operator at the command line takes it. Where the
    fix is a command, `api_message` names it as a JSON API client takes it: a
    route or a body field. The API's error response contains `api_message`.
    """

    code = "failed"
    http_status = 409
    exit_code = 1

    def __init__(
        self, message: str, *, code: str | None = None, api_message: str | None = None
    ) -> None:
        super().__init__(message)
        self.message = message
        self.api_message = api_message or message
        if code:
            self.code = code


class InvalidInput(ActionError):
    code = "invalid_input"
    http_status = 400
    exit_code = 2


class NotFound(InvalidInput):
    code = "not_found"
    http_status = 404


class LmsUnreachable(ActionError):
    """The LMS did not respond or rejected the bridge's credentials."""

    code = "lms_unreachable"
    http_status = 502


def operating_system_actor() -> str:
    """Return the audit actor of a command run on the bridge's host."""
    try:
        user = getpass.getuser()
    except (KeyError, OSError):
        # No passwd entry and no USER variable (some containers).
        user = "unknown"

    return f"os:{user}"


def api_actor(token_public_id: str) -> str:
    return f"api-token:{token_public_id}"


def audit(
    session: Session,
    actor: str,
    action: str,
    *,
    provider_id: int | None,
    target: str | None = None,
    detail: dict[str, Any] | None = None,
) -> None:
    record_audit(
        session,
        provider_id=provider_id,
        actor=actor,
        action=action,
        target=target,
        detail=detail,
    )


def provider_by_slug(session: Session, slug: str) -> Provider:
    provider = session.scalar(select(Provider).where(Provider.slug == slug))
    if provider is None:
        raise NotFound(
            f"no provider with slug {slug!r}; see `hpass-bridge provider list`",
            code="provider_not_found",
        )

    return provider


def iso(value) -> str | None:
    return value.isoformat() if value is not None else None

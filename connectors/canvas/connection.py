"""Connect a Canvas site once, build its REST client, and test its credentials.

A connection is an `LmsConnection` of kind canvas plus a `CanvasCredential` row
with the REST API credentials, encrypted with the vault. OAuth2 tokens that the
client refreshes are written back at once, so the next worker starts with them.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from badge_engine.models import Achievement
from badge_engine.outbound import GuardedSession, OutboundPolicy
from badge_engine.vault import Vault
from connectors.canvas.client import CanvasClient
from connectors.canvas.errors import (
    CanvasAccessDenied,
    CanvasError,
    CanvasNotFound,
    CanvasNotModuleBased,
    CanvasScopeMissing,
    CanvasTokenInvalid,
    CanvasUnavailable,
)
from connectors.canvas.models import CanvasAuthKind, CanvasCredential
from connectors.canvas.tokens import OAuth2Token, OAuth2Tokens, StaticToken
from connectors.contacts import record_failure, record_success
from connectors.models import ConnectionState, ContactSource, LmsConnection, LmsKind

logger = logging.getLogger(__name__)

# The REST endpoints the bridge calls, by the Canvas scope a developer key with
# enforced scopes must grant for each.
REQUIRED_SCOPES = {
    "url:GET|/api/v1/courses/:course_id/modules": "/api/v1/courses/{course}/modules",
    "url:GET|/api/v1/courses/:course_id/enrollments": (
        "/api/v1/courses/{course}/enrollments"
    ),
    "url:GET|/api/v1/courses/:course_id/users/:user_id/progress": (
        "/api/v1/courses/{course}/users/self/progress"
    ),
    "url:GET|/api/v1/courses/:course_id/bulk_user_progress": (
        "/api/v1/courses/{course}/bulk_user_progress"
    ),
    "url:GET|/api/v1/courses/:course_id/students/submissions": (
        "/api/v1/courses/{course}/students/submissions"
    ),
    # A launch's custom lms_course_id and lms_user_id are checked with these three.
    # An admin's user id is looked up account-wide, everyone else's in the course.
    "url:GET|/api/v1/courses/:id": "/api/v1/courses/{course}",
    "url:GET|/api/v1/courses/:course_id/users/:id": "/api/v1/courses/{course}/users/self",
    "url:GET|/api/v1/users/:id": "/api/v1/users/self",
}
# Polls and event re-reads work without these; only launches whose custom ids differ
# from the LTI claims need them.
IDENTITY_SCOPES = frozenset(
    {
        "url:GET|/api/v1/courses/:id",
        "url:GET|/api/v1/courses/:course_id/users/:id",
        "url:GET|/api/v1/users/:id",
    }
)
# Canvas checks the scope before it looks the user up, so a 404 from this probe
# (the token's user is not in the course) still proves the scope is granted.
_NOT_FOUND_PROVES_SCOPE = "url:GET|/api/v1/courses/:course_id/users/:id"


@dataclass(frozen=True)
class ConnectionTestResult:
    """The outcome of a connection test: `missing` lists the Canvas scopes lacking.

    `token_invalid` is True when Canvas rejected the credentials themselves, and
    `site_unavailable` is True when Canvas could not be reached, failed or kept
    throttling (CanvasUnavailable).
    """

    ok: bool
    missing: tuple[str, ...]
    message: str
    problems: tuple[str, ...] = field(default=())
    token_invalid: bool = False
    site_unavailable: bool = False

    def as_dict(self) -> dict[str, Any]:
        return {
            "ok": self.ok,
            "missing_scopes": list(self.missing),
            "message": self.message,
            "problems": list(self.problems),
            "token_invalid": self.token_invalid,
        }


def connect_canvas(
    session: Session,
    vault: Vault,
    *,
    provider_id: int,
    name: str,
    base_url: str,
    access_token: str,
    client_id: str | None = None,
    client_secret: str | None = None,
    refresh_token: str | None = None,
    expires_at: datetime | None = None,
    jwks_url: str | None = None,
    home_shard: int | None = None,
) -> LmsConnection:
    """Store a Canvas connection and its encrypted credentials; the caller commits.

    With `client_id`, `client_secret` and `refresh_token` the credentials are an
    API developer key's OAuth2 tokens; without them, `access_token` is an admin
    access token.
    """
    oauth_parts = (client_id, client_secret, refresh_token)
    if any(oauth_parts) and not all(oauth_parts):
        raise ValueError(
            "OAuth2 credentials need client_id, client_secret and refresh_token "
            "together; for an admin access token give none of them"
        )
    if not access_token:
        raise ValueError("Canvas access token must be a non-empty string")

    connection = LmsConnection(
        provider_id=provider_id,
        kind=LmsKind.CANVAS.value,
        name=name,
        base_url=base_url.rstrip("/"),
    )
    session.add(connection)
    session.flush()
    credential = CanvasCredential(
        provider_id=provider_id,
        lms_connection_id=connection.id,
        auth_kind=(
            CanvasAuthKind.OAUTH2.value
            if client_id
            else CanvasAuthKind.ACCESS_TOKEN.value
        ),
        client_id=client_id,
        client_secret_encrypted=vault.encrypt(client_secret) if client_secret else None,
        access_token_encrypted=vault.encrypt(access_token),
        refresh_token_encrypted=vault.encrypt(refresh_token) if refresh_token else None,
        access_token_expires_at=expires_at,
        jwks_url=jwks_url,
        home_shard=home_shard,
    )
    session.add(credential)
    session.flush()
    return connection


def credential_for(session: Session, connection: LmsConnection) -> CanvasCredential:
    credential = session.scalar(
        select(CanvasCredential).where(
            CanvasCredential.provider_id == connection.provider_id,
            CanvasCredential.lms_connection_id == connection.id,
        )
    )
    if credential is None:
        raise CanvasTokenInvalid(
            f"Canvas connection {connection.id} has no REST API credentials; ask the "
            f"provider admin to connect Canvas with a developer key or access token."
        )
    return credential


def replace_access_token(
    session: Session, vault: Vault, connection: LmsConnection, access_token: str
) -> None:
    """Store `access_token`, encrypted, as the connection's REST API credential.

    The token replaces developer-key credentials too, so the connection then uses
    it as an admin access token, which is never refreshed. The Live Events setup
    (`jwks_url`, `home_shard`) stays. The caller commits.
    """
    credential = credential_for(session, connection)
    credential.auth_kind = CanvasAuthKind.ACCESS_TOKEN.value
    credential.access_token_encrypted = vault.encrypt(access_token)
    credential.access_token_expires_at = None
    credential.client_id = None
    credential.client_secret_encrypted = None
    credential.refresh_token_encrypted = None


def client_for_connection(
    session: Session,
    vault: Vault,
    connection: LmsConnection,
    *,
    http: GuardedSession | None = None,
    policy: OutboundPolicy | None = None,
    **client_options,
) -> CanvasClient:
    """Build the connection's REST client from its decrypted credentials.

    An OAuth2 refresh writes the new tokens, encrypted, to the credential row in
    `session`; the caller's commit stores them.
    """
    credential = credential_for(session, connection)
    access_token = vault.decrypt(
        credential.access_token_encrypted,
        what=f"Canvas access token of connection {connection.id}",
    ).decode()

    if credential.auth_kind == CanvasAuthKind.ACCESS_TOKEN.value:
        token = StaticToken(access_token)
    else:
        secret = vault.decrypt(
            credential.client_secret_encrypted,
            what=f"Canvas developer key secret of connection {connection.id}",
        ).decode()
        refresh_token = vault.decrypt(
            credential.refresh_token_encrypted,
            what=f"Canvas refresh token of connection {connection.id}",
        ).decode()

        def store(tokens: OAuth2Tokens) -> None:
            credential.access_token_encrypted = vault.encrypt(tokens.access_token)
            credential.refresh_token_encrypted = vault.encrypt(tokens.refresh_token)
            credential.access_token_expires_at = tokens.expires_at

        token = OAuth2Token(
            connection.base_url,
            credential.client_id,
            secret,
            OAuth2Tokens(
                access_token, refresh_token, credential.access_token_expires_at
            ),
            policy=policy,
            session=http,
            on_refresh=store,
        )
    return CanvasClient(
        connection.base_url, token, policy=policy, session=http, **client_options
    )


def mark_broken(connection: LmsConnection, error: CanvasError) -> None:
    """Record that the connection's credentials stopped working; the caller commits."""
    connection.state = ConnectionState.BROKEN.value
    connection.state_detail = str(error)
    logger.error(
        "Canvas connection marked broken: connection_id=%s provider_id=%s status=%s",
        connection.id,
        connection.provider_id,
        error.status_code,
    )


def test_connection(client: CanvasClient, course_id: str) -> ConnectionTestResult:
    """Call each endpoint the bridge needs on `course_id` and name missing scopes.

    A course the token's user can read is needed because Canvas checks scopes and
    permissions per endpoint. The progress probe requests the token's own user
    (`self`), so a 400 there (no module requirements, or the user is no student)
    proves that the scope is granted, as does a 404 from the course user probe.
    Throttling is retried by the client and never reported as a missing scope or
    permission.
    """
    missing: list[str] = []
    problems: list[str] = []
    for scope, template in REQUIRED_SCOPES.items():
        path = template.format(course=course_id)
        try:
            client.get_json(path, {"per_page": 1})
        except CanvasScopeMissing:
            missing.append(scope)
        except CanvasNotModuleBased:
            continue
        except CanvasNotFound as error:
            if scope != _NOT_FOUND_PROVES_SCOPE:
                problems.append(str(error))
        except (CanvasTokenInvalid, CanvasUnavailable) as error:
            return ConnectionTestResult(
                False,
                tuple(missing),
                str(error),
                (str(error),),
                token_invalid=isinstance(error, CanvasTokenInvalid),
                site_unavailable=isinstance(error, CanvasUnavailable),
            )
        except (CanvasAccessDenied, CanvasNotFound, CanvasError) as error:
            problems.append(str(error))

    if not missing and not problems:
        return ConnectionTestResult(
            True,
            (),
            f"Canvas at {client.base_url} grants every scope the bridge needs.",
        )

    parts = []
    if missing and isinstance(client.token, StaticToken):
        parts.append(
            "The access token lacks these scopes: "
            + ", ".join(missing)
            + ". Create a token that grants them (a token issued through a scoped "
            "developer key has only the key's scopes), then save it with "
            "`hpass-bridge connection set-token CONNECTION_ID --token-file FILE`."
        )
    elif missing:
        parts.append(
            "The developer key lacks these scopes: "
            + ", ".join(missing)
            + ". Add them under Admin > Developer Keys, then authorise the bridge again."
        )
    if missing and set(missing) <= IDENTITY_SCOPES:
        parts.append(
            "Until then the bridge keeps reading completions, but it rejects launches "
            "whose custom lms_course_id or lms_user_id differ from the LTI claims."
        )
    parts.extend(problems)
    return ConnectionTestResult(False, tuple(missing), " ".join(parts), tuple(problems))


def test_canvas_connection(
    session: Session,
    vault: Vault,
    connection: LmsConnection,
    *,
    course_id: str | None = None,
    **client_options,
) -> ConnectionTestResult:
    """Test a stored Canvas connection and record the outcome on it; the caller commits.

    Without `course_id` the test uses the first course that has an achievement on
    this connection. Rejected credentials mark the connection broken; a passing
    test marks a broken connection OK again.
    """
    if course_id is None:
        course_id = session.scalar(
            select(Achievement.lms_course_id)
            .where(
                Achievement.provider_id == connection.provider_id,
                Achievement.lms_connection_id == connection.id,
            )
            .order_by(Achievement.id)
            .limit(1)
        )
    if course_id is None:
        return ConnectionTestResult(
            False,
            (),
            "The test needs a Canvas course id, because Canvas checks scopes per "
            "course endpoint and no achievement names a course yet; pass one with "
            "--course.",
        )

    client_options.setdefault("max_retries", 3)
    try:
        client = client_for_connection(session, vault, connection, **client_options)
        result = test_connection(client, course_id)
    except CanvasTokenInvalid as error:
        result = ConnectionTestResult(False, (), str(error), token_invalid=True)

    reads_work = not result.problems and set(result.missing) <= IDENTITY_SCOPES
    if result.token_invalid:
        mark_broken(connection, CanvasTokenInvalid(result.message))
    elif result.missing and not reads_work:
        # Re-reads would fail on each missing scope, as they do in canvas_pipeline,
        # so the connection is broken, with the missing scopes as its detail.
        mark_broken(connection, CanvasScopeMissing(result.message))
    elif result.ok or (result.missing and reads_work):
        # Missing identity scopes alone stop no poll, so the connection stays OK
        # and the test's result carries the scopes to add.
        connection.state = ConnectionState.OK.value
        connection.state_detail = None
    if result.ok:
        record_success(session, connection, ContactSource.TEST)
    else:
        record_failure(session, connection, ContactSource.TEST, result.message)
    return result


# Their names start with "test", so pytest would collect them wherever a test
# module imports them.
test_connection.__test__ = False
test_canvas_connection.__test__ = False

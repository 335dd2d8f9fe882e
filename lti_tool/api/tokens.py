"""Per-provider API tokens for the JSON API under /api/v1.

A token reaches only its provider's data. It is shown once when created; the
bridge keeps its SHA-256 digest, so a leaked database does not leak usable tokens.
The token is random (256 bits), so a fast unsalted digest is enough: there is no
password to guess.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import uuid
from datetime import datetime

from sqlalchemy import ForeignKey, String, select
from sqlalchemy.orm import Mapped, Session, mapped_column

from badge_engine.db import Base, utcnow

TOKEN_PREFIX = "hpb_"  # noqa: S105 - the public prefix of every token
NAME_MAX = 200


class ApiToken(Base):
    """An API token of one provider; `revoked_at` set means it no longer works."""

    __tablename__ = "api_tokens"

    id: Mapped[int] = mapped_column(primary_key=True)
    provider_id: Mapped[int] = mapped_column(ForeignKey("providers.id"), index=True)
    public_id: Mapped[str] = mapped_column(
        String(36), unique=True, default=lambda: str(uuid.uuid4())
    )
    name: Mapped[str] = mapped_column(String(NAME_MAX))
    token_sha256: Mapped[str] = mapped_column(String(64), unique=True)
    created_by: Mapped[str] = mapped_column(String(200))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    last_used_at: Mapped[datetime | None]
    revoked_at: Mapped[datetime | None]


def token_digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def create_api_token(
    session: Session, *, provider_id: int, name: str, created_by: str
) -> tuple[ApiToken, str]:
    """Add a token row and return it with the plain token, which is never stored."""
    token = TOKEN_PREFIX + secrets.token_urlsafe(32)
    row = ApiToken(
        provider_id=provider_id,
        name=name,
        token_sha256=token_digest(token),
        created_by=created_by,
    )
    session.add(row)
    session.flush()

    return row, token


def find_active_token(session: Session, token: str) -> ApiToken | None:
    """Return the live token row matching `token`, or None."""
    if not token.startswith(TOKEN_PREFIX) or len(token) > 200:
        return None
    digest = token_digest(token)
    row = session.scalar(select(ApiToken).where(ApiToken.token_sha256 == digest))
    # The lookup is by digest, so timing reveals nothing about the token; the
    # constant-time compare guards against a collation that folds case.
    if row is None or not hmac.compare_digest(row.token_sha256, digest):
        return None
    if row.revoked_at is not None:
        return None

    return row

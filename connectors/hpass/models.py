"""Tables for delivering credentials to learners' portfolios.

PortfolioClient      the bridge registered as an OAuth client at one portfolio,
                     per provider (dynamic client registration)
PortfolioAccount     a learner's linked portfolio and its encrypted tokens
PortfolioLinkRequest an OAuth authorization in flight (state, PKCE verifier)
ObfConnection        a provider's Open Badge Factory API client credentials
ObfBadgeMapping      which OBF badge stands for one of the provider's achievements
Delivery             where one credential stands on one route
"""

from __future__ import annotations

import enum
from datetime import datetime

from sqlalchemy import ForeignKey, LargeBinary, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from badge_engine.db import Base, utcnow


class RouteName(str, enum.Enum):
    OBF = "obf"
    OB3_API = "ob3_api"
    BADGE_CONNECT = "badge_connect"


class PortfolioClient(Base):
    """The bridge's OAuth client registration at one portfolio, for one provider.

    Each provider registers separately, so the portfolio's consent page names the
    learner's provider. The URLs come from the portfolio's discovery
    document (OB 3.0) or manifest (Badge Connect) and were checked to be on the
    portfolio's own host.
    """

    __tablename__ = "portfolio_clients"

    id: Mapped[int] = mapped_column(primary_key=True)
    provider_id: Mapped[int] = mapped_column(ForeignKey("providers.id"), index=True)
    route: Mapped[str] = mapped_column(String(20))
    portfolio_url: Mapped[str] = mapped_column(String(500))
    name: Mapped[str] = mapped_column(String(200))
    api_base_url: Mapped[str] = mapped_column(String(500))
    authorization_url: Mapped[str] = mapped_column(String(500))
    token_url: Mapped[str] = mapped_column(String(500))
    scope: Mapped[str] = mapped_column(Text)
    client_id: Mapped[str] = mapped_column(String(500))
    client_secret_encrypted: Mapped[bytes | None] = mapped_column(LargeBinary)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)

    __table_args__ = (UniqueConstraint("provider_id", "route", "portfolio_url"),)


class AccountState(str, enum.Enum):
    LINKED = "linked"
    NEEDS_CONSENT = "needs_consent"
    UNLINKED = "unlinked"


class PortfolioAccount(Base):
    """A learner's linked portfolio that speaks the OB 3.0 API or Badge Connect.

    Tokens are encrypted with the vault key. Unlinking deletes them and keeps the
    row, because deliveries refer to it.
    """

    __tablename__ = "portfolio_accounts"

    id: Mapped[int] = mapped_column(primary_key=True)
    provider_id: Mapped[int] = mapped_column(ForeignKey("providers.id"), index=True)
    learner_id: Mapped[int] = mapped_column(ForeignKey("learners.id"))
    api_base_url: Mapped[str] = mapped_column(String(500))
    access_token_encrypted: Mapped[bytes | None] = mapped_column(LargeBinary)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    route: Mapped[str] = mapped_column(String(20), default=RouteName.OB3_API.value)
    client_id: Mapped[int | None] = mapped_column(ForeignKey("portfolio_clients.id"))
    refresh_token_encrypted: Mapped[bytes | None] = mapped_column(LargeBinary)
    access_token_expires_at: Mapped[datetime | None]
    state: Mapped[str] = mapped_column(String(15), default=AccountState.LINKED.value)
    state_detail: Mapped[str | None] = mapped_column(Text)

    __table_args__ = (UniqueConstraint("learner_id", "api_base_url"),)


class PortfolioLinkRequest(Base):
    """An authorization request sent to a portfolio, awaiting its callback.

    `state` is the OAuth state parameter; the PKCE code verifier is encrypted. The
    row is deleted when the callback arrives, whatever its outcome.
    """

    __tablename__ = "portfolio_link_requests"

    id: Mapped[int] = mapped_column(primary_key=True)
    provider_id: Mapped[int] = mapped_column(ForeignKey("providers.id"), index=True)
    learner_id: Mapped[int] = mapped_column(ForeignKey("learners.id"))
    client_id: Mapped[int] = mapped_column(ForeignKey("portfolio_clients.id"))
    state: Mapped[str] = mapped_column(String(100), unique=True)
    code_verifier_encrypted: Mapped[bytes] = mapped_column(LargeBinary)
    return_course_id: Mapped[int | None]
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class ObfConnection(Base):
    """A provider's Open Badge Factory account: API client id and encrypted secret."""

    __tablename__ = "obf_connections"

    id: Mapped[int] = mapped_column(primary_key=True)
    provider_id: Mapped[int] = mapped_column(ForeignKey("providers.id"), unique=True)
    api_base_url: Mapped[str] = mapped_column(String(500))
    client_id: Mapped[str] = mapped_column(String(200))
    client_secret_encrypted: Mapped[bytes] = mapped_column(LargeBinary)
    access_token_encrypted: Mapped[bytes | None] = mapped_column(LargeBinary)
    access_token_expires_at: Mapped[datetime | None]
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class ObfBadgeMapping(Base):
    """The OBF badge issued when the bridge issues one of the provider's achievements."""

    __tablename__ = "obf_badge_mappings"

    id: Mapped[int] = mapped_column(primary_key=True)
    provider_id: Mapped[int] = mapped_column(ForeignKey("providers.id"), index=True)
    achievement_id: Mapped[int] = mapped_column(
        ForeignKey("achievements.id"), unique=True
    )
    obf_badge_id: Mapped[str] = mapped_column(String(100))


class DeliveryStatus(str, enum.Enum):
    QUEUED = "queued"
    DELIVERED = "delivered"
    RETRYING = "retrying"
    NEEDS_CONSENT = "needs_consent"
    FAILED = "failed"
    NO_PORTFOLIO = "no_portfolio"
    REVOKED = "revoked"


class Delivery(Base):
    """The delivery status of one credential on one route to one portfolio.

    `remote_id` and `remote_url` record what the portfolio made of it: for OBF the
    event id and the URL of OBF's own assertion. A revoked credential's delivery
    goes through the same statuses again while its route passes the revocation
    on, and ends as `revoked`.
    """

    __tablename__ = "deliveries"

    id: Mapped[int] = mapped_column(primary_key=True)
    provider_id: Mapped[int] = mapped_column(ForeignKey("providers.id"), index=True)
    credential_id: Mapped[int] = mapped_column(ForeignKey("credentials.id"), index=True)
    route: Mapped[str] = mapped_column(String(20), default=RouteName.OB3_API.value)
    portfolio_account_id: Mapped[int | None] = mapped_column(
        ForeignKey("portfolio_accounts.id")
    )
    status: Mapped[str] = mapped_column(String(15), default=DeliveryStatus.QUEUED.value)
    attempts: Mapped[int] = mapped_column(default=0)
    last_http_status: Mapped[int | None]
    last_error: Mapped[str | None] = mapped_column(Text)
    delivered_at: Mapped[datetime | None]
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)
    remote_id: Mapped[str | None] = mapped_column(String(200))
    remote_url: Mapped[str | None] = mapped_column(String(500))
    first_failed_at: Mapped[datetime | None]
    # When the route sent the revocation to the destination. Empty until then, and
    # for good when the destination never held the credential.
    revocation_sent_at: Mapped[datetime | None]

    __table_args__ = (
        UniqueConstraint("credential_id", "route", "portfolio_account_id"),
    )

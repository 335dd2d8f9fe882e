"""Tables for delivering credentials to learners' portfolios."""

from __future__ import annotations

import enum
from datetime import datetime

from sqlalchemy import ForeignKey, LargeBinary, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from badge_engine.db import Base, utcnow


class PortfolioAccount(Base):
    """A learner's linked portfolio that speaks the Open Badges 3.0 API.

    The access token is encrypted with the vault key and deleted when the learner
    unlinks the portfolio.
    """

    __tablename__ = "portfolio_accounts"

    id: Mapped[int] = mapped_column(primary_key=True)
    provider_id: Mapped[int] = mapped_column(ForeignKey("providers.id"), index=True)
    learner_id: Mapped[int] = mapped_column(ForeignKey("learners.id"))
    api_base_url: Mapped[str] = mapped_column(String(500))
    access_token_encrypted: Mapped[bytes] = mapped_column(LargeBinary)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)

    __table_args__ = (UniqueConstraint("learner_id", "api_base_url"),)


class DeliveryStatus(str, enum.Enum):
    QUEUED = "queued"
    DELIVERED = "delivered"
    RETRYING = "retrying"
    FAILED = "failed"
    NO_PORTFOLIO = "no_portfolio"


class Delivery(Base):
    """Where one credential stands on one route to one portfolio."""

    __tablename__ = "deliveries"

    id: Mapped[int] = mapped_column(primary_key=True)
    provider_id: Mapped[int] = mapped_column(ForeignKey("providers.id"), index=True)
    credential_id: Mapped[int] = mapped_column(ForeignKey("credentials.id"), index=True)
    route: Mapped[str] = mapped_column(String(20), default="ob3_api")
    portfolio_account_id: Mapped[int | None] = mapped_column(
        ForeignKey("portfolio_accounts.id")
    )
    status: Mapped[str] = mapped_column(String(15), default=DeliveryStatus.QUEUED.value)
    attempts: Mapped[int] = mapped_column(default=0)
    last_http_status: Mapped[int | None]
    last_error: Mapped[str | None] = mapped_column(Text)
    delivered_at: Mapped[datetime | None]
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)

    __table_args__ = (UniqueConstraint("credential_id", "route", "portfolio_account_id"),)

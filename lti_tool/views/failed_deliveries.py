"""Rows of the admin's failed-deliveries page: what failed, for whom, and why.

A dead outbox message that delivers a credential is shown with its delivery: the
badge, the learner, the portfolio and the delivery's attempt count, which is the
count `hpass-bridge deliveries list` prints. Other dead messages show their kind.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import Session

from badge_engine.models import Achievement, Credential, Learner
from badge_engine.outbox import OutboxMessage
from connectors.hpass.deliveries import delivery_key
from connectors.hpass.models import Delivery, PortfolioAccount

DELIVERY_KEY_PREFIX = delivery_key(0)[:-1]


@dataclass(frozen=True)
class FailedRow:
    """One dead outbox message, with its delivery's details where it has one."""

    message: OutboxMessage
    delivery: Delivery | None = None
    badge: str | None = None
    learner: Learner | None = None
    portfolio: str | None = None

    @property
    def attempts(self) -> int:
        return self.delivery.attempts if self.delivery else self.message.attempts

    @property
    def reason(self) -> str:
        if self.delivery is not None and self.delivery.last_error:
            return self.delivery.last_error
        return self.message.last_error or ""


def _delivery_id(message: OutboxMessage) -> int | None:
    key = message.idempotency_key or ""
    number = key.removeprefix(DELIVERY_KEY_PREFIX)
    if key.startswith(DELIVERY_KEY_PREFIX) and number.isascii() and number.isdigit():
        return int(number)
    return None


def failed_rows(
    session: Session, provider_id: int, messages: list[OutboxMessage]
) -> list[FailedRow]:
    """Return a row per dead message, joined to the provider's own deliveries only."""
    wanted = {_delivery_id(message) for message in messages} - {None}
    found = {}
    if wanted:
        query = (
            select(Delivery, Achievement.name, Learner, PortfolioAccount.api_base_url)
            .join(Credential, Credential.id == Delivery.credential_id)
            .join(Achievement, Achievement.id == Credential.achievement_id)
            .join(Learner, Learner.id == Credential.learner_id)
            .outerjoin(
                PortfolioAccount,
                PortfolioAccount.id == Delivery.portfolio_account_id,
            )
            .where(
                Delivery.id.in_(wanted),
                Delivery.provider_id == provider_id,
                Credential.provider_id == provider_id,
            )
        )
        for delivery, badge, learner, portfolio in session.execute(query):
            found[delivery.id] = (delivery, badge, learner, portfolio)

    rows = []
    for message in messages:
        match = found.get(_delivery_id(message))
        if match is None:
            rows.append(FailedRow(message))
            continue
        delivery, badge, learner, portfolio = match
        rows.append(
            FailedRow(
                message,
                delivery=delivery,
                badge=badge,
                learner=learner,
                portfolio=portfolio,
            )
        )

    return rows

"""Delivery routes behind one interface, and the registry that picks one by name.

A route pushes one credential to one destination and returns the outcome. The
pipeline owns the bookkeeping (delivery status, outbox retries); a route only
talks to its destination and raises the errors of `connectors.hpass.errors`:

    DeliveryRetryable     try again later (5xx, 429, timeouts)
    DeliveryRejected      a person must act; the reason is shown
    DeliveryNeedsConsent  the learner must link the portfolio again

Every route is idempotent: delivering the same credential twice leaves one badge
at the destination. Routes register themselves by importing this module and
calling `register_route`; `route_for` loads the built-in ones on first use.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from sqlalchemy.orm import Session

from badge_engine.models import Credential
from badge_engine.outbound import OutboundPolicy
from badge_engine.vault import Vault
from connectors.hpass.models import Delivery, DeliveryStatus, PortfolioAccount


@dataclass
class DeliveryJob:
    """Everything a route needs for one attempt; writes go to `session`, uncommitted."""

    session: Session
    vault: Vault
    policy: OutboundPolicy
    delivery: Delivery
    credential: Credential
    account: PortfolioAccount | None
    timeout_seconds: float = 15.0
    # The bridge's public base URL, for routes that send links to its documents.
    base_url: str = ""


@dataclass(frozen=True)
class RouteOutcome:
    """The destination's result for one credential: status and remote ids."""

    http_status: int
    remote_id: str | None = None
    remote_url: str | None = None


class DeliveryRoute(Protocol):
    name: str

    def deliver(self, job: DeliveryJob) -> RouteOutcome:
        """Push the credential; raise a DeliveryError subclass when it did not land."""

    def revoke(self, job: DeliveryJob) -> RouteOutcome | None:
        """Tell the destination that the credential is revoked.

        Return the destination's result, or None when nothing was sent because
        the destination never received the credential or reads the revocation
        on its own. Raise a DeliveryError subclass when the notice did not land.
        """


def may_hold_credential(delivery: Delivery) -> bool:
    """Tell whether the destination may hold the credential of `delivery`.

    True once it landed, and also while an earlier attempt is being retried,
    because a request that timed out may have been stored all the same. A
    delivery that was never tried, or that the destination rejected, left
    nothing there.
    """
    if delivery.delivered_at is not None:
        return True

    return delivery.status == DeliveryStatus.RETRYING.value


_ROUTES: dict[str, DeliveryRoute] = {}


def register_route(route: DeliveryRoute) -> DeliveryRoute:
    _ROUTES[route.name] = route
    return route


def _load_builtin_routes() -> None:
    import connectors.hpass.badge_connect  # noqa: F401
    import connectors.hpass.ob3_api  # noqa: F401
    import connectors.hpass.obf  # noqa: F401


def route_for(name: str) -> DeliveryRoute:
    """Return the route registered under `name`; raise LookupError for unknown names."""
    if name not in _ROUTES:
        _load_builtin_routes()
    try:
        return _ROUTES[name]
    except KeyError:
        known = ", ".join(sorted(_ROUTES))
        raise LookupError(
            f"no delivery route {name!r}; known routes: {known}"
        ) from None

"""Errors from delivering to a portfolio.

DeliveryError                 base; carries the portfolio URL and credential id
├── DeliveryRetryable         5xx, 429, timeouts, connection errors: try again later
├── DeliveryRejected          4xx other than 429, 3xx, bad responses: a person acts
│   └── TokenExpired          401: the caller refreshes once and tries again
└── DeliveryNeedsConsent      the learner's token is gone, expired or revoked and
                              could not be refreshed: the learner links again
PortfolioSetupError           a discovery document, manifest or URL is unusable
"""

from __future__ import annotations

from datetime import timedelta


class DeliveryError(Exception):
    def __init__(
        self,
        message: str,
        *,
        portfolio_url: str,
        credential_id: str,
        http_status: int | None = None,
    ) -> None:
        super().__init__(message)
        self.portfolio_url = portfolio_url
        self.credential_id = credential_id
        self.http_status = http_status


class DeliveryRetryable(DeliveryError):
    def __init__(self, *args, retry_after: timedelta | None = None, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.retry_after = retry_after


class DeliveryRejected(DeliveryError):
    pass


class DeliveryNeedsConsent(DeliveryError):
    pass


class TokenExpired(DeliveryRejected):
    """The portfolio rejected a stored access token with 401.

    A caller that cannot refresh treats it as the rejection it is.
    """


class PortfolioSetupError(ValueError):
    """A portfolio URL, discovery document or registration response is unusable.

    Raised while linking or configuring, before anything is stored.
    """

    def __init__(
        self, message: str, *, portfolio_url: str, unreachable: bool = False
    ) -> None:
        super().__init__(message)
        # True when the portfolio sent no usable response (connection failed, timed
        # out, 5xx or 429), so checking the address or trying later may help.
        self.unreachable = unreachable
        self.portfolio_url = portfolio_url

"""An outbound session whose requests share one total time budget.

A caller that waits for the LMS, such as the LMS check of a new badge behind a
reverse proxy, needs a response within a known time. A client's own timeouts apply
to each request, and retries, pages and token refreshes add up, so this session
gives every request only the time that is left of one budget.
"""

from __future__ import annotations

import time
from dataclasses import replace
from typing import Any

import requests

from badge_engine.outbound import (
    GuardedSession,
    OutboundLimits,
    OutboundPolicy,
    OutboundTimeout,
    redact_url,
)
from badge_engine.outbound.transport import PinnedAddressAdapter


class BudgetSession(GuardedSession):
    """A GuardedSession whose requests together end within `budget_seconds`.

    The budget starts when the session is built. Each request's connect timeout,
    read timeout and deadline are the time left, unless the client passes a smaller
    timeout. With a client timeout of at least the budget, a request that times out
    means that the budget ran out, and `ran_out` then turns true. A request started with no
    time left raises OutboundTimeout without being sent.

    Name resolution counts against the connect timeout (`timed_resolution`), so a
    resolver that hangs ends the request with OutboundTimeout, code
    `resolve_timeout`, when the time left runs out, and sets `ran_out` too.
    """

    def __init__(
        self, policy: OutboundPolicy, limits: OutboundLimits, budget_seconds: float
    ) -> None:
        super().__init__(policy, limits)
        adapter = PinnedAddressAdapter(policy, timed_resolution=True)
        self.mount("https://", adapter)
        self.mount("http://", adapter)
        self.budget_seconds = budget_seconds
        self.ran_out = False
        self._base_limits = limits
        self._ends_at = time.monotonic() + budget_seconds

    def request(self, method: str, url: str, **kwargs: Any) -> requests.Response:
        remaining = self._ends_at - time.monotonic()
        if remaining <= 0:
            self.ran_out = True
            raise OutboundTimeout(
                f"The time budget of {self.budget_seconds:g} s ran out before the "
                "request was sent",
                url=redact_url(url),
                code="budget",
                hint="Check that the service is up and responds promptly",
            )
        self.limits = replace(
            self._base_limits,
            connect_timeout_seconds=remaining,
            read_timeout_seconds=remaining,
            deadline_seconds=remaining,
        )
        try:
            return super().request(method, url, **kwargs)
        except OutboundTimeout:
            self.ran_out = True
            raise

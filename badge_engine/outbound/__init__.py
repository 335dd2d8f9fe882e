"""The one guarded HTTP client for every call the bridge makes to another system.

Build a `GuardedSession` from an `OutboundPolicy` (from configuration) and the
`OutboundLimits` for the kind of request; see `session` for what each request is
checked against. Errors are in `errors`; the verifier's document fetch is in
`documents`.
"""

from badge_engine.outbound.errors import (
    OutboundConnectionFailed,
    OutboundError,
    OutboundBlocked,
    OutboundStatusError,
    OutboundTimeout,
    OutboundTooLarge,
)
from badge_engine.outbound.policy import (
    OutboundLimits,
    OutboundPolicy,
    redact_url,
)
from badge_engine.outbound.session import GuardedSession

__all__ = [
    "GuardedSession",
    "OutboundConnectionFailed",
    "OutboundError",
    "OutboundLimits",
    "OutboundPolicy",
    "OutboundBlocked",
    "OutboundStatusError",
    "OutboundTimeout",
    "OutboundTooLarge",
    "redact_url",
]

"""The one guarded HTTP client for every call the bridge makes to another system.

Build a `GuardedSession` from an `OutboundPolicy` (from configuration) and the
`OutboundLimits` for the kind of request; see `session` for what each request is
checked against. Errors are in `errors`; the verifier's document fetch is in
`documents`.
"""

from badge_engine.outbound.errors import (
    OutboundBlocked,
    OutboundConnectionFailed,
    OutboundError,
    OutboundStatusError,
    OutboundTimeout,
    OutboundTlsFailed,
    OutboundTooLarge,
)
from badge_engine.outbound.policy import (
    KEY_SET_LIMITS,
    TOKEN_ENDPOINT_LIMITS,
    OutboundLimits,
    OutboundPolicy,
    redact_url,
)
from badge_engine.outbound.session import GuardedSession, guarded_session

__all__ = [
    "KEY_SET_LIMITS",
    "TOKEN_ENDPOINT_LIMITS",
    "GuardedSession",
    "OutboundConnectionFailed",
    "OutboundError",
    "OutboundLimits",
    "OutboundPolicy",
    "OutboundBlocked",
    "OutboundStatusError",
    "OutboundTimeout",
    "OutboundTlsFailed",
    "OutboundTooLarge",
    "guarded_session",
    "redact_url",
]

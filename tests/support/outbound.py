"""The outbound policy tests use: loopback allowed, as loopback development mode does."""

from badge_engine.outbound import OutboundPolicy

LOOPBACK_POLICY = OutboundPolicy(allow_loopback=True)

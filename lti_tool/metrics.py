"""`/metrics`: Prometheus counters, gauges and histograms of the award pipeline.

The figures are read from the database at scrape time, not counted in one process, so
one scrape of any web process reports the whole system however many web processes and
workers on however many machines share the database. Counters are totals of rows
that are never deleted (facts, credentials), so they only grow, as Prometheus
counters must.

Access: with HPASS_METRICS_TOKEN set, a scrape needs `Authorization: Bearer <token>`.
Without it every scrape is rejected with 403, because the figures name providers and
the bridge cannot tell a local scraper from a reverse proxy on the same host. Such a
proxy connects from loopback for every client and may pass on its client's address in
any header or none. Only in loopback development mode (HPASS_LOOPBACK_DEV) are
loopback clients served without a token. There a request carrying forwarding headers
counts as loopback only when its peer is in HPASS_TRUSTED_PROXIES and the forwarded
client address is itself loopback.
"""

from __future__ import annotations

import hmac
import ipaddress
import os
from datetime import timedelta

from flask import Blueprint, Flask, Response, current_app, request
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from prometheus_client.core import (
    CollectorRegistry,
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
)
from sqlalchemy import func, select

from badge_engine.db import utcnow
from badge_engine.models import CompletionFactRecord, Credential
from badge_engine.outbox import OutboxMessage, OutboxStatus
from connectors.hpass.models import Delivery
from lti_tool.errors import Forbidden, Unauthorized
from lti_tool.lti.proxy import is_trusted_proxy
from lti_tool.logs import get_logger

log = get_logger(__name__)
bp = Blueprint("metrics", __name__)

TOKEN_VARIABLE = "HPASS_METRICS_TOKEN"  # noqa: S105 - a variable name
# Seconds; the last bucket catches everything slower.
LAG_BUCKETS = (0.1, 0.5, 1, 2, 5, 10, 30, 60, 300, 1800, 3600)
LATENCY_BUCKETS = (0.1, 0.25, 0.5, 1, 2, 5, 10, 30, 60, 300)
# Rows read per histogram per scrape, so a huge backlog cannot make a scrape slow.
HISTOGRAM_SAMPLE_LIMIT = 10_000
LATENCY_WINDOW = timedelta(hours=1)
# WSGI keys of the request headers by which proxies pass on a client's address, host
# or scheme, besides every `X-Forwarded-*` header.
FORWARDING_HEADERS = {
    "HTTP_FORWARDED": "Forwarded",
    "HTTP_X_REAL_IP": "X-Real-IP",
    "HTTP_X_CLIENT_IP": "X-Client-IP",
    "HTTP_CLIENT_IP": "Client-IP",
    "HTTP_TRUE_CLIENT_IP": "True-Client-IP",
    "HTTP_CF_CONNECTING_IP": "CF-Connecting-IP",
    "HTTP_FASTLY_CLIENT_IP": "Fastly-Client-IP",
    "HTTP_X_CLUSTER_CLIENT_IP": "X-Cluster-Client-IP",
    "HTTP_X_ORIGINAL_FORWARDED_FOR": "X-Original-Forwarded-For",
    "HTTP_VIA": "Via",
}


def _histogram(
    name: str, doc: str, values: list[float], buckets
) -> HistogramMetricFamily:
    counts = []
    for bound in buckets:
        counts.append((str(float(bound)), sum(1 for value in values if value <= bound)))
    counts.append(("+Inf", len(values)))
    metric = HistogramMetricFamily(name, doc)
    metric.add_metric([], counts, sum_value=sum(values))
    return metric


class PipelineCollector:
    """Reads the pipeline's figures from the database for each scrape."""

    def __init__(self, bridge) -> None:
        self.bridge = bridge

    def collect(self):
        with self.bridge.session() as session:
            yield from self._events(session)
            yield from self._awards(session)
            yield from self._deliveries(session)
            yield from self._outbox(session)
            yield self._queue_lag(session)
            yield self._event_to_award(session)

    def _events(self, session):
        metric = CounterMetricFamily(
            "hpass_events_accepted",
            "Completion facts accepted and stored, by provider and source.",
            labels=["provider_id", "source"],
        )
        rows = session.execute(
            select(
                CompletionFactRecord.provider_id,
                CompletionFactRecord.source,
                func.count(),
            ).group_by(CompletionFactRecord.provider_id, CompletionFactRecord.source)
        )
        for provider_id, source, count in rows:
            metric.add_metric([str(provider_id), source], count)
        yield metric

    def _awards(self, session):
        metric = CounterMetricFamily(
            "hpass_awards_issued",
            "Credentials issued, by provider.",
            labels=["provider_id"],
        )
        rows = session.execute(
            select(Credential.provider_id, func.count()).group_by(
                Credential.provider_id
            )
        )
        for provider_id, count in rows:
            metric.add_metric([str(provider_id)], count)
        yield metric

    def _deliveries(self, session):
        metric = GaugeMetricFamily(
            "hpass_deliveries",
            "Deliveries to portfolios by current outcome (queued, delivered, "
            "retrying, failed, ...), by provider.",
            labels=["provider_id", "outcome"],
        )
        rows = session.execute(
            select(Delivery.provider_id, Delivery.status, func.count()).group_by(
                Delivery.provider_id, Delivery.status
            )
        )
        for provider_id, status, count in rows:
            metric.add_metric([str(provider_id), status], count)
        yield metric

    def _outbox(self, session):
        metric = GaugeMetricFamily(
            "hpass_outbox_messages",
            "Outbox messages not done, by kind and status (dead ones wait for an admin).",
            labels=["kind", "status"],
        )
        rows = session.execute(
            select(OutboxMessage.kind, OutboxMessage.status, func.count())
            .where(OutboxMessage.status != OutboxStatus.DONE.value)
            .group_by(OutboxMessage.kind, OutboxMessage.status)
        )
        for kind, status, count in rows:
            metric.add_metric([kind, status], count)
        yield metric

    def _queue_lag(self, session) -> HistogramMetricFamily:
        now = utcnow()
        due = session.scalars(
            select(OutboxMessage.next_attempt_at)
            .where(
                OutboxMessage.status == OutboxStatus.PENDING.value,
                OutboxMessage.next_attempt_at <= now,
            )
            .order_by(OutboxMessage.next_attempt_at)
            .limit(HISTOGRAM_SAMPLE_LIMIT)
        )
        lags = [(now - due_at).total_seconds() for due_at in due]
        return _histogram(
            "hpass_queue_lag_seconds",
            "How long each due outbox message has waited for a worker, now.",
            lags,
            LAG_BUCKETS,
        )

    def _event_to_award(self, session) -> HistogramMetricFamily:
        since = utcnow() - LATENCY_WINDOW
        rows = session.execute(
            select(Credential.issued_at, CompletionFactRecord.received_at)
            .join(
                CompletionFactRecord,
                (CompletionFactRecord.id == Credential.source_fact_id)
                & (CompletionFactRecord.provider_id == Credential.provider_id),
            )
            .where(Credential.issued_at >= since)
            .limit(HISTOGRAM_SAMPLE_LIMIT)
        )
        latencies = [
            max(0.0, (issued - received).total_seconds()) for issued, received in rows
        ]
        return _histogram(
            "hpass_event_to_award_seconds",
            "Time from storing a completion event to issuing its credential, for "
            "credentials issued in the last hour.",
            latencies,
            LATENCY_BUCKETS,
        )


def _check_access() -> None:
    token = os.environ.get(TOKEN_VARIABLE)
    if token:
        presented = request.headers.get("Authorization", "")
        if not hmac.compare_digest(presented.encode(), f"Bearer {token}".encode()):
            raise Unauthorized(
                "the metrics token is missing or wrong; send Authorization: Bearer "
                f"with the value of {TOKEN_VARIABLE}"
            )
        return

    if not current_app.extensions["hpass"].settings.loopback_dev:
        raise Forbidden(
            f"metrics need a token: {TOKEN_VARIABLE} is not set on the bridge. Set it "
            "to a long random value and send Authorization: Bearer with that value. "
            "Without a token, metrics are served only to loopback clients in "
            "loopback development mode (HPASS_LOOPBACK_DEV)"
        )

    # NOTE: a same-host proxy that adds no listed forwarding header still looks like
    # a loopback client here. That is accepted in loopback development mode only.
    forwarded = _forwarding_header_names(request.environ)
    if forwarded and not _forwarded_by_trusted_proxy(request.environ):
        raise Forbidden(
            "metrics are served without a token to loopback clients only, and this "
            f"request carries forwarding headers ({', '.join(forwarded)}) but does not "
            "come from a proxy in HPASS_TRUSTED_PROXIES that sets X-Forwarded-For, so "
            f"its client may be on another machine. Set {TOKEN_VARIABLE} and send "
            "Authorization: Bearer with its value, or list the proxy in "
            "HPASS_TRUSTED_PROXIES so that the forwarded client address decides"
        )

    # Behind a trusted proxy TrustedProxyMiddleware has already set remote_addr to
    # the last X-Forwarded-For entry, the address the rate limiter keys on too.
    address = request.remote_addr or ""
    try:
        loopback = ipaddress.ip_address(address).is_loopback
    except ValueError:
        loopback = False
    if not loopback:
        raise Forbidden(
            f"metrics are served to loopback only; set {TOKEN_VARIABLE} to scrape "
            "from another machine"
        )


def _forwarding_header_names(environ: dict) -> list[str]:
    """Return the names of the forwarding headers a request carries, sorted."""
    names = []
    for key in environ:
        if key in FORWARDING_HEADERS:
            names.append(FORWARDING_HEADERS[key])
        elif key.startswith("HTTP_X_FORWARDED"):
            names.append(key.removeprefix("HTTP_").replace("_", "-").title())
    return sorted(names)


def _forwarded_by_trusted_proxy(environ: dict) -> bool:
    """Return True when a trusted proxy sent the request and named its client.

    TrustedProxyMiddleware keeps the proxy's own address under
    `werkzeug.proxy_fix.orig` when it applies the headers. A trusted proxy that
    sends no X-Forwarded-For (only X-Real-IP, say) does not name the client in the
    header the bridge reads, so its request does not count.
    """
    original = environ.get("werkzeug.proxy_fix.orig")
    if original is None:
        return False
    networks = current_app.extensions["hpass_metrics_trusted_proxies"]
    if not is_trusted_proxy(original.get("REMOTE_ADDR"), networks):
        return False
    return bool(environ.get("HTTP_X_FORWARDED_FOR", "").strip())


@bp.get("/metrics")
def metrics() -> Response:
    _check_access()
    registry = current_app.extensions["hpass_metrics"]
    return Response(generate_latest(registry), content_type=CONTENT_TYPE_LATEST)


def register(app: Flask) -> None:
    """Serve `/metrics` from a registry of this app's pipeline figures."""
    registry = CollectorRegistry(auto_describe=False)
    registry.register(PipelineCollector(app.extensions["hpass"]))
    app.extensions["hpass_metrics"] = registry
    app.extensions["hpass_metrics_trusted_proxies"] = [
        ipaddress.ip_network(item, strict=False)
        for item in app.extensions["hpass"].settings.trusted_proxies
    ]
    app.register_blueprint(bp)

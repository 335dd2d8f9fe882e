"""The webhook endpoints' shared parts: cached connection lookups and group commit.

`register` gives each app one `WebhookConnections` cache and one `FactWriter`, whose
commits hand their outbox messages to the app's dispatcher.
"""

from __future__ import annotations

from flask import Flask, current_app

from badge_engine.fact_store import RecordedFact
from badge_engine.facts import CompletionFact
from lti_tool.dispatcher import dispatcher_for
from lti_tool.errors import ServiceUnavailable
from lti_tool.fact_writer import FactNotStored, FactWriter
from lti_tool.webhook_connections import WebhookConnection, WebhookConnections

CONNECTIONS = "hpass_webhook_connections"
WRITER = "hpass_fact_writer"


def register(app: Flask) -> None:
    bridge = app.extensions["hpass"]
    app.extensions[CONNECTIONS] = WebhookConnections(bridge.session_factory)
    app.extensions[WRITER] = FactWriter(
        bridge.engine,
        on_committed=lambda ids: dispatcher_for(app).submit(ids, marked=True),
    )


def stop(app: Flask, timeout: float = 5.0) -> bool:
    """Stop the app's fact writer and dispatcher threads after their queued work.

    For an app that is done (a test's app). Returns False when a thread did not
    end within `timeout` seconds each.
    """
    stopped = app.extensions[WRITER].stop(timeout)
    dispatcher = app.extensions.get("hpass_dispatcher")
    if dispatcher is not None:
        stopped = dispatcher.stop(timeout) and stopped
    return stopped


def webhook_connection(public_id: str, kind: str) -> WebhookConnection | None:
    """Return the connection of this kind with this public id, or None."""
    return current_app.extensions[CONNECTIONS].get(public_id, kind)


def store_event_fact(fact: CompletionFact) -> RecordedFact:
    """Store the fact and its evaluation message; return once they are committed.

    Raises:
        ServiceUnavailable: nothing was committed for this fact; the LMS must send
            the event again.
    """
    try:
        return current_app.extensions[WRITER].write(fact)
    except FactNotStored:
        raise not_stored_error(fact) from None


def not_stored_error(fact: CompletionFact) -> ServiceUnavailable:
    """Return the 503 for an event whose fact was not committed."""
    # The writer logged the cause. The database's message may quote the payload,
    # so it stays out of the response.
    return ServiceUnavailable(
        "the event could not be stored just now and nothing of it was saved; "
        "send it again (Moodle and Canvas retry failed deliveries)",
        code="not_stored",
        provider_id=fact.provider_id,
        connection_id=fact.lms_connection_id,
        source_event_id=fact.source_event_id,
    )

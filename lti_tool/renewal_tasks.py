"""The scheduled task that queues expiry reminders for every provider."""

from __future__ import annotations

from celery import shared_task
from sqlalchemy import select

from badge_engine.models import Provider
from badge_engine.outbox import OutboxStatus
from badge_engine.renewal import queue_expiry_reminders
from lti_tool.bridge import current_bridge
from lti_tool.logs import get_logger
from lti_tool.tasks import dispatch

log = get_logger(__name__)

# The scheduler runs this hourly. Each reminder's outbox key makes a repeat a
# no-op, so the interval only bounds how late a reminder can be.
QUEUE_EXPIRY_REMINDERS = "lti_tool.renewal_tasks.queue_all_expiry_reminders"


@shared_task(name=QUEUE_EXPIRY_REMINDERS)
def queue_all_expiry_reminders() -> int:
    """Queue due expiry reminders provider by provider and send the pending ones
    to the broker; return how many were sent."""
    bridge = current_bridge()
    queued = 0
    with bridge.session() as session:
        provider_ids = session.scalars(select(Provider.id).order_by(Provider.id)).all()
    for provider_id in provider_ids:
        with bridge.session() as session:
            messages = queue_expiry_reminders(
                session, provider_id, base_url=bridge.settings.public_base_url
            )
            fresh = [m.id for m in messages if m.status == OutboxStatus.PENDING.value]
            session.commit()
        dispatch(fresh)
        queued += len(fresh)
        if fresh:
            log.info(
                "expiry_reminders_queued", provider_id=provider_id, count=len(fresh)
            )
    return queued

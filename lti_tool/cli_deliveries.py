"""`hpass-bridge deliveries` and `hpass-bridge facts`: pushes to portfolios and the
completion facts the LMSs sent."""

from __future__ import annotations

import click

from badge_engine.facts import FactSource
from lti_tool.cli_support import (
    emit,
    json_option,
    operator_session,
    provider_option,
    send_committed,
    table,
)
from lti_tool.operations import audit, provider_by_slug
from lti_tool.operations.deliveries import (
    DELIVERY_STATUSES,
    discard_delivery,
    find_delivery,
    list_deliveries,
    list_facts,
    retry_delivery,
)

_limit_option = click.option(
    "--limit",
    type=click.IntRange(1, 1000),
    default=100,
    show_default=True,
    help="Maximum number of rows to list, newest first.",
)


@click.group()
def deliveries() -> None:
    """List, retry and discard deliveries of badges to portfolios."""


@deliveries.command("list")
@provider_option()
@click.option(
    "--status", type=click.Choice(DELIVERY_STATUSES), help="Only this status."
)
@_limit_option
@json_option
def list_(provider_slug, status, limit, as_json):
    """List a provider's deliveries, newest first."""
    with operator_session(as_json) as op:
        found = provider_by_slug(op.session, provider_slug)
        rows = list_deliveries(op.session, found.id, status, limit)
        audit(op.session, op.actor, "delivery.listed", provider_id=found.id)
        op.session.commit()
    emit(
        {"deliveries": rows},
        as_json,
        table(
            rows,
            ["id", "award", "route", "status", "attempts", "reason"],
            "no deliveries",
        ),
    )


@deliveries.command("retry")
@provider_option()
@click.argument("delivery_id", type=int)
@json_option
def retry(provider_slug, delivery_id, as_json):
    """Queue a delivery again now; a worker sends it."""
    with operator_session(as_json) as op:
        found = provider_by_slug(op.session, provider_slug)
        delivery = find_delivery(op.session, delivery_id, found.id)
        message_id = retry_delivery(op.session, op.actor, delivery)
        op.session.commit()
        send_committed(op.bridge, [message_id])
    emit(
        {"status": "queued", "delivery": delivery_id, "outbox_message": message_id},
        as_json,
        f"delivery {delivery_id} queued again",
    )


@deliveries.command("discard")
@provider_option()
@click.argument("delivery_id", type=int)
@click.option("--reason", help="Why the delivery is no longer needed. Required.")
@json_option
def discard(provider_slug, delivery_id, reason, as_json):
    """Give up a delivery that failed for good, recording why."""
    with operator_session(as_json) as op:
        found = provider_by_slug(op.session, provider_slug)
        delivery = find_delivery(op.session, delivery_id, found.id)
        discard_delivery(op.session, op.actor, delivery, reason)
        op.session.commit()
    emit(
        {"status": "discarded", "delivery": delivery_id},
        as_json,
        f"delivery {delivery_id} discarded",
    )


@click.group()
def facts() -> None:
    """Show the completion facts the LMSs reported."""


@facts.command("list")
@provider_option()
@click.option("--course", "course_id", help="Only this LMS course.")
@click.option("--learner", help="Only this learner (LMS user id).")
@click.option(
    "--source",
    type=click.Choice([item.value for item in FactSource]),
    help="Only facts from events or from polls.",
)
@_limit_option
@json_option
def facts_list(provider_slug, course_id, learner, source, limit, as_json):
    """List completion facts with their source and outcome, newest first."""
    with operator_session(as_json) as op:
        found = provider_by_slug(op.session, provider_slug)
        rows = list_facts(
            op.session,
            found.id,
            course_id=course_id,
            learner=learner,
            source=source,
            limit=limit,
        )
        audit(op.session, op.actor, "fact.listed", provider_id=found.id)
        op.session.commit()
    emit(
        {"facts": rows},
        as_json,
        table(
            rows,
            ["id", "course_id", "learner", "state", "source", "outcome"],
            "no completion facts",
        ),
    )

"""`hpass-bridge awards`: find, inspect, revoke and explain issued badges.

`awards explain` is for support staff asked "where is my badge?": it re-reads the
learner's progress from the LMS, evaluates the award rule and lists what is still
missing.
"""

from __future__ import annotations

import click

from lti_tool.cli_support import (
    emit,
    json_option,
    operator_session,
    provider_option,
    table,
)
from lti_tool.operations import audit, provider_by_slug
from lti_tool.operations.achievements import find_achievement
from lti_tool.operations.awards import (
    STATUSES,
    award_deliveries,
    award_dict,
    delivery_dict,
    explain,
    find_award,
    list_awards,
    revoke_award,
)


@click.group()
def awards() -> None:
    """List, show, revoke and explain awarded badges."""


@awards.command("list")
@provider_option()
@click.option("--course", "course_id", help="Only this LMS course.")
@click.option("--learner", help="Only this learner (LMS user id).")
@click.option("--achievement", "achievement_id", help="Only this achievement id.")
@click.option("--status", type=click.Choice(STATUSES), help="Only this status.")
@click.option(
    "--limit",
    type=click.IntRange(1, 1000),
    default=100,
    show_default=True,
    help="Maximum number of awards to list, newest first.",
)
@json_option
def list_(provider_slug, course_id, learner, achievement_id, status, limit, as_json):
    """List a provider's awards, newest first."""
    with operator_session(as_json) as op:
        found = provider_by_slug(op.session, provider_slug)
        rows = [
            award_dict(op.bridge, credential)
            for credential in list_awards(
                op.session,
                found.id,
                course_id=course_id,
                learner=learner,
                achievement_id=achievement_id,
                status=status,
                limit=limit,
            )
        ]
        audit(op.session, op.actor, "award.listed", provider_id=found.id)
        op.session.commit()
    emit(
        {"awards": rows},
        as_json,
        table(
            rows,
            ["id", "learner", "achievement_name", "status", "awarded_at"],
            "no awards",
        ),
    )


@awards.command("show")
@click.argument("award_id")
@json_option
def show(award_id, as_json):
    """Show one award with its deliveries to portfolios."""
    with operator_session(as_json) as op:
        credential = find_award(op.session, award_id)
        result = award_dict(op.bridge, credential)
        result["deliveries"] = [
            delivery_dict(item) for item in award_deliveries(op.session, credential)
        ]
        audit(
            op.session,
            op.actor,
            "award.shown",
            provider_id=credential.provider_id,
            target=f"credential:{award_id}",
        )
        op.session.commit()
    lines = [f"{k}: {v}" for k, v in result.items() if k != "deliveries"]
    lines += [
        f"  delivery {d['id']} via {d['route']}: {d['status']}"
        for d in result["deliveries"]
    ] or ["  no deliveries"]
    emit(result, as_json, "\n".join(lines))


@awards.command("revoke")
@click.argument("award_id")
@click.option(
    "--reason",
    help="Why the badge is withdrawn; verifiers show it to anyone. Required.",
)
@json_option
def revoke(award_id, reason, as_json):
    """Revoke an award for good, with a reason."""
    with operator_session(as_json) as op:
        credential = find_award(op.session, award_id)
        revoke_award(op.session, op.actor, credential, reason)
        op.session.commit()
        result = award_dict(op.bridge, credential)
    emit(
        {"status": "revoked", "award": result},
        as_json,
        f"award {award_id} revoked: {result['revocation_reason']}",
    )


@awards.command("explain")
@click.option("--achievement", "achievement_id", required=True, help="Achievement id.")
@click.option("--learner", required=True, help="The learner's LMS user id.")
@json_option
def explain_command(achievement_id, learner, as_json):
    """Say why a learner has or has not earned a badge, from the LMS's current data."""
    with operator_session(as_json) as op:
        found = find_achievement(op.session, achievement_id)
        result = explain(op.session, op.bridge, found, learner)
        audit(
            op.session,
            op.actor,
            "award.explained",
            provider_id=found.provider_id,
            target=f"achievement:{achievement_id}",
            detail={"learner": learner},
        )
        op.session.commit()
    if result["holds_award"]:
        text = f"learner {learner} holds award {result['holds_award']}"
    elif result["rule_met"]:
        text = (
            f"learner {learner} meets the rule (since {result['met_at']}) but "
            "holds no award yet; run `hpass-bridge achievement backfill "
            f"{achievement_id}`"
        )
    else:
        text = f"learner {learner} has not earned it; missing:\n" + "\n".join(
            f"  - {item}" for item in result["missing"]
        )
    emit(result, as_json, text)

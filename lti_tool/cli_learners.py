"""`hpass-bridge learner export|forget`: a learner's data on request, and erasure.

`forget` removes what identifies the person in the bridge: name, email, raw LMS
payloads of their completion facts and portfolio tokens. Issued credentials stay
(their recipient is a salted hash), because the learner may still hold and show
them; revoke them first with `awards revoke` when the learner asks for that too.
"""

from __future__ import annotations

import json

import click
from sqlalchemy import delete, select, update

from badge_engine.models import CompletionFactRecord, Credential, Learner
from connectors.hpass.models import Delivery, PortfolioAccount, PortfolioLinkRequest
from lti_tool.cli_support import emit, json_option, operator_session, provider_option
from lti_tool.operations import NotFound, audit, iso, provider_by_slug
from lti_tool.operations.awards import award_dict, delivery_dict


def _learners(session, provider_id: int, lms_user_id: str) -> list[Learner]:
    found = list(session.scalars(select(Learner).where(
        Learner.provider_id == provider_id, Learner.lms_user_id == lms_user_id)))
    if not found:
        raise NotFound(
            f"no learner with LMS user id {lms_user_id!r} at this provider; see "
            "`hpass-bridge awards list --provider SLUG`",
            code="learner_not_found",
        )
    return found


@click.group()
def learner() -> None:
    """Export or forget what the bridge stores about a learner."""


@learner.command("export")
@provider_option()
@click.argument("lms_user_id")
@json_option
def export(provider_slug, lms_user_id, as_json):
    """Print everything stored about a learner as one JSON document."""
    with operator_session(as_json) as op:
        found = provider_by_slug(op.session, provider_slug)
        records = []
        for row in _learners(op.session, found.id, lms_user_id):
            credentials = op.session.scalars(select(Credential).where(
                Credential.provider_id == found.id, Credential.learner_id == row.id))
            awards = []
            for credential in credentials:
                item = award_dict(op.bridge, credential)
                item["deliveries"] = [delivery_dict(d) for d in op.session.scalars(
                    select(Delivery).where(Delivery.provider_id == found.id,
                                           Delivery.credential_id == credential.id))]
                item["document"] = credential.document
                awards.append(item)
            facts = op.session.scalars(select(CompletionFactRecord).where(
                CompletionFactRecord.provider_id == found.id,
                CompletionFactRecord.lms_connection_id == row.lms_connection_id,
                CompletionFactRecord.lms_user_id == lms_user_id))
            records.append({
                "lms_user_id": row.lms_user_id, "name": row.name,
                "email": row.email, "created_at": iso(row.created_at),
                "awards": awards,
                "completion_facts": [
                    {"course_id": f.lms_course_id, "activity_id": f.activity_id,
                     "state": f.state, "occurred_at": iso(f.occurred_at),
                     "source": f.source} for f in facts],
            })
        audit(op.session, op.actor, "learner.exported", provider_id=found.id,
              target=f"learner:{lms_user_id}")
        op.session.commit()
    document = {"provider": provider_slug, "learners": records}
    emit(document, as_json, json.dumps(document, indent=2, default=str))


@learner.command("forget")
@provider_option()
@click.argument("lms_user_id")
@json_option
def forget(provider_slug, lms_user_id, as_json):
    """Erase a learner's name, email, raw payloads and portfolio tokens."""
    with operator_session(as_json) as op:
        found = provider_by_slug(op.session, provider_slug)
        rows = _learners(op.session, found.id, lms_user_id)
        ids = [row.id for row in rows]
        for row in rows:
            row.name = None
            row.email = None
            op.session.execute(update(CompletionFactRecord).where(
                CompletionFactRecord.provider_id == found.id,
                CompletionFactRecord.lms_connection_id == row.lms_connection_id,
                CompletionFactRecord.lms_user_id == lms_user_id,
            ).values(raw_payload=None))
        op.session.execute(update(PortfolioAccount).where(
            PortfolioAccount.provider_id == found.id,
            PortfolioAccount.learner_id.in_(ids),
        ).values(access_token_encrypted=None, refresh_token_encrypted=None,
                 state="unlinked"))
        op.session.execute(delete(PortfolioLinkRequest).where(
            PortfolioLinkRequest.provider_id == found.id,
            PortfolioLinkRequest.learner_id.in_(ids),
        ))
        audit(op.session, op.actor, "learner.forgotten", provider_id=found.id,
              target=f"learner:{lms_user_id}")
        op.session.commit()
    emit({"status": "forgotten", "learner": lms_user_id}, as_json,
         f"learner {lms_user_id} forgotten; issued badges stay valid (revoke them "
         "with `hpass-bridge awards revoke` if asked)")

"""Learner actions: export everything stored about a learner, or forget them.

`forget` removes what identifies the person in the bridge: name, email, raw LMS
payloads of their completion facts and portfolio tokens. Issued credentials stay
(their recipient is a salted hash), because the learner may still hold and show
them; revoke them first when the learner requests that too.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import delete, select, update
from sqlalchemy.orm import Session

from badge_engine.models import CompletionFactRecord, Credential, Learner, Provider
from connectors.hpass.models import Delivery, PortfolioAccount, PortfolioLinkRequest
from lti_tool.bridge import Bridge
from lti_tool.operations import NotFound, audit, iso
from lti_tool.operations.awards import award_dict, delivery_dict


def find_learners(
    session: Session, provider_id: int, lms_user_id: str
) -> list[Learner]:
    """Return the learner's rows, one per LMS connection of the provider."""
    found = list(
        session.scalars(
            select(Learner).where(
                Learner.provider_id == provider_id, Learner.lms_user_id == lms_user_id
            )
        )
    )
    if not found:
        problem = f"no learner with LMS user id {lms_user_id!r} at this provider"
        raise NotFound(
            f"{problem}; see `hpass-bridge awards list --provider SLUG`",
            code="learner_not_found",
            api_message=f"{problem}; see the learners of GET /api/v1/awards",
        )
    return found


def export_learner(
    session: Session, bridge: Bridge, actor: str, provider: Provider, lms_user_id: str
) -> dict[str, Any]:
    """Return everything stored about a learner as one document, and audit the read."""
    records = []
    for row in find_learners(session, provider.id, lms_user_id):
        credentials = session.scalars(
            select(Credential).where(
                Credential.provider_id == provider.id, Credential.learner_id == row.id
            )
        )
        awards = []
        for credential in credentials:
            item = award_dict(bridge, credential)
            item["deliveries"] = [
                delivery_dict(d)
                for d in session.scalars(
                    select(Delivery).where(
                        Delivery.provider_id == provider.id,
                        Delivery.credential_id == credential.id,
                    )
                )
            ]
            item["document"] = credential.document
            awards.append(item)
        facts = session.scalars(
            select(CompletionFactRecord).where(
                CompletionFactRecord.provider_id == provider.id,
                CompletionFactRecord.lms_connection_id == row.lms_connection_id,
                CompletionFactRecord.lms_user_id == lms_user_id,
            )
        )
        records.append(
            {
                "lms_user_id": row.lms_user_id,
                "name": row.name,
                "email": row.email,
                "created_at": iso(row.created_at),
                "awards": awards,
                "completion_facts": [
                    {
                        "course_id": f.lms_course_id,
                        "activity_id": f.activity_id,
                        "state": f.state,
                        "occurred_at": iso(f.occurred_at),
                        "source": f.source,
                    }
                    for f in facts
                ],
            }
        )
    audit(
        session,
        actor,
        "learner.exported",
        provider_id=provider.id,
        target=f"learner:{lms_user_id}",
    )

    return {"provider": provider.slug, "learners": records}


def forget_learner(
    session: Session, actor: str, provider: Provider, lms_user_id: str
) -> None:
    """Erase a learner's name, email, raw payloads and portfolio tokens."""
    rows = find_learners(session, provider.id, lms_user_id)
    ids = [row.id for row in rows]
    for row in rows:
        row.name = None
        row.email = None
        session.execute(
            update(CompletionFactRecord)
            .where(
                CompletionFactRecord.provider_id == provider.id,
                CompletionFactRecord.lms_connection_id == row.lms_connection_id,
                CompletionFactRecord.lms_user_id == lms_user_id,
            )
            .values(raw_payload=None)
        )
    session.execute(
        update(PortfolioAccount)
        .where(
            PortfolioAccount.provider_id == provider.id,
            PortfolioAccount.learner_id.in_(ids),
        )
        .values(
            access_token_encrypted=None, refresh_token_encrypted=None, state="unlinked"
        )
    )
    session.execute(
        delete(PortfolioLinkRequest).where(
            PortfolioLinkRequest.provider_id == provider.id,
            PortfolioLinkRequest.learner_id.in_(ids),
        )
    )
    audit(
        session,
        actor,
        "learner.forgotten",
        provider_id=provider.id,
        target=f"learner:{lms_user_id}",
    )

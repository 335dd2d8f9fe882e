"""Award actions: list, show, revoke and explain issued credentials."""

from __future__ import annotations

import re
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from badge_engine.errors import InvalidCredential
from badge_engine.issuing import find_live_credential
from badge_engine.models import Achievement, Credential, CredentialStatus, Learner
from badge_engine.rules import evaluate_award_rule
from badge_engine.status import AlreadyRevoked, revoke_credential
from badge_engine.urls import credential_url
from connectors.hpass.deliveries import requeue_for_revocation
from connectors.canvas.errors import CanvasNotFound
from connectors.hpass.models import Delivery
from connectors.moodle.errors import MoodleError
from lti_tool.bridge import Bridge
from lti_tool.course_activities import stored_activity_names
from lti_tool.operations import (
    ActionError,
    InvalidInput,
    NotFound,
    audit,
    iso,
)
from lti_tool.operations.achievements import lms_read_failed, roster_for
from lti_tool.operations.course_check import MOODLE_MISSING_RECORD

STATUSES = tuple(status.value for status in CredentialStatus)
LIST_LIMIT_MAX = 1000


def award_dict(bridge: Bridge, credential: Credential) -> dict[str, Any]:
    return {
        "id": credential.public_id,
        "url": credential_url(bridge.settings.public_base_url, credential.public_id),
        "achievement": credential.achievement.public_id,
        "achievement_name": credential.achievement.name,
        "course_id": credential.achievement.lms_course_id,
        "learner": credential.learner.lms_user_id,
        "status": credential.status,
        "awarded_at": iso(credential.awarded_at),
        "issued_at": iso(credential.issued_at),
        "revoked_at": iso(credential.revoked_at),
        "revocation_reason": credential.revocation_reason,
        "completion_reversed_at": iso(credential.completion_reversed_at),
    }


def delivery_dict(delivery: Delivery) -> dict[str, Any]:
    return {
        "id": delivery.id,
        "route": delivery.route,
        "status": delivery.status,
        "attempts": delivery.attempts,
        "last_error": delivery.last_error,
        "delivered_at": iso(delivery.delivered_at),
        "revocation_sent_at": iso(delivery.revocation_sent_at),
        "remote_url": delivery.remote_url,
        "updated_at": iso(delivery.updated_at),
    }


def list_awards(
    session: Session,
    provider_id: int,
    *,
    course_id: str | None = None,
    learner: str | None = None,
    achievement_id: str | None = None,
    status: str | None = None,
    limit: int = 100,
) -> list[Credential]:
    """Return the provider's credentials, newest first, filtered as given."""
    if status is not None and status not in STATUSES:
        raise InvalidInput(
            f"status {status!r} is unknown; use one of {', '.join(STATUSES)}",
            code="invalid_status",
        )
    if not 1 <= limit <= LIST_LIMIT_MAX:
        raise InvalidInput(
            f"limit must be from 1 to {LIST_LIMIT_MAX}, got {limit}",
            code="invalid_limit",
        )

    query = (
        select(Credential)
        .join(Achievement, Achievement.id == Credential.achievement_id)
        .join(Learner, Learner.id == Credential.learner_id)
        .where(
            Credential.provider_id == provider_id,
            Achievement.provider_id == provider_id,
            Learner.provider_id == provider_id,
        )
    )
    if course_id is not None:
        query = query.where(Achievement.lms_course_id == course_id)
    if learner is not None:
        query = query.where(Learner.lms_user_id == learner)
    if achievement_id is not None:
        query = query.where(Achievement.public_id == achievement_id)
    if status is not None:
        query = query.where(Credential.status == status)

    return list(session.scalars(query.order_by(Credential.id.desc()).limit(limit)))


def find_award(
    session: Session, public_id: str, provider_id: int | None = None
) -> Credential:
    query = select(Credential).where(Credential.public_id == public_id)
    if provider_id is not None:
        query = query.where(Credential.provider_id == provider_id)
    credential = session.scalar(query)
    if credential is None:
        problem = (
            f"no award {public_id!r}; give the UUID at the end of the credential's URL"
        )
        raise NotFound(
            f"{problem}, see `hpass-bridge awards list`",
            code="award_not_found",
            api_message=f"{problem}, see GET /api/v1/awards",
        )

    return credential


def award_deliveries(session: Session, credential: Credential) -> list[Delivery]:
    return list(
        session.scalars(
            select(Delivery)
            .where(
                Delivery.provider_id == credential.provider_id,
                Delivery.credential_id == credential.id,
            )
            .order_by(Delivery.id)
        )
    )


def revoke_award(
    session: Session, actor: str, credential: Credential, reason: str | None
) -> list[int]:
    """Revoke a live credential; return the delivery messages that pass it on."""
    if not (reason or "").strip():
        raise InvalidInput(
            "a revocation needs --reason, which verifiers show to anyone; say why "
            "the badge is withdrawn",
            code="reason_required",
        )
    try:
        event = revoke_credential(session, credential, reason, actor=actor)
    except AlreadyRevoked as error:
        raise ActionError(str(error), code="already_revoked") from None
    except InvalidCredential as error:
        raise InvalidInput(str(error), code="invalid_reason") from None
    message_ids = requeue_for_revocation(session, credential)
    audit(
        session,
        actor,
        "credential.revoked",
        provider_id=credential.provider_id,
        target=f"credential:{credential.public_id}",
        detail={
            "reason": event.reason,
            "course_id": credential.achievement.lms_course_id,
        },
    )

    return message_ids


def _is_missing_record(error: Exception) -> bool:
    """Tell whether the LMS reported that the requested user or course does not exist."""
    if isinstance(error, CanvasNotFound):
        return True
    return isinstance(error, MoodleError) and error.errorcode == MOODLE_MISSING_RECORD


# An activity in the rule engine's missing texts, as `badge_engine.rules` writes it.
ACTIVITY_IN_TEXT = re.compile(r"\bactivity ([^\s,]+)")


def name_activities(text: str, names: dict[str, str]) -> str:
    """Replace "activity <id>" in a missing text with the activity's name and id.

    `names` maps activity ids to the names the bridge last read from the LMS. An
    activity without a stored name keeps its id alone.
    """

    def named(match: re.Match) -> str:
        activity_id = match.group(1)
        name = names.get(activity_id)
        if not name:
            return match.group(0)
        return f"\u201c{name}\u201d [{activity_id}]"

    return ACTIVITY_IN_TEXT.sub(named, text)


def explain(
    session: Session,
    bridge: Bridge,
    achievement: Achievement,
    lms_user_id: str,
) -> dict[str, Any]:
    """Report whether a learner has the badge and what the LMS shows about the rule."""
    learner = session.scalar(
        select(Learner).where(
            Learner.provider_id == achievement.provider_id,
            Learner.lms_connection_id == achievement.lms_connection_id,
            Learner.lms_user_id == lms_user_id,
        )
    )
    credential = (
        find_live_credential(session, achievement, learner) if learner else None
    )
    roster = roster_for(bridge, session, achievement)
    try:
        progress = roster.read_progress(achievement.lms_course_id, lms_user_id)
    except ActionError:
        raise
    except (MoodleError, CanvasNotFound) as error:
        if not _is_missing_record(error):
            raise lms_read_failed(
                session,
                achievement,
                f"reading learner {lms_user_id!r} in course "
                f"{achievement.lms_course_id} from the LMS failed: {error}",
            ) from None
        raise NotFound(
            f"the LMS has no learner {lms_user_id!r} in course "
            f"{achievement.lms_course_id} of badge {achievement.public_id}; check "
            "the learner's LMS user id (`hpass-bridge awards list` shows the ids of "
            "learners with awards)",
            code="learner_not_found",
            api_message=f"the LMS has no learner {lms_user_id!r} in course "
            f"{achievement.lms_course_id} of badge {achievement.public_id}; check "
            "the learner's LMS user id (GET /api/v1/awards shows the ids of "
            "learners with awards)",
        ) from None
    except Exception as error:  # noqa: BLE001 - reported with the LMS named
        raise lms_read_failed(
            session,
            achievement,
            f"reading learner {lms_user_id!r} in course {achievement.lms_course_id} "
            f"from the LMS failed: {error}; check the learner id",
        ) from None
    outcome = evaluate_award_rule(achievement.award_rule, progress)
    names = stored_activity_names(
        session,
        achievement.provider_id,
        achievement.lms_connection_id,
        achievement.lms_course_id,
    )

    return {
        "achievement": achievement.public_id,
        "learner": lms_user_id,
        "known_learner": learner is not None,
        "holds_award": credential.public_id if credential else None,
        "rule_met": outcome.met,
        "met_at": iso(outcome.met_at),
        "missing": [name_activities(item, names) for item in outcome.missing],
        "award_rule": achievement.award_rule,
    }

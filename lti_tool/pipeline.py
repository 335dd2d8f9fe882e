"""The award pipeline's outbox handlers: evaluate a completion fact, deliver a credential.

Each handler runs in the transaction that also marks its outbox message done, so its
database effects and the message's completion commit together. Calls to other systems
happen before any write, and the outside effects are idempotent (a re-read is a read; a
portfolio upsert of the same credential id replaces it), so a handler cut short by a
crash can simply run again.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session

from badge_engine.db import utcnow
from badge_engine.fact_store import EVALUATE_FACT, record_fact
from badge_engine.facts import CompletionState, FactSource
from badge_engine.issuing import issue_credential
from badge_engine.models import (
    Achievement,
    CompletionFactRecord,
    Credential,
    CredentialStatus,
    FactOutcome,
    Learner,
)
from badge_engine.outbox import OutboxMessage, enqueue, enqueue_many
from badge_engine.rules import LearnerProgress, evaluate_award_rule
from connectors.hpass.deliveries import (
    delivery_key,
    plan_deliveries,
    plan_deliveries_in_bulk,
    run_delivery,
)
from connectors.hpass.models import Delivery, DeliveryStatus, PortfolioAccount
from connectors.hpass.routes import DeliveryJob
from connectors.contacts import (
    record_event,
    record_failure,
    record_reread,
)
from connectors.models import ConnectionState, ContactSource, LmsConnection, LmsKind
from connectors.moodle.client import MoodleClient
from connectors.moodle.errors import (
    MoodleAccessDenied,
    MoodleError,
    MoodleNoCompletionCriteria,
    MoodleResponseInvalid,
    MoodleTokenInvalid,
    MoodleUnavailable,
)
from connectors.moodle.progress import read_learner_progress as read_moodle_progress
from lti_tool.bridge import Bridge
from lti_tool.logs import get_logger
from lti_tool.mail import SEND_EMAIL, send_email_message

log = get_logger(__name__)

DELIVER_CREDENTIAL = "credential.deliver"
REREAD_MOODLE_LEARNER = "moodle.reread_learner"


class RetryLater(Exception):
    """The handler could not finish now; the outbox schedules another attempt."""

    def __init__(self, message: str, retry_after: timedelta | None = None) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class GiveUp(Exception):
    """Retrying cannot help; the message goes to the dead-letter list for a person."""


@dataclass
class HandlerContext:
    bridge: Bridge
    session: Session
    message: OutboxMessage
    # Outbox messages the handler added; they are sent once its transaction commits.
    follow_up_ids: list[int] = field(default_factory=list)


def moodle_client_for(bridge: Bridge, connection: LmsConnection) -> MoodleClient:
    token = bridge.vault.decrypt(
        connection.api_token_encrypted,
        what=f"API token of LMS connection {connection.id}",
    ).decode()
    timeout = bridge.settings.http_timeout_seconds
    return MoodleClient(
        connection.base_url,
        token,
        timeout=(3.05, timeout),
        policy=bridge.outbound_policy,
    )


def mark_connection_broken(
    session: Session, connection: LmsConnection, error: Exception
) -> None:
    """Mark a connection broken after Moodle rejected its token, which stops its
    polls and re-reads. The state detail gives the admin the next step."""
    connection.state = ConnectionState.BROKEN.value
    connection.state_detail = str(error)
    log.error(
        "lms_token_invalid",
        connection_id=connection.id,
        provider_id=connection.provider_id,
    )


def _read_progress(
    bridge: Bridge, session: Session, connection: LmsConnection, fact
) -> LearnerProgress:
    """Re-read the learner's state from the LMS: the event is only a trigger.

    Grades of AGS line items come from the latest AGS poll, which is itself a read
    of the platform. A connection without API credentials (registered by LTI only)
    has no other source, so its progress contains those grades alone.
    """
    from lti_tool.ags_progress import (
        learner_progress_from_ags,
        lms_api_available,
        with_ags_grades,
    )
    from lti_tool.models import AGS_ACTIVITY_PREFIX

    if not lms_api_available(session, connection):
        return learner_progress_from_ags(session, fact)

    if connection.kind == LmsKind.MOODLE.value:
        client = moodle_client_for(bridge, connection)
        try:
            progress = read_moodle_progress(
                client, fact.lms_course_id, fact.lms_user_id
            )
        except MoodleNoCompletionCriteria:
            # A course without completion tracking can still award on AGS grades.
            if not (fact.activity_id or "").startswith(AGS_ACTIVITY_PREFIX):
                raise
            return learner_progress_from_ags(session, fact)
    elif connection.kind == LmsKind.CANVAS.value:
        from lti_tool.canvas_pipeline import read_canvas_progress

        progress = read_canvas_progress(bridge, connection, fact)
    else:
        raise GiveUp(
            f"LMS connection {connection.id} has unsupported kind {connection.kind!r}"
        )

    record_reread(session, connection)
    return with_ags_grades(session, fact, progress)


def _learner_for(session: Session, fact: CompletionFactRecord) -> Learner:
    learner = session.scalar(
        select(Learner).where(
            Learner.provider_id == fact.provider_id,
            Learner.lms_connection_id == fact.lms_connection_id,
            Learner.lms_user_id == fact.lms_user_id,
        )
    )
    if learner is None:
        learner = Learner(
            provider_id=fact.provider_id,
            lms_connection_id=fact.lms_connection_id,
            lms_user_id=fact.lms_user_id,
        )
        session.add(learner)
        session.flush()
    return learner


def _finish_fact(fact: CompletionFactRecord, outcome: FactOutcome, detail: str) -> None:
    fact.outcome = outcome.value
    fact.outcome_detail = detail
    fact.processed_at = utcnow()


def evaluate_fact(context: HandlerContext) -> None:
    session, bridge, message = context.session, context.bridge, context.message
    fact = session.scalar(
        select(CompletionFactRecord).where(
            CompletionFactRecord.id == message.payload["fact_id"],
            CompletionFactRecord.provider_id == message.provider_id,
        )
    )
    if fact is None:
        raise GiveUp(
            f"completion fact {message.payload.get('fact_id')} of provider "
            f"{message.provider_id} does not exist"
        )
    log_ids = dict(
        fact_id=fact.id, provider_id=fact.provider_id, lms_user_id=fact.lms_user_id
    )

    is_reversal = not CompletionState(fact.state).counts_as_complete
    if is_reversal and not _live_credentials(session, fact):
        # A teacher set something back to incomplete: record it, never award on it.
        _finish_fact(fact, FactOutcome.REVERSAL, f"state {fact.state} awards nothing")
        log.info("fact_reversal_recorded", **log_ids)
        return

    connection = session.scalar(
        select(LmsConnection).where(
            LmsConnection.id == fact.lms_connection_id,
            LmsConnection.provider_id == fact.provider_id,
        )
    )
    if connection.disconnected:
        # The event came before the disconnect, or was accepted in the seconds a
        # webhook cache in another process still held the connection. The LMS can
        # no longer be read, so the fact is kept and never awards.
        _finish_fact(
            fact,
            FactOutcome.NOT_CONFIRMED,
            f"LMS connection {connection.public_id} was disconnected, so the "
            "learner's state could not be read again",
        )
        log.info("fact_skipped_connection_disconnected", **log_ids)
        return
    if connection.state == ConnectionState.BROKEN.value:
        raise RetryLater(
            f"LMS connection {connection.id} is marked broken; fix its token first",
            retry_after=timedelta(hours=1),
        )
    if fact.source == FactSource.EVENT.value:
        record_event(session, connection, fact.received_at)

    achievements = session.scalars(
        select(Achievement).where(
            Achievement.provider_id == fact.provider_id,
            Achievement.lms_connection_id == fact.lms_connection_id,
            Achievement.lms_course_id == fact.lms_course_id,
        )
    ).all()
    if not achievements:
        _finish_fact(fact, FactOutcome.NO_RULE_MET, "the course awards no achievement")
        return

    try:
        progress = _read_progress(bridge, session, connection, fact)
    except MoodleTokenInvalid as error:
        connection.state = ConnectionState.BROKEN.value
        connection.state_detail = str(error)
        log.error("lms_token_invalid", connection_id=connection.id, **log_ids)
        record_failure(session, connection, ContactSource.REREAD, error)
        session.commit()
        raise RetryLater(str(error), retry_after=timedelta(hours=1)) from None
    except MoodleNoCompletionCriteria as error:
        _finish_fact(fact, FactOutcome.NOT_CONFIRMED, str(error))
        return
    except (MoodleUnavailable, MoodleAccessDenied, MoodleResponseInvalid) as error:
        # These clear without a change to the fact: the site comes back, an admin
        # adds the missing function or capability, or a proxy stops returning
        # HTML. The outbox retries until then and keeps the fact pending.
        log.warning("lms_reread_failed", error=str(error), **log_ids)
        # The outbox rolls this transaction back, so the failure is committed here.
        record_failure(session, connection, ContactSource.REREAD, error)
        session.commit()
        raise RetryLater(str(error), retry_after=timedelta(minutes=15)) from None
    except MoodleError as error:
        # Moodle rejected the ids themselves (an unknown course or user, or a user
        # it does not track), so a retry would fail the same way.
        _finish_fact(fact, FactOutcome.NOT_CONFIRMED, str(error))
        log.warning("lms_reread_rejected", errorcode=error.errorcode, **log_ids)
        return

    learner = _learner_for(session, fact)
    awarded = []
    flagged = []
    for achievement in achievements:
        outcome = evaluate_award_rule(achievement.award_rule, progress)
        if not outcome.met:
            flagged += _flag_reversed_credentials(session, fact, achievement, learner)
            continue
        if is_reversal:
            # The re-read shows the rule still met, so the reversal changed nothing
            # this achievement depends on.
            continue
        # The award date is the LMS's completion time, never the time the event came.
        awarded_at = outcome.met_at or fact.occurred_at
        result = issue_credential(
            session,
            vault=bridge.vault,
            base_url=bridge.settings.public_base_url,
            achievement=achievement,
            learner=learner,
            awarded_at=awarded_at,
            source_fact_id=fact.id,
        )
        if result.created:
            context.follow_up_ids += queue_deliveries(session, result.credential)
            awarded.append(result.credential.public_id)
            log.info(
                "credential_issued",
                credential_id=result.credential.public_id,
                achievement_id=achievement.id,
                **log_ids,
            )

    if is_reversal:
        detail = f"state {fact.state} awards nothing"
        if flagged:
            detail += "; flagged for the instructor: " + ", ".join(flagged)
        _finish_fact(fact, FactOutcome.REVERSAL, detail)
        log.info("fact_reversal_recorded", flagged=flagged, **log_ids)
    elif awarded:
        _finish_fact(fact, FactOutcome.AWARDED, ", ".join(awarded))
    elif fact.grade_percent is not None:
        _finish_fact(
            fact,
            FactOutcome.NO_RULE_MET,
            f"grade {fact.grade_percent:g}% on {fact.activity_id} awards nothing "
            "new: no rule is met, or every met rule was awarded before",
        )
    elif progress.course_completed:
        _finish_fact(
            fact, FactOutcome.ALREADY_AWARDED, "every met rule was awarded before"
        )
    else:
        _finish_fact(
            fact,
            FactOutcome.NOT_CONFIRMED,
            "the LMS does not report the course as completed on re-read",
        )
        log.info("fact_not_confirmed", **log_ids)


def _live_credentials(session: Session, fact: CompletionFactRecord) -> list[Credential]:
    """Return the learner's live credentials from the achievements of the fact's course."""
    return session.scalars(
        select(Credential)
        .join(Achievement, Achievement.id == Credential.achievement_id)
        .join(Learner, Learner.id == Credential.learner_id)
        .where(
            Credential.provider_id == fact.provider_id,
            Credential.status == CredentialStatus.LIVE.value,
            Achievement.provider_id == fact.provider_id,
            Achievement.lms_connection_id == fact.lms_connection_id,
            Achievement.lms_course_id == fact.lms_course_id,
            Learner.provider_id == fact.provider_id,
            Learner.lms_user_id == fact.lms_user_id,
        )
    ).all()


def _flag_reversed_credentials(
    session: Session,
    fact: CompletionFactRecord,
    achievement: Achievement,
    learner: Learner,
) -> list[str]:
    """Flag the learner's live credential for an achievement whose rule is no longer
    met, so an instructor decides on revocation. Never revokes; flags once.

    Returns the public ids of the credentials flagged now.
    """
    credential = session.scalar(
        select(Credential).where(
            Credential.provider_id == fact.provider_id,
            Credential.achievement_id == achievement.id,
            Credential.learner_id == learner.id,
            Credential.status == CredentialStatus.LIVE.value,
        )
    )
    if credential is None or credential.completion_reversed_at is not None:
        return []

    credential.completion_reversed_at = fact.occurred_at
    credential.completion_reversal_fact_id = fact.id
    credential.completion_reversal_detail = (
        f"The LMS no longer reports this award's rule as met when re-read for "
        f"fact {fact.id} ({fact.source}: "
        f"{'course module ' + fact.activity_id if fact.activity_id else 'course'} "
        f"{fact.state} at {fact.occurred_at.isoformat()}). Revoke with a reason if "
        f"the learner no longer earns the badge."
    )
    log.warning(
        "credential_completion_reversed",
        credential_id=credential.public_id,
        fact_id=fact.id,
        provider_id=fact.provider_id,
        lms_user_id=fact.lms_user_id,
    )
    return [credential.public_id]


def queue_deliveries(session: Session, credential) -> list[int]:
    """Queue delivery of a new credential by every route its learner and provider set up.

    Returns the ids of the outbox messages added, to send after the commit.
    """
    message_ids = []
    for delivery in plan_deliveries(session, credential):
        message = enqueue(
            session,
            provider_id=credential.provider_id,
            kind=DELIVER_CREDENTIAL,
            payload={"delivery_id": delivery.id},
            idempotency_key=delivery_key(delivery.id),
        )
        message_ids.append(message.id)
    return message_ids


def queue_deliveries_in_bulk(
    session: Session, provider_id: int, credentials
) -> list[int]:
    """Queue delivery of many new credentials, as `queue_deliveries` does for one.

    `credentials` are `IssuedCredential`s from `issue_credentials_in_bulk` in this
    transaction. Returns the ids of the outbox messages, to send after the commit.
    """
    delivery_ids = plan_deliveries_in_bulk(session, provider_id, credentials)
    return enqueue_many(
        session,
        [
            {
                "provider_id": provider_id,
                "kind": DELIVER_CREDENTIAL,
                "payload": {"delivery_id": delivery_id},
                "idempotency_key": delivery_key(delivery_id),
            }
            for delivery_id in delivery_ids
        ],
    )


def deliver_credential(context: HandlerContext) -> None:
    """Run one delivery attempt by its route; retry transient failures, park the rest.

    The delivery's new status is committed before RetryLater or GiveUp is raised,
    because the task rolls the handler's transaction back on either. A delivery
    that needs the learner's consent finishes its message: linking the portfolio
    again requeues it, so a revoked token causes no retries.
    """
    session, bridge, message = context.session, context.bridge, context.message
    delivery = session.scalar(
        select(Delivery).where(
            Delivery.id == message.payload["delivery_id"],
            Delivery.provider_id == message.provider_id,
        )
    )
    if delivery is None:
        raise GiveUp(f"delivery {message.payload.get('delivery_id')} does not exist")
    account = None
    if delivery.portfolio_account_id is not None:
        account = session.scalar(
            select(PortfolioAccount).where(
                PortfolioAccount.id == delivery.portfolio_account_id,
                PortfolioAccount.provider_id == delivery.provider_id,
            )
        )
    credential = delivery_credential(session, delivery)
    job = DeliveryJob(
        session=session,
        vault=bridge.vault,
        policy=bridge.outbound_policy,
        delivery=delivery,
        credential=credential,
        account=account,
        timeout_seconds=bridge.settings.http_timeout_seconds,
        base_url=bridge.settings.public_base_url,
    )
    result = run_delivery(job)
    log_ids = dict(
        credential_id=credential.public_id,
        delivery_id=delivery.id,
        route=delivery.route,
        http_status=delivery.last_http_status,
    )
    if result.status == DeliveryStatus.RETRYING:
        session.commit()
        log.warning("credential_delivery_retrying", error=result.message, **log_ids)
        raise RetryLater(result.message, retry_after=result.retry_after)
    if result.status == DeliveryStatus.FAILED:
        session.commit()
        raise GiveUp(result.message)
    if result.status == DeliveryStatus.NEEDS_CONSENT:
        log.warning(
            "credential_delivery_needs_consent", error=result.message, **log_ids
        )
        return
    if result.status == DeliveryStatus.DELIVERED and _revoked_meanwhile(
        session, credential
    ):
        session.commit()
        log.info("credential_revoked_while_delivered", **log_ids)
        raise RetryLater(
            "the badge was revoked while it was being delivered; the next attempt "
            "passes the revocation on",
            retry_after=timedelta(0),
        )

    log.info("credential_" + result.status.value, **log_ids)


def _revoked_meanwhile(session: Session, credential) -> bool:
    """Tell whether the credential was revoked while its live copy was being sent.

    A revocation requeues only the deliveries that have landed, so a delivery in
    flight reads the status again before it commits. On PostgreSQL the row lock
    orders the two: this read waits for a revocation that has changed the row,
    and a revocation that starts later waits for this commit and then finds the
    delivery landed. On SQLite the session first writes the delivery's new state
    (autoflush), which takes the database's write lock, so no revocation commits
    between this read and the commit.
    """
    from badge_engine.models import Credential, CredentialStatus

    status = session.scalar(
        select(Credential.status)
        .where(
            Credential.id == credential.id,
            Credential.provider_id == credential.provider_id,
        )
        .with_for_update()
        .execution_options(populate_existing=True)
    )
    return status == CredentialStatus.REVOKED.value


def delivery_credential(session: Session, delivery: Delivery):
    from badge_engine.models import Credential

    return session.scalars(
        select(Credential).where(
            Credential.id == delivery.credential_id,
            Credential.provider_id == delivery.provider_id,
        )
    ).one()


def reread_moodle_learner(context: HandlerContext) -> None:
    """Re-read one learner's Moodle completion after a trigger (user_graded, an xAPI
    statement) and store what it finds as poll facts."""
    from connectors.moodle.poller import facts_for_learner

    session, bridge, message = context.session, context.bridge, context.message
    payload = message.payload
    connection = session.scalar(
        select(LmsConnection).where(
            LmsConnection.id == payload["connection_id"],
            LmsConnection.provider_id == message.provider_id,
        )
    )
    if connection is None:
        raise GiveUp(f"LMS connection {payload.get('connection_id')} does not exist")
    if connection.disconnected:
        log.info(
            "moodle_reread_skipped",
            reason="connection disconnected",
            connection_id=connection.id,
            provider_id=connection.provider_id,
        )
        return
    if connection.state == ConnectionState.BROKEN.value:
        raise RetryLater(
            f"LMS connection {connection.id} is marked broken; fix its token first",
            retry_after=timedelta(hours=1),
        )

    client = moodle_client_for(bridge, connection)
    try:
        facts = facts_for_learner(
            client, connection, payload["course_id"], payload["user_id"]
        )
    except MoodleTokenInvalid as error:
        mark_connection_broken(session, connection, error)
        record_failure(session, connection, ContactSource.REREAD, error)
        session.commit()
        raise RetryLater(str(error), retry_after=timedelta(hours=1)) from None
    except MoodleUnavailable as error:
        # The outbox rolls this transaction back, so the failure is committed here.
        record_failure(session, connection, ContactSource.REREAD, error)
        session.commit()
        raise RetryLater(str(error)) from None
    except MoodleError as error:
        raise GiveUp(str(error)) from None
    finally:
        client.close()

    record_reread(session, connection)
    for fact in facts:
        _, follow_up = record_fact(session, fact)
        if follow_up is not None:
            context.follow_up_ids.append(follow_up.id)


HANDLERS = {
    EVALUATE_FACT: evaluate_fact,
    DELIVER_CREDENTIAL: deliver_credential,
    REREAD_MOODLE_LEARNER: reread_moodle_learner,
    SEND_EMAIL: send_email_message,
}

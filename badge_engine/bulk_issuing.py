"""Issue many awards of one provider at once, each exactly once, in the caller's transaction.

`issue_credential` takes about a dozen statements per credential: the award lock, the
live-credential lookup, the signing key, a status list index and an insert in a
savepoint. A backfill page of hundreds of awards does each step once here:

1. one query finds the pairs that already hold a live credential;
2. the signing key is loaded and decrypted once;
3. status list indexes come from a `StatusIndexPool`, reserved in blocks by short
   transactions of their own, so two workers of one provider never wait for each
   other's pages;
4. one batched INSERT ... ON CONFLICT (live_key) DO NOTHING writes the credentials.

The unique `live_key` stays the final guard. An award that a concurrent transaction
issued between the lookup and the insert is skipped by the database, found again by
a second lookup and reported as already held, so the page neither fails nor issues
twice. No award lock is taken: the loser of such a race has only signed in vain.

A bad award (a learner the credential cannot name, another provider's row) is
reported in `BulkIssueResult.rejected` and the rest is issued. Renewal after a
course reset stays with `issue_credential`: a pair with a live credential is always
reported as held here.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from badge_engine import renewal
from badge_engine.db import dialect_insert, utcnow
from badge_engine.errors import BadgeEngineError
from badge_engine.issuing import CredentialSigner, live_key_of
from badge_engine.models import (
    Achievement,
    Credential,
    CredentialStatus,
    Learner,
    Provider,
    new_public_id,
)
from badge_engine.status import StatusIndexPool, bitstring_status_entry

# Keys per IN (...) list, well under SQLite's limit of 32,766 bound parameters.
LOOKUP_CHUNK = 1000


@dataclass(frozen=True)
class AwardRequest:
    """One learner earning one achievement, dated by the LMS's completion time."""

    achievement: Achievement
    learner: Learner
    awarded_at: datetime
    source_fact_id: int | None = None

    @property
    def live_key(self) -> str:
        return live_key_of(self.achievement.id, self.learner.id)


@dataclass(frozen=True)
class IssuedCredential:
    """A credential the bulk call inserted; its row is in the caller's transaction."""

    id: int
    public_id: str
    provider_id: int
    achievement_id: int
    learner_id: int


@dataclass(frozen=True)
class RejectedAward:
    """An award that was not issued, with the reason and what to do about it."""

    request: AwardRequest
    reason: str


@dataclass
class BulkIssueResult:
    issued: list[IssuedCredential] = field(default_factory=list)
    already_held: list[AwardRequest] = field(default_factory=list)
    rejected: list[RejectedAward] = field(default_factory=list)


def issue_credentials_in_bulk(
    session: Session,
    *,
    vault,
    base_url: str,
    provider: Provider,
    requests: Sequence[AwardRequest],
    status_indexes: StatusIndexPool,
) -> BulkIssueResult:
    """Issue each requested award whose pair has no live credential yet.

    Runs in the caller's transaction and never commits. Call
    `status_indexes.reserve(session, len(requests))` before that transaction writes,
    or the pool falls back to reserving inside it. A request repeated in `requests`
    counts as already held after the first one.
    """
    if status_indexes.provider_id != provider.id:
        raise ValueError(
            f"status_indexes belong to provider {status_indexes.provider_id}, "
            f"not to provider {provider.id}"
        )

    result = BulkIssueResult()
    candidates = _valid_requests(provider, requests, result)
    held = live_keys(session, provider.id, [request.live_key for request in candidates])
    to_issue = []
    # Inserting in live_key order keeps two pages that share pairs from each
    # waiting on a key the other holds (a deadlock on PostgreSQL).
    for request in sorted(candidates, key=lambda request: request.live_key):
        if request.live_key in held:
            result.already_held.append(request)
        else:
            held.add(request.live_key)
            to_issue.append(request)
    if not to_issue:
        return result

    signer = CredentialSigner.load(
        session, vault=vault, base_url=base_url, provider=provider
    )
    indexes = status_indexes.take(session, len(to_issue))
    rows = []
    signed = []
    for request, index in zip(to_issue, indexes, strict=True):
        try:
            rows.append(_credential_row(signer, request, index))
        except BadgeEngineError as error:
            # The index stays unused, a gap the status list allows.
            result.rejected.append(RejectedAward(request, f"signing failed: {error}"))
            continue
        signed.append(request)

    inserted = _insert_credentials(session, rows)
    lost = []
    for request, row in zip(signed, rows, strict=True):
        credential_id = inserted.get(row["public_id"])
        if credential_id is None:
            lost.append(request)
            continue
        result.issued.append(
            IssuedCredential(
                id=credential_id,
                public_id=row["public_id"],
                provider_id=provider.id,
                achievement_id=request.achievement.id,
                learner_id=request.learner.id,
            )
        )
    _report_lost_races(session, provider.id, lost, result)

    if result.issued and not provider.slug_frozen:
        # Credential ids contain the slug from now on (see Provider.slug_frozen).
        provider.slug_frozen = True
    return result


def _valid_requests(
    provider: Provider, requests: Iterable[AwardRequest], result: BulkIssueResult
) -> list[AwardRequest]:
    """Return the requests that can be issued; record the others as rejected."""
    valid = []
    for request in requests:
        reason = _rejection_reason(provider, request)
        if reason is None:
            valid.append(request)
        else:
            result.rejected.append(RejectedAward(request, reason))
    return valid


def _rejection_reason(provider: Provider, request: AwardRequest) -> str | None:
    achievement, learner = request.achievement, request.learner
    if achievement.provider_id != provider.id:
        return (
            f"achievement {achievement.id} belongs to provider "
            f"{achievement.provider_id}, not to provider {provider.id}"
        )
    if learner.provider_id != provider.id:
        return (
            f"learner {learner.id} belongs to provider {learner.provider_id}, "
            f"not to provider {provider.id}"
        )
    if not (learner.email or "").strip() and not (learner.lms_user_id or "").strip():
        return (
            f"learner {learner.id} has neither an email nor an LMS user id, so the "
            "credential cannot name its recipient; fix the learner's record in the "
            "LMS and run the backfill again"
        )
    if request.awarded_at.tzinfo is None:
        return (
            f"award date {request.awarded_at.isoformat()} has no time zone; "
            "pass a UTC-aware datetime"
        )
    return None


def live_keys(session: Session, provider_id: int, keys: Sequence[str]) -> set[str]:
    """Return the subset of `keys` that live credentials of the provider have."""
    found: set[str] = set()
    for start in range(0, len(keys), LOOKUP_CHUNK):
        chunk = keys[start : start + LOOKUP_CHUNK]
        found.update(
            session.scalars(
                select(Credential.live_key).where(
                    Credential.provider_id == provider_id,
                    Credential.live_key.in_(chunk),
                )
            )
        )
    return found


def _credential_row(
    signer: CredentialSigner, request: AwardRequest, status_index: int
) -> dict:
    public_id = new_public_id()
    valid_until = renewal.valid_until_for(request.achievement, request.awarded_at)
    document = signer.sign(
        achievement=request.achievement,
        learner=request.learner,
        credential_public_id=public_id,
        awarded_at=request.awarded_at,
        credential_status=bitstring_status_entry(
            signer.base_url, signer.provider.slug, status_index
        ),
        valid_until=valid_until,
    )
    return {
        "provider_id": signer.provider.id,
        "public_id": public_id,
        "achievement_id": request.achievement.id,
        "learner_id": request.learner.id,
        "live_key": request.live_key,
        "status": CredentialStatus.LIVE.value,
        "status_list_index": status_index,
        "awarded_at": request.awarded_at,
        "issued_at": utcnow(),
        "source_fact_id": request.source_fact_id,
        "document": document,
        "valid_until": valid_until,
    }


def _insert_credentials(session: Session, rows: list[dict]) -> dict[str, int]:
    """Insert the rows, skipping those whose live_key is taken; map public id to id.

    Without RETURNING, SQLAlchemy hands the rows to the driver's `executemany`,
    which psycopg 3 runs as one prepared statement in pipeline mode. A multi-row
    VALUES statement with RETURNING was slower, because psycopg parses each such
    long statement afresh. One lookup by public id then finds the inserted rows.
    """
    if not rows:
        return {}

    table = Credential.__table__
    statement = dialect_insert(
        session.get_bind().dialect.name, table
    ).on_conflict_do_nothing(index_elements=["live_key"])
    session.execute(statement, rows)

    public_ids = [row["public_id"] for row in rows]
    inserted: dict[str, int] = {}
    for start in range(0, len(public_ids), LOOKUP_CHUNK):
        chunk = public_ids[start : start + LOOKUP_CHUNK]
        inserted.update(
            (public_id, credential_id)
            for credential_id, public_id in session.execute(
                select(table.c.id, table.c.public_id).where(
                    table.c.public_id.in_(chunk)
                )
            )
        )
    return inserted


def _report_lost_races(
    session: Session,
    provider_id: int,
    lost: list[AwardRequest],
    result: BulkIssueResult,
) -> None:
    """Sort awards whose insert was skipped because a concurrent award took the pair."""
    if not lost:
        return

    held = live_keys(session, provider_id, [request.live_key for request in lost])
    for request in lost:
        if request.live_key in held:
            result.already_held.append(request)
        else:
            # The concurrent credential was revoked or renewed before this lookup.
            result.rejected.append(
                RejectedAward(
                    request,
                    f"a concurrent award of pair {request.live_key} was inserted and "
                    "then left the live state while this page ran; run the backfill "
                    "again to evaluate the pair afresh",
                )
            )

"""Parser for Canvas Live Events that a Data Services subscription delivers.

Canvas sends each event as JSON (`{"metadata": ..., "body": ...}`) or as a JWT
whose claims are that same object, signed with Canvas's rotating keys. Only
`course_completed` and `course_progress` matter for awards. Canvas has no event
for a single module item, sends `course_progress` debounced (not after every
step), and may send `course_completed` more than once, so an event is only a
trigger: the pipeline re-reads progress from the REST API before it awards.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any

from badge_engine.facts import CompletionFact, CompletionState, FactSource
from connectors.canvas.errors import CanvasEventInvalid
from connectors.canvas.ids import local_id, parse_id, shard_of

COURSE_COMPLETED = "course_completed"
COURSE_PROGRESS = "course_progress"
SUPPORTED_EVENTS = (COURSE_COMPLETED, COURSE_PROGRESS)
# Personal data in an event body that the bridge does not need for an audit.
_PERSONAL_USER_FIELDS = ("email", "name", "sortable_name", "short_name")


@dataclass(frozen=True)
class LiveEventResult:
    """The outcome of one Live Event: a fact, or the reason it produced none."""

    event_name: str | None
    fact: CompletionFact | None
    skip_reason: str | None = None


def parse_live_event(
    event: Any,
    *,
    provider_id: int,
    lms_connection_id: int,
    home_shard: int | None = None,
) -> LiveEventResult:
    """Turn a decoded Live Event into a completion fact, or a reason to skip it.

    `course_completed` gives a COMPLETE fact dated at `progress.completed_at`.
    `course_progress` gives the same fact when it reports every requirement done
    with a `completed_at`, so it deduplicates with the course_completed fact.
    Otherwise it gives nothing. A partial count is no reversal, because Canvas may
    deliver an older progress event after a newer one. Course and user ids become local
    ids. `home_shard` is the shard of the provider's root account, or None to take
    it from `metadata.root_account_id`.

    Raises:
        CanvasEventInvalid: the event lacks a field, carries a wrong one, holds an
            error object where progress counts belong, or names another shard.
    """
    if not isinstance(event, dict):
        raise CanvasEventInvalid(
            f"Live Event must be a JSON object with metadata and body, got "
            f"{type(event).__name__}.",
            field="event",
            received=type(event).__name__,
        )
    metadata = _object(event, "metadata", event.get("metadata"))
    event_name = metadata.get("event_name")
    if not isinstance(event_name, str) or not event_name:
        raise CanvasEventInvalid(
            "Live Event has no metadata.event_name; send events in Canvas's "
            "live-event format.",
            field="metadata.event_name",
            received=event_name,
        )
    if event_name not in SUPPORTED_EVENTS:
        return LiveEventResult(event_name, None, skip_reason="unsupported_event")

    body = _object(event, "body", event.get("body"))
    if home_shard is None and metadata.get("root_account_id") is not None:
        home_shard = (
            shard_of(parse_id(metadata["root_account_id"], "metadata.root_account_id"))
            or None
        )
    course = _object(body, "body.course", body.get("course"))
    user = _object(body, "body.user", body.get("user"))
    course_id = local_id(
        course.get("id"), field="body.course.id", home_shard=home_shard
    )
    user_id = local_id(user.get("id"), field="body.user.id", home_shard=home_shard)
    progress = _progress(body.get("progress"))

    completed_at = progress["completed_at"]
    if event_name == COURSE_COMPLETED and completed_at is None:
        raise CanvasEventInvalid(
            "course_completed event has no body.progress.completed_at, so there is "
            "no completion time to award from.",
            field="body.progress.completed_at",
            received=None,
        )
    if event_name == COURSE_PROGRESS and not progress["all_done"]:
        return LiveEventResult(event_name, None, skip_reason="progress_incomplete")

    fact = CompletionFact(
        provider_id=provider_id,
        lms_connection_id=lms_connection_id,
        lms_course_id=course_id,
        lms_user_id=user_id,
        activity_id=None,
        state=CompletionState.COMPLETE,
        occurred_at=completed_at,
        source=FactSource.EVENT,
        source_event_id=_event_id(event_name, metadata),
        raw_payload=_stored_payload(event),
    )
    return LiveEventResult(event_name, fact)


def _object(parent: dict, field: str, value: Any) -> dict:
    if not isinstance(value, dict):
        raise CanvasEventInvalid(
            f"Live Event field {field} must be a JSON object, got "
            f"{type(value).__name__}.",
            field=field,
            received=value if value is None else type(value).__name__,
        )
    return value


def _progress(value: Any) -> dict[str, Any]:
    progress = _object({}, "body.progress", value)
    if "error" in progress or "errors" in progress:
        raise CanvasEventInvalid(
            f"Live Event body.progress contains an error object instead of counts "
            f"({progress.get('error') or progress.get('errors')!r}); the course "
            f"probably has no module completion requirements.",
            field="body.progress",
            received=progress.get("error") or progress.get("errors"),
        )

    counts = {}
    for name in ("requirement_count", "requirement_completed_count"):
        count = progress.get(name)
        if isinstance(count, bool) or not isinstance(count, int) or count < 0:
            raise CanvasEventInvalid(
                f"Live Event body.progress.{name} must be a count (0 or more), got "
                f"{count!r}.",
                field=f"body.progress.{name}",
                received=count,
            )
        counts[name] = count

    completed_at = parse_timestamp(
        progress.get("completed_at"), "body.progress.completed_at"
    )
    total = counts["requirement_count"]
    all_done = (
        completed_at is not None
        and total > 0
        and counts["requirement_completed_count"] >= total
    )
    return {**counts, "completed_at": completed_at, "all_done": all_done}


def parse_timestamp(value: Any, field: str) -> datetime | None:
    """Parse Canvas's ISO 8601 time (`2025-01-01T12:00:00Z`) as aware UTC, or None."""
    if value is None:
        return None
    try:
        parsed = datetime.fromisoformat(value)
    except (TypeError, ValueError):
        raise CanvasEventInvalid(
            f"{field} must be an ISO 8601 time such as 2025-01-01T12:00:00Z, got "
            f"{value!r}.",
            field=field,
            received=value,
        ) from None
    if parsed.tzinfo is None:
        raise CanvasEventInvalid(
            f"{field} must carry a time zone (Canvas sends Z), got {value!r}.",
            field=field,
            received=value,
        )
    return parsed.astimezone(timezone.utc)


def _event_id(event_name: str, metadata: dict) -> str | None:
    job_id = metadata.get("request_id") or metadata.get("job_id")
    return f"{event_name}:{job_id}"[:200] if job_id else None


def _stored_payload(event: dict) -> dict:
    stored = copy.deepcopy(event)
    user = stored.get("body", {}).get("user")
    if isinstance(user, dict):
        for name in _PERSONAL_USER_FIELDS:
            user.pop(name, None)
    return stored

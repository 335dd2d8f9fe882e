"""The neutral shape every connector produces: one learner's progress on one thing.

Connectors turn Moodle events, Canvas Live Events and API polls into `CompletionFact`
values; the award pipeline stores them and evaluates award rules against them. The raw
LMS payload travels beside the fact so an auditor can see what the LMS really sent.
"""

from __future__ import annotations

import enum
import hashlib
import math
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any


class CompletionState(str, enum.Enum):
    """Completion states shared by every LMS.

    Moodle's `completionstate` 0-3 map to incomplete, complete, passed and failed;
    Canvas module requirements map to complete or incomplete.
    """

    INCOMPLETE = "incomplete"
    COMPLETE = "complete"
    PASSED = "passed"
    FAILED = "failed"

    @property
    def counts_as_complete(self) -> bool:
        return self in (CompletionState.COMPLETE, CompletionState.PASSED)


class FactSource(str, enum.Enum):
    EVENT = "event"
    POLL = "poll"


@dataclass(frozen=True)
class CompletionFact:
    """One learner's completion state for a course or an activity, as an LMS reported it.

    `activity_id` is None when the fact is about the whole course. `occurred_at` is the
    time the LMS says the change happened (never the arrival time), timezone-aware UTC.
    A grade fact also carries `grade_percent`, the score as a percentage (0-100) of
    its maximum.
    """

    provider_id: int
    lms_connection_id: int
    lms_course_id: str
    lms_user_id: str
    activity_id: str | None
    state: CompletionState
    occurred_at: datetime
    source: FactSource
    source_event_id: str | None = None
    raw_payload: dict[str, Any] | None = field(default=None, compare=False)
    grade_percent: float | None = None

    def __post_init__(self) -> None:
        if self.occurred_at.tzinfo is None:
            raise ValueError(
                f"occurred_at must be timezone-aware, got naive {self.occurred_at!r}"
            )
        if self.grade_percent is not None and not math.isfinite(self.grade_percent):
            raise ValueError(
                f"grade_percent must be a finite number, got {self.grade_percent!r}"
            )

    @property
    def dedupe_key(self) -> str:
        """Return the key under which a repeat of this fact is a no-op.

        Two facts with the same connection, course, learner, activity, state and LMS
        time describe the same change, whether they came from an event or a poll, so
        the source and event id are left out on purpose.

        A grade fact is keyed by its percentage in place of its time, because a
        grade source such as AGS results gives no grading time. Each poll reads the
        same score again, and only a changed score is a new fact.
        """
        occurred = self.occurred_at.astimezone(timezone.utc).isoformat()
        if self.grade_percent is not None:
            occurred = f"grade:{self.grade_percent:.6f}"
        parts = [
            str(self.lms_connection_id),
            self.lms_course_id,
            self.lms_user_id,
            self.activity_id or "",
            self.state.value,
            occurred,
        ]
        return hashlib.sha256("\x1f".join(parts).encode()).hexdigest()

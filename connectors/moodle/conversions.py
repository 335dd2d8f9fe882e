"""Conversions from Moodle's completion values to the neutral ones in facts.py."""

from __future__ import annotations

import enum
from datetime import datetime, timezone

from badge_engine.facts import CompletionState

# Moodle's completionstate values (COMPLETION_INCOMPLETE .. COMPLETION_COMPLETE_FAIL in
# lib/completionlib.php). Moodle 4.x also defines COMPLETION_COMPLETE_FAIL_HIDDEN (4),
# but completion_info maps it to 0 before it stores an activity's completionstate.
COMPLETION_STATES: dict[int, CompletionState] = {
    0: CompletionState.INCOMPLETE,
    1: CompletionState.COMPLETE,
    2: CompletionState.PASSED,
    3: CompletionState.FAILED,
}


class CompletionTracking(enum.IntEnum):
    """Completion tracking mode of a course module (Moodle's COMPLETION_TRACKING_*)."""

    NONE = 0
    MANUAL = 1
    AUTOMATIC = 2


def datetime_from_unix(seconds: int) -> datetime | None:
    """Convert Moodle's Unix time in seconds to an aware UTC datetime.

    Moodle stores 0 where there is no time, so 0 returns None.
    """
    if seconds == 0:
        return None

    return datetime.fromtimestamp(seconds, tz=timezone.utc)

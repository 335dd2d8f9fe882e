"""The scheduler process: Celery beat, stopped by SIGINT or SIGTERM without a traceback.

Celery's own beat handler (celery 5.7) saves the schedule and raises SystemExit from
inside the signal handler. When the signal lands while the main thread runs a
finalizer (a `__del__` or a weakref callback), Python cannot raise it there and
prints "Exception ignored in ..." with a traceback. Beat redirects stderr to a logger, so each of those lines is logged as a
warning. The handler here only sets beat's stop flag, and beat stops at its next
wake-up.
"""

from __future__ import annotations

import signal
from pathlib import Path
from types import FrameType

from celery import Celery
from celery.beat import Service

# Beat sleeps at most this long between two checks of its stop flag, so it notices
# SIGINT or SIGTERM within this many seconds. Each wake-up only compares the time
# with the schedule's next due entry.
STOP_CHECK_SECONDS = 1


def run_beat(celery: Celery, loglevel: str, schedule: Path) -> None:
    """Run beat in this process until SIGINT or SIGTERM, then save the schedule and return.

    An error while beat runs or saves its schedule is logged by Celery and raised.
    """

    class QuietStopBeat(celery.Beat):
        def install_sync_handler(self, service: Service) -> None:
            def request_stop(_signum: int, _frame: FrameType | None) -> None:
                # Service.stop logs one INFO line and sets beat's stop flag. It
                # raises nothing, so no exception can surface wherever the signal
                # lands. Beat then leaves its loop and saves the schedule.
                service.stop()

            signal.signal(signal.SIGINT, request_stop)
            signal.signal(signal.SIGTERM, request_stop)

    beat = QuietStopBeat(
        loglevel=loglevel,
        schedule=str(schedule),
        max_interval=STOP_CHECK_SECONDS,
    )
    beat.run()

"""A Celery worker for bench/backfill.py: the real worker, reading a preloaded roster.

Configured by the same HPASS_* environment variables as `python -m lti_tool worker`,
plus BENCH_LEARNERS (learners in the preloaded roster) and BENCH_READY_FILE (created
once the worker consumes tasks). Delivery messages go to a queue no benchmark worker
consumes, so they stay queued in the broker as they would wait for delivery workers.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

DELIVERY_QUEUE = "bench-deliveries"


def main() -> None:
    from celery.signals import worker_ready

    from bench.backfill import PreloadedRoster
    from lti_tool import backfill
    from lti_tool.app import create_app
    from lti_tool.config import load_settings
    from lti_tool.dispatcher import RUN_OUTBOX_MESSAGE

    app = create_app(load_settings(environ=dict(os.environ)))
    roster = PreloadedRoster(int(os.environ["BENCH_LEARNERS"]))
    backfill.register_roster("moodle", lambda bridge, connection: roster)
    celery = app.extensions["celery"]
    celery.conf.task_routes = {RUN_OUTBOX_MESSAGE: {"queue": DELIVERY_QUEUE}}

    ready_file = Path(os.environ["BENCH_READY_FILE"])
    worker_ready.connect(lambda **_: ready_file.touch(), weak=False)
    celery.worker_main(
        [
            "worker",
            "--loglevel=WARNING",
            "--pool=solo",
            "--without-gossip",
            "--without-mingle",
            "--without-heartbeat",
            f"--hostname={ready_file.stem}@%h",
        ]
    )


if __name__ == "__main__":
    main()

"""Hand committed outbox message ids to the broker from a background thread.

A request that stores an event should not wait for the broker: with the embedded
broker each send is a SQLite commit of its own. The request puts the ids on an
in-process queue and returns. One thread per process sends them in batches and marks
them dispatched in one transaction. Ids still queued when the process dies are not
lost, because the outbox rows are committed and the scheduler's sweep sends every
message that was never marked dispatched.
"""

from __future__ import annotations

import atexit
import queue
import threading

from badge_engine.outbox import mark_dispatched
from lti_tool.lti.serialize import database_writes
from lti_tool.logs import get_logger

log = get_logger(__name__)

RUN_OUTBOX_MESSAGE = "lti_tool.tasks.run_outbox_message"
MAX_BATCH = 500
FLUSH_SECONDS_AT_EXIT = 5.0


class Dispatcher:
    def __init__(self, bridge, celery) -> None:
        self._bridge = bridge
        self._celery = celery
        self._queue: queue.Queue[int] = queue.Queue()
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None

    def submit(self, message_ids: list[int]) -> None:
        for message_id in message_ids:
            self._queue.put(message_id)
        self._ensure_thread()

    def flush(self, timeout: float = FLUSH_SECONDS_AT_EXIT) -> bool:
        """Wait until every submitted id was handled; return False on timeout."""
        done = threading.Event()

        def wait() -> None:
            self._queue.join()
            done.set()

        threading.Thread(target=wait, daemon=True).start()
        return done.wait(timeout)

    def _ensure_thread(self) -> None:
        with self._lock:
            if self._thread is not None and self._thread.is_alive():
                return
            self._thread = threading.Thread(
                target=self._run, name="outbox-dispatcher", daemon=True
            )
            self._thread.start()

    def _next_batch(self) -> list[int]:
        batch = [self._queue.get()]
        while len(batch) < MAX_BATCH:
            try:
                batch.append(self._queue.get_nowait())
            except queue.Empty:
                break
        return batch

    def _run(self) -> None:
        while True:
            batch = self._next_batch()
            try:
                self._send(batch)
            except Exception as error:  # noqa: BLE001 - the sweep covers every failure
                log.warning(
                    "outbox_dispatch_failed", error=str(error), message_ids=batch[:20]
                )
            finally:
                for _ in batch:
                    self._queue.task_done()

    def _send(self, batch: list[int]) -> None:
        with self._celery.producer_or_acquire() as producer:
            for message_id in batch:
                self._celery.send_task(
                    RUN_OUTBOX_MESSAGE, args=[message_id], producer=producer
                )
        with database_writes(self._bridge.engine), self._bridge.session() as session:
            mark_dispatched(session, batch)
            session.commit()


def dispatcher_for(app) -> Dispatcher:
    dispatcher = app.extensions.get("hpass_dispatcher")
    if dispatcher is None:
        dispatcher = Dispatcher(app.extensions["hpass"], app.extensions["celery"])
        app.extensions["hpass_dispatcher"] = dispatcher
        # A short-lived process (a CLI command) sends what it queued before exiting;
        # anything left is picked up by the sweep.
        atexit.register(dispatcher.flush)
    return dispatcher

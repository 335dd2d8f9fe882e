"""Hand committed outbox message ids to the broker from a background thread.

A request that stores an event should not wait for the broker: with the embedded
broker each send is a SQLite commit of its own. The request puts the ids on an
in-process queue and returns. One thread per process sends them in batches and marks
them dispatched in one transaction. A single id goes as one `run_outbox_message`
task. Under load, ids go in tasks of up to `IDS_PER_TASK` that a worker runs one
after another, because building and publishing a Celery message cost as much CPU as
storing the event did, and with the embedded broker each one was a commit. Ids still queued when the process dies are not
lost, because the outbox rows are committed and the scheduler's sweep sends every
message that was never marked dispatched.
"""

from __future__ import annotations

import atexit
import queue
import threading
import time

from badge_engine.outbox import clear_dispatched, mark_dispatched
from lti_tool.lti.serialize import database_writes
from lti_tool.logs import get_logger

log = get_logger(__name__)

RUN_OUTBOX_MESSAGE = "lti_tool.tasks.run_outbox_message"
RUN_OUTBOX_MESSAGES = "lti_tool.tasks.run_outbox_messages"
MAX_BATCH = 500
# Small enough that a burst still spreads over several workers (10,000 events make
# 200 tasks). 50 rather than 20 took 5 % more events per second in the intake bench.
IDS_PER_TASK = 50
# When more ids wait behind the first, the thread waits this long (seconds) for
# others to gather, so a steady stream goes in full tasks, not one task per commit.
# A lone id is sent at once.
LINGER_SECONDS = 0.02
FLUSH_SECONDS_AT_EXIT = 5.0
# Queued by `Dispatcher.stop`: the thread that takes it ends.
_STOP = object()


class Dispatcher:
    def __init__(self, bridge, celery) -> None:
        self._bridge = bridge
        self._celery = celery
        # Entries are (message ids, whether they are stored as dispatched).
        self._queue: queue.Queue[tuple[list[int], bool]] = queue.Queue()
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None

    def submit(self, message_ids: list[int], *, marked: bool = False) -> None:
        """Queue committed messages for the broker.

        `marked` means the messages were stored as dispatched already (group commit
        does this), so only a failed send needs a write: it clears the mark, and the
        sweep sends them at its next run.
        """
        if not message_ids:
            return
        # One queue entry per call, not per id: each entry costs a lock round and
        # a wake-up of the dispatcher thread.
        self._queue.put((list(message_ids), marked))
        self._ensure_thread()

    def flush(self, timeout: float = FLUSH_SECONDS_AT_EXIT) -> bool:
        """Wait until every submitted id was handled; return False on timeout."""
        done = threading.Event()

        def wait() -> None:
            self._queue.join()
            done.set()

        threading.Thread(target=wait, daemon=True).start()
        return done.wait(timeout)

    def stop(self, timeout: float = FLUSH_SECONDS_AT_EXIT) -> bool:
        """Stop the thread once it has sent what was submitted before.

        Returns False when it did not end within `timeout` seconds. A later
        `submit` starts a new thread.
        """
        with self._lock:
            thread, self._thread = self._thread, None
        if thread is None:
            return True
        self._queue.put(_STOP)
        thread.join(timeout)
        return not thread.is_alive()

    def _ensure_thread(self) -> None:
        with self._lock:
            if self._thread is not None and self._thread.is_alive():
                return
            self._thread = threading.Thread(
                target=self._run, name="outbox-dispatcher", daemon=True
            )
            self._thread.start()

    def _next_batch(self) -> list[tuple[list[int], bool]] | None:
        first = self._queue.get()
        if first is _STOP:
            self._queue.task_done()
            return None
        batch = [first]
        # Only a lone id goes at once: one commit's several ids show a stream as
        # well as several entries do.
        if len(first[0]) > 1 or not self._queue.empty():
            time.sleep(LINGER_SECONDS)
        count = len(first[0])
        while count < MAX_BATCH:
            try:
                entry = self._queue.get_nowait()
            except queue.Empty:
                break
            if entry is _STOP:
                # Taken again after this batch, which ends the thread.
                self._queue.task_done()
                self._queue.put(_STOP)
                break
            batch.append(entry)
            count += len(entry[0])
        return batch

    def _run(self) -> None:
        while True:
            batch = self._next_batch()
            if batch is None:
                return
            ids = _ids(batch)
            try:
                self._send(ids)
                self._mark(_ids(batch, marked=False))
            except Exception as error:  # noqa: BLE001 - the sweep covers every failure
                log.warning(
                    "outbox_dispatch_failed", error=str(error), message_ids=ids[:20]
                )
                self._unmark(_ids(batch, marked=True))
            finally:
                for _ in batch:
                    self._queue.task_done()

    def _send(self, batch: list[int]) -> None:
        with self._celery.producer_or_acquire() as producer:
            for start in range(0, len(batch), IDS_PER_TASK):
                ids = batch[start : start + IDS_PER_TASK]
                if len(ids) == 1:
                    name, args = RUN_OUTBOX_MESSAGE, [ids[0]]
                else:
                    name, args = RUN_OUTBOX_MESSAGES, [ids]
                # Without argsrepr, Celery builds the same text with saferepr,
                # which took about 7 % of this thread's time in a profile.
                self._celery.send_task(
                    name,
                    args=args,
                    producer=producer,
                    argsrepr=repr(args),
                    kwargsrepr="{}",
                )

    def _mark(self, message_ids: list[int]) -> None:
        if not message_ids:
            return
        with database_writes(self._bridge.engine), self._bridge.session() as session:
            mark_dispatched(session, message_ids)
            session.commit()

    def _unmark(self, message_ids: list[int]) -> None:
        if not message_ids:
            return
        try:
            with (
                database_writes(self._bridge.engine),
                self._bridge.session() as session,
            ):
                clear_dispatched(session, message_ids)
                session.commit()
        except Exception as error:  # noqa: BLE001 - the sweep resends them later
            log.warning(
                "outbox_unmark_failed", error=str(error), message_ids=message_ids[:20]
            )


def _ids(batch: list[tuple[list[int], bool]], marked: bool | None = None) -> list[int]:
    """Return the ids of a batch, or only those whose entries have this `marked`."""
    ids = []
    for entry_ids, entry_marked in batch:
        if marked is None or entry_marked == marked:
            ids.extend(entry_ids)
    return ids


def dispatcher_for(app) -> Dispatcher:
    dispatcher = app.extensions.get("hpass_dispatcher")
    if dispatcher is None:
        dispatcher = Dispatcher(app.extensions["hpass"], app.extensions["celery"])
        app.extensions["hpass_dispatcher"] = dispatcher
        # A short-lived process (a CLI command) sends what it queued before exiting;
        # anything left is picked up by the sweep.
        atexit.register(dispatcher.flush)
    return dispatcher

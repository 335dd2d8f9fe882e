"""Group commit for webhook events: a writer thread stores the facts of many requests.

A request that stored its own fact paid for a transaction and a commit of its own, and
on SQLite the requests of one process also queued on the write lock, each handing the
GIL back and forth several times while holding it. Here a request parses its event,
puts the fact on a queue and waits. A writer thread takes everything queued, stores it
with `record_facts` in one transaction, and wakes each waiting request after the
commit, so concurrent requests share one commit. On SQLite the transaction contains
two multi-row INSERTs on the DB-API cursor. On PostgreSQL it is one statement sent in
autocommit mode, so a batch costs a single round trip to the server. SQLite gets one
writer thread per process; a database server gets `SERVER_WRITER_THREADS`, whose
commits overlap.

The guarantees of one transaction per request still hold:

- A request returns a result only after the commit that stored its fact and the
  fact's outbox message, so no event gets a 2xx before it is stored.
- When the batch fails, it is rolled back and each fact is stored again alone, so a
  fact the database rejects fails only its own request. One failure comes after the
  commit on PostgreSQL: a repeated fact whose stored row was deleted while the
  batch ran (`FactNotRecorded`). The batch's new facts then stay stored, their
  requests get the duplicate response, and the outbox sweep sends their messages.
- When a fact cannot be stored (the database is down, the writer failed, the commit
  took longer than `WAIT_SECONDS`), its request gets `FactNotStored` and returns
  503, and the LMS sends the event again.
  Nothing is half-written, because every transaction holds whole facts with their
  messages.
"""

from __future__ import annotations

import queue
import threading
import time
from collections.abc import Callable

from sqlalchemy.engine import Engine

from badge_engine.db import utcnow
from badge_engine.fact_store import FactBatchStatements, RecordedFact, record_facts
from badge_engine.facts import CompletionFact
from lti_tool.lti.serialize import database_writes
from lti_tool.logs import get_logger

log = get_logger(__name__)

# Facts per transaction. A full batch takes a few milliseconds to insert, so waiting
# requests are not held long, and it stays far below SQLite's parameter limit.
MAX_BATCH = 200
# How long a request waits for its commit before it returns 503. SQLite's busy
# timeout is 30 s, so a writer stuck behind another process gives up about then.
WAIT_SECONDS = 35.0
# Writer threads on a database server. While one waits for its commit to be flushed
# to disk, the others store the next batches. SQLite takes one writer at a time,
# so it gets one thread.
SERVER_WRITER_THREADS = 4
# A writer idle this long (seconds) gives its connection back to the pool, so idle
# apps (many in a test run) do not keep server connections open.
IDLE_SECONDS = 2.0


# Queued by `FactWriter.stop`: the writer thread that takes it ends.
_STOP = object()


class FactNotStored(RuntimeError):
    """The fact was not committed; the request must return 5xx so the LMS retries."""


class _Pending:
    """One request's fact, waiting for the commit that stores it.

    A plain lock, taken at creation and released when the outcome is known, is the
    signal: it costs less than an Event, which the writer would set once per fact.
    """

    __slots__ = ("fact", "_signal", "result", "error")

    def __init__(self, fact: CompletionFact) -> None:
        self.fact = fact
        self._signal = threading.Lock()
        self._signal.acquire()
        self.result: RecordedFact | None = None
        self.error: BaseException | None = None

    def wait(self, timeout: float) -> bool:
        return self._signal.acquire(timeout=timeout)

    def is_done(self) -> bool:
        return self.result is not None or self.error is not None

    def resolve(self, result: RecordedFact) -> None:
        self.result = result
        self._signal.release()

    def fail(self, error: BaseException) -> None:
        self.error = error
        self._signal.release()


class FactWriter:
    """Store facts from many request threads in shared transactions.

    `on_committed` receives the ids of the outbox messages of each commit, to hand them
    to the broker; it runs on the writer thread and must not block. The messages are
    stored as dispatched at commit time, so `on_committed` must send them or clear
    their `dispatched_at` when the broker fails, for the sweep to send them soon.
    """

    def __init__(
        self,
        engine: Engine,
        on_committed: Callable[[list[int]], None],
        *,
        max_batch: int = MAX_BATCH,
        threads: int | None = None,
    ) -> None:
        self._engine = engine
        self._on_committed = on_committed
        self._max_batch = max_batch
        if threads is None:
            threads = 1 if engine.dialect.name == "sqlite" else SERVER_WRITER_THREADS
        self._thread_count = threads
        self._queue: queue.SimpleQueue[_Pending] = queue.SimpleQueue()
        self._waiting = 0
        self._lock = threading.Lock()
        self._threads: list[threading.Thread] = []
        self._statements = FactBatchStatements(engine.dialect)
        # Each writer thread's own DB-API connection from the engine's pool, kept
        # between batches because taking one from the pool and resetting it on
        # return costs more than a small batch.
        self._local = threading.local()

    def write(
        self, fact: CompletionFact, timeout: float = WAIT_SECONDS
    ) -> RecordedFact:
        """Store one fact with its evaluation message and return after the commit.

        Raises:
            FactNotStored: the fact was not committed within `timeout` seconds, or its
                transaction failed. The fact may still be committed later, so a retry
                of the event is then stored as a duplicate.
        """
        pending = _Pending(fact)
        with self._lock:
            self._waiting += 1
        try:
            self._queue.put(pending)
            self._ensure_threads()
            finished = pending.wait(timeout)
        finally:
            with self._lock:
                self._waiting -= 1
        if not finished:
            raise FactNotStored(
                f"the fact was not stored within {timeout:.0f} s because the "
                "database is slow or locked"
            )
        if pending.error is not None:
            raise FactNotStored(str(pending.error)) from pending.error
        return pending.result

    def waiting(self) -> int:
        """Return how many `write` calls wait for their commit."""
        return self._waiting

    def _ensure_threads(self) -> None:
        if len(self._threads) == self._thread_count:
            return
        with self._lock:
            while len(self._threads) < self._thread_count:
                thread = threading.Thread(
                    target=self._run, name="fact-writer", daemon=True
                )
                thread.start()
                self._threads.append(thread)

    def stop(self, timeout: float = 5.0) -> bool:
        """Stop the writer threads once they have stored what is queued before.

        Returns False when a thread did not end within `timeout` seconds. A later
        `write` starts new threads.
        """
        with self._lock:
            threads, self._threads = self._threads, []
        for _ in threads:
            self._queue.put(_STOP)
        deadline = time.monotonic() + timeout
        for thread in threads:
            thread.join(max(0.0, deadline - time.monotonic()))
        return not any(thread.is_alive() for thread in threads)

    def _next_batch(self) -> list[_Pending] | None:
        try:
            first = self._queue.get(timeout=IDLE_SECONDS)
        except queue.Empty:
            self._release_connection()
            first = self._queue.get()
        if first is _STOP:
            self._release_connection()
            return None
        batch = [first]
        while len(batch) < self._max_batch:
            try:
                pending = self._queue.get_nowait()
            except queue.Empty:
                break
            if pending is _STOP:
                # Another thread, or this one after the batch, takes it.
                self._queue.put(_STOP)
                break
            batch.append(pending)
        return batch

    def _connection(self):
        connection = getattr(self._local, "connection", None)
        if connection is None:
            connection = self._engine.raw_connection()
            if self._statements.combined:
                # The batch is one statement on PostgreSQL, and a statement outside
                # a transaction block is a transaction of its own. In autocommit it
                # costs one round trip to the server instead of three (BEGIN, the
                # statement, COMMIT), and its reply comes after the commit.
                connection.driver_connection.autocommit = True
            self._local.connection = connection
        return connection

    def _release_connection(self) -> None:
        connection = getattr(self._local, "connection", None)
        self._local.connection = None
        if connection is None:
            return
        try:
            if self._statements.combined:
                # The pool's other users expect transactions.
                connection.driver_connection.autocommit = False
        except Exception:  # noqa: BLE001 - a broken connection is discarded
            connection.invalidate()
            return
        connection.close()

    def _run(self) -> None:
        while True:
            batch = self._next_batch()
            if batch is None:
                return
            try:
                self._store(batch)
            except BaseException:  # noqa: BLE001 - the thread must outlive any batch
                # Whatever ends this batch (a bug, a fault injected by a test), its
                # transaction was rolled back and its requests return 503. The
                # thread goes on with the next batch.
                log.exception("fact_writer_failed", batch_size=len(batch))
                error = FactNotStored("the fact writer failed; see the log")
                for pending in batch:
                    if not pending.is_done():
                        pending.fail(error)

    def _store(self, batch: list[_Pending]) -> None:
        try:
            results = self._commit([pending.fact for pending in batch])
        except Exception as error:  # noqa: BLE001 - each fact is retried alone below
            if len(batch) == 1:
                log.warning(
                    "fact_not_stored",
                    error=str(error),
                    provider_id=batch[0].fact.provider_id,
                    connection_id=batch[0].fact.lms_connection_id,
                    source_event_id=batch[0].fact.source_event_id,
                )
                batch[0].fail(error)
                return
            # One bad fact must not fail the others: store each alone, so only the
            # transaction of the fact the database rejects is lost.
            log.warning("fact_batch_failed", error=str(error), batch_size=len(batch))
            for pending in batch:
                self._store([pending])
            return

        for pending, result in zip(batch, results):
            pending.resolve(result)
        message_ids = [result.message_id for result in results if result.message_id]
        if message_ids:
            self._on_committed(message_ids)

    def _commit(self, facts: list[CompletionFact]) -> list[RecordedFact]:
        # On SQLite the other writers of this process (the dispatcher marking
        # messages sent, admin pages) wait on the same lock instead of colliding.
        with database_writes(self._engine):
            connection = self._connection()
            try:
                cursor = connection.cursor()
                try:
                    results = record_facts(
                        cursor, self._statements, facts, dispatched_at=utcnow()
                    )
                finally:
                    cursor.close()
                connection.commit()
            except BaseException:
                # The connection may be broken (a restarted server, a dropped
                # socket), so the next batch starts on a fresh one, and the
                # rollback happens as the pool discards it.
                self._local.connection = None
                connection.invalidate()
                raise
            return results

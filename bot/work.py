"""Accepted work and the workers that run it.

A handler acknowledges the platform only after `WorkQueue.submit` has persisted the job (keyed
by the platform's event id, so a redelivery is refused), then a bounded pool of workers runs it
off the request path. The interface is small so the engine can change without touching the
handlers.

`StoreQueue` keeps jobs in the bot's store and runs them on threads in this process. On
PostgreSQL several replicas can share one queue: claims use ``FOR UPDATE SKIP LOCKED`` and
leases, so each job runs once and a job whose worker died runs again when its lease ends.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol

from bot.store import Store
from bot.store.jobs import JobItem

log = logging.getLogger(__name__)

JobHandler = Callable[[dict[str, Any]], None]


class WorkQueue(Protocol):
    def submit(self, key: str, kind: str, payload: dict[str, Any]) -> bool:
        """Persist a job; False when `key` was already submitted (a duplicate delivery)."""
        ...

    def start(self) -> None: ...

    def stop(self, timeout: float = 10.0) -> None: ...

    def alive(self) -> bool:
        """True while the queue can run work (readiness probes)."""
        ...


def background_priority() -> None:
    """Lower the OS scheduling priority of the calling thread (Linux: threads have their own).

    Workers share two cores and one interpreter with the threads that acknowledge platform
    events within Slack's 3 s; letting the scheduler prefer the latter keeps acks fast while
    answers take their time. A no-op where threads cannot be reniced.
    """
    try:
        os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), BACKGROUND_NICENESS)
    except (AttributeError, OSError):
        return


BACKGROUND_NICENESS = 10
# Ack-first scheduling (StoreQueue._yield_to_acknowledgements).
QUIET_S = 0.03
MAX_DEFER_S = 0.5


class StoreQueue:
    def __init__(
        self,
        store: Store,
        handlers: Mapping[str, JobHandler],
        *,
        workers: int = 16,
        lease: timedelta = timedelta(minutes=10),
        max_attempts: int = 3,
        poll_interval: float = 2.0,
    ) -> None:
        self._store = store
        self._handlers = dict(handlers)
        self._workers = workers
        self._lease = lease
        self._max_attempts = max_attempts
        self._poll = poll_interval
        self._slots = threading.BoundedSemaphore(workers)
        self._wake = threading.Event()
        self._stopping = threading.Event()
        self._pool = ThreadPoolExecutor(
            max_workers=workers, thread_name_prefix="worker", initializer=background_priority
        )
        self._dispatcher: threading.Thread | None = None
        self._running = 0
        self._idle = threading.Condition()
        self._last_submit = 0.0
        self._deferring_since: float | None = None

    def submit(self, key: str, kind: str, payload: dict[str, Any]) -> bool:
        if kind not in self._handlers:
            raise ValueError(f"no handler for job kind {kind!r}")
        accepted = self._store.jobs.submit(key, kind, payload) is not None
        self._last_submit = time.monotonic()
        if accepted:
            self._wake.set()
        return accepted

    def start(self) -> None:
        if self._dispatcher is None:
            self._dispatcher = threading.Thread(
                target=self._dispatch, name="work-dispatcher", daemon=True
            )
            self._dispatcher.start()

    def alive(self) -> bool:
        return self._dispatcher is not None and self._dispatcher.is_alive()

    def stop(self, timeout: float = 10.0) -> None:
        self._stopping.set()
        self._wake.set()
        if self._dispatcher is not None:
            self._dispatcher.join(timeout)
        self._pool.shutdown(wait=True, cancel_futures=False)

    def wait_idle(self, timeout: float) -> bool:
        """Block until no job is running or runnable (tests, benchmarks, shutdown)."""
        deadline = datetime.now(UTC) + timedelta(seconds=timeout)
        with self._idle:
            while True:
                counts = self._store.jobs.counts()
                if self._running == 0 and not counts.get("queued") and not counts.get("running"):
                    return True
                remaining = (deadline - datetime.now(UTC)).total_seconds()
                if remaining <= 0:
                    return False
                self._idle.wait(min(remaining, 0.2))

    def _dispatch(self) -> None:
        while not self._stopping.is_set():
            # Only claim what a free worker can start now; the rest stays queued in the store
            # where another replica (or this one, later) can take it.
            if not self._slots.acquire(timeout=self._poll):
                continue
            self._yield_to_acknowledgements()
            job = self._claim()
            if job is None:
                self._slots.release()
                self._wake.wait(self._poll)
                self._wake.clear()
                continue
            with self._idle:
                self._running += 1
            self._pool.submit(self._run, job)

    def _yield_to_acknowledgements(self) -> None:
        """While this process is accepting a burst of events, hold new claims back a little.

        Accepting (and acknowledging) an event is what a platform times; starting its work is
        not. Workers starting during a burst compete for the interpreter with the threads that
        acknowledge. So a claim waits until submits pause for `QUIET_S`, but one burst defers
        claims for at most `MAX_DEFER_S` in all.
        """
        while not self._stopping.is_set():
            now = time.monotonic()
            quiet_at = self._last_submit + QUIET_S
            if now >= quiet_at:
                self._deferring_since = None
                return
            if self._deferring_since is None:
                self._deferring_since = now
            if now - self._deferring_since >= MAX_DEFER_S:
                return
            self._stopping.wait(min(quiet_at - now, MAX_DEFER_S))

    def _claim(self) -> JobItem | None:
        try:
            return self._store.jobs.claim(lease=self._lease)
        except Exception:
            # A database hiccup must not kill the dispatcher; the next poll retries.
            log.exception("claiming a job failed")
            return None

    def _run(self, job: JobItem) -> None:
        try:
            self._handlers[job.kind](job.payload)
        except Exception as exc:
            # Job boundary: the handler already answered the person where it could; this
            # records the failure and schedules a retry with backoff.
            log.exception("job failed", extra={"job": job.key, "attempt": job.attempts})
            retry_at = None
            if job.attempts < self._max_attempts:
                retry_at = datetime.now(UTC) + timedelta(seconds=2**job.attempts)
            self._store.jobs.fail(job.id, f"{type(exc).__name__}: {exc}", retry_at=retry_at)
        else:
            self._store.jobs.finish(job.id)
        finally:
            self._slots.release()
            with self._idle:
                self._running -= 1
                self._idle.notify_all()
            self._wake.set()

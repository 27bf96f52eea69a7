"""The embedded engine: jobs in the bot's own store, run by threads of the serving process.

For the single-process default on SQLite. `submit` inserts the job row (its unique key refuses
a redelivery) and wakes the dispatcher, which claims due jobs while a worker thread is idle.
Each process registers a worker row and beats it every few seconds; a process that stops
beating — killed, crashed, its host gone — is dead after `stalled_after` seconds, and a restart
on the same host finds its predecessor's pid gone at once. Either way the dead worker's running
jobs go back to the queue: at start-up, then on every heartbeat.

A job that raises is retried with backoff (`Policy`); `RetryLater` names its own delay.
"""

from __future__ import annotations

import logging
import os
import queue
import socket
import threading
import time
import uuid
from collections.abc import Iterable
from datetime import UTC, datetime, timedelta
from typing import Any

from bot import logs
from bot.store import Store
from bot.store.jobs import QUEUED, RUNNING, JobItem
from bot.work import (
    JobKind,
    Policy,
    RetryLater,
    add_kinds,
    describe,
    encode,
    lower_priority,
    run_timed,
)

log = logging.getLogger(__name__)

# The dispatcher looks at the store at least this often (jobs of other processes, retries).
POLL_S = 1.0
# Acknowledgements first: while events are being accepted, new jobs wait until submits pause
# this long — at most `HOLD_MAX_S` per burst. Accepting and answering share one interpreter
# here; a platform times the former, a person hardly notices half a second on the latter
# (bench/bench_slack_ack.py, docs/operations.md).
QUIET_S = 0.03
HOLD_MAX_S = 0.5


class LocalEngine:
    name = "embedded"

    def __init__(
        self,
        store: Store,
        *,
        concurrency: int = 32,
        policy: Policy | None = None,
        stalled_after: float = 30.0,
        poll: float = POLL_S,
    ) -> None:
        self._store = store
        self._kinds: dict[str, JobKind[Any]] = {}
        self._concurrency = concurrency
        self._policy = policy or Policy()
        self._stalled_after = timedelta(seconds=stalled_after)
        # Beat often enough that two missed beats are still far from the stall limit.
        self._beat_every = min(5.0, stalled_after / 4)
        self._poll = poll
        self.worker_id = uuid.uuid4().hex
        self._host = socket.gethostname()
        self._wake = threading.Event()
        self._stopping = threading.Event()
        self._changed = threading.Condition()
        self._idle = 0  # worker threads waiting for a job; guarded by _changed
        self._running = 0  # jobs in flight in this process; guarded by _changed
        self._jobs: queue.SimpleQueue[JobItem | None] = queue.SimpleQueue()
        self._threads: list[threading.Thread] = []
        self._dispatcher: threading.Thread | None = None
        self._last_submit = 0.0

    # --- the interface ---------------------------------------------------------------------

    def register(self, kinds: Iterable[JobKind[Any]]) -> None:
        add_kinds(self._kinds, kinds)

    def submit(self, key: str, kind: str, payload: object) -> bool:
        accepted = self._store.jobs.submit(key, kind, encode(payload)) is not None
        self._last_submit = time.monotonic()
        if accepted:
            self._wake.set()
        return accepted

    def start(self) -> None:
        if self._dispatcher is not None:
            return
        self._store.workers.register(self.worker_id, host=self._host, pid=os.getpid())
        self._reap()  # a crashed predecessor's jobs run again now, not after a stall limit
        for number in range(self._concurrency):
            thread = threading.Thread(target=self._work, name=f"job-{number}", daemon=True)
            thread.start()
            self._threads.append(thread)
        self._dispatcher = threading.Thread(
            target=self._dispatch, name="job-dispatcher", daemon=True
        )
        self._dispatcher.start()

    def stop(self, timeout: float = 10.0) -> None:
        if self._dispatcher is None:
            return
        self._stopping.set()
        self._wake.set()
        self._dispatcher.join(timeout)
        for _ in self._threads:
            self._jobs.put(None)
        deadline = time.monotonic() + timeout
        with self._changed:
            while self._running and time.monotonic() < deadline:
                self._changed.wait(deadline - time.monotonic())
        released = self._store.jobs.release(self.worker_id)
        if released:
            log.warning(
                "jobs still running at shutdown go back to the queue",
                extra={"jobs": released, "timeout_s": timeout},
            )
        self._store.workers.remove(self.worker_id)
        self._dispatcher = None

    def alive(self) -> bool:
        return self._dispatcher is not None and self._dispatcher.is_alive()

    def counts(self) -> dict[str, int]:
        return self._store.jobs.counts()

    def oldest_waiting(self) -> datetime | None:
        return self._store.jobs.oldest_waiting()

    def wait_idle(self, timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        while True:
            counts = self._store.jobs.counts()
            with self._changed:
                if not self._running and not counts.get(QUEUED) and not counts.get(RUNNING):
                    return True
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return False
                # Woken when a job of this process ends; the store is asked again at least
                # every 50 ms for jobs that another process or a retry time owns.
                self._changed.wait(min(remaining, 0.05))

    # --- dispatching -------------------------------------------------------------------------

    def _dispatch(self) -> None:
        next_beat = time.monotonic() + self._beat_every
        while not self._stopping.is_set():
            if time.monotonic() >= next_beat:
                self._heartbeat()
                next_beat = time.monotonic() + self._beat_every
            with self._changed:
                idle = self._idle
            if idle:
                self._hold_for_acknowledgements()
            job = self._claim() if idle else None
            if job is not None:
                with self._changed:
                    self._idle -= 1
                    self._running += 1
                self._jobs.put(job)
                continue
            self._wake.wait(self._sleep(next_beat, idle))
            self._wake.clear()

    def _hold_for_acknowledgements(self) -> None:
        """Wait (within limits) until no event has been accepted for `QUIET_S`."""
        held_since = time.monotonic()
        while not self._stopping.is_set():
            now = time.monotonic()
            quiet_at = self._last_submit + QUIET_S
            if now >= quiet_at or now - held_since >= HOLD_MAX_S:
                return
            self._stopping.wait(min(quiet_at - now, HOLD_MAX_S))

    def _sleep(self, next_beat: float, idle: int) -> float:
        """How long the dispatcher may wait for a wake-up: until the next beat, the next
        retry that falls due, or the poll interval."""
        wait = min(self._poll, max(0.0, next_beat - time.monotonic()))
        if idle:
            due = self._store.jobs.next_due()
            if due is not None:
                wait = min(wait, max(0.0, (due - datetime.now(UTC)).total_seconds()))
        return wait

    def _claim(self) -> JobItem | None:
        try:
            return self._store.jobs.claim(self.worker_id)
        except Exception:
            # A database hiccup must not end the dispatcher; the next round tries again.
            log.exception("claiming a job failed")
            return None

    def _heartbeat(self) -> None:
        try:
            if not self._store.workers.beat(self.worker_id):
                # Another process declared us dead (we stalled past the limit) and requeued
                # our jobs; carry on under the same id so our running jobs can still finish.
                self._store.workers.register(self.worker_id, host=self._host, pid=os.getpid())
            self._reap()
        except Exception:
            log.exception("worker heartbeat failed")

    def _reap(self) -> None:
        alive = self._store.workers.alive(stalled_after=self._stalled_after, host=self._host)
        requeued = self._store.jobs.release_dead(alive)
        if requeued:
            log.warning("jobs of a dead worker run again", extra={"jobs": requeued})
            self._wake.set()

    # --- running -------------------------------------------------------------------------------

    def _work(self) -> None:
        lower_priority()
        while True:
            with self._changed:
                self._idle += 1
            self._wake.set()  # an idle thread: the dispatcher may claim
            job = self._jobs.get()
            if job is None:
                return
            try:
                self._run(job)
            finally:
                with self._changed:
                    self._running -= 1
                    self._changed.notify_all()

    def _run(self, job: JobItem) -> None:
        kind = self._kinds.get(job.kind)
        if kind is None:
            self._store.jobs.fail(job.id, self.worker_id, f"no handler for job kind {job.kind!r}")
            log.error("job of an unknown kind given up", extra={"job": job.key})
            return
        attempt = self._policy.attempt(job.attempts)
        with logs.context(job=job.key, job_kind=job.kind):
            try:
                run_timed(kind, job.payload, attempt)
            except Exception as exc:  # noqa: BLE001 - the job boundary: every failure is retried
                self._failed(job, exc)
            else:
                self._store.jobs.finish(job.id, self.worker_id)

    def _failed(self, job: JobItem, error: Exception) -> None:
        age = datetime.now(UTC) - job.created_at
        delay = self._policy.delay(job.attempts, error, age)
        if delay is None:
            log.error(
                "job given up",
                exc_info=not isinstance(error, RetryLater),
                extra={"job": job.key, "kind": job.kind, "attempts": job.attempts},
            )
            self._store.jobs.fail(job.id, self.worker_id, describe(error))
            return
        if isinstance(error, RetryLater):
            log.info(
                "job postponed",
                extra={"job": job.key, "reason": error.reason, "delay_s": round(delay, 2)},
            )
        else:
            log.warning(
                "job failed; it runs again",
                exc_info=True,
                extra={"job": job.key, "attempt": job.attempts, "delay_s": round(delay, 2)},
            )
        at = datetime.now(UTC) + timedelta(seconds=delay)
        self._store.jobs.retry(job.id, self.worker_id, describe(error), at=at)
        self._wake.set()

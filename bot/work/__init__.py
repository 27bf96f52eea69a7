"""Accepted work: one small interface, two engines.

A handler acknowledges a platform only after `Engine.submit` has persisted the job, keyed by
the platform's event id so a redelivery is refused; workers then run it off the request path.
Jobs run **at least once**: a worker may crash mid-job, and the job runs again. Every job is
written so that running it again completes the answer without doing anything twice — its
"handled" mark commits with its effect (`bot.store.events`), and its posts go through the
outbox, which reconciles before it resends (docs/operations.md).

The engines:

- `bot.work.local.LocalEngine` — the embedded default on SQLite: the jobs table of the bot's
  store and worker threads in the serving process; a heartbeat row per process, so the jobs of
  a crashed process run again at its restart (and after `stalled_after` at the latest).
- `bot.work.postgres.ProcrastinateEngine` — PostgreSQL deployments: procrastinate's queue,
  shared by any number of web and worker processes on any number of hosts.

A job kind names a handler and the type its payload is decoded to (msgspec)::

    engine.register([JobKind("slack.turn", worker.answer, SlackTurn)])
    engine.submit("slack:T1:cmd:123", "slack.turn", turn)      # False: a duplicate delivery

A handler gets the `Attempt` it runs in. It raises to be retried (with backoff; `RetryLater`
names the delay, e.g. a platform's ``Retry-After``); on its `final` attempt it should answer
with a failure message rather than raise, so nobody is left waiting for an answer.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Generic, Protocol, TypeVar

import msgspec

from bot import metrics

log = logging.getLogger(__name__)

P = TypeVar("P")


@dataclass(frozen=True, kw_only=True)
class Attempt:
    number: int  # 1 on the first run
    final: bool  # no further run follows if this one raises (RetryLater aside)


FIRST_AND_ONLY = Attempt(number=1, final=True)


class RetryLater(Exception):
    """Run the job again after `delay` seconds (a platform asked us to wait, or may already
    have our request and must be asked before we resend)."""

    def __init__(self, reason: str, delay: float) -> None:
        super().__init__(reason)
        self.reason = reason
        self.delay = delay


@dataclass(frozen=True)
class JobKind(Generic[P]):
    name: str
    run: Callable[[P, Attempt], None]
    payload: type[P]

    def execute(self, raw: Any, attempt: Attempt) -> None:
        self.run(msgspec.convert(raw, self.payload), attempt)


def add_kinds(registry: dict[str, JobKind[Any]], kinds: Iterable[JobKind[Any]]) -> None:
    """Register `kinds` by name; a name given twice is a wiring mistake."""
    for kind in kinds:
        if kind.name in registry:
            raise ValueError(f"job kind {kind.name!r} is already registered")
        registry[kind.name] = kind


@dataclass(frozen=True, kw_only=True)
class Policy:
    """When a job that raised runs again."""

    max_attempts: int = 4
    # A job still being rate-limited this long after it was accepted is given up.
    give_up_after: timedelta = timedelta(hours=1)
    max_backoff_s: float = 300.0

    def attempt(self, number: int) -> Attempt:
        return Attempt(number=number, final=number >= self.max_attempts)

    def delay(self, number: int, error: BaseException, age: timedelta) -> float | None:
        """Seconds until attempt `number` + 1, or None to give the job up."""
        if isinstance(error, RetryLater):
            return error.delay if age < self.give_up_after else None
        if number >= self.max_attempts:
            return None
        return min(self.max_backoff_s, 2.0 ** (number - 1))


class Engine(Protocol):
    """What handlers and the server need from a work engine."""

    name: str

    def register(self, kinds: Iterable[JobKind[Any]]) -> None:
        """Add job kinds (before `start`)."""
        ...

    def submit(self, key: str, kind: str, payload: object) -> bool:
        """Persist a job; False when `key` was already submitted (a duplicate delivery)."""
        ...

    def start(self) -> None:
        """Run jobs in this process (a web-only process never calls it)."""
        ...

    def stop(self, timeout: float = 10.0) -> None:
        """Stop taking jobs; running ones finish within `timeout` or go back to the queue."""
        ...

    def alive(self) -> bool:
        """True while this process runs jobs (readiness)."""
        ...

    def counts(self) -> dict[str, int]:
        """Jobs by status (metrics)."""
        ...

    def oldest_waiting(self) -> datetime | None:
        """When the oldest job still queued or running was accepted (metrics)."""
        ...

    def wait_idle(self, timeout: float) -> bool:
        """Block until no job is waiting or running; False on timeout (tests, benchmarks)."""
        ...


# How much less CPU time a job thread gets than the threads that acknowledge platform events
# (Linux niceness, per thread). Answers take seconds anyway; an acknowledgement has 3 s and a
# person waiting for the "working…" message — bench/bench_slack_ack.py shows the difference.
JOB_NICENESS = 10


def lower_priority() -> None:
    """Lower the OS scheduling priority of the calling thread (a no-op where threads cannot
    be reniced)."""
    try:
        os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), JOB_NICENESS)
    except (AttributeError, OSError):
        return


def run_timed(kind: JobKind[Any], raw: Any, attempt: Attempt) -> None:
    """Run one attempt of a job, timed in ``pipebot_job_duration_seconds``."""
    started = time.perf_counter()
    outcome = "error"
    try:
        kind.execute(raw, attempt)
        outcome = "done"
    except RetryLater:
        outcome = "postponed"
        raise
    finally:
        metrics.JOB_SECONDS.labels(kind.name, outcome).observe(time.perf_counter() - started)


def encode(payload: object) -> Any:
    """A payload as JSON-ready builtins (dataclasses, tuples, enums included)."""
    return msgspec.to_builtins(payload)


def describe(error: BaseException) -> str:
    return f"{type(error).__name__}: {error}"

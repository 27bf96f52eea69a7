"""The work engines behind one interface: the embedded one (SQLite) and procrastinate (the real
PostgreSQL). Accepted once, run at least once, retried with backoff, recovered after a crash."""

from __future__ import annotations

import os
import socket
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import text, update

from bot.store import Store
from bot.store.keys import fit
from bot.store.tables import JobRow, WorkerRow
from bot.work import Attempt, Engine, JobKind, Policy, RetryLater
from bot.work.local import LocalEngine


@dataclass(frozen=True)
class Note:
    text: str
    tags: tuple[str, ...] = ()


class Recorder:
    """Collects what jobs saw; `wait` blocks until a condition holds (no sleeping)."""

    def __init__(self) -> None:
        self.seen: list[tuple[str, Attempt]] = []
        self._changed = threading.Condition()

    def add(self, text: str, attempt: Attempt) -> None:
        with self._changed:
            self.seen.append((text, attempt))
            self._changed.notify_all()

    def wait(self, predicate: Callable[[list[tuple[str, Attempt]]], bool], timeout: float) -> None:
        with self._changed:
            if not self._changed.wait_for(lambda: predicate(self.seen), timeout):
                raise AssertionError(f"condition not met within {timeout} s; seen {self.seen}")


def make_engine(store: Store, **options: Any) -> Engine:
    if store.backend == "postgresql":
        from bot.work.postgres import ProcrastinateEngine

        return ProcrastinateEngine(store, **options)
    return LocalEngine(store, poll=0.05, **options)


@pytest.fixture
def running(store: Store) -> Iterator[Callable[..., Engine]]:
    started: list[Engine] = []

    def start(kinds: list[JobKind[Any]], **options: Any) -> Engine:
        engine = make_engine(store, **options)
        engine.register(kinds)
        engine.start()
        started.append(engine)
        return engine

    yield start
    for engine in started:
        engine.stop(5)


def test_a_job_runs_once_even_when_submitted_twice(
    store: Store, running: Callable[..., Engine]
) -> None:
    recorder = Recorder()
    engine = running([JobKind("note", lambda n, a: recorder.add(n.text, a), Note)])
    assert engine.submit("ev1", "note", Note("a", ("x",)))
    assert not engine.submit("ev1", "note", Note("a"))  # a redelivery
    assert engine.submit("ev2", "note", Note("b"))
    recorder.wait(lambda seen: len(seen) == 2, 20)
    assert engine.wait_idle(20)
    assert sorted(text for text, _ in recorder.seen) == ["a", "b"]
    assert all(attempt.number == 1 for _, attempt in recorder.seen)


def test_a_failing_job_is_retried_and_its_last_attempt_is_final(
    store: Store, running: Callable[..., Engine]
) -> None:
    recorder = Recorder()

    def flaky(note: Note, attempt: Attempt) -> None:
        recorder.add(note.text, attempt)
        raise RuntimeError("upstream down")

    engine = running([JobKind("note", flaky, Note)], policy=Policy(max_attempts=3))
    engine.submit("ev", "note", Note("x"))
    recorder.wait(lambda seen: len(seen) == 3, 30)
    assert engine.wait_idle(20)
    assert [(a.number, a.final) for _, a in recorder.seen] == [(1, False), (2, False), (3, True)]
    counts = engine.counts()
    assert counts.get("failed") == 1, counts


def test_retry_later_waits_as_long_as_asked(store: Store, running: Callable[..., Engine]) -> None:
    recorder = Recorder()
    times: list[float] = []

    def limited(note: Note, attempt: Attempt) -> None:
        times.append(time.monotonic())
        recorder.add(note.text, attempt)
        if attempt.number == 1:
            raise RetryLater("ratelimited", 1.5)

    engine = running([JobKind("note", limited, Note)])
    engine.submit("ev", "note", Note("x"))
    recorder.wait(lambda seen: len(seen) == 2, 30)
    assert times[1] - times[0] >= 1.4


def test_keys_longer_than_the_column_are_hashed_not_cut(
    store: Store, running: Callable[..., Engine]
) -> None:
    recorder = Recorder()
    engine = running([JobKind("note", lambda n, a: recorder.add(n.text, a), Note)])
    long_dag = "d" * 300
    assert engine.submit(f"alert:airflow:{long_dag}:run1", "note", Note("first"))
    assert engine.submit(f"alert:airflow:{long_dag}:run2", "note", Note("second"))
    recorder.wait(lambda seen: len(seen) == 2, 20)
    assert len(fit("k" * 1000)) == 255 and fit("short") == "short"


def test_the_embedded_engine_runs_at_most_its_concurrency(sqlite_store: Store) -> None:
    running_now = 0
    peak = 0
    lock = threading.Lock()
    gate = threading.Barrier(3, timeout=10)

    def slow(note: Note, attempt: Attempt) -> None:
        nonlocal running_now, peak
        with lock:
            running_now += 1
            peak = max(peak, running_now)
        if note.text == "first-three":
            gate.wait()  # three run together, no fourth gets in while they hold
        with lock:
            running_now -= 1

    engine = LocalEngine(sqlite_store, concurrency=3, poll=0.05)
    engine.register([JobKind("slow", slow, Note)])
    engine.start()
    try:
        for i in range(3):
            engine.submit(f"g{i}", "slow", Note("first-three"))
        for i in range(6):
            engine.submit(f"e{i}", "slow", Note("later"))
        assert engine.wait_idle(20)
    finally:
        engine.stop(5)
    assert peak == 3


def test_jobs_of_a_dead_worker_run_again_at_start_up(sqlite_store: Store) -> None:
    """A process killed mid-job left its job running; the next process on the host (its pid
    is gone) runs it again at once, without waiting for the stall limit."""
    sqlite_store.jobs.submit("orphan", "note", {"text": "x", "tags": []})
    sqlite_store.workers.register("dead", host=socket.gethostname(), pid=_gone_pid())
    assert sqlite_store.jobs.claim("dead") is not None
    recorder = Recorder()
    engine = LocalEngine(sqlite_store, poll=0.05, stalled_after=600)
    engine.register([JobKind("note", lambda n, a: recorder.add(n.text, a), Note)])
    started = time.monotonic()
    engine.start()
    try:
        recorder.wait(lambda seen: len(seen) == 1, 10)
        assert time.monotonic() - started < 5
        assert recorder.seen[0][1].number == 2  # its second run
    finally:
        engine.stop(5)


def test_a_worker_whose_heartbeat_stopped_is_dead_after_the_stall_limit(
    sqlite_store: Store,
) -> None:
    """A worker on another host cannot be asked for its pid: its beat going stale is the sign."""
    sqlite_store.jobs.submit("orphan", "note", {"text": "x", "tags": []})
    sqlite_store.workers.register("elsewhere", host="other-host", pid=1)
    assert sqlite_store.jobs.claim("elsewhere") is not None
    recorder = Recorder()
    engine = LocalEngine(sqlite_store, poll=0.05, stalled_after=5)
    engine.register([JobKind("note", lambda n, a: recorder.add(n.text, a), Note)])
    engine.start()
    try:
        with sqlite_store.sessions.begin() as session:  # the other host's last beat, 6 s ago
            session.execute(
                update(WorkerRow)
                .where(WorkerRow.id == "elsewhere")
                .values(heartbeat_at=datetime.now(UTC) - timedelta(seconds=6))
            )
        recorder.wait(lambda seen: len(seen) == 1, 10)
    finally:
        engine.stop(5)


def test_stop_puts_a_job_that_cannot_finish_back_in_the_queue(sqlite_store: Store) -> None:
    release = threading.Event()
    entered = threading.Event()

    def stuck(note: Note, attempt: Attempt) -> None:
        entered.set()
        release.wait(30)

    engine = LocalEngine(sqlite_store, poll=0.05)
    engine.register([JobKind("stuck", stuck, Note)])
    engine.start()
    engine.submit("s1", "stuck", Note("x"))
    assert entered.wait(10)
    engine.stop(timeout=0.5)
    release.set()
    with sqlite_store.engine.connect() as connection:
        status, attempts, worker = connection.execute(
            text("select status, attempts, worker_id from jobs where key = 's1'")
        ).one()
    assert (status, attempts, worker) == ("queued", 0, None)
    with sqlite_store.engine.connect() as connection:
        assert connection.execute(text("select count(*) from workers")).scalar_one() == 0


def test_a_job_of_an_unknown_kind_is_given_up_not_retried(sqlite_store: Store) -> None:
    engine = LocalEngine(sqlite_store, poll=0.05)
    engine.start()
    try:
        engine.submit("u1", "retired-kind", {})
        assert engine.wait_idle(10)
    finally:
        engine.stop(5)
    assert sqlite_store.jobs.status("u1") == "failed"
    with sqlite_store.sessions() as session:
        row = session.query(JobRow).filter_by(key="u1").one()
    assert "no handler" in (row.error or "")


def _gone_pid() -> int:
    """A pid no process has (checked, not assumed)."""
    for pid in range(4_000_000, 4_100_000, 7919):
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return pid
        except PermissionError:
            continue
    raise AssertionError("no free pid found")

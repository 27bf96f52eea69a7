"""The store-backed work queue: persisted before work, run once, retried, bounded."""

from __future__ import annotations

import threading
import time
from datetime import timedelta
from typing import Any

from bot.store import Store
from bot.work import StoreQueue


def test_jobs_run_once_even_when_submitted_twice(store: Store) -> None:
    ran: list[str] = []
    queue = StoreQueue(
        store, {"message": lambda p: ran.append(p["text"])}, workers=4, poll_interval=0.05
    )
    queue.start()
    assert queue.submit("ev1", "message", {"text": "a"})
    assert not queue.submit("ev1", "message", {"text": "a"})
    assert queue.submit("ev2", "message", {"text": "b"})
    assert queue.wait_idle(10)
    queue.stop()
    assert sorted(ran) == ["a", "b"]
    assert store.jobs.counts() == {"done": 2}


def test_failures_are_retried_then_given_up(sqlite_store: Store) -> None:
    attempts: list[int] = []

    def flaky(payload: dict[str, Any]) -> None:
        attempts.append(1)
        raise RuntimeError("upstream down")

    queue = StoreQueue(
        sqlite_store, {"message": flaky}, workers=1, max_attempts=2, poll_interval=0.05
    )
    queue.start()
    queue.submit("ev", "message", {})
    deadline = time.monotonic() + 15
    while sqlite_store.jobs.status("ev") != "failed" and time.monotonic() < deadline:
        time.sleep(0.05)
    queue.stop()
    assert len(attempts) == 2
    assert sqlite_store.jobs.status("ev") == "failed"


def test_pool_is_bounded(sqlite_store: Store) -> None:
    running = 0
    peak = 0
    lock = threading.Lock()

    def slow(payload: dict[str, Any]) -> None:
        nonlocal running, peak
        with lock:
            running += 1
            peak = max(peak, running)
        time.sleep(0.2)
        with lock:
            running -= 1

    queue = StoreQueue(sqlite_store, {"slow": slow}, workers=3, poll_interval=0.05)
    queue.start()
    for i in range(9):
        queue.submit(f"e{i}", "slow", {})
    assert queue.wait_idle(20)
    queue.stop()
    assert peak == 3


def test_job_left_by_a_crashed_worker_is_run_again(sqlite_store: Store) -> None:
    sqlite_store.jobs.submit("orphan", "message", {"text": "x"})
    assert sqlite_store.jobs.claim(lease=timedelta(seconds=-1)) is not None  # the crashed one
    ran: list[str] = []
    queue = StoreQueue(
        sqlite_store, {"message": lambda p: ran.append(p["text"])}, poll_interval=0.05
    )
    queue.start()
    assert queue.wait_idle(10)
    queue.stop()
    assert ran == ["x"]


def _burst(queue: StoreQueue, seconds: float) -> float:
    """Submit a job every 5 ms for `seconds`; returns when the burst ended (monotonic)."""
    end = time.monotonic() + seconds
    n = 0
    while time.monotonic() < end:
        queue.submit(f"burst-{n}", "message", {})
        n += 1
        time.sleep(0.005)
    return time.monotonic()


def test_work_waits_for_a_burst_of_acknowledgements_to_pause(sqlite_store: Store) -> None:
    started: list[float] = []
    queue = StoreQueue(
        sqlite_store, {"message": lambda p: started.append(time.monotonic())}, workers=4
    )
    queue.start()
    ended = _burst(queue, 0.3)  # shorter than the longest deferral
    assert queue.wait_idle(15)
    queue.stop()
    assert min(started) >= ended


def test_a_long_burst_defers_work_only_so_long(sqlite_store: Store) -> None:
    started: list[float] = []
    queue = StoreQueue(
        sqlite_store, {"message": lambda p: started.append(time.monotonic())}, workers=4
    )
    queue.start()
    began = time.monotonic()
    ended = _burst(queue, 2.0)
    assert queue.wait_idle(30)
    queue.stop()
    assert min(started) < ended - 0.5  # work started while the burst went on
    assert min(started) - began >= 0.2  # but not at once

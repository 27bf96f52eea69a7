"""Session factory of the store, with one in-process write lock on SQLite.

SQLite allows one writer at a time. Threads that collide on its lock back off with growing
sleeps (up to 100 ms each), which turns a burst of short writes into a long latency tail — the
ack path of a busy chat channel among them. Queueing writers on a Python lock instead hands the
database over as soon as the previous transaction commits, and lets urgent writers (a platform
waiting for its acknowledgement) go before background work. PostgreSQL needs no such lock.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager, nullcontext

from sqlalchemy.orm import Session, sessionmaker


class _WriteLock:
    """A mutex where urgent holders overtake waiting background holders."""

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._busy = False
        self._urgent_waiting = 0

    @contextmanager
    def hold(self, *, urgent: bool) -> Iterator[None]:
        with self._cond:
            if urgent:
                self._urgent_waiting += 1
            try:
                while self._busy or (not urgent and self._urgent_waiting):
                    self._cond.wait()
            finally:
                if urgent:
                    self._urgent_waiting -= 1
            self._busy = True
        try:
            yield
        finally:
            with self._cond:
                self._busy = False
                self._cond.notify_all()


class Sessions:
    def __init__(self, factory: sessionmaker[Session], *, serialize_writes: bool) -> None:
        self._factory = factory
        self._lock = _WriteLock() if serialize_writes else None

    def __call__(self) -> Session:
        """A session for reading (WAL lets readers run beside the writer)."""
        return self._factory()

    @contextmanager
    def begin(self, *, urgent: bool = False) -> Iterator[Session]:
        """A transaction that commits on success and rolls back on error.

        `urgent` writes (accepting a platform's event before acknowledging it) go first.
        """
        held = self._lock.hold(urgent=urgent) if self._lock is not None else nullcontext()
        with held, self._factory.begin() as session:
            yield session

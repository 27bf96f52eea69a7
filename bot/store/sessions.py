"""Session factory of the store, with a write lock on SQLite.

SQLite allows one writer at a time. Writers that collide on its lock back off with growing
sleeps (up to 100 ms each), which turns a burst of short writes into a long latency tail — the
ack path of a busy chat channel among them. Queueing writers on a lock instead hands the
database over as soon as the previous transaction commits: within a process a Python lock that
lets urgent writers (a platform waiting for its acknowledgement) go before background work,
and between processes sharing one database file (`serve --role web` beside `--role worker`) an
advisory `flock` on a file next to it, whose waiters the kernel wakes at once.
PostgreSQL needs no such lock.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Iterator
from contextlib import contextmanager, nullcontext
from pathlib import Path

try:
    import fcntl
except ImportError:  # pragma: no cover - Windows: processes fall back to SQLite's own waiting
    fcntl = None  # type: ignore[assignment]

from sqlalchemy.orm import Session, sessionmaker


class _WriteLock:
    """A mutex where urgent holders overtake waiting background holders."""

    def __init__(self, path: Path | None = None) -> None:
        self._cond = threading.Condition()
        self._busy = False
        self._urgent_waiting = 0
        self._path = path if fcntl is not None else None
        self._fd: int | None = None

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
            # One descriptor per process suffices: the mutex above admits one thread at a time.
            fd = self._file()
            if fd is not None:
                fcntl.flock(fd, fcntl.LOCK_EX)
            try:
                yield
            finally:
                if fd is not None:
                    fcntl.flock(fd, fcntl.LOCK_UN)
        finally:
            with self._cond:
                self._busy = False
                self._cond.notify_all()

    def _file(self) -> int | None:
        # Opened lazily and only by writers: a read-only process never creates the file.
        if self._path is None:
            return None
        if self._fd is None:
            self._fd = os.open(self._path, os.O_RDWR | os.O_CREAT, 0o600)
        return self._fd

    def close(self) -> None:
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None


class Sessions:
    def __init__(
        self,
        factory: sessionmaker[Session],
        *,
        serialize_writes: bool,
        lock_file: Path | None = None,
    ) -> None:
        """`lock_file` (SQLite on a file) also serialises writers of other processes."""
        self._factory = factory
        self._lock = _WriteLock(lock_file) if serialize_writes else None

    def close(self) -> None:
        if self._lock is not None:
            self._lock.close()

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

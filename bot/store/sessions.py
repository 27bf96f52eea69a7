"""Session factory of the store, with one in-process write lock on SQLite.

SQLite allows one writer at a time. Threads that collide on its lock back off with growing
sleeps (up to 100 ms each), which turns a burst of short writes into a long latency tail — the
ack path of a busy chat channel among them. Queueing writers on a Python lock instead hands the
database over as soon as the previous transaction commits. PostgreSQL needs no such lock.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager

from sqlalchemy.orm import Session, sessionmaker


class Sessions:
    def __init__(self, factory: sessionmaker[Session], *, serialize_writes: bool) -> None:
        self._factory = factory
        self._lock = threading.Lock() if serialize_writes else None

    def __call__(self) -> Session:
        """A session for reading (WAL lets readers run beside the writer)."""
        return self._factory()

    @contextmanager
    def begin(self) -> Iterator[Session]:
        """A transaction that commits on success and rolls back on error."""
        if self._lock is None:
            with self._factory.begin() as session:
                yield session
            return
        with self._lock, self._factory.begin() as session:
            yield session

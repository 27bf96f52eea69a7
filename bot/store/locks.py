"""Named locks shared by every process on the store: one holder per name at a time.

For work that must not run twice *at once* although it may run twice in a row — the same
failure delivered as a webhook and as a channel message is triaged by the first delivery while
the second waits, then finds it handled (and the person sees one thread, the alert's own).
Correctness never depends on the lock: the "handled" marks already make a second run a no-op.
A lock that cannot be had within `timeout` is given up and the work goes ahead.

PostgreSQL: a transaction-level advisory lock on a connection of its own, released when the
block ends or the connection dies with its process. SQLite (one serving process): a lock per
name in this process.
"""

from __future__ import annotations

import logging
import threading
import weakref
from collections.abc import Iterator
from contextlib import contextmanager

from sqlalchemy import Engine, text
from sqlalchemy.exc import OperationalError

log = logging.getLogger(__name__)


class Locks:
    def __init__(self, engine: Engine) -> None:
        self._engine = engine
        self._local: weakref.WeakValueDictionary[str, threading.Lock] = (
            weakref.WeakValueDictionary()
        )
        self._guard = threading.Lock()

    @contextmanager
    def hold(self, name: str, *, timeout: float = 120.0) -> Iterator[bool]:
        """Hold the lock `name` for the block; yields False when it was not had in time."""
        if self._engine.dialect.name == "postgresql":
            with self._advisory(name, timeout) as held:
                yield held
            return
        with self._guard:
            lock = self._local.get(name)
            if lock is None:
                lock = threading.Lock()
                self._local[name] = lock
        held = lock.acquire(timeout=timeout)
        try:
            yield held
        finally:
            if held:
                lock.release()

    @contextmanager
    def _advisory(self, name: str, timeout: float) -> Iterator[bool]:
        with self._engine.connect() as connection, connection.begin():
            connection.execute(text(f"SET LOCAL lock_timeout = {int(timeout * 1000)}"))
            try:
                connection.execute(
                    text("SELECT pg_advisory_xact_lock(hashtextextended(:name, 0))"),
                    {"name": name},
                )
            except OperationalError:
                log.warning("lock not had in time; going ahead", extra={"lock": name})
                yield False
                return
            yield True

"""Session factory of the store, and the one insert-if-absent every idempotency key uses.

SQLite allows one writer at a time, and writers that collide on its lock back off with growing
sleeps (up to 100 ms each): a burst of short writes turns into a long latency tail, the ack
path of a busy channel among them. Within the one process that serves a SQLite store, writers
therefore queue on a plain lock and get the database as soon as the previous transaction
commits. PostgreSQL needs no such lock (and runs several processes).
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager, nullcontext
from typing import Any

from sqlalchemy import inspect
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session, sessionmaker

from bot.store.tables import Base


class Sessions:
    def __init__(self, factory: sessionmaker[Session], *, serialize_writes: bool) -> None:
        self._factory = factory
        self._lock = threading.Lock() if serialize_writes else None

    def __call__(self) -> Session:
        """A session for reading (SQLite's WAL lets readers run beside the writer)."""
        return self._factory()

    @contextmanager
    def begin(self) -> Iterator[Session]:
        """A transaction that commits on success and rolls back on error."""
        with self._lock or nullcontext(), self._factory.begin() as session:
            yield session

    @contextmanager
    def join(self, session: Session | None) -> Iterator[Session]:
        """`session` when the caller already holds a transaction (its writes then commit with
        the caller's), else a transaction of its own."""
        if session is not None:
            yield session
            return
        with self.begin() as own:
            yield own


def insert_new(session: Session, model: type[Base], values: dict[str, Any]) -> bool:
    """Insert one row unless its unique key exists; True when inserted.

    ``ON CONFLICT DO NOTHING`` rather than catching the IntegrityError: on PostgreSQL a failed
    insert aborts the whole transaction, and the caller's transaction carries other writes.
    """
    dialect = session.get_bind().dialect.name
    module = postgresql if dialect == "postgresql" else sqlite
    key = list(inspect(model).primary_key)
    statement = module.insert(model).values(**values).on_conflict_do_nothing().returning(*key)
    # RETURNING, not rowcount: SQLAlchemy does not keep an INSERT's rowcount by default.
    return session.connection().execute(statement).first() is not None

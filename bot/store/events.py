"""Idempotency ledger: each platform event is processed once, whatever the deliveries."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import delete
from sqlalchemy.exc import IntegrityError

from bot.store.sessions import Sessions
from bot.store.tables import ProcessedEventRow


class EventLedger:
    def __init__(self, sessions: Sessions) -> None:
        self._sessions = sessions

    def claim(self, key: str) -> bool:
        """Record `key`; False when it was already recorded (a duplicate delivery).

        The primary key makes this safe across threads and replicas: of two concurrent
        claims exactly one insert succeeds.
        """
        try:
            with self._sessions.begin() as session:
                session.add(ProcessedEventRow(key=key[:255]))
        except IntegrityError:
            return False
        return True

    def seen(self, key: str) -> bool:
        with self._sessions() as session:
            return session.get(ProcessedEventRow, key[:255]) is not None

    def prune(self, older_than: datetime) -> int:
        """Forget keys older than `older_than`; platforms stop retrying after minutes."""
        with self._sessions.begin() as session:
            result = session.execute(
                delete(ProcessedEventRow).where(ProcessedEventRow.created_at < older_than)
            )
            return int(result.rowcount)  # type: ignore[attr-defined]

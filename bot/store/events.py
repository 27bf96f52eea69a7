"""The "handled" marks: each piece of work records its outcome once, with its effect.

`mark` runs inside the caller's transaction — the one that stores the effect the mark guards
(the reply in the thread, the incident) — so the mark and the effect commit together or not at
all. A job that crashes or fails before that commit leaves no mark, and its retry does the work
again; a job that runs after the commit finds the stored `result` and only finishes delivering
it. That is the at-least-once guarantee with idempotent effects (docs/operations.md).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from bot.store.keys import fit
from bot.store.sessions import Sessions, insert_new
from bot.store.tables import ProcessedEventRow


class EventLedger:
    def __init__(self, sessions: Sessions) -> None:
        self._sessions = sessions

    def mark(self, session: Session, key: str, result: Any = None) -> bool:
        """Record `key` as handled with `result` in `session`'s transaction; False when it was
        already recorded (another run committed first; nothing is written)."""
        return insert_new(session, ProcessedEventRow, {"key": fit(key), "result": result})

    def result(self, key: str) -> tuple[bool, Any]:
        """(handled, the stored result) of `key`."""
        with self._sessions() as session:
            row = session.execute(
                select(ProcessedEventRow.result).where(ProcessedEventRow.key == fit(key))
            ).first()
        return (False, None) if row is None else (True, row[0])

    def seen(self, key: str) -> bool:
        return self.result(key)[0]

    def prune(self, older_than: datetime) -> int:
        """Forget marks older than `older_than`; platforms stop redelivering after minutes."""
        with self._sessions.begin() as session:
            result = session.execute(
                delete(ProcessedEventRow).where(ProcessedEventRow.created_at < older_than)
            )
            return int(result.rowcount)  # type: ignore[attr-defined]

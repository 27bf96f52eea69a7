"""Worker processes of the embedded engine and their heartbeats.

A worker beats every few seconds. One whose beat is older than the stall limit is dead: its
row is removed and its running jobs go back to the queue (`Jobs.release_dead`). A worker on the
same host whose process is gone is dead at once — that is what a restart after a crash finds —
so its jobs run again at start-up instead of after the stall limit.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import delete, select, update

from bot.store.sessions import Sessions
from bot.store.tables import WorkerRow, utcnow


@dataclass(frozen=True, kw_only=True)
class Worker:
    id: str
    host: str
    pid: int
    heartbeat_at: datetime


class Workers:
    def __init__(self, sessions: Sessions) -> None:
        self._sessions = sessions

    def register(self, worker_id: str, *, host: str, pid: int) -> None:
        with self._sessions.begin() as session:
            session.add(WorkerRow(id=worker_id, host=host, pid=pid))

    def beat(self, worker_id: str) -> bool:
        """Record a heartbeat; False when the row is gone (declared dead by another process)."""
        with self._sessions.begin() as session:
            result = session.execute(
                update(WorkerRow).where(WorkerRow.id == worker_id).values(heartbeat_at=utcnow())
            )
            return bool(result.rowcount)  # type: ignore[attr-defined]

    def remove(self, worker_id: str) -> None:
        with self._sessions.begin() as session:
            session.execute(delete(WorkerRow).where(WorkerRow.id == worker_id))

    def alive(self, *, stalled_after: timedelta, host: str) -> list[str]:
        """Ids of live workers, after removing the rows of dead ones."""
        now = utcnow()
        with self._sessions() as session:
            rows = session.scalars(select(WorkerRow)).all()
        live: list[str] = []
        dead: list[str] = []
        for row in rows:
            gone = row.heartbeat_at < now - stalled_after or (
                row.host == host and not _running(row.pid)
            )
            (dead if gone else live).append(row.id)
        if dead:
            with self._sessions.begin() as session:
                session.execute(delete(WorkerRow).where(WorkerRow.id.in_(dead)))
        return live


def _running(pid: int) -> bool:
    """Whether a process `pid` exists on this host (a reused pid only delays the verdict until
    the heartbeat goes stale)."""
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # it exists, under another user
    return True

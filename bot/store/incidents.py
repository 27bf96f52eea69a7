"""Incidents: one per failure fingerprint within a window; repeats are counted, not re-posted."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from bot.store.tables import IncidentRow

OPEN_STATES = ("open", "acknowledged", "snoozed")


@dataclass(frozen=True, kw_only=True)
class Incident:
    id: int
    fingerprint: str
    system: str
    subject: str
    node: str
    title: str
    status: str
    occurrences: int
    first_seen_at: datetime
    last_seen_at: datetime
    acknowledged_by: str | None
    thread: str | None
    channel: str | None


def _incident(row: IncidentRow) -> Incident:
    return Incident(
        id=row.id,
        fingerprint=row.fingerprint,
        system=row.system,
        subject=row.subject,
        node=row.node,
        title=row.title,
        status=row.status,
        occurrences=row.occurrences,
        first_seen_at=row.first_seen_at,
        last_seen_at=row.last_seen_at,
        acknowledged_by=row.acknowledged_by,
        thread=row.thread,
        channel=row.channel,
    )


class Incidents:
    def __init__(self, sessions: sessionmaker[Session]) -> None:
        self._sessions = sessions

    def open_incidents(self, *, limit: int = 50) -> list[Incident]:
        with self._sessions() as session:
            rows = session.scalars(
                select(IncidentRow)
                .where(IncidentRow.status.in_(OPEN_STATES))
                .order_by(IncidentRow.last_seen_at.desc())
                .limit(limit)
            )
            return [_incident(row) for row in rows]

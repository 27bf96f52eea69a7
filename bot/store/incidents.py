"""Incidents: one per failure fingerprint within a window; repeats are counted, not re-posted.

A fingerprint is ``system:subject:failing nodes`` (e.g. ``airflow:orders_daily:transform``).
The same run reported twice is one occurrence; another failing run within the window is a
repeat of the open incident; after the window, or once resolved, a new incident starts.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from bot.store.keys import clip, fit
from bot.store.sessions import Sessions
from bot.store.tables import IncidentMuteRow, IncidentRow, utcnow

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
    last_run_id: str | None
    acknowledged_by: str | None
    snoozed_until: datetime | None
    resolved_by: str | None
    platform: str | None
    workspace: str | None
    channel: str | None
    thread: str | None

    @property
    def is_open(self) -> bool:
        return self.status in OPEN_STATES


@dataclass(frozen=True, kw_only=True)
class Occurrence:
    incident: Incident
    new: bool  # a new incident was opened
    repeat: bool  # another failing run of an open incident
    muted: bool  # the fingerprint is muted: record, but post nothing


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
        last_run_id=row.last_run_id,
        acknowledged_by=row.acknowledged_by,
        snoozed_until=row.snoozed_until,
        resolved_by=row.resolved_by,
        platform=row.platform,
        workspace=row.workspace,
        channel=row.channel,
        thread=row.thread,
    )


class Incidents:
    def __init__(self, sessions: Sessions) -> None:
        self._sessions = sessions

    def record_failure(
        self,
        *,
        fingerprint: str,
        system: str,
        subject: str,
        node: str,
        title: str,
        run_id: str,
        window: timedelta,
        facts: dict[str, Any] | None = None,
        now: datetime | None = None,
        session: Session | None = None,
    ) -> Occurrence:
        """Record a failing run; in `session`'s transaction when given (the caller commits the
        occurrence together with its "handled" mark)."""
        now = now or utcnow()
        fingerprint, run_id = fit(fingerprint), fit(run_id)
        with self._sessions.join(session) as tx:
            muted = self._muted(tx, fingerprint, now)
            row = tx.scalars(
                select(IncidentRow)
                .where(IncidentRow.fingerprint == fingerprint, IncidentRow.status.in_(OPEN_STATES))
                .order_by(IncidentRow.id.desc())
                .limit(1)
                .with_for_update()
            ).first()
            if row is not None and row.last_seen_at >= now - window:
                repeat = row.last_run_id != run_id
                if repeat:
                    row.occurrences += 1
                    row.last_seen_at = now
                    row.last_run_id = run_id
                    row.facts = facts or row.facts
                    # A new failure wakes a snoozed incident only once the snooze is over.
                    if row.status == "snoozed" and row.snoozed_until and row.snoozed_until <= now:
                        row.status = "open"
                return Occurrence(incident=_incident(row), new=False, repeat=repeat, muted=muted)
            row = IncidentRow(
                fingerprint=fingerprint,
                system=clip(system, 32),
                subject=clip(subject, 255),
                node=clip(node, 255),
                title=title,
                last_run_id=run_id,
                first_seen_at=now,
                last_seen_at=now,
                facts=facts,
            )
            tx.add(row)
            tx.flush()
            return Occurrence(incident=_incident(row), new=True, repeat=False, muted=muted)

    def record_success(
        self,
        *,
        system: str,
        subject: str,
        run_id: str,
        now: datetime | None = None,
        session: Session | None = None,
    ) -> list[Incident]:
        """Resolve the open incidents of `subject`; returns those resolved."""
        now = now or utcnow()
        subject = clip(subject, 255)
        with self._sessions.join(session) as tx:
            rows = tx.scalars(
                select(IncidentRow).where(
                    IncidentRow.system == system,
                    IncidentRow.subject == subject,
                    IncidentRow.status.in_(OPEN_STATES),
                )
            ).all()
            for row in rows:
                row.status = "resolved"
                row.resolved_at = now
                row.resolved_by = clip(f"automatically: run {run_id} succeeded", 128)
            return [_incident(row) for row in rows]

    def attach_thread(
        self,
        incident_id: int,
        *,
        platform: str,
        workspace: str,
        channel: str,
        thread: str,
        session: Session | None = None,
    ) -> Incident:
        """Remember where the incident is discussed (first writer wins)."""
        with self._sessions.join(session) as tx:
            row = tx.get_one(IncidentRow, incident_id)
            if row.thread is None:
                row.platform, row.workspace = platform, workspace
                row.channel, row.thread = channel, thread
            return _incident(row)

    def get(self, incident_id: int) -> Incident | None:
        with self._sessions() as session:
            row = session.get(IncidentRow, incident_id)
            return None if row is None else _incident(row)

    def acknowledge(self, incident_id: int, *, by: str, now: datetime | None = None) -> Incident:
        with self._sessions.begin() as session:
            row = session.get_one(IncidentRow, incident_id)
            row.status = "acknowledged"
            row.acknowledged_by = by
            row.acknowledged_at = now or utcnow()
            return _incident(row)

    def snooze(self, incident_id: int, *, until: datetime, by: str) -> Incident:
        with self._sessions.begin() as session:
            row = session.get_one(IncidentRow, incident_id)
            row.status = "snoozed"
            row.snoozed_until = until
            row.acknowledged_by = row.acknowledged_by or by
            return _incident(row)

    def resolve(self, incident_id: int, *, by: str, now: datetime | None = None) -> Incident:
        with self._sessions.begin() as session:
            row = session.get_one(IncidentRow, incident_id)
            row.status = "resolved"
            row.resolved_at = now or utcnow()
            row.resolved_by = by
            return _incident(row)

    def mute(self, fingerprint: str, *, by: str, until: datetime | None) -> None:
        fingerprint = fit(fingerprint)
        with self._sessions.begin() as session:
            row = session.get(IncidentMuteRow, fingerprint)
            if row is None:
                session.add(IncidentMuteRow(fingerprint=fingerprint, muted_by=by, until=until))
            else:
                row.muted_by, row.until, row.muted_at = by, until, utcnow()

    def unmute(self, fingerprint: str) -> bool:
        fingerprint = fit(fingerprint)
        with self._sessions.begin() as session:
            row = session.get(IncidentMuteRow, fingerprint)
            if row is None:
                return False
            session.delete(row)
            return True

    def is_muted(self, fingerprint: str, now: datetime | None = None) -> bool:
        with self._sessions() as session:
            return self._muted(session, fingerprint, now or utcnow())

    def open_counts(self) -> dict[str, int]:
        """Incidents not resolved, by status (metrics)."""
        with self._sessions() as session:
            rows = session.execute(
                select(IncidentRow.status, func.count())
                .where(IncidentRow.status.in_(OPEN_STATES))
                .group_by(IncidentRow.status)
            ).all()
        return {str(status): int(count) for status, count in rows}

    def open_incidents(self, *, limit: int = 50) -> list[Incident]:
        with self._sessions() as session:
            rows = session.scalars(
                select(IncidentRow)
                .where(IncidentRow.status.in_(OPEN_STATES))
                .order_by(IncidentRow.last_seen_at.desc())
                .limit(limit)
            )
            return [_incident(row) for row in rows]

    def seen_since(self, since: datetime, *, limit: int = 200) -> list[Incident]:
        """Incidents with a failure at or after `since`, open or not, most recent first."""
        with self._sessions() as session:
            rows = session.scalars(
                select(IncidentRow)
                .where(IncidentRow.last_seen_at >= since)
                .order_by(IncidentRow.last_seen_at.desc())
                .limit(limit)
            )
            return [_incident(row) for row in rows]

    @staticmethod
    def _muted(session: Session, fingerprint: str, now: datetime) -> bool:
        fingerprint = fit(fingerprint)
        row = session.get(IncidentMuteRow, fingerprint)
        return row is not None and (row.until is None or row.until > now)

"""Digest schedules and their runs. A run is claimed per (schedule, slot) through a unique
constraint, so two clocks by mistake — or a restart inside the grace window — post once.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from bot.store.sessions import Sessions, insert_new
from bot.store.tables import DigestRunRow, DigestScheduleRow, utcnow


@dataclass(frozen=True, kw_only=True)
class DigestSchedule:
    id: int
    name: str
    platform: str
    workspace: str
    channel: str
    cron: str
    timezone: str
    created_by: str
    enabled: bool
    filters: str = ""  # "tag:finance owner:dana dbt:tag:finance" (bot.health.selection)


def _schedule(row: DigestScheduleRow) -> DigestSchedule:
    return DigestSchedule(
        id=row.id,
        name=row.name,
        platform=row.platform,
        workspace=row.workspace,
        channel=row.channel,
        cron=row.cron,
        timezone=row.timezone,
        created_by=row.created_by,
        enabled=row.enabled,
        filters=row.filters or "",
    )


class Digests:
    def __init__(self, sessions: Sessions) -> None:
        self._sessions = sessions

    def add_schedule(
        self,
        *,
        name: str,
        platform: str,
        workspace: str,
        channel: str,
        cron: str,
        timezone: str,
        created_by: str,
        filters: str = "",
    ) -> DigestSchedule | None:
        """Create a schedule; None when the channel already has one with that name."""
        try:
            with self._sessions.begin() as session:
                row = DigestScheduleRow(
                    name=name,
                    platform=platform,
                    workspace=workspace,
                    channel=channel,
                    cron=cron,
                    timezone=timezone,
                    created_by=created_by,
                    filters=filters,
                )
                session.add(row)
                session.flush()
                return _schedule(row)
        except IntegrityError:
            return None

    def schedules(self, *, channel: str | None = None) -> list[DigestSchedule]:
        query = select(DigestScheduleRow).order_by(DigestScheduleRow.id)
        if channel is not None:
            query = query.where(DigestScheduleRow.channel == channel)
        with self._sessions() as session:
            return [_schedule(row) for row in session.scalars(query)]

    def schedule(self, schedule_id: int) -> DigestSchedule | None:
        with self._sessions() as session:
            row = session.get(DigestScheduleRow, schedule_id)
            return _schedule(row) if row is not None else None

    def run_status(self, schedule_id: int, slot: str) -> tuple[int, str] | None:
        """(run id, status) of the run of `schedule_id` for `slot`, if one was claimed."""
        with self._sessions() as session:
            row = session.scalars(
                select(DigestRunRow).where(
                    DigestRunRow.schedule_id == schedule_id, DigestRunRow.slot == slot
                )
            ).one_or_none()
            return (row.id, row.status) if row is not None else None

    def remove_schedule(self, schedule_id: int) -> bool:
        with self._sessions.begin() as session:
            row = session.get(DigestScheduleRow, schedule_id)
            if row is None:
                return False
            session.delete(row)
            return True

    def claim_run(
        self, schedule_id: int, slot: str, *, session: Session | None = None
    ) -> int | None:
        """Claim the run of `schedule_id` for `slot`; None when it was already claimed."""
        with self._sessions.join(session) as tx:
            values = {"schedule_id": schedule_id, "slot": slot, "status": "claimed"}
            if not insert_new(tx, DigestRunRow, {**values, "claimed_at": utcnow()}):
                return None
            return tx.scalar(
                select(DigestRunRow.id).where(
                    DigestRunRow.schedule_id == schedule_id, DigestRunRow.slot == slot
                )
            )

    def finish_run(
        self, run_id: int, *, error: str | None = None, session: Session | None = None
    ) -> None:
        with self._sessions.join(session) as tx:
            row = tx.get_one(DigestRunRow, run_id)
            row.status = "failed" if error else "posted"
            row.error = error
            row.finished_at = utcnow()

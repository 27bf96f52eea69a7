"""Accepted work: a handler records the job (keyed by the platform's event id) before it
acknowledges, then a worker claims and runs it. A job left `running` by a crash is claimed
again when its lease ends.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import func, insert, or_, select, update
from sqlalchemy.exc import IntegrityError

from bot.store.sessions import Sessions
from bot.store.tables import JobRow, utcnow

QUEUED, RUNNING, DONE, FAILED = "queued", "running", "done", "failed"
# Built once: compiling a statement per call would cost more than running it.
_INSERT = insert(JobRow).returning(JobRow.id)
CANDIDATES = 5  # rows looked at per claim; another claimer may take some of them first


@dataclass(frozen=True, kw_only=True)
class JobItem:
    id: int
    key: str
    kind: str
    payload: dict[str, Any]
    attempts: int


class Jobs:
    def __init__(self, sessions: Sessions) -> None:
        self._sessions = sessions

    def submit(self, key: str, kind: str, payload: dict[str, Any]) -> int | None:
        """Record a job; None when `key` was already submitted (a duplicate delivery)."""
        # A platform is waiting for its acknowledgement until this commits: an urgent write,
        # and a Core insert (the ORM's unit of work costs more than the insert itself).
        now = utcnow()
        values = {
            "key": key[:255],
            "kind": kind,
            "payload": payload,
            "status": QUEUED,
            "attempts": 0,
            "run_after": now,
            "created_at": now,
        }
        try:
            with self._sessions.begin(urgent=True) as session:
                return int(session.connection().execute(_INSERT, values).scalar_one())
        except IntegrityError:
            return None

    def claim(self, *, lease: timedelta, job_id: int | None = None) -> JobItem | None:
        """Take the oldest runnable job (or `job_id`), leasing it to this worker."""
        now = utcnow()
        runnable = or_(
            (JobRow.status == QUEUED) & (JobRow.run_after <= now),
            (JobRow.status == RUNNING) & (JobRow.locked_until < now),
        )
        with self._sessions.begin() as session:
            query = (
                select(JobRow.id)
                .where(runnable)
                .order_by(JobRow.id)
                .limit(CANDIDATES)
                .with_for_update(skip_locked=True)
            )
            if job_id is not None:
                query = query.where(JobRow.id == job_id)
            for candidate in session.scalars(query).all():
                # The conditional update is the claim: of two claimers (threads, processes,
                # replicas — SQLite has no SKIP LOCKED) only one sees a row still runnable.
                claimed = session.execute(
                    update(JobRow)
                    .where(JobRow.id == candidate, runnable)
                    .values(status=RUNNING, attempts=JobRow.attempts + 1, locked_until=now + lease)
                )
                if claimed.rowcount == 1:  # type: ignore[attr-defined]
                    row = session.scalars(
                        select(JobRow)
                        .where(JobRow.id == candidate)
                        .execution_options(populate_existing=True)
                    ).one()
                    return JobItem(
                        id=row.id,
                        key=row.key,
                        kind=row.kind,
                        payload=row.payload,
                        attempts=row.attempts,
                    )
            return None

    def finish(self, job_id: int) -> None:
        with self._sessions.begin() as session:
            row = session.get_one(JobRow, job_id)
            row.status = DONE
            row.finished_at = utcnow()
            row.locked_until = None

    def fail(self, job_id: int, error: str, *, retry_at: datetime | None) -> None:
        """Record a failure; with `retry_at` the job runs again then, else it stays failed."""
        with self._sessions.begin() as session:
            row = session.get_one(JobRow, job_id)
            row.error = error[:2000]
            row.locked_until = None
            if retry_at is None:
                row.status = FAILED
                row.finished_at = utcnow()
            else:
                row.status = QUEUED
                row.run_after = retry_at

    def status(self, key: str) -> str | None:
        with self._sessions() as session:
            return session.scalar(select(JobRow.status).where(JobRow.key == key[:255]))

    def counts(self) -> dict[str, int]:
        with self._sessions() as session:
            rows = session.execute(
                select(JobRow.status, func.count()).group_by(JobRow.status)
            ).all()
        return {status: int(count) for status, count in rows}

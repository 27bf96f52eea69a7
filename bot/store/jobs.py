"""The jobs of the embedded engine (`bot.work.local`): a row per accepted event.

A handler inserts the row (its key is the platform's event id, so a redelivery is refused)
before it acknowledges; a worker claims it with a conditional update — of two claimers only one
sees it still queued — and records the outcome. A claimed job names its worker: when that
worker's heartbeat stops (`bot.store.workers`), `release_dead` puts the job back in the queue.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import delete, func, insert, or_, select, update
from sqlalchemy.exc import IntegrityError

from bot.store.keys import fit
from bot.store.sessions import Sessions
from bot.store.tables import JobRow, utcnow

QUEUED, RUNNING, DONE, FAILED = "queued", "running", "done", "failed"
_INSERT = insert(JobRow).returning(JobRow.id)


@dataclass(frozen=True, kw_only=True)
class JobItem:
    id: int
    key: str
    kind: str
    payload: Any
    attempts: int  # runs so far, this one included
    created_at: datetime


class Jobs:
    def __init__(self, sessions: Sessions) -> None:
        self._sessions = sessions

    def submit(self, key: str, kind: str, payload: Any) -> int | None:
        """Record a job; None when `key` was already submitted (a duplicate delivery)."""
        now = utcnow()
        values = {
            "key": fit(key),
            "kind": kind,
            "payload": payload,
            "status": QUEUED,
            "attempts": 0,
            "run_after": now,
            "created_at": now,
        }
        try:
            with self._sessions.begin() as session:
                return int(
                    session.execute(insert(JobRow).returning(JobRow.id), values).scalar_one()
                )
        except IntegrityError:
            return None

    def claim(self, worker: str) -> JobItem | None:
        """Take the oldest due job for `worker`; None when nothing is due."""
        now = utcnow()
        with self._sessions.begin() as session:
            candidates = session.scalars(
                select(JobRow.id)
                .where(JobRow.status == QUEUED, JobRow.run_after <= now)
                .order_by(JobRow.id)
                .limit(5)
            ).all()
            for candidate in candidates:
                claimed = session.execute(
                    update(JobRow)
                    .where(JobRow.id == candidate, JobRow.status == QUEUED)
                    .values(status=RUNNING, attempts=JobRow.attempts + 1, worker_id=worker)
                    .returning(
                        JobRow.id,
                        JobRow.key,
                        JobRow.kind,
                        JobRow.payload,
                        JobRow.attempts,
                        JobRow.created_at,
                    )
                ).first()
                if claimed is not None:
                    return JobItem(
                        id=claimed.id,
                        key=claimed.key,
                        kind=claimed.kind,
                        payload=claimed.payload,
                        attempts=claimed.attempts,
                        created_at=claimed.created_at,
                    )
        return None

    def next_due(self) -> datetime | None:
        """When the earliest queued job becomes due (the dispatcher sleeps until then)."""
        with self._sessions() as session:
            return session.scalar(select(func.min(JobRow.run_after)).where(JobRow.status == QUEUED))

    # The outcome of a run is recorded only while the job is still that worker's: a job put back
    # in the queue (its worker was declared dead, or stopped) belongs to whoever runs it next.

    def finish(self, job_id: int, worker: str) -> None:
        self._end(job_id, worker, DONE, None)

    def fail(self, job_id: int, worker: str, error: str) -> None:
        """Give the job up: it ran its last attempt."""
        self._end(job_id, worker, FAILED, error)

    def retry(self, job_id: int, worker: str, error: str, *, at: datetime) -> None:
        with self._sessions.begin() as session:
            session.execute(
                update(JobRow)
                .where(JobRow.id == job_id, JobRow.worker_id == worker)
                .values(status=QUEUED, run_after=at, worker_id=None, error=error[:2000])
            )

    def release(self, worker: str) -> int:
        """Put `worker`'s running jobs back in the queue, as if they had not started (a
        graceful stop that could not wait for them)."""
        with self._sessions.begin() as session:
            result = session.execute(
                update(JobRow)
                .where(JobRow.status == RUNNING, JobRow.worker_id == worker)
                .values(status=QUEUED, worker_id=None, attempts=JobRow.attempts - 1)
            )
            return int(result.rowcount)  # type: ignore[attr-defined]

    def release_dead(self, alive: list[str]) -> int:
        """Requeue running jobs whose worker is not in `alive` (crashed, or killed)."""
        with self._sessions.begin() as session:
            orphaned = or_(JobRow.worker_id.is_(None), JobRow.worker_id.not_in(alive))
            result = session.execute(
                update(JobRow)
                .where(JobRow.status == RUNNING, orphaned)
                .values(status=QUEUED, worker_id=None, run_after=utcnow())
            )
            return int(result.rowcount)  # type: ignore[attr-defined]

    def status(self, key: str) -> str | None:
        with self._sessions() as session:
            return session.scalar(select(JobRow.status).where(JobRow.key == fit(key)))

    def counts(self) -> dict[str, int]:
        with self._sessions() as session:
            rows = session.execute(
                select(JobRow.status, func.count()).group_by(JobRow.status)
            ).all()
        return {status: int(count) for status, count in rows}

    def oldest_waiting(self) -> datetime | None:
        """When the oldest job still queued or running was accepted."""
        with self._sessions() as session:
            return session.scalar(
                select(func.min(JobRow.created_at)).where(JobRow.status.in_((QUEUED, RUNNING)))
            )

    def prune(self, older_than: datetime) -> int:
        """Delete finished jobs (done or failed) older than `older_than`."""
        with self._sessions.begin() as session:
            result = session.execute(
                delete(JobRow).where(
                    JobRow.status.in_((DONE, FAILED)), JobRow.created_at < older_than
                )
            )
            return int(result.rowcount)  # type: ignore[attr-defined]

    def _end(self, job_id: int, worker: str, status: str, error: str | None) -> None:
        with self._sessions.begin() as session:
            session.execute(
                update(JobRow)
                .where(JobRow.id == job_id, JobRow.worker_id == worker)
                .values(
                    status=status,
                    worker_id=None,
                    finished_at=utcnow(),
                    error=None if error is None else error[:2000],
                )
            )

"""Accepted work: a handler records the job (keyed by the platform's event id) before it
acknowledges, then a worker claims and runs it. A job left `running` by a crash is claimed
again when its lease ends.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import func, insert, or_, select, update
from sqlalchemy.exc import IntegrityError, SQLAlchemyError

from bot.store.sessions import Sessions
from bot.store.tables import JobRow, utcnow

QUEUED, RUNNING, DONE, FAILED = "queued", "running", "done", "failed"
# Built once: compiling a statement per call would cost more than running it.
_INSERT = insert(JobRow).returning(JobRow.id, JobRow.key, sort_by_parameter_order=True)
CANDIDATES = 5  # rows looked at per claim; another claimer may take some of them first


@dataclass(frozen=True, kw_only=True)
class JobItem:
    id: int
    key: str
    kind: str
    payload: dict[str, Any]
    attempts: int


@dataclass
class _Ticket:
    """One submit waiting for the transaction that carries it."""

    values: dict[str, Any]
    done: bool = False
    job_id: int | None = None
    error: BaseException | None = field(default=None, repr=False)


class Jobs:
    def __init__(self, sessions: Sessions) -> None:
        self._sessions = sessions
        self._cond = threading.Condition()
        self._pending: list[_Ticket] = []
        self._writing = False

    def submit(self, key: str, kind: str, payload: dict[str, Any]) -> int | None:
        """Record a job; None when `key` was already submitted (a duplicate delivery).

        A platform is waiting for its acknowledgement until this commits. Concurrent submits
        share one transaction (group commit): whoever finds no write under way writes every
        submit queued so far, so a burst of events costs a few commits instead of one each.
        """
        now = utcnow()
        ticket = _Ticket(
            {
                "key": key[:255],
                "kind": kind,
                "payload": payload,
                "status": QUEUED,
                "attempts": 0,
                "run_after": now,
                "created_at": now,
            }
        )
        with self._cond:
            self._pending.append(ticket)
            while self._writing and not ticket.done:
                # Woken by the writer's commit; the timeout only bounds a missed wake-up.
                self._cond.wait(timeout=1.0)
            if not ticket.done:
                self._writing = True
                batch, self._pending = self._pending, []
        if not ticket.done:
            try:
                self._write(batch)
            except BaseException as exc:
                for waiting in batch:
                    waiting.error = exc
                raise
            finally:
                with self._cond:
                    for waiting in batch:
                        waiting.done = True
                    self._writing = False
                    self._cond.notify_all()
        if ticket.error is not None:
            raise ticket.error
        return ticket.job_id

    def _write(self, batch: list[_Ticket]) -> None:
        try:
            self._insert(batch)
        except IntegrityError:
            # Another process inserted one of these keys meanwhile (PostgreSQL: no writer
            # lock). Each submit on its own then learns whether it was the duplicate.
            for ticket in batch:
                try:
                    self._insert([ticket])
                except IntegrityError:
                    ticket.job_id = None
                except SQLAlchemyError as exc:  # only this submit failed; the others stand
                    ticket.error = exc

    def _insert(self, batch: list[_Ticket]) -> None:
        # Core statements: the ORM's unit of work costs more than the insert itself.
        with self._sessions.begin(urgent=True) as session:
            connection = session.connection()
            keys = {ticket.values["key"] for ticket in batch}
            taken = set(connection.scalars(select(JobRow.key).where(JobRow.key.in_(keys))))
            fresh: dict[str, _Ticket] = {}
            for ticket in batch:
                key = ticket.values["key"]
                if key not in taken and key not in fresh:
                    fresh[key] = ticket
            if fresh:
                rows = connection.execute(_INSERT, [t.values for t in fresh.values()])
                ids = {row.key: int(row.id) for row in rows}
            else:
                ids = {}
        for ticket in batch:
            first = fresh.get(ticket.values["key"]) is ticket
            ticket.job_id = ids.get(ticket.values["key"]) if first else None

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

"""The outbox: every outgoing post is a row first, then delivered, retried, never duplicated.

Delivery is at-least-once between "the platform accepted it" and `mark_sent`; the unique
idempotency key guarantees one row per logical post (event id, incident fingerprint, digest
slot), so retries of the *same* work never create a second post.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import func, select, update
from sqlalchemy.exc import IntegrityError

from bot.store.sessions import Sessions
from bot.store.tables import OutboxRow, utcnow

PENDING, SENDING, SENT, DEAD = "pending", "sending", "sent", "dead"


@dataclass(frozen=True, kw_only=True)
class OutboxItem:
    id: int
    key: str
    platform: str
    workspace: str
    channel: str
    thread: str | None
    kind: str
    update_ref: str | None
    body: dict[str, Any]
    status: str
    attempts: int
    remote_ref: str | None
    last_error: str | None


def _item(row: OutboxRow) -> OutboxItem:
    return OutboxItem(
        id=row.id,
        key=row.idempotency_key,
        platform=row.platform,
        workspace=row.workspace,
        channel=row.channel,
        thread=row.thread,
        kind=row.kind,
        update_ref=row.update_ref,
        body=row.body,
        status=row.status,
        attempts=row.attempts,
        remote_ref=row.remote_ref,
        last_error=row.last_error,
    )


class Outbox:
    def __init__(self, sessions: Sessions) -> None:
        self._sessions = sessions

    def enqueue(
        self,
        key: str,
        *,
        platform: str,
        workspace: str,
        channel: str,
        body: dict[str, Any],
        thread: str | None = None,
        kind: str = "post",
        update_ref: str | None = None,
    ) -> bool:
        """Record a post; False when `key` was already recorded (nothing is added)."""
        try:
            with self._sessions.begin() as session:
                session.add(
                    OutboxRow(
                        idempotency_key=key[:255],
                        platform=platform,
                        workspace=workspace,
                        channel=channel,
                        thread=thread,
                        kind=kind,
                        update_ref=update_ref,
                        body=body,
                    )
                )
        except IntegrityError:
            return False
        return True

    def claim_due(
        self, *, platform: str, limit: int = 10, lease: timedelta = timedelta(seconds=60)
    ) -> list[OutboxItem]:
        """Take up to `limit` due posts for delivery.

        A claimed post is leased: if the sender dies before `mark_sent`, it becomes due again
        when the lease ends. PostgreSQL skips rows another sender holds.
        """
        now = utcnow()
        due = (
            (OutboxRow.platform == platform)
            & OutboxRow.status.in_((PENDING, SENDING))
            & (OutboxRow.next_attempt_at <= now)
        )
        claimed: list[OutboxItem] = []
        with self._sessions.begin() as session:
            candidates = session.scalars(
                select(OutboxRow.id)
                .where(due)
                .order_by(OutboxRow.id)
                .limit(limit)
                .with_for_update(skip_locked=True)
            ).all()
            for candidate in candidates:
                # The conditional update is the claim, safe between senders and processes
                # even on SQLite, which has no SKIP LOCKED.
                result = session.execute(
                    update(OutboxRow)
                    .where(OutboxRow.id == candidate, due)
                    .values(
                        status=SENDING,
                        attempts=OutboxRow.attempts + 1,
                        next_attempt_at=now + lease,
                    )
                )
                if result.rowcount == 1:  # type: ignore[attr-defined]
                    row = session.scalars(
                        select(OutboxRow)
                        .where(OutboxRow.id == candidate)
                        .execution_options(populate_existing=True)
                    ).one()
                    claimed.append(_item(row))
        return claimed

    def mark_sent(self, item_id: int, remote_ref: str | None) -> None:
        with self._sessions.begin() as session:
            row = session.get_one(OutboxRow, item_id)
            row.status = SENT
            row.remote_ref = remote_ref
            row.sent_at = utcnow()
            row.last_error = None

    def mark_retry(self, item_id: int, error: str, *, at: datetime) -> None:
        with self._sessions.begin() as session:
            row = session.get_one(OutboxRow, item_id)
            row.status = PENDING
            row.last_error = error[:2000]
            row.next_attempt_at = at

    def mark_dead(self, item_id: int, error: str) -> None:
        """Give up on a post (e.g. the channel is gone); it stays visible for operators."""
        with self._sessions.begin() as session:
            row = session.get_one(OutboxRow, item_id)
            row.status = DEAD
            row.last_error = error[:2000]

    def get(self, key: str) -> OutboxItem | None:
        with self._sessions() as session:
            row = session.scalars(
                select(OutboxRow).where(OutboxRow.idempotency_key == key[:255])
            ).one_or_none()
            return None if row is None else _item(row)

    def counts(self) -> dict[str, int]:
        with self._sessions() as session:
            rows = session.execute(
                select(OutboxRow.status, func.count()).group_by(OutboxRow.status)
            ).all()
        return {status: int(count) for status, count in rows}

"""The outbox: one row per logical outgoing post, the record that it was sent.

Every post has an idempotency key (derived from the event, the incident or the digest slot).
Before a request leaves, `attempt` writes the row as ``sending`` and counts the attempt; once
the platform confirms, `sent` stores its message id. A row found ``sending`` on a later attempt
means an earlier request may have reached the platform: the sender reconciles (looks for the
message by its key) before it sends again, so a retry never posts a second copy where the
platform lets us look. ``sent`` and ``dead`` rows are final.

Each failed attempt counts in ``pipebot_posts_retried_total`` and each post given up in
``pipebot_posts_failed_total``, by platform — here, where both chats record them.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import delete, func, select, update

from bot import metrics
from bot.store.keys import fit
from bot.store.sessions import Sessions, insert_new
from bot.store.tables import OutboxRow, utcnow

SENDING, SENT, DEAD = "sending", "sent", "dead"


@dataclass(frozen=True, kw_only=True)
class OutboxItem:
    id: int
    key: str
    platform: str
    workspace: str
    channel: str
    thread: str | None
    kind: str
    body: dict[str, Any]
    status: str
    attempts: int
    remote_ref: str | None
    last_error: str | None
    created_at: datetime


def _item(row: OutboxRow) -> OutboxItem:
    return OutboxItem(
        id=row.id,
        key=row.idempotency_key,
        platform=row.platform,
        workspace=row.workspace,
        channel=row.channel,
        thread=row.thread,
        kind=row.kind,
        body=row.body,
        status=row.status,
        attempts=row.attempts,
        remote_ref=row.remote_ref,
        last_error=row.last_error,
        created_at=row.created_at,
    )


class Outbox:
    def __init__(self, sessions: Sessions) -> None:
        self._sessions = sessions

    def attempt(
        self,
        key: str,
        *,
        platform: str,
        workspace: str,
        channel: str,
        thread: str | None,
        kind: str,
        body: dict[str, Any],
    ) -> OutboxItem:
        """Record that a send of `key` is about to start; returns the row as it stands now.

        The first attempt stores `body` (the rendered message); later attempts keep the stored
        body, so what is sent never changes between retries. `attempts` > 1 with status
        ``sending`` tells the caller an earlier request may have arrived.
        """
        with self._sessions.begin() as session:
            insert_new(
                session,
                OutboxRow,
                {
                    "idempotency_key": fit(key),
                    "platform": platform,
                    "workspace": workspace,
                    "channel": channel,
                    "thread": thread,
                    "kind": kind,
                    "body": body,
                    "status": SENDING,
                    "attempts": 0,
                    "created_at": utcnow(),
                },
            )
            session.execute(
                update(OutboxRow)
                .where(OutboxRow.idempotency_key == fit(key), OutboxRow.status == SENDING)
                .values(attempts=OutboxRow.attempts + 1)
            )
            row = session.scalars(
                select(OutboxRow)
                .where(OutboxRow.idempotency_key == fit(key))
                .execution_options(populate_existing=True)
            ).one()
            return _item(row)

    def sent(self, item_id: int, remote_ref: str | None) -> None:
        with self._sessions.begin() as session:
            session.execute(
                update(OutboxRow)
                .where(OutboxRow.id == item_id)
                .values(status=SENT, remote_ref=remote_ref, sent_at=utcnow(), last_error=None)
            )

    def started(self, item_id: int, remote_ref: str) -> None:
        """Remember a message id while the send is still going (a streamed answer's message)."""
        with self._sessions.begin() as session:
            session.execute(
                update(OutboxRow).where(OutboxRow.id == item_id).values(remote_ref=remote_ref)
            )

    def failed(self, item_id: int, error: str) -> None:
        """Note why this attempt failed; the row stays ``sending`` for the next attempt."""
        with self._sessions.begin() as session:
            platform = session.execute(
                update(OutboxRow)
                .where(OutboxRow.id == item_id)
                .values(last_error=error[:2000])
                .returning(OutboxRow.platform)
            ).scalar_one_or_none()
        if platform is not None:
            metrics.POSTS_RETRIED.labels(platform).inc()

    def dead(self, item_id: int, error: str) -> None:
        """Give up on a post (the channel is gone …); it stays visible to operators."""
        with self._sessions.begin() as session:
            platform = session.execute(
                update(OutboxRow)
                .where(OutboxRow.id == item_id, OutboxRow.status != DEAD)
                .values(status=DEAD, last_error=error[:2000])
                .returning(OutboxRow.platform)
            ).scalar_one_or_none()
        if platform is not None:
            metrics.POSTS_FAILED.labels(platform).inc()

    def get(self, key: str) -> OutboxItem | None:
        with self._sessions() as session:
            row = session.scalars(
                select(OutboxRow).where(OutboxRow.idempotency_key == fit(key))
            ).one_or_none()
            return None if row is None else _item(row)

    def counts(self) -> dict[str, int]:
        with self._sessions() as session:
            rows = session.execute(
                select(OutboxRow.status, func.count()).group_by(OutboxRow.status)
            ).all()
        return {status: int(count) for status, count in rows}

    def prune(self, older_than: datetime) -> int:
        """Delete sent and dead rows older than `older_than` (their retries are long over)."""
        with self._sessions.begin() as session:
            result = session.execute(
                delete(OutboxRow).where(
                    OutboxRow.status.in_((SENT, DEAD)), OutboxRow.created_at < older_than
                )
            )
            return int(result.rowcount)  # type: ignore[attr-defined]

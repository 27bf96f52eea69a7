"""Conversations (one per chat thread) and their messages: the bot's thread memory."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from bot.messages import ThreadRef
from bot.store.keys import fit
from bot.store.sessions import Sessions
from bot.store.tables import ConversationRow, MessageRow, utcnow


@dataclass(frozen=True, kw_only=True)
class StoredMessage:
    role: str
    author: str
    text: str
    payload: dict[str, Any] | None
    created_at: datetime


class Threads:
    def __init__(self, sessions: Sessions) -> None:
        self._sessions = sessions

    def touch(self, ref: ThreadRef) -> int:
        """The conversation id for `ref`, created on first use."""
        for _ in range(2):  # a concurrent creator may win the unique constraint once
            with self._sessions.begin() as session:
                row = session.scalars(_by_ref(ref)).one_or_none()
                if row is not None:
                    row.updated_at = utcnow()
                    found: int = row.id
                    return found
            try:
                with self._sessions.begin() as session:
                    row = ConversationRow(
                        platform=ref.platform,
                        workspace=ref.workspace,
                        channel=ref.channel,
                        thread=ref.thread,
                    )
                    session.add(row)
                    session.flush()
                    return row.id
            except IntegrityError:
                continue
        raise RuntimeError("conversation row vanished while being created")  # pragma: no cover

    def find(self, ref: ThreadRef) -> int | None:
        with self._sessions() as session:
            row = session.scalars(_by_ref(ref)).one_or_none()
            return None if row is None else row.id

    def add(
        self,
        conversation_id: int,
        *,
        role: str,
        text: str,
        author: str = "",
        event_id: str | None = None,
        payload: dict[str, Any] | None = None,
        session: Session | None = None,
    ) -> None:
        with self._sessions.join(session) as tx:
            tx.add(
                MessageRow(
                    conversation_id=conversation_id,
                    role=role,
                    author=author,
                    text=text,
                    event_id=None if event_id is None else fit(event_id),
                    payload=payload,
                )
            )

    def reply_for(self, ref: ThreadRef, event_id: str) -> dict[str, Any] | None:
        """The stored reply to the message `event_id` in that thread, if one was recorded."""
        with self._sessions() as session:
            payload = session.scalar(
                select(MessageRow.payload)
                .join(ConversationRow, ConversationRow.id == MessageRow.conversation_id)
                .where(
                    ConversationRow.platform == ref.platform,
                    ConversationRow.workspace == ref.workspace,
                    ConversationRow.channel == ref.channel,
                    ConversationRow.thread == ref.thread,
                    MessageRow.role == "bot",
                    MessageRow.event_id == fit(event_id),
                )
                .order_by(MessageRow.id.desc())
                .limit(1)
            )
            return payload

    def history(self, conversation_id: int, *, limit: int = 50) -> list[StoredMessage]:
        """The newest `limit` messages, oldest first."""
        with self._sessions() as session:
            rows = session.scalars(
                select(MessageRow)
                .where(MessageRow.conversation_id == conversation_id)
                .order_by(MessageRow.id.desc())
                .limit(limit)
            ).all()
        return [
            StoredMessage(
                role=row.role,
                author=row.author,
                text=row.text,
                payload=row.payload,
                created_at=row.created_at,
            )
            for row in reversed(rows)
        ]


def _by_ref(ref: ThreadRef) -> Any:
    return select(ConversationRow).where(
        ConversationRow.platform == ref.platform,
        ConversationRow.workspace == ref.workspace,
        ConversationRow.channel == ref.channel,
        ConversationRow.thread == ref.thread,
    )

"""Audit records of every tool call and LLM call (tokens, cache use, cost)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import delete, func, select

from bot.store.sessions import Sessions
from bot.store.tables import LlmCallRow, ToolCallRow


@dataclass(frozen=True, kw_only=True)
class LlmUsage:
    model: str
    stop_reason: str | None
    input_tokens: int
    output_tokens: int
    cache_read_tokens: int = 0
    cache_write_tokens: int = 0
    cost_usd: float = 0.0
    duration_ms: float = 0.0
    request_id: str | None = None

    @property
    def total_tokens(self) -> int:
        return (
            self.input_tokens
            + self.output_tokens
            + self.cache_read_tokens
            + self.cache_write_tokens
        )


class Audit:
    def __init__(self, sessions: Sessions) -> None:
        self._sessions = sessions

    def tool_call(
        self,
        *,
        tool: str,
        system: str,
        invocation: str,
        status: str,
        error: str | None = None,
        duration_ms: float = 0.0,
        conversation_id: int | None = None,
    ) -> None:
        with self._sessions.begin() as session:
            session.add(
                ToolCallRow(
                    conversation_id=conversation_id,
                    tool=tool,
                    system=system,
                    invocation=invocation,
                    status=status,
                    error=error,
                    duration_ms=duration_ms,
                )
            )

    def llm_call(self, usage: LlmUsage, *, conversation_id: int | None = None) -> None:
        with self._sessions.begin() as session:
            session.add(
                LlmCallRow(
                    conversation_id=conversation_id,
                    model=usage.model,
                    stop_reason=usage.stop_reason,
                    input_tokens=usage.input_tokens,
                    output_tokens=usage.output_tokens,
                    cache_read_tokens=usage.cache_read_tokens,
                    cache_write_tokens=usage.cache_write_tokens,
                    cost_usd=usage.cost_usd,
                    duration_ms=usage.duration_ms,
                    request_id=usage.request_id,
                )
            )

    def tokens_used(self, *, since: datetime, conversation_id: int | None = None) -> int:
        """All tokens (in, out, cache) spent since `since`, optionally in one conversation."""
        total = (
            LlmCallRow.input_tokens
            + LlmCallRow.output_tokens
            + LlmCallRow.cache_read_tokens
            + LlmCallRow.cache_write_tokens
        )
        query = select(func.coalesce(func.sum(total), 0)).where(LlmCallRow.created_at >= since)
        if conversation_id is not None:
            query = query.where(LlmCallRow.conversation_id == conversation_id)
        with self._sessions() as session:
            return int(session.scalar(query) or 0)

    def tool_calls(self, *, conversation_id: int | None = None, limit: int = 100) -> list[str]:
        """Invocations recorded, newest last (for tests and `pipebot audit`)."""
        query = select(ToolCallRow.invocation).order_by(ToolCallRow.id.desc()).limit(limit)
        if conversation_id is not None:
            query = query.where(ToolCallRow.conversation_id == conversation_id)
        with self._sessions() as session:
            return list(reversed(session.scalars(query).all()))

    def prune(self, older_than: datetime) -> int:
        """Delete tool and LLM call records older than `older_than`."""
        deleted = 0
        with self._sessions.begin() as session:
            for row in (ToolCallRow, LlmCallRow):
                result = session.execute(delete(row).where(row.created_at < older_than))
                deleted += int(result.rowcount)  # type: ignore[attr-defined]
        return deleted

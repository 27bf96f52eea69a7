"""The agent's memory of a thread: what it asked its tools and what it answered.

Each agent answer stores a compact transcript in the bot message's payload (``payload["memory"]``:
the answer text and every tool call with the output the model saw). The next question in the
same thread rebuilds the earlier exchanges as real ``tool_use`` / ``tool_result`` turns, so the
model can reuse those results instead of calling the tools again::

    earlier = exchanges(store.threads.history(conversation_id))
    earlier, compacted = compact(earlier, budget_tokens=30_000)
    messages = to_messages(earlier, tools={"get_task_log", ...}, redactor=redactor)

**Compaction** keeps the thread's first question and the latest exchange whole (its findings are
what a follow-up usually needs); older exchanges lose their tool outputs first (a line says which
tools were consulted), then their answers are shortened, then the oldest are left out.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass, replace
from typing import Any

from bot.agent.context import estimate_tokens, truncate
from bot.store.threads import StoredMessage

__all__ = ["MEMORY_KEY", "Call", "Exchange", "compact", "exchanges", "remember", "to_messages"]

MEMORY_KEY = "memory"
# How much of each tool output, and of all outputs of one answer, the thread remembers.
RESULT_CHARS = 4_000
MEMORY_CHARS = 40_000
SHORT_ANSWER_CHARS = 600
_FORGOTTEN = "[not kept in the thread's memory; call the tool again if you need it]"


@dataclass(frozen=True, kw_only=True)
class Call:
    """One tool call as the model saw it: the request and the (framed, redacted) output."""

    id: str
    tool: str
    input: dict[str, Any]
    content: str
    is_error: bool = False

    def label(self) -> str:
        args = ", ".join(str(v) for v in self.input.values() if isinstance(v, (str, int)))
        return f"{self.tool}({args})"


@dataclass(frozen=True, kw_only=True)
class Exchange:
    """A question and the bot's answer, with the tool calls behind it."""

    question: str
    answer: str
    calls: tuple[Call, ...] = ()

    def tokens(self) -> int:
        return (
            estimate_tokens(self.question)
            + estimate_tokens(self.answer)
            + sum(estimate_tokens(c.content) + estimate_tokens(c.input) for c in self.calls)
        )


def remember(answer: str, calls: Sequence[Call]) -> dict[str, Any]:
    """The payload entry for one answer, capped so thread rows stay small."""
    kept: list[dict[str, Any]] = []
    room = MEMORY_CHARS
    # Newest calls are the likeliest to matter to a follow-up, so they get the room first.
    for call in reversed(calls):
        content, _ = truncate(call.content, RESULT_CHARS, hint="call the tool again")
        if len(content) > room:
            content = _FORGOTTEN
        room -= len(content)
        kept.append(
            {
                "id": call.id,
                "tool": call.tool,
                "input": call.input,
                "content": content,
                "is_error": call.is_error,
            }
        )
    kept.reverse()
    return {"version": 1, "answer": answer, "calls": kept}


def _calls(memory: dict[str, Any]) -> tuple[Call, ...]:
    found: list[Call] = []
    for raw in memory.get("calls") or ():
        if not isinstance(raw, dict) or not isinstance(raw.get("input"), dict):
            continue
        found.append(
            Call(
                id=str(raw.get("id", "")),
                tool=str(raw.get("tool", "")),
                input=raw["input"],
                content=str(raw.get("content", "")),
                is_error=bool(raw.get("is_error", False)),
            )
        )
    return tuple(c for c in found if c.id and c.tool)


def exchanges(history: Sequence[StoredMessage]) -> list[Exchange]:
    """The thread's earlier exchanges, oldest first."""
    found: list[Exchange] = []
    pending: list[str] = []
    for message in history:
        if message.role == "user":
            pending.append(message.text)
            continue
        memory = (message.payload or {}).get(MEMORY_KEY)
        if isinstance(memory, dict):
            answer, calls = str(memory.get("answer") or message.text), _calls(memory)
        else:
            answer, calls = message.text, ()
        found.append(Exchange(question="\n\n".join(pending), answer=answer, calls=calls))
        pending = []
    if pending:
        found.append(Exchange(question="\n\n".join(pending), answer=""))
    return found


def _total(items: Sequence[Exchange]) -> int:
    return sum(e.tokens() for e in items)


def _summarised(exchange: Exchange) -> Exchange:
    if not exchange.calls:
        return exchange
    consulted = "; ".join(c.label() for c in exchange.calls)
    answer = f"{exchange.answer}\n(Tools consulted then, outputs no longer shown: {consulted})"
    return replace(exchange, answer=answer.strip(), calls=())


def _shortened(exchange: Exchange) -> Exchange:
    answer, cut = truncate(exchange.answer, SHORT_ANSWER_CHARS, hint="ask again")
    question, _ = truncate(exchange.question, SHORT_ANSWER_CHARS, hint="ask again")
    if not cut and question == exchange.question:
        return exchange
    return replace(exchange, answer=answer, question=question)


def compact(items: Sequence[Exchange], *, budget_tokens: int) -> tuple[list[Exchange], bool]:
    """`items` reduced to about `budget_tokens`; the flag says whether anything was dropped."""
    result = list(items)
    if len(result) == 0 or _total(result) <= budget_tokens:
        return result, False
    latest = result[-1]
    older = [_summarised(e) for e in result[:-1]]
    if _total([*older, latest]) > budget_tokens:
        older = [_shortened(e) for e in older]
    dropped = 0
    while len(older) > 1 and _total([*older, latest]) > budget_tokens:
        del older[1]  # the first question frames the thread; drop the ones after it
        dropped += 1
    if dropped:
        marker = Exchange(
            question="",
            answer=f"[{dropped} earlier exchange(s) of this thread left out to save space]",
        )
        older.insert(1, marker)
    if _total([*older, latest]) > budget_tokens and latest.calls:
        share = max(500, (budget_tokens - _total(older)) * 4 // (2 * len(latest.calls)))
        latest = replace(
            latest,
            calls=tuple(
                replace(c, content=truncate(c.content, share, hint="call the tool again")[0])
                for c in latest.calls
            ),
        )
    return [*older, latest], True


def to_messages(
    items: Sequence[Exchange], *, tools: Collection[str], redactor: Callable[[str], str]
) -> list[dict[str, Any]]:
    """Messages API turns for `items`: alternating roles, starting with the user."""
    turns: list[tuple[str, list[dict[str, Any]]]] = []

    def add(role: str, blocks: list[dict[str, Any]]) -> None:
        if not blocks:
            return
        if turns and turns[-1][0] == role:
            turns[-1][1].extend(blocks)
        else:
            turns.append((role, list(blocks)))

    for exchange in items:
        if exchange.question:
            add("user", [_text(redactor(exchange.question))])
        usable = [c for c in exchange.calls if c.tool in tools]
        answer = exchange.answer
        if len(usable) < len(exchange.calls):
            gone = "; ".join(c.label() for c in exchange.calls if c.tool not in tools)
            answer += f"\n(Earlier results from tools that are no longer connected: {gone})"
        if usable:
            add(
                "assistant",
                [
                    {"type": "tool_use", "id": c.id, "name": c.tool, "input": c.input}
                    for c in usable
                ],
            )
            add(
                "user",
                [
                    {
                        "type": "tool_result",
                        "tool_use_id": c.id,
                        "content": redactor(c.content),
                        "is_error": c.is_error,
                    }
                    for c in usable
                ],
            )
        if answer.strip():
            add("assistant", [_text(redactor(answer.strip()))])
        elif usable:
            add("assistant", [_text("(no answer was given)")])
    if turns and turns[0][0] == "assistant":
        turns.insert(0, ("user", [_text("(earlier in this thread)")]))
    return [{"role": role, "content": blocks} for role, blocks in turns]


def _text(text: str) -> dict[str, Any]:
    return {"type": "text", "text": text}

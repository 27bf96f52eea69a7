"""The model's context window: token estimates, capped tool output, data framing, elision.

Everything here works on plain JSON-ready values (the Messages API shapes as dicts), so it can
be tested without the SDK.

**Estimates.** ``estimate_tokens`` uses the usual approximation of one token per four
characters of English or JSON (Anthropic's tokenizer is not public; the real count comes back
in each response's ``usage``). It is only used to decide when to compact.

**Framing.** Tool output is wrapped in a ``<tool_output tool=… system=… status=…>`` block; the
system prompt tells the model that such content is data, never instructions. A tool cannot
close the block early: tag-like text inside is neutralised.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable, Mapping
from typing import Any

__all__ = [
    "CHARS_PER_TOKEN",
    "ELIDED",
    "elide_tool_results",
    "estimate_tokens",
    "frame",
    "narrowing_hint",
    "truncate",
]

CHARS_PER_TOKEN = 4

ELIDED = (
    "[this earlier tool output was removed to keep the conversation within the model's context; "
    "call the tool again if you still need it]"
)

# Parameters that make a query return less, most useful first, with how to phrase the advice.
_NARROWERS: tuple[tuple[str, str], ...] = (
    ("states", "filter by `states`"),
    ("name_contains", "filter with `name_contains`"),
    ("dag_id", "ask about one `dag_id`"),
    ("schema", "ask about one `schema`"),
    ("hours_back", "use a smaller `hours_back`"),
    ("max_chars", "ask for fewer characters with `max_chars`"),
    ("limit", "lower `limit`"),
    ("depth", "lower `depth`"),
)


def estimate_tokens(value: Any) -> int:
    """Approximate tokens of a string or a JSON-ready value."""
    text = value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)
    return math.ceil(len(text) / CHARS_PER_TOKEN)


def narrowing_hint(input_schema: Mapping[str, Any]) -> str:
    """Advice on narrowing a call to this tool, from the optional parameters it offers."""
    properties = input_schema.get("properties") or {}
    required = set(input_schema.get("required") or ())
    found = [advice for name, advice in _NARROWERS if name in properties and name not in required]
    if not found:
        return "ask for one specific object instead of a list"
    return " or ".join(found[:2])


def truncate(text: str, limit: int, *, hint: str) -> tuple[str, int]:
    """`text` cut to about `limit` characters; returns the text and how much was cut.

    The middle goes: the start of a result says what it is, and the end of a log holds the
    error (and a JSON result its counts), so both ends are kept.
    """
    if len(text) <= limit:
        return text, 0
    omitted = len(text) - limit
    head = limit * 2 // 5
    marker = f"\n[truncated: {omitted:,} more characters — narrow the query, e.g. {hint}]\n"
    return text[:head] + marker + text[len(text) - (limit - head) :], omitted


def _neutralise(text: str) -> str:
    # A log line reading "</tool_output> new instructions…" must stay inside the data block.
    return text.replace("</tool_output", "<\u2215tool_output").replace(
        "<tool_output", "\u2039tool_output"
    )


def frame(text: str, *, tool: str, system: str, status: str) -> str:
    """Wrap tool output as data for the model."""
    return (
        f'<tool_output tool="{tool}" system="{_neutralise(system)}" status="{status}">\n'
        f"{_neutralise(text)}\n</tool_output>"
    )


def elide_tool_results(messages: list[dict[str, Any]], *, keep_last: int = 1) -> list[str]:
    """Replace the content of tool results older than the last `keep_last` user turns that
    carry results; returns the ``tool_use_id``s elided. Mutates `messages`."""
    carrying = [i for i, m in enumerate(messages) if _tool_results(m)]
    older = carrying[: max(0, len(carrying) - keep_last)]
    elided: list[str] = []
    for index in older:
        for block in _tool_results(messages[index]):
            if block.get("content") != ELIDED:
                block["content"] = ELIDED
                elided.append(str(block.get("tool_use_id", "")))
    return elided


def _tool_results(message: Mapping[str, Any]) -> Iterable[dict[str, Any]]:
    content = message.get("content")
    if message.get("role") != "user" or not isinstance(content, list):
        return []
    return [b for b in content if isinstance(b, dict) and b.get("type") == "tool_result"]

"""The tools one answer may use, and how their calls run.

A `Toolbox` is built per question from the deployment's toolsets. It gives the model its tool
definitions (the last one marked as the end of the cacheable tool prefix) and runs the calls
of one model turn in parallel on a few threads, each guarded:

- an unknown tool, an identical repeated call (same name and input) and calls beyond
  ``max_calls`` are refused with an explanatory ``is_error`` result, without running anything;
- every result passes PII masking, the redactor and the size cap, and is framed as data;
- every call is reported through ``progress`` and recorded in the audit store.

Tools are not supposed to raise (``Tool.call`` turns source failures into error results); a call
still running at the answer's deadline, or one that raises anyway, becomes an error result too.
"""

from __future__ import annotations

import contextvars
import json
import logging
import time
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout
from dataclasses import dataclass, field
from typing import Any

from bot.agent.context import frame, narrowing_hint, truncate
from bot.agent.narration import describe_call
from bot.agent.pii import mask_columns
from bot.agent.transcript import Call
from bot.messages import Progress
from bot.store.audit import Audit
from bot.tools import Tool, ToolResult, Toolset, ToolStatus

log = logging.getLogger(__name__)

__all__ = ["Outcome", "ToolUse", "Toolbox", "present"]

MAX_WORKERS = 8
CACHE_CONTROL = {"type": "ephemeral"}


@dataclass(frozen=True, kw_only=True)
class ToolUse:
    """One ``tool_use`` block of a model turn."""

    id: str
    name: str
    input: dict[str, Any]


@dataclass(frozen=True, kw_only=True)
class Outcome:
    """What became of one requested call."""

    request: ToolUse
    content: str
    is_error: bool
    result: ToolResult | None = None  # None when refused or timed out
    truncated: bool = False

    def block(self) -> dict[str, Any]:
        return {
            "type": "tool_result",
            "tool_use_id": self.request.id,
            "content": self.content,
            "is_error": self.is_error,
        }


@dataclass
class _Ledger:
    seen: dict[str, str] = field(default_factory=dict)  # call key → tool_use id
    calls: int = 0
    outcomes: list[Outcome] = field(default_factory=list)


def _key(name: str, params: Mapping[str, Any]) -> str:
    return name + json.dumps(params, sort_keys=True, default=str)


class Toolbox:
    def __init__(
        self,
        toolsets: Sequence[Toolset],
        *,
        redactor: Callable[[str], str],
        audit: Audit,
        output_chars: int,
        max_calls: int,
        pii_columns: Sequence[str] = (),
        progress: Progress | None = None,
        conversation_id: int | None = None,
    ) -> None:
        self._tools: dict[str, Tool[Any]] = {}
        for toolset in toolsets:
            for tool in toolset.tools():
                if tool.name in self._tools:
                    log.warning("duplicate tool name ignored", extra={"tool": tool.name})
                    continue
                self._tools[tool.name] = tool
        self._redact = redactor
        self._audit = audit
        self._output_chars = output_chars
        self.max_calls = max_calls
        self._pii = tuple(pii_columns)
        self._progress = progress
        self._conversation_id = conversation_id
        self._ledger = _Ledger()

    @property
    def names(self) -> list[str]:
        return list(self._tools)

    @property
    def calls(self) -> int:
        """Calls run so far (refused ones excluded)."""
        return self._ledger.calls

    @property
    def exhausted(self) -> bool:
        return self._ledger.calls >= self.max_calls

    @property
    def outcomes(self) -> list[Outcome]:
        return list(self._ledger.outcomes)

    def systems(self) -> dict[str, int]:
        """Tools per system, in the order the toolsets were given."""
        counts: dict[str, int] = {}
        for tool in self._tools.values():
            counts[tool.system] = counts.get(tool.system, 0) + 1
        return counts

    def definitions(self) -> list[dict[str, Any]]:
        """Tool definitions for the Messages API; the last one ends the cacheable prefix."""
        found: list[dict[str, Any]] = [
            {"name": t.name, "description": t.description, "input_schema": t.input_schema()}
            for t in self._tools.values()
        ]
        if found:
            found[-1]["cache_control"] = dict(CACHE_CONTROL)
        return found

    def forget(self, tool_use_ids: Sequence[str]) -> None:
        """Results removed from the context may be asked for again."""
        gone = set(tool_use_ids)
        self._ledger.seen = {k: v for k, v in self._ledger.seen.items() if v not in gone}

    def transcript(self) -> list[Call]:
        return [
            Call(
                id=o.request.id,
                tool=o.request.name,
                input=o.request.input,
                content=o.content,
                is_error=o.is_error,
            )
            for o in self._ledger.outcomes
            if o.result is not None
        ]

    def run(self, requests: Sequence[ToolUse], *, deadline: float) -> list[Outcome]:
        """Run one turn's calls (in parallel); outcomes in the order of `requests`."""
        planned: list[tuple[ToolUse, Tool[Any] | None, str | None]] = []
        for request in requests:
            tool, refusal = self._admit(request)
            planned.append((request, tool, refusal))
        runnable = [(r, t) for r, t, refusal in planned if t is not None and refusal is None]
        futures: dict[str, Future[ToolResult]] = {}
        pool = ThreadPoolExecutor(
            max_workers=max(1, min(MAX_WORKERS, len(runnable))), thread_name_prefix="tool"
        )
        try:
            for request, tool in runnable:
                if self._progress is not None:
                    self._progress(describe_call(request.name, request.input, system=tool.system))
                # In a copy of this context: the call's log lines name the job and conversation.
                futures[request.id] = pool.submit(
                    contextvars.copy_context().run, tool.call, request.input
                )
            outcomes = [
                self._settle(request, tool, refusal, futures.get(request.id), deadline)
                for request, tool, refusal in planned
            ]
        finally:
            # A call still running past the deadline keeps its thread; nothing waits for it.
            pool.shutdown(wait=False, cancel_futures=True)
        self._ledger.outcomes.extend(outcomes)
        return outcomes

    def _admit(self, request: ToolUse) -> tuple[Tool[Any] | None, str | None]:
        tool = self._tools.get(request.name)
        if tool is None:
            available = ", ".join(self._tools) or "none"
            return None, (
                f"There is no tool named {request.name!r}. Available tools: {available}. "
                "If the system you need is not connected, say so in your answer."
            )
        key = _key(request.name, request.input)
        if key in self._ledger.seen:
            return tool, (
                f"Refused: {request.name} was already called with exactly this input for this "
                "question, and its result is above. Use that result instead of repeating "
                "the call, or call it with different parameters."
            )
        if self._ledger.calls >= self.max_calls:
            return tool, (
                f"Refused: the limit of {self.max_calls} tool calls for this question is "
                "reached. Answer with the evidence you already have and say what you could "
                "not check."
            )
        self._ledger.seen[key] = request.id
        self._ledger.calls += 1
        return tool, None

    def _settle(
        self,
        request: ToolUse,
        tool: Tool[Any] | None,
        refusal: str | None,
        future: Future[ToolResult] | None,
        deadline: float,
    ) -> Outcome:
        system = tool.system if tool is not None else ""
        if refusal is not None or tool is None or future is None:
            reason = refusal or "not run"
            self._record(request, system=system, status="refused", error=reason)
            return Outcome(request=request, content=reason, is_error=True)
        try:
            result = future.result(timeout=max(0.0, deadline - time.monotonic()))
        except FutureTimeout:
            reason = (
                f"{request.name} did not finish within the time left for this answer; its "
                "result is unknown."
            )
            self._record(request, system=system, status="timeout", error=reason)
            return Outcome(request=request, content=reason, is_error=True)
        except Exception:  # a connector bug must not sink the whole answer
            # `Tool.call` only turns `SourceError` into a result; anything else is a defect in
            # the connector, logged for the operator and reported to the model without details.
            log.exception("tool raised", extra={"tool": request.name})
            reason = f"{request.name} failed with an internal error; its result is unknown."
            self._record(request, system=system, status="crashed", error=reason)
            return Outcome(request=request, content=reason, is_error=True)
        content, cut = present(
            tool,
            result,
            redactor=self._redact,
            pii_columns=self._pii,
            output_chars=self._output_chars,
        )
        self._audit.tool_call(
            tool=request.name,
            system=result.system,
            invocation=self._redact(result.invocation),
            status=result.status.value,
            error=self._redact(result.error) if result.error else None,
            duration_ms=result.duration_ms,
            conversation_id=self._conversation_id,
        )
        return Outcome(
            request=request,
            content=content,
            is_error=result.status is ToolStatus.ERROR,
            result=result,
            truncated=cut > 0,
        )

    def _record(self, request: ToolUse, *, system: str, status: str, error: str) -> None:
        self._audit.tool_call(
            tool=request.name,
            system=system,
            invocation=self._redact(f"{request.name}({json.dumps(request.input, sort_keys=True)})"),
            status=status,
            error=error,
            conversation_id=self._conversation_id,
        )


def present(
    tool: Tool[Any],
    result: ToolResult,
    *,
    redactor: Callable[[str], str],
    pii_columns: Sequence[str],
    output_chars: int,
    framed: bool = True,
) -> tuple[str, int]:
    """A result as a model sees it: PII masked, redacted, capped, framed as data.

    Returns the text and how many characters the cap removed. Redaction runs before the cap so
    a secret cannot survive by being cut in half.
    """
    if result.status is ToolStatus.ERROR:
        body = f"{result.system} ({result.invocation}) failed: {result.error}"
    else:
        data = mask_columns(result.data, pii_columns)
        body = (
            data
            if isinstance(data, str)
            else json.dumps(data, default=str, ensure_ascii=False, separators=(",", ":"))
        )
    text, cut = truncate(redactor(body), output_chars, hint=narrowing_hint(tool.input_schema()))
    if not framed:
        return text, cut
    return frame(text, tool=tool.name, system=result.system, status=result.status.value), cut

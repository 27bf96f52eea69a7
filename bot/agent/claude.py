"""The Data Engineer agent: Claude on the Messages API with pipebot's read-only tools.

The conversation hands free-form questions to an `Agent`; without an Anthropic API key there
is none and the conversation says so instead of guessing. `build_agent` makes the real one::

    agent = build_agent(settings, store, redactor)
    reply = agent.answer("why did orders_daily fail?", history=[], request=request)

**The loop** (`ClaudeAgent.answer`) sends the question with the tools of
``request.sources.toolsets`` and handles every stop reason: ``tool_use`` runs the turn's calls
in parallel and loops; ``end_turn`` / ``stop_sequence`` answer; ``pause_turn`` sends the turn
back unchanged; ``max_tokens`` never runs a possibly truncated tool call (one retry with more
room, else the partial text with a note); ``refusal`` gives a neutral message without retrying;
``model_context_window_exceeded`` drops older tool outputs and retries once; anything unknown is
treated as final and logged.

**Limits.** ``max_steps`` model calls (the last one with ``tool_choice`` none, tools still
listed so the cached prefix survives, and an instruction to answer with what it has),
``max_tool_calls``, a wall-clock ``timeout``, and token budgets per conversation and per UTC day
read from the audit store before every call. No sampling parameters are sent.

**Caching.** Three ``cache_control`` breakpoints: the last tool definition, the system prompt
(together the static prefix every question shares) and the last user turn (so each step of one
answer reads the previous steps from the cache).

**Safety.** The question, the thread history and every tool result pass the redactor (and
PII-column masking) before they are sent; tool output is framed as data (see `bot.agent.context`).
"""

from __future__ import annotations

import copy
import logging
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import anthropic

from bot import metrics, phrases
from bot.agent import Agent, narration
from bot.agent.answer import AgentReply, sections_from_text
from bot.agent.context import elide_tool_results, estimate_tokens
from bot.agent.pricing import cost_usd
from bot.agent.toolbox import CACHE_CONTROL, Outcome, Toolbox, ToolUse
from bot.agent.transcript import compact, exchanges, remember, to_messages
from bot.commands import Request
from bot.errors import ConfigError
from bot.messages import Reply, Tone
from bot.prompts import prompt
from bot.redaction import Redactor
from bot.settings import AgentSettings, Settings
from bot.store import Store
from bot.store.audit import LlmUsage
from bot.store.threads import StoredMessage
from bot.tools import ToolStatus

log = logging.getLogger(__name__)

__all__ = ["Agent", "ClaudeAgent", "build_agent"]

# The SDK retries 408/409/429/5xx (529 included) with backoff that honours retry-after.
MAX_RETRIES = 2
# Thread history beyond this (estimated) is compacted before a question is sent.
HISTORY_BUDGET_TOKENS = 30_000
# Within one answer, older tool outputs are dropped when the request grows past this.
CONTEXT_BUDGET_TOKENS = 150_000
# A response cut inside a tool call is retried once with twice the room, at most this much
# (the SDK refuses non-streaming calls that could run longer than ten minutes).
MAX_TOKENS_CAP = 16_000
_FAMILIES = ("Airflow", "dbt", "warehouse")
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def check(agent: AgentSettings) -> tuple[bool, str]:
    """`pipebot doctor`'s agent line: the API key is accepted and the model is there (a free
    call: the model's description, no tokens)."""
    if agent.api_key is None:
        return False, "no API key: set ANTHROPIC_API_KEY"
    client = anthropic.Anthropic(
        api_key=agent.api_key.get_secret_value(),
        base_url=agent.base_url,
        timeout=10.0,
        max_retries=0,
    )
    try:
        model = client.models.retrieve(agent.model)
    except anthropic.AuthenticationError:
        return False, "Anthropic refused the API key (ANTHROPIC_API_KEY)"
    except anthropic.NotFoundError:
        return False, f"model {agent.model} is not available to this key (PIPEBOT_AGENT__MODEL)"
    except anthropic.APIConnectionError:
        return False, "cannot reach the Anthropic API"
    except anthropic.APIStatusError as exc:
        return False, f"the Anthropic API answered HTTP {exc.status_code}"
    return True, f"API key accepted; model {model.id}"


def build_agent(settings: Settings, store: Store, redactor: Redactor) -> ClaudeAgent:
    """The Claude agent the settings describe; `ConfigError` without an API key.

    The redactor used for everything sent to the model is `redactor` extended with every
    secret in `settings` and the configured redaction patterns, so a caller cannot forget one.
    """
    agent = settings.agent
    if agent.api_key is None:
        raise ConfigError("the agent needs an API key: set ANTHROPIC_API_KEY")
    combined = Redactor.build(
        [*redactor.secrets, *settings.secrets()],
        [*(p.pattern for p in redactor.pii_patterns), *settings.redaction.patterns],
    )
    client = anthropic.Anthropic(
        api_key=agent.api_key.get_secret_value(),
        base_url=agent.base_url,
        timeout=agent.request_timeout,
        max_retries=MAX_RETRIES,
    )
    return ClaudeAgent(
        client=client,
        settings=agent,
        store=store,
        redactor=combined,
        pii_columns=settings.redaction.pii_columns,
    )


class _Stop(Exception):
    """Ends an answer early with a ready reply (API failures the person must hear about)."""

    def __init__(self, text: str, *, tone: Tone = Tone.WARNING) -> None:
        super().__init__(text)
        self.text = text
        self.tone = tone


@dataclass
class _Run:
    """The state of one answer."""

    messages: list[dict[str, Any]]
    deadline: float
    conversation_id: int | None
    max_tokens: int
    steps: int = 0
    interim: str = ""
    notes: list[str] = field(default_factory=list)
    forced: bool = False
    retried_max_tokens: bool = False
    retried_overflow: bool = False

    def note(self, text: str) -> None:
        if text not in self.notes:
            self.notes.append(text)


class ClaudeAgent:
    """The `Agent` on Anthropic's Messages API. Thread-safe: all state lives in `_Run`."""

    def __init__(
        self,
        *,
        client: anthropic.Anthropic,
        settings: AgentSettings,
        store: Store,
        redactor: Callable[[str], str],
        pii_columns: Sequence[str] = (),
        history_budget_tokens: int = HISTORY_BUDGET_TOKENS,
        context_budget_tokens: int = CONTEXT_BUDGET_TOKENS,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._client = client
        self._settings = settings
        self._store = store
        self._redact = redactor
        self._pii = tuple(pii_columns)
        self._history_budget = history_budget_tokens
        self._context_budget = context_budget_tokens
        self._clock = clock
        self._system = [
            {"type": "text", "text": prompt("system"), "cache_control": dict(CACHE_CONTROL)}
        ]
        metrics.declare_model(settings.model)

    # --- the loop -------------------------------------------------------------------------

    def answer(self, question: str, *, history: Sequence[StoredMessage], request: Request) -> Reply:
        if not question.strip():
            return Reply(text=narration.EMPTY_QUESTION)
        exhausted = self._budget_left(request.conversation_id)
        if exhausted is not None:
            return Reply(title="Token budget used up", tone=Tone.WARNING, text=exhausted)
        toolbox = Toolbox(
            request.sources.toolsets,
            redactor=self._redact,
            audit=self._store.audit,
            output_chars=self._settings.tool_output_chars,
            max_calls=self._settings.max_tool_calls,
            pii_columns=self._pii,
            progress=request.progress,
            conversation_id=request.conversation_id,
        )
        earlier, compacted = compact(exchanges(history), budget_tokens=self._history_budget)
        if compacted:
            log.info("thread history compacted", extra={"conversation": request.conversation_id})
        messages = to_messages(earlier, tools=set(toolbox.names), redactor=self._redact)
        _append_user(
            messages,
            [_text(self._context(request, toolbox)), _text(self._redact(question.strip()))],
        )
        run = _Run(
            messages=messages,
            deadline=self._clock() + self._settings.timeout,
            conversation_id=request.conversation_id,
            max_tokens=self._settings.max_tokens,
        )
        request.progress(narration.STARTING)
        try:
            text = self._loop(run, toolbox)
        except _Stop as stop:
            return self._reply(run, toolbox, stop.text, tone=stop.tone)
        return self._reply(run, toolbox, text)

    def _loop(self, run: _Run, toolbox: Toolbox) -> str:
        tools = toolbox.definitions()
        while True:
            if self._clock() >= run.deadline:
                run.note(narration.NOTE_TIMEOUT.format(seconds=self._settings.timeout))
                return run.interim
            if self._budget_left(run.conversation_id) is not None:
                run.note(narration.NOTE_BUDGET)
                return run.interim
            if run.steps >= self._settings.max_steps:
                run.note(narration.NOTE_STEPS.format(steps=self._settings.max_steps))
                return run.interim
            last = run.steps == self._settings.max_steps - 1 or toolbox.exhausted
            if last and tools and not run.forced:
                run.forced = True
                _append_user(run.messages, [_text(prompt("final_step"))])
                run.note(
                    narration.NOTE_TOOL_CALLS.format(calls=toolbox.max_calls)
                    if toolbox.exhausted
                    else narration.NOTE_STEPS.format(steps=self._settings.max_steps)
                )
            response = self._create(run, tools, final=last)
            content = [_block(b) for b in response.content]
            text = "\n\n".join(b.text for b in response.content if b.type == "text").strip()
            run.interim = text or run.interim
            uses = [
                ToolUse(
                    id=b.id, name=b.name, input=dict(b.input) if isinstance(b.input, dict) else {}
                )
                for b in response.content
                if b.type == "tool_use"
            ]
            reason = response.stop_reason
            if reason == "tool_use" and uses and not last:
                run.messages.append({"role": "assistant", "content": content})
                outcomes = toolbox.run(uses, deadline=run.deadline)
                _append_user(run.messages, [o.block() for o in outcomes])
                self._keep_within_context(run, tools, toolbox)
                continue
            if reason == "tool_use":
                # Tools were forbidden on this step; whatever text came with the call is all
                # there is.
                return text
            if reason == "pause_turn":
                run.messages.append({"role": "assistant", "content": content})
                continue
            if reason == "max_tokens":
                if uses and not run.retried_max_tokens:
                    run.retried_max_tokens = True
                    run.max_tokens = min(run.max_tokens * 2, MAX_TOKENS_CAP)
                    log.info("response cut inside a tool call; retrying with more room")
                    continue
                run.note(narration.NOTE_OUTPUT_CUT)
                return text
            if reason == "refusal":
                details = response.stop_details
                log.warning(
                    "the model refused",
                    extra={
                        "category": getattr(details, "category", None),
                        "explanation": getattr(details, "explanation", None),
                    },
                )
                raise _Stop(narration.REFUSED, tone=Tone.INFO)
            if reason == "model_context_window_exceeded":
                if run.retried_overflow:
                    run.note(narration.NOTE_CONTEXT)
                    return run.interim
                run.retried_overflow = True
                run.note(narration.NOTE_CONTEXT)
                # Older outputs go first; only when there are none does the latest one go too.
                dropped = elide_tool_results(run.messages, keep_last=1) or elide_tool_results(
                    run.messages, keep_last=0
                )
                if not dropped:
                    return run.interim  # nothing to drop: the same request would fail again
                toolbox.forget(dropped)
                continue
            if reason not in ("end_turn", "stop_sequence"):
                log.warning("unknown stop reason treated as final", extra={"stop_reason": reason})
            return text

    def _keep_within_context(
        self, run: _Run, tools: list[dict[str, Any]], toolbox: Toolbox
    ) -> None:
        size = (
            estimate_tokens(run.messages) + estimate_tokens(tools) + estimate_tokens(self._system)
        )
        if size > self._context_budget:
            toolbox.forget(elide_tool_results(run.messages, keep_last=1))
            log.info("older tool outputs dropped to stay within the context budget")

    # --- one Messages API call -----------------------------------------------------------

    def _create(self, run: _Run, tools: list[dict[str, Any]], *, final: bool) -> Any:
        remaining = run.deadline - self._clock()
        budget = self._settings.request_timeout
        # Near the deadline the SDK must not retry: each try would wait up to the timeout.
        client = self._client.with_options(
            timeout=max(1.0, min(budget, remaining)),
            max_retries=MAX_RETRIES if remaining > budget else 0,
        )
        params: dict[str, Any] = {
            "model": self._settings.model,
            "max_tokens": run.max_tokens,
            "system": self._system,
            "messages": _marked(run.messages),
        }
        if tools:
            params["tools"] = tools
            params["tool_choice"] = {"type": "none"} if final else {"type": "auto"}
        started = self._clock()
        try:
            response = client.messages.create(**params)
        except (anthropic.RateLimitError, anthropic.InternalServerError) as exc:
            self._count_failure("busy")
            log.warning("the model is busy", extra={"status": exc.status_code})
            raise _Stop(narration.BUSY) from None
        except (anthropic.AuthenticationError, anthropic.PermissionDeniedError) as exc:
            self._count_failure("refused")
            ref = uuid.uuid4().hex[:8]
            log.error(
                "the Anthropic API refused pipebot's credentials; check PIPEBOT_AGENT__API_KEY",
                extra={"ref": ref, "status": exc.status_code, "request_id": exc.request_id},
            )
            raise _Stop(narration.UNAVAILABLE.format(ref=ref), tone=Tone.ERROR) from None
        except anthropic.APITimeoutError:
            self._count_failure("timeout")
            if self._clock() >= run.deadline:
                run.note(narration.NOTE_TIMEOUT.format(seconds=self._settings.timeout))
                raise _Stop(run.interim or narration.UNREACHABLE) from None
            raise _Stop(narration.UNREACHABLE) from None
        except anthropic.APIConnectionError:
            self._count_failure("unreachable")
            log.warning("the Anthropic API could not be reached")
            raise _Stop(narration.UNREACHABLE) from None
        except anthropic.APIStatusError as exc:
            self._count_failure("error")
            ref = uuid.uuid4().hex[:8]
            log.error(
                "the Anthropic API rejected a request",
                extra={
                    "ref": ref,
                    "status": exc.status_code,
                    "request_id": exc.request_id,
                    "error": self._redact(str(exc.message)),
                },
            )
            raise _Stop(narration.UNAVAILABLE.format(ref=ref), tone=Tone.ERROR) from None
        run.steps += 1
        self._record(response, run, duration_ms=(self._clock() - started) * 1000)
        return response

    def _record(self, response: Any, run: _Run, *, duration_ms: float) -> None:
        usage = response.usage
        model = str(response.model or self._settings.model)
        cache_read = int(usage.cache_read_input_tokens or 0)
        cache_write = int(usage.cache_creation_input_tokens or 0)
        cost = cost_usd(
            model,
            input_tokens=usage.input_tokens,
            output_tokens=usage.output_tokens,
            cache_read_tokens=cache_read,
            cache_write_tokens=cache_write,
        )
        # Labelled with the configured model, not the answer's dated id: one series per setting.
        metrics.llm_call(
            self._settings.model,
            seconds=duration_ms / 1000,
            input_tokens=usage.input_tokens,
            output_tokens=usage.output_tokens,
            cache_read_tokens=cache_read,
            cache_write_tokens=cache_write,
            cost_usd=cost,
        )
        self._store.audit.llm_call(
            LlmUsage(
                model=model,
                stop_reason=response.stop_reason,
                input_tokens=usage.input_tokens,
                output_tokens=usage.output_tokens,
                cache_read_tokens=cache_read,
                cache_write_tokens=cache_write,
                cost_usd=cost,
                duration_ms=duration_ms,
                request_id=response._request_id,
            ),
            conversation_id=run.conversation_id,
        )

    def _count_failure(self, outcome: str) -> None:
        metrics.LLM_REQUESTS.labels(self._settings.model, outcome).inc()

    # --- budgets, context and the reply --------------------------------------------------

    def _budget_left(self, conversation_id: int | None) -> str | None:
        """None while both budgets have room, else what to tell the person."""
        audit = self._store.audit
        day = datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
        used = audit.tokens_used(since=day)
        if used >= self._settings.daily_token_budget:
            log.warning("daily token budget used up", extra={"used": used})
            return narration.BUDGET_DAY.format(used=used, budget=self._settings.daily_token_budget)
        if conversation_id is not None:
            used = audit.tokens_used(since=_EPOCH, conversation_id=conversation_id)
            budget = self._settings.conversation_token_budget
            if used >= budget:
                return narration.BUDGET_CONVERSATION.format(used=used, budget=budget)
        return None

    def _context(self, request: Request, toolbox: Toolbox) -> str:
        systems = toolbox.systems()
        connected = ", ".join(f"{name} ({count} tools)" for name, count in systems.items())
        missing = [
            f"{family} ({phrases.CONFIG_HINTS[family]})"
            for family in _FAMILIES
            if not any(name.lower().startswith(family.lower()) for name in systems)
        ]
        label = request.sources.label
        return prompt(
            "context",
            now=phrases.timestamp(request.sources.now()),
            connected=connected or "none",
            missing=", ".join(missing) or "nothing — every system is connected",
            environment=f"- Environment: {label}" if label else "",
        )

    def _reply(self, run: _Run, toolbox: Toolbox, text: str, *, tone: Tone = Tone.INFO) -> Reply:
        text = self._redact(text.strip())
        if not text:
            text, tone = narration.NO_ANSWER, Tone.WARNING
        outcomes = toolbox.outcomes
        sources = dict.fromkeys(
            f"{o.result.system} · {self._redact(o.result.invocation)}"
            for o in outcomes
            if o.result is not None and o.result.status is not ToolStatus.ERROR
        )
        notes = list(run.notes)
        notes.extend(
            dict.fromkeys(_could_not_check(o, self._redact) for o in outcomes if _failed(o))
        )
        if any(o.truncated for o in outcomes):
            notes.append(narration.NOTE_OUTPUT_TRUNCATED)
        if run.notes and tone is Tone.INFO:
            tone = Tone.WARNING
        log.info(
            "agent answered",
            extra={
                "steps": run.steps,
                "tool_calls": toolbox.calls,
                "conversation": run.conversation_id,
            },
        )
        return AgentReply(
            tone=tone,
            sections=sections_from_text(text),
            sources=tuple(sources),
            notes=tuple(notes),
            memory=remember(text, toolbox.transcript()),
        )


def _failed(outcome: Outcome) -> bool:
    return outcome.result is not None and outcome.result.status is ToolStatus.ERROR


def _could_not_check(outcome: Outcome, redact: Callable[[str], str]) -> str:
    assert outcome.result is not None
    error = redact(outcome.result.error or "failed")
    if len(error) > 200:
        error = error[:200] + "…"
    what = f"{outcome.result.system} {outcome.request.name} — {error}"
    return narration.NOTE_COULD_NOT_CHECK.format(what=what)


def _text(text: str) -> dict[str, Any]:
    return {"type": "text", "text": text}


def _block(block: Any) -> dict[str, Any]:
    """A response content block as a request block, unchanged (pause_turn needs it as-is)."""
    found: dict[str, Any] = block.to_dict(mode="json")
    return found


def _append_user(messages: list[dict[str, Any]], blocks: list[dict[str, Any]]) -> None:
    if messages and messages[-1]["role"] == "user":
        messages[-1]["content"].extend(blocks)
    else:
        messages.append({"role": "user", "content": list(blocks)})


def _marked(messages: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """A copy of `messages` whose last user block ends the cacheable prefix of this step."""
    marked = list(messages)
    for index in range(len(marked) - 1, -1, -1):
        if marked[index]["role"] == "user" and marked[index]["content"]:
            message = copy.deepcopy(marked[index])
            message["content"][-1]["cache_control"] = dict(CACHE_CONTROL)
            marked[index] = message
            break
    return marked

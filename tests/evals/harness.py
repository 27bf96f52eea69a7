"""Agent evals: cases as data, run in replay (scripted model) or live (the real model).

A case is a TOML file in ``cases/`` (see ``cases/README.md``): the question, the connected
systems, recorded tool outputs keyed by tool + params, scripted model turns for replay, and what
a good run must show. Tools are the connectors' real tool definitions (names, schemas and
descriptions from ``integrations``) whose ``run`` answers from the recordings; a call with no
recording gets an error result and counts as a miss.

**Replay** drives the agent through the real SDK against the local fake Messages API with the
case's scripted turns, so it checks everything pipebot controls: which tools are offered, that
recorded facts reach the model, that secrets never do, that injected text stays inside data
blocks, and the final reply. **Live** lets the real model choose the tools (served from the same
recordings) and checks its answer for the expected facts.
"""

from __future__ import annotations

import dataclasses
import functools
import json
import re
import tempfile
import threading
import time
import tomllib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel
from sqlalchemy import func, select

from bot.agent import build_agent
from bot.commands import Request
from bot.messages import Reply
from bot.ports import Sources
from bot.redaction import Redactor
from bot.rendering import to_text
from bot.settings import Settings
from bot.store import Store
from bot.store.tables import LlmCallRow
from bot.tools import Check, StaticToolset, Tool, ToolResult, ToolStatus
from tests.agent.support import NOW, ProgressLog, inbound
from tests.fakes.anthropic_api import FakeAnthropic, message, text, tool_use

HERE = Path(__file__).parent
CASES = HERE / "cases"
Mode = Literal["replay", "live"]


# --- cases ---------------------------------------------------------------------------------


@dataclass(frozen=True, kw_only=True)
class Recording:
    tool: str
    params: dict[str, Any]
    status: ToolStatus
    invocation: str
    data: Any = None
    error: str | None = None

    def matches(self, tool: str, params: Mapping[str, Any]) -> bool:
        return tool == self.tool and all(params.get(k) == v for k, v in self.params.items())


@dataclass(frozen=True, kw_only=True)
class Expect:
    facts: tuple[str | tuple[str, ...], ...] = ()
    forbidden: tuple[str, ...] = ()
    tools: tuple[str, ...] = ()
    not_tools: tuple[str, ...] = ()
    seen: tuple[str, ...] = ()
    never_sent: tuple[str, ...] = ()
    data_only: tuple[str, ...] = ()
    offered_systems: tuple[str, ...] = ()
    tool_errors: bool = False  # replay: whether a tool may answer with an error


@dataclass(frozen=True, kw_only=True)
class Case:
    name: str
    question: str
    systems: tuple[str, ...]
    tags: tuple[str, ...]
    recordings: tuple[Recording, ...]
    turns: tuple[dict[str, Any], ...]
    expect: Expect
    settings: dict[str, Any] = field(default_factory=dict)


def _recording(raw: Mapping[str, Any]) -> Recording:
    data = json.loads(raw["data_json"]) if "data_json" in raw else raw.get("data")
    return Recording(
        tool=raw["tool"],
        params=dict(raw.get("params", {})),
        status=ToolStatus(raw.get("status", "success")),
        invocation=raw.get("invocation", raw["tool"]),
        data=data,
        error=raw.get("error"),
    )


def load_case(path: Path) -> Case:
    raw = tomllib.loads(path.read_text(encoding="utf-8"))
    expect = raw.get("expect", {})
    return Case(
        name=raw.get("name", path.stem),
        question=raw["question"],
        systems=tuple(raw.get("systems", ())),
        tags=tuple(raw.get("tags", ())),
        recordings=tuple(_recording(r) for r in raw.get("recorded", ())),
        turns=tuple(raw.get("turns", ())),
        settings=dict(raw.get("settings", {})),
        expect=Expect(
            facts=tuple(tuple(f) if isinstance(f, list) else f for f in expect.get("facts", ())),
            forbidden=tuple(expect.get("forbidden", ())),
            tools=tuple(expect.get("tools", ())),
            not_tools=tuple(expect.get("not_tools", ())),
            seen=tuple(expect.get("seen", ())),
            never_sent=tuple(expect.get("never_sent", ())),
            data_only=tuple(expect.get("data_only", ())),
            offered_systems=tuple(expect.get("offered_systems", ())),
            tool_errors=bool(expect.get("tool_errors", False)),
        ),
    )


def load_cases(directory: Path = CASES) -> list[Case]:
    return [load_case(p) for p in sorted(directory.glob("*.toml"))]


# --- tools served from recordings ----------------------------------------------------------


@dataclass
class CallLog:
    calls: list[tuple[str, dict[str, Any]]] = field(default_factory=list)
    misses: list[str] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)


class _Standin:
    """Just enough of a connector for its toolset to be built; every tool's run is replaced."""

    def __init__(self, **attributes: Any) -> None:
        self.__dict__.update(attributes)

    def check(self) -> Check:
        return Check(system=str(self.__dict__.get("system", "")), ok=True, detail="recorded")


def real_tools(system: str) -> list[Tool[Any]]:
    """The connector's own tool definitions (names, schemas, descriptions) for `system`."""
    if system == "Airflow":
        from integrations.airflow import AirflowClient, airflow_toolset

        return list(airflow_toolset(AirflowClient("http://airflow.eval")).tools())
    if system == "dbt":
        from integrations.dbt import dbt_toolset

        project: Any = _Standin(system="dbt")
        return list(dbt_toolset(project).tools())
    if system == "warehouse":
        from integrations.warehouse import warehouse_toolset

        catalog: Any = _Standin(
            system="warehouse", dialect="postgresql", where="warehouse.eval", row_cap=5000
        )
        return list(warehouse_toolset(catalog).tools())
    if system == "warehouse usage":
        from integrations.warehouse import usage_toolset

        usage: Any = _Standin(
            system="warehouse", dialect="snowflake", where="warehouse.eval", settles=0, price=None
        )
        return list(usage_toolset(usage).tools())
    raise ValueError(
        f"unknown system {system!r}: expected Airflow, dbt, warehouse or warehouse usage"
    )


def toolsets_for(case: Case, log: CallLog) -> list[StaticToolset]:
    """The case's connected systems, each tool answering from the recordings."""

    def recorded(name: str, system: str) -> Any:
        def run(params: BaseModel) -> ToolResult:
            given = params.model_dump(mode="json", by_alias=True)
            with log.lock:
                log.calls.append((name, given))
            found = [r for r in case.recordings if r.matches(name, given)]
            if not found:
                with log.lock:
                    log.misses.append(f"{name}({json.dumps(given, sort_keys=True)})")
                return ToolResult(
                    status=ToolStatus.ERROR,
                    invocation=name,
                    system=system,
                    error=f"no recorded output for {name} with these parameters ({case.name})",
                )
            best = max(found, key=lambda r: len(r.params))
            return ToolResult(
                status=best.status,
                invocation=best.invocation,
                system=system,
                data=best.data,
                error=best.error,
            )

        return run

    by_system = {
        system: [dataclasses.replace(t, run=recorded(t.name, t.system)) for t in real_tools(system)]
        for system in case.systems
    }
    return [
        StaticToolset(
            system=system,
            tool_list=tuple(tools),
            checker=functools.partial(Check, system=system, ok=True, detail="recorded"),
        )
        for system, tools in by_system.items()
    ]


# --- running -------------------------------------------------------------------------------


@dataclass(kw_only=True)
class EvalResult:
    case: str
    mode: Mode
    problems: list[str]
    answer: str
    model_calls: int
    tool_calls: list[str]
    misses: list[str]
    tokens_in: int
    tokens_out: int
    cache_read: int
    cache_write: int
    cost_usd: float
    seconds: float

    @property
    def passed(self) -> bool:
        return not self.problems


def _script(case: Case) -> list[dict[str, Any]]:
    turns: list[dict[str, Any]] = []
    for turn in case.turns:
        blocks = [text(turn["text"])] if turn.get("text") else []
        blocks += [tool_use(c["tool"], c.get("input", {})) for c in turn.get("calls", ())]
        turns.append(message(*blocks))
    return turns


def _settings(case: Case, *, api_key: str, base_url: str | None, model: str | None) -> Settings:
    agent: dict[str, Any] = {"api_key": api_key, "base_url": base_url}
    if model:
        agent["model"] = model
    agent.update(case.settings.get("agent", {}))
    sections = {k: v for k, v in case.settings.items() if k != "agent"}
    return Settings(_env_file=None, agent=agent, **sections)


def run_case(
    case: Case, *, mode: Mode = "replay", api_key: str | None = None, model: str | None = None
) -> EvalResult:
    log = CallLog()
    toolsets = toolsets_for(case, log)
    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="pipebot-eval-") as tmp:
        store = Store.open(f"sqlite:///{tmp}/eval.db")
        try:
            fake = FakeAnthropic().start() if mode == "replay" else None
            try:
                if fake is not None:
                    fake.script(*_script(case))
                    settings = _settings(
                        case, api_key="sk-ant-eval-replay", base_url=fake.url, model=model
                    )
                else:
                    assert api_key, "live evals need ANTHROPIC_API_KEY"
                    settings = _settings(case, api_key=api_key, base_url=None, model=model)
                message_ = inbound(case.question, thread=case.name)
                conversation_id = store.threads.touch(message_.thread_ref)
                agent = build_agent(settings, store, Redactor())
                reply = agent.answer(
                    case.question,
                    history=[],
                    request=Request(
                        message=message_,
                        args=(),
                        sources=Sources(toolsets=tuple(toolsets), now=lambda: NOW),
                        progress=ProgressLog(),
                        conversation_id=conversation_id,
                    ),
                )
                bodies = fake.bodies if fake is not None else None
                raws = [r.raw.decode() for r in fake.requests] if fake is not None else None
                problems = check(case, reply, log, bodies=bodies, raws=raws, toolsets=toolsets)
                if fake is not None:
                    problems += [f"fake API: {f}" for f in fake.failures]
            finally:
                if fake is not None:
                    fake.stop()
            usage = _usage(store, conversation_id)
        finally:
            store.close()
    return EvalResult(
        case=case.name,
        mode=mode,
        problems=problems,
        answer=to_text(reply),
        tool_calls=[
            f"{name}({', '.join(str(v) for v in p.values() if v not in (None, []))})"
            for name, p in log.calls
        ],
        misses=list(log.misses),
        seconds=time.monotonic() - started,
        **usage,
    )


def _usage(store: Store, conversation_id: int) -> dict[str, Any]:
    columns = (
        func.count(LlmCallRow.id),
        func.coalesce(func.sum(LlmCallRow.input_tokens), 0),
        func.coalesce(func.sum(LlmCallRow.output_tokens), 0),
        func.coalesce(func.sum(LlmCallRow.cache_read_tokens), 0),
        func.coalesce(func.sum(LlmCallRow.cache_write_tokens), 0),
        func.coalesce(func.sum(LlmCallRow.cost_usd), 0.0),
    )
    with store.engine.connect() as connection:
        row = connection.execute(
            select(*columns).where(LlmCallRow.conversation_id == conversation_id)
        ).one()
    calls, tokens_in, tokens_out, read, write, cost = row
    return {
        "model_calls": int(calls),
        "tokens_in": int(tokens_in),
        "tokens_out": int(tokens_out),
        "cache_read": int(read),
        "cache_write": int(write),
        "cost_usd": float(cost),
    }


# --- checks --------------------------------------------------------------------------------


def _tool_results(bodies: Sequence[Mapping[str, Any]]) -> list[str]:
    return [
        str(block.get("content", ""))
        for body in bodies
        for turn in body.get("messages", ())
        if isinstance(turn.get("content"), list)
        for block in turn["content"]
        if block.get("type") == "tool_result"
    ]


def _outside_tool_results(body: Mapping[str, Any]) -> str:
    kept = {k: v for k, v in body.items() if k != "messages"}
    blocks = [
        block
        for turn in body.get("messages", ())
        for block in (
            turn["content"] if isinstance(turn.get("content"), list) else [turn.get("content")]
        )
        if not (isinstance(block, dict) and block.get("type") == "tool_result")
    ]
    return json.dumps([kept, blocks], ensure_ascii=False)


def _inside_data_block(content: str, needle: str) -> bool:
    body = re.fullmatch(r"<tool_output [^>\n]*>\n(.*)\n</tool_output>", content, re.S)
    return body is not None and needle in body.group(1) and "</tool_output>" not in body.group(1)


def check(
    case: Case,
    reply: Reply,
    log: CallLog,
    *,
    bodies: Sequence[Mapping[str, Any]] | None,
    raws: Sequence[str] | None,
    toolsets: Sequence[StaticToolset],
) -> list[str]:
    """What this run got wrong, as sentences (empty when it passed)."""
    problems: list[str] = []
    answer = to_text(reply).lower()
    expect = case.expect
    for fact in expect.facts:
        options = (fact,) if isinstance(fact, str) else fact
        if not any(option.lower() in answer for option in options):
            problems.append(f"answer lacks {' or '.join(repr(o) for o in options)}")
    problems += [f"answer contains {bad!r}" for bad in expect.forbidden if bad.lower() in answer]
    called = {name for name, _ in log.calls}
    problems += [f"{t} was not called" for t in expect.tools if t not in called]
    problems += [f"{t} was called" for t in expect.not_tools if t in called]
    problems += [f"no recording for {miss}" for miss in log.misses]
    if bodies is None or raws is None:
        return problems
    results = _tool_results(bodies)
    if not expect.tool_errors:
        errors = {
            str(block.get("content", ""))[:160]
            for body in bodies
            for turn in body.get("messages", ())
            if isinstance(turn.get("content"), list)
            for block in turn["content"]
            if block.get("type") == "tool_result" and block.get("is_error")
        }
        problems += [f"a tool answered with an error: {e}" for e in sorted(errors)]
    problems += [
        f"{s!r} never reached the model" for s in expect.seen if not any(s in r for r in results)
    ]
    problems += [
        f"{s[:12]!r}… was sent to the model"
        for s in expect.never_sent
        if any(s in raw for raw in raws)
    ]
    for needle in expect.data_only:
        if any(needle in _outside_tool_results(body) for body in bodies):
            problems.append(f"{needle!r} was sent outside a tool result")
        carrying = [r for r in results if needle in r]
        if not carrying:
            problems.append(f"{needle!r} never reached the model")
        elif not all(_inside_data_block(r, needle) for r in carrying):
            problems.append(f"{needle!r} escaped its <tool_output> block")
    if expect.offered_systems and bodies:
        system_of = {t.name: ts.system for ts in toolsets for t in ts.tools()}
        offered = {system_of.get(t["name"], "?") for t in bodies[0].get("tools", ())}
        extra = offered - set(expect.offered_systems)
        if extra:
            problems.append(f"tools of {sorted(extra)} were offered")
    return problems

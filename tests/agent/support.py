"""Building blocks for agent tests, evals and the token benchmark.

Toolsets here are real `Tool` objects over real Python functions and in-memory data — the
`Tool` contract is the seam between connectors and the agent, so nothing is mocked.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from bot.agent import build_agent
from bot.agent.claude import ClaudeAgent
from bot.commands import Request
from bot.errors import NotFound, SourceUnavailable
from bot.messages import InboundMessage
from bot.ports import Sources
from bot.redaction import Redactor
from bot.settings import Settings
from bot.store import Store
from bot.tools import Check, StaticToolset, Tool, ToolResult, ToolStatus

# Built from parts so it is token-shaped for the redactor but never a literal token in git.
API_KEY = "sk-" + "ant-api03-test-key-0123456789abcdefghij"
NOW = datetime(2026, 11, 25, 10, 0, tzinfo=UTC)


def settings(base_url: str, **agent: Any) -> Settings:
    """Settings for an agent pointed at the fake API, with `agent` overrides."""
    section: dict[str, Any] = {
        "api_key": API_KEY,
        "base_url": base_url,
        "timeout": 30.0,
        "request_timeout": 10.0,
    }
    section.update(agent)
    return Settings(_env_file=None, agent=section)


def agent_for(base_url: str, store: Store, **overrides: Any) -> ClaudeAgent:
    return build_agent(settings(base_url, **overrides), store, Redactor())


class ProgressLog:
    """A progress callback that remembers what it was told (thread-safe)."""

    def __init__(self) -> None:
        self.lines: list[str] = []
        self._lock = threading.Lock()

    def __call__(self, line: str) -> None:
        with self._lock:
            self.lines.append(line)


def inbound(text: str, *, thread: str = "t1", event_id: str = "e1") -> InboundMessage:
    return InboundMessage(
        platform="console",
        workspace="local",
        channel="c",
        thread=thread,
        user="dana",
        text=text,
        event_id=event_id,
    )


def request_for(
    sources: Sources,
    *,
    conversation_id: int | None = None,
    progress: Callable[[str], None] | None = None,
    text: str = "question",
) -> Request:
    return Request(
        message=inbound(text),
        args=(),
        sources=sources,
        progress=progress or ProgressLog(),
        conversation_id=conversation_id,
    )


def sources(*toolsets: StaticToolset, label: str = "") -> Sources:
    return Sources(toolsets=toolsets, now=lambda: NOW, label=label)


# --- an Airflow-like toolset over in-memory data -------------------------------------------


class _Params(BaseModel):
    model_config = ConfigDict(extra="forbid")


class RunsParams(_Params):
    dag_id: str = Field(..., min_length=1, description="Exact DAG id")
    states: list[str] = Field(default_factory=list, description="Only runs in these states")
    limit: int = Field(25, ge=1, le=100, description="How many runs at most")


class TasksParams(_Params):
    dag_id: str = Field(..., min_length=1, description="Exact DAG id")
    run_id: str = Field(..., min_length=1, description="Exact run id")
    states: list[str] = Field(default_factory=list, description="Only tasks in these states")


class LogParams(_Params):
    dag_id: str = Field(..., min_length=1, description="Exact DAG id")
    run_id: str = Field(..., min_length=1, description="Exact run id")
    task_id: str = Field(..., min_length=1, description="Exact task id")
    try_number: int = Field(..., ge=1, description="Which try (1 is the first)")
    max_chars: int = Field(8000, ge=500, le=20000, description="At most this many characters")


class World:
    """Pipelines as data: runs, task instances and logs the tools read."""

    def __init__(
        self,
        *,
        runs: Mapping[str, list[dict[str, Any]]] | None = None,
        tasks: Mapping[tuple[str, str], list[dict[str, Any]]] | None = None,
        logs: Mapping[tuple[str, str, str, int], str] | None = None,
        delay: float = 0.0,
    ) -> None:
        self.runs = dict(runs or {})
        self.tasks = dict(tasks or {})
        self.logs = dict(logs or {})
        self.delay = delay
        self.calls: list[str] = []
        self._lock = threading.Lock()
        self.active = 0
        self.peak = 0

    def _enter(self, what: str) -> None:
        with self._lock:
            self.calls.append(what)
            self.active += 1
            self.peak = max(self.peak, self.active)

    def _leave(self) -> None:
        with self._lock:
            self.active -= 1

    def _slow(self, what: str) -> None:
        self._enter(what)
        try:
            if self.delay:
                time.sleep(self.delay)
        finally:
            self._leave()

    def list_dag_runs(self, p: RunsParams) -> ToolResult:
        self._slow(f"runs {p.dag_id}")
        invocation = f"GET /api/v2/dags/{p.dag_id}/dagRuns"
        if p.dag_id not in self.runs:
            raise NotFound("Airflow", f"{invocation} returned 404: DAG {p.dag_id!r} not found")
        runs = [r for r in self.runs[p.dag_id] if not p.states or r["state"] in p.states]
        return ToolResult(
            status=ToolStatus.SUCCESS,
            invocation=invocation,
            system="Airflow",
            data={"dag_runs": runs[: p.limit], "count": len(runs)},
        )

    def get_task_instances(self, p: TasksParams) -> ToolResult:
        self._slow(f"tasks {p.dag_id} {p.run_id}")
        invocation = f"GET /api/v2/dags/{p.dag_id}/dagRuns/{p.run_id}/taskInstances"
        tasks = self.tasks.get((p.dag_id, p.run_id))
        if tasks is None:
            raise NotFound("Airflow", f"{invocation} returned 404")
        tasks = [t for t in tasks if not p.states or t["state"] in p.states]
        return ToolResult(
            status=ToolStatus.SUCCESS,
            invocation=invocation,
            system="Airflow",
            data={"task_instances": tasks, "count": len(tasks)},
        )

    def get_task_log(self, p: LogParams) -> ToolResult:
        self._slow(f"log {p.task_id} {p.try_number}")
        invocation = (
            f"GET /api/v2/dags/{p.dag_id}/dagRuns/{p.run_id}/taskInstances/{p.task_id}"
            f"/logs/{p.try_number}"
        )
        text = self.logs.get((p.dag_id, p.run_id, p.task_id, p.try_number))
        if text is None:
            raise SourceUnavailable("Airflow", f"{invocation} returned 503 Service Unavailable")
        return ToolResult(
            status=ToolStatus.SUCCESS,
            invocation=invocation,
            system="Airflow",
            data={"lines": text.splitlines()[-200:], "try_number": p.try_number},
        )


def airflow_toolset(world: World) -> StaticToolset:
    tools: Sequence[Tool[Any]] = (
        Tool(
            name="list_dag_runs",
            description="DAG runs of one DAG, newest first. Filter by states.",
            params=RunsParams,
            run=world.list_dag_runs,
            system="Airflow",
        ),
        Tool(
            name="get_task_instances",
            description="The task instances of one DAG run with state and try number.",
            params=TasksParams,
            run=world.get_task_instances,
            system="Airflow",
        ),
        Tool(
            name="get_task_log",
            description="The end of one try's log. Errors are at the end.",
            params=LogParams,
            run=world.get_task_log,
            system="Airflow",
        ),
    )
    return StaticToolset(
        system="Airflow",
        tool_list=tuple(tools),
        checker=lambda: Check(system="Airflow", ok=True, detail="in-memory"),
    )


RUN_ID = "scheduled__2026-11-25T02:00:00+00:00"


def failed_world(log: str | None = None, **kwargs: Any) -> World:
    """orders_daily failed last night: `transform` raised KeyError 'amount' on try 2."""
    return World(
        runs={
            "orders_daily": [
                {"run_id": RUN_ID, "state": "failed", "start_date": "2026-11-25T02:00:04+00:00"}
            ]
        },
        tasks={
            ("orders_daily", RUN_ID): [
                {"task_id": "extract", "state": "success", "try_number": 1},
                {"task_id": "transform", "state": "failed", "try_number": 2},
                {"task_id": "load", "state": "upstream_failed", "try_number": 0},
            ]
        },
        logs={
            ("orders_daily", RUN_ID, "transform", 2): log
            or (
                "[2026-11-25 02:03:10] INFO - Reading staging.orders\n"
                "[2026-11-25 02:03:11] ERROR - Task failed with exception\n"
                "Traceback (most recent call last):\n"
                '  File "/opt/airflow/dags/orders.py", line 42, in transform\n'
                "    total = row['amount']\n"
                "KeyError: 'amount'"
            )
        },
        **kwargs,
    )


def conversation(store: Store, thread: str = "t1") -> int:
    """The id of a real conversation row (audit rows reference it)."""
    return store.threads.touch(inbound("x", thread=thread).thread_ref)

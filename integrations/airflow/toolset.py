"""The agent's Airflow tools: typed parameters in, a trimmed `ToolResult` out.

    toolset = airflow_toolset(AirflowClient(...))
    toolset.tools()[0].call({"name_contains": "orders"})

Each tool reports the exact upstream calls it made as its `invocation`, answers
``no_data`` with what was searched when nothing matched, and keeps its data small: lists are
capped, empty fields dropped, stack traces and log lines cut to their ends. Descriptions live
in ``tools.md``.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from typing import Any, TypeVar

from pydantic import BaseModel, ConfigDict, Field

from bot.errors import NotFound, SourceError
from bot.tools import StaticToolset, Tool, ToolResult, ToolStatus, load_descriptions
from integrations.airflow.client import AirflowClient

MAX_ITEMS = 50
MAX_TRACE_CHARS = 1_500
P = TypeVar("P", bound=BaseModel)

RUN_STATES = "queued, running, success, failed"
TASK_STATES = (
    "success, failed, upstream_failed, up_for_retry, up_for_reschedule, running, queued, "
    "scheduled, skipped, deferred, removed, restarting"
)


class _Params(BaseModel):
    model_config = ConfigDict(extra="forbid")


class ListDagsParams(_Params):
    name_contains: str | None = Field(
        None, max_length=200, description="Only DAGs whose id contains this text (any case)"
    )
    limit: int = Field(100, ge=1, le=500, description="How many DAGs at most")


class GetDagParams(_Params):
    dag_id: str = Field(..., min_length=1, max_length=250, description="Exact DAG id")


class ListDagRunsParams(_Params):
    dag_id: str | None = Field(
        None, max_length=250, description="Exact DAG id; leave empty for runs of all DAGs"
    )
    states: list[str] = Field(
        default_factory=list, max_length=4, description=f"Only runs in these states: {RUN_STATES}"
    )
    hours_back: int | None = Field(
        None, ge=1, le=24 * 90, description="Only runs since this many hours ago"
    )
    limit: int = Field(25, ge=1, le=100, description="How many runs at most, newest first")


class RunParams(_Params):
    dag_id: str = Field(..., min_length=1, max_length=250, description="Exact DAG id")
    run_id: str = Field(
        ..., min_length=1, max_length=250, description="Exact run id, e.g. from list_dag_runs"
    )


class GetTaskInstancesParams(RunParams):
    states: list[str] = Field(
        default_factory=list,
        max_length=12,
        description=f"Only tasks in these states: {TASK_STATES}",
    )


class TaskParams(RunParams):
    task_id: str = Field(..., min_length=1, max_length=250, description="Exact task id")
    map_index: int = Field(-1, ge=-1, description="Index of a mapped task; -1 when not mapped")


class GetTaskLogParams(TaskParams):
    try_number: int = Field(..., ge=1, le=1000, description="Which try (1 is the first)")
    max_chars: int = Field(
        8_000, ge=500, le=20_000, description="At most this many characters of the log's end"
    )


class NoParams(_Params):
    pass


def _plain(value: Any) -> Any:
    """JSON-ready copy of a fact: ISO dates, lists, and no empty fields."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {
            f.name: _plain(getattr(value, f.name))
            for f in dataclasses.fields(value)
            if getattr(value, f.name) not in (None, "", (), [])
        }
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    return value


def _capped(items: list[Any], what: str) -> dict[str, Any]:
    data: dict[str, Any] = {what: [_plain(i) for i in items[:MAX_ITEMS]], "count": len(items)}
    if len(items) > MAX_ITEMS:
        data["note"] = f"showing the first {MAX_ITEMS} of {len(items)}"
    return data


def _end(text: str, limit: int = MAX_TRACE_CHARS) -> str:
    return text if len(text) <= limit else "…" + text[-limit:]


class _Tools:
    def __init__(self, client: AirflowClient) -> None:
        self.client = client
        self.system = client.system

    @contextmanager
    def _calls(self) -> Iterator[list[str]]:
        with self.client.calls() as made:
            yield made

    def _result(self, made: list[str], data: Any, *, empty: str | None = None) -> ToolResult:
        invocation = "; ".join(dict.fromkeys(made)) or "(answered from cache)"
        if empty is not None:
            return ToolResult(
                status=ToolStatus.NO_DATA,
                invocation=invocation,
                system=self.system,
                data={"searched": empty},
            )
        return ToolResult(
            status=ToolStatus.SUCCESS, invocation=invocation, system=self.system, data=data
        )

    def list_dags(self, p: ListDagsParams) -> ToolResult:
        with self._calls() as made:
            dags = self.client.dags(limit=500)
        if p.name_contains:
            dags = [d for d in dags if p.name_contains.lower() in d.dag_id.lower()]
        dags = dags[: p.limit]
        where = f"DAG ids containing {p.name_contains!r}" if p.name_contains else "all DAGs"
        if not dags:
            return self._result(made, None, empty=f"{where} at {self.client.base_url}")
        return self._result(made, _capped(dags, "dags"))

    def get_dag(self, p: GetDagParams) -> ToolResult:
        with self._calls() as made:
            dag = self.client.dag(p.dag_id)
        return self._result(made, _plain(dag))

    def list_dag_runs(self, p: ListDagRunsParams) -> ToolResult:
        since = datetime.now(UTC) - timedelta(hours=p.hours_back) if p.hours_back else None
        with self._calls() as made:
            runs = self.client.runs(p.dag_id, states=tuple(p.states), since=since, limit=p.limit)
        if not runs:
            what = f"runs of {p.dag_id!r}" if p.dag_id else "runs of all DAGs"
            if p.states:
                what += f" in state {', '.join(p.states)}"
            if since:
                what += f" since {since.isoformat(timespec='minutes')}"
            return self._result(made, None, empty=what)
        return self._result(made, _capped(runs, "dag_runs"))

    def get_task_instances(self, p: GetTaskInstancesParams) -> ToolResult:
        with self._calls() as made:
            tasks = self.client.task_instances(p.dag_id, p.run_id, states=tuple(p.states))
        if not tasks:
            what = f"task instances of {p.dag_id} run {p.run_id}"
            if p.states:
                what += f" in state {', '.join(p.states)}"
            return self._result(made, None, empty=what)
        return self._result(made, _capped(tasks, "task_instances"))

    def get_task_tries(self, p: TaskParams) -> ToolResult:
        with self._calls() as made:
            tries = self.client.tries(p.dag_id, p.run_id, p.task_id, map_index=p.map_index)
        if not tries:
            return self._result(
                made, None, empty=f"tries of task {p.task_id} in {p.dag_id} run {p.run_id}"
            )
        return self._result(made, _capped(tries, "tries"))

    def get_task_log(self, p: GetTaskLogParams) -> ToolResult:
        with self._calls() as made:
            log = self.client.task_log(
                p.dag_id,
                p.run_id,
                p.task_id,
                p.try_number,
                map_index=p.map_index,
                max_chars=p.max_chars,
            )
        if not log.lines and not log.errors:
            return self._result(
                made,
                None,
                empty=f"log of try {p.try_number} of {p.task_id} in {p.dag_id} run {p.run_id}",
            )
        data = _plain(log)
        data["omitted_chars"] = log.omitted_chars
        return self._result(made, data)

    def list_import_errors(self, _: NoParams) -> ToolResult:
        with self._calls() as made:
            errors = self.client.import_errors()
        if not errors:
            return self._result(made, None, empty=f"DAG import errors at {self.client.base_url}")
        data = _capped(errors, "import_errors")
        for item in data["import_errors"]:
            item["stack_trace"] = _end(str(item.get("stack_trace", "")))
        return self._result(made, data)

    def airflow_health(self, _: NoParams) -> ToolResult:
        with self._calls() as made:
            health = self.client.health()
            version = self.client.version()
        data = _plain(health) | {"healthy": health.healthy, "version": version}
        return self._result(made, data)


def airflow_toolset(client: AirflowClient) -> StaticToolset:
    """The read-only Airflow tools over `client`, with its doctor check."""
    descriptions = load_descriptions("integrations.airflow", "tools.md")
    tools = _Tools(client)

    def tool(name: str, params: type[P], run: Callable[[P], ToolResult]) -> Tool[P]:
        def guarded(p: P) -> ToolResult:
            # Failures keep the upstream calls as their invocation, and not-found answers
            # carry the close names so the model can retry with one.
            with client.calls() as made:
                try:
                    return run(p)
                except SourceError as exc:
                    failed, error = exc.system, exc.reason
                    if isinstance(exc, NotFound) and exc.suggestions:
                        error += f" — did you mean: {', '.join(exc.suggestions)}?"
            return ToolResult(
                status=ToolStatus.ERROR,
                invocation="; ".join(dict.fromkeys(made)) or name,
                system=failed,
                error=error,
            )

        return Tool(
            name=name,
            description=descriptions[name],
            params=params,
            run=guarded,
            system=client.system,
        )

    return StaticToolset(
        system=client.system,
        tool_list=(
            tool("list_dags", ListDagsParams, tools.list_dags),
            tool("get_dag", GetDagParams, tools.get_dag),
            tool("list_dag_runs", ListDagRunsParams, tools.list_dag_runs),
            tool("get_task_instances", GetTaskInstancesParams, tools.get_task_instances),
            tool("get_task_tries", TaskParams, tools.get_task_tries),
            tool("get_task_log", GetTaskLogParams, tools.get_task_log),
            tool("list_import_errors", NoParams, tools.list_import_errors),
            tool("airflow_health", NoParams, tools.airflow_health),
        ),
        checker=client.check,
    )

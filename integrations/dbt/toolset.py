"""The agent's dbt tools, over a `bot.ports.DbtProject` and optionally dbt Cloud runs.

    toolset = dbt_toolset(ArtifactsProject("target"), cloud=DbtCloudClient(...))
    toolset.tools()[0].call({"name": "fct_orders"})   # ToolResult(status=success, …)

The model fills typed parameters (pydantic models below) and gets trimmed, JSON-serialisable
facts back; never raw artifact JSON. A name that does not exist is ``no_data`` with close
names to try, not an error: the call worked, the thing is not there.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Any, Literal, TypeVar

from pydantic import BaseModel, ConfigDict, Field

from bot.errors import Ambiguous, NotFound
from bot.facts import DbtNode, DbtResult, DbtRun, SourceFreshness
from bot.ports import DbtProject
from bot.tools import Check, StaticToolset, Tool, ToolResult, ToolStatus, load_descriptions
from integrations.dbt.cloud import SYSTEM as SYSTEM_CLOUD
from integrations.dbt.cloud import CloudProject, DbtCloudClient, Run, cloud_dbt_run

LISTED = 50  # nodes or results per list before "+N more"
TEXT_CAP = 400  # characters of descriptions and messages
LOG_LINES = 30
PROBLEMS = ("error", "fail", "runtime error", "partial success", "warn")
_DESCRIPTIONS = load_descriptions("integrations.dbt", "tools.md")

T = TypeVar("T")

RunStatus = Literal[
    "problems",
    "error",
    "fail",
    "warn",
    "runtime error",
    "partial success",
    "skipped",
    "success",
    "pass",
    "no-op",
    "reused",
]


class _Params(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class NodeParams(_Params):
    name: str = Field(
        min_length=1,
        max_length=300,
        description="Model, seed, snapshot, exposure, metric, semantic model, saved query or "
        "unit test name, a source as source_name.table, or a dbt unique id such as "
        "model.shop.fct_orders",
    )


class LineageParams(NodeParams):
    depth: int | None = Field(
        None, ge=1, le=20, description="How many hops to list (default: the whole graph)"
    )
    direction: Literal["upstream", "downstream", "both"] = Field(
        "both", description="upstream = what it reads, downstream = what reads it"
    )


class LastRunParams(_Params):
    status: RunStatus | None = Field(
        None,
        description="Only results with this status; 'problems' = error, fail, warn, runtime "
        "error and partial success",
    )
    limit: int = Field(LISTED, ge=1, le=200, description="Most results to list")


class FreshnessParams(_Params):
    status: Literal["pass", "warn", "error", "runtime error", "stale"] | None = Field(
        None, description="Only sources with this freshness status; 'stale' = not pass"
    )


class CloudRunsParams(_Params):
    job_id: int | None = Field(None, gt=0, description="Only runs of this dbt Cloud job id")
    status: Literal["queued", "starting", "running", "success", "error", "cancelled"] | None = (
        Field(None, description="Only runs with this status")
    )
    limit: int = Field(10, ge=1, le=100, description="Most runs to list, newest first")


class CloudRunParams(_Params):
    run_id: int = Field(gt=0, description="dbt Cloud run id")


# --- shaping facts into small JSON ---------------------------------------------------------


def _cut(text: str, cap: int = TEXT_CAP) -> str:
    text = text.strip()
    return text if len(text) <= cap else text[: cap - 1] + "…"


def _time(value: datetime | None) -> str | None:
    return value.isoformat() if value is not None else None


def _compact(values: dict[str, Any]) -> dict[str, Any]:
    """Drop empty values: the model reads fewer tokens and nothing is lost."""
    return {k: v for k, v in values.items() if not _empty(v)}


def _empty(value: Any) -> bool:
    if value is None or value is False:
        return True
    return isinstance(value, str | tuple | list | dict) and not value


def node_brief(node: DbtNode) -> dict[str, Any]:
    return _compact(
        {
            "unique_id": node.unique_id,
            "name": node.name,
            "resource_type": node.resource_type,
            "owners": list(node.owners),
            "exposure_type": node.exposure_type,
            "metric_type": node.metric_type,
            "url": node.url,
        }
    )


def node_detail(node: DbtNode) -> dict[str, Any]:
    columns = [
        _compact(
            {
                "name": c.name,
                "data_type": c.data_type,
                "description": _cut(c.description, 200),
                "tests": list(c.tests),
            }
        )
        for c in node.columns[:LISTED]
    ]
    detail = _compact(
        {
            **node_brief(node),
            "path": node.path,
            "description": _cut(node.description),
            "group": node.group,
            "materialized": node.materialized,
            "relation": node.relation,
            "access": node.access,
            "contract_enforced": node.contract_enforced,
            "tags": list(node.tags),
            "freshness_rule": node.freshness_rule,
            "tested_node": node.tested,
            "columns": columns,
        }
    )
    if len(node.columns) > LISTED:
        detail["columns_not_listed"] = len(node.columns) - LISTED
    return detail


def _listed(key: str, items: Sequence[T], shape: Callable[[T], Any], cap: int) -> dict[str, Any]:
    out: dict[str, Any] = {key: [shape(i) for i in items[:cap]]}
    if len(items) > cap:
        out[f"{key}_not_listed"] = len(items) - cap
    return out


def result_brief(result: DbtResult) -> dict[str, Any]:
    return _compact(
        {
            "unique_id": result.unique_id,
            "status": result.status,
            "message": _cut(result.message),
            "failures": result.failures,
            "execution_time_s": round(result.execution_time_s, 3)
            if result.execution_time_s is not None
            else None,
        }
    )


def run_summary(run: DbtRun) -> dict[str, Any]:
    counts = Counter(r.status for r in run.results)
    return _compact(
        {
            "invocation_id": run.invocation_id,
            "command": run.command,
            "generated_at": _time(run.generated_at),
            "elapsed_s": round(run.elapsed_s, 2) if run.elapsed_s is not None else None,
            "counts": dict(sorted(counts.items())),
            "cloud_run_id": run.cloud_run_id,
            "job_name": run.job_name,
            "status": run.status,
            "url": run.url,
            # Said outright: a `docs generate` run's "success" counts are no build verdict.
            "not_a_build": None
            if run.executed
            else f"dbt {run.command} builds and tests nothing; these are no model or test results",
            "kept_by_pipebot_at": _time(run.kept_at),
            "latest_results_from": run.superseded_by,
        }
    )


def _wanted(status: str | None) -> Callable[[str], bool]:
    if status is None:
        return lambda _: True
    if status == "problems":
        return lambda s: s in PROBLEMS
    return lambda s: s == status


def freshness_brief(item: SourceFreshness) -> dict[str, Any]:
    return _compact(
        {
            "source": f"{item.source_name}.{item.table}",
            "status": item.status,
            "max_loaded_at": _time(item.max_loaded_at),
            "age_s": round(item.age_s) if item.age_s is not None else None,
            "rule": item.rule,
            "owners": list(item.owners),
            "error": _cut(item.error),
            "reason": item.reason,  # why dbt gave no verdict (no loaded_at_field …)
        }
    )


# --- the toolset ---------------------------------------------------------------------------


class _Tools:
    """The tool functions, closing over the project and the optional cloud client."""

    def __init__(
        self, project: DbtProject | None, cloud: DbtCloudClient | CloudProject | None
    ) -> None:
        self.cloud_project: CloudProject | None = None
        self.client: DbtCloudClient | None = None
        if isinstance(cloud, CloudProject):
            self.cloud_project = cloud
            self.client = cloud.client
        elif isinstance(project, CloudProject):
            self.cloud_project = project
            self.client = cloud or project.client
        else:
            self.client = cloud
        if project is None and self.client is None:
            raise ValueError("dbt_toolset needs dbt artifacts, a dbt Cloud client, or both")
        self._project = project
        self.system = project.system if project is not None else SYSTEM_CLOUD
        where = getattr(project, "where", None)
        self.where = where() if callable(where) else self.system

    @property
    def project(self) -> DbtProject:
        if self._project is None:  # the artifact tools are only registered with a project
            raise RuntimeError("the dbt artifact tools need a project")
        return self._project

    def _read(self, what: str, read: Callable[[], T]) -> tuple[T, str]:
        """Run `read`; the invocation is the HTTP calls it made, or the artifacts it read."""
        client = getattr(self.project, "client", None)
        if isinstance(client, DbtCloudClient):
            with client.recording() as calls:
                value = read()
            return value, "; ".join(calls) or f"{self.where} (cached artifacts): {what}"
        return read(), f"{self.where}: {what}"

    def _result(
        self, status: ToolStatus, invocation: str, data: Any, system: str | None = None
    ) -> ToolResult:
        return ToolResult(
            status=status, invocation=invocation, system=system or self.system, data=data
        )

    def _not_found(self, exc: NotFound, invocation: str, name: str) -> ToolResult:
        if isinstance(exc, Ambiguous):
            # Several nodes fit: the model picks one by its exact name rather than we guess.
            return self._result(
                ToolStatus.NO_DATA,
                invocation,
                {
                    "searched": f"nodes named '{name}' in {self.where}",
                    "found": len(exc.candidates),
                    "ambiguous": exc.reason,
                    "candidates": [
                        _compact({"name": c.ref, "resource_type": c.kind, "relation": c.detail})
                        for c in exc.candidates
                    ],
                    "hint": "call again with one candidate's name",
                },
            )
        return self._result(
            ToolStatus.NO_DATA,
            invocation,
            _compact(
                {
                    "searched": f"models, seeds, snapshots, sources, exposures, metrics, "
                    f"semantic models, saved queries and tests named '{name}' in {self.where}",
                    "found": 0,
                    "suggestions": list(exc.suggestions),
                }
            ),
        )

    # -- artifacts --------------------------------------------------------------------------

    def find_node(self, params: NodeParams) -> ToolResult:
        what = f"node {params.name!r} (manifest.json, catalog.json)"
        try:
            node, invocation = self._read(what, lambda: self.project.node(params.name))
        except NotFound as exc:
            return self._not_found(exc, f"{self.where}: {what}", params.name)
        return self._result(ToolStatus.SUCCESS, invocation, node_detail(node))

    def lineage(self, params: LineageParams) -> ToolResult:
        depth = "all" if params.depth is None else params.depth
        what = f"lineage of {params.name!r}, {params.direction}, depth {depth} (manifest.json)"
        try:
            lineage, invocation = self._read(
                what, lambda: self.project.lineage(params.name, depth=params.depth)
            )
        except NotFound as exc:
            return self._not_found(exc, f"{self.where}: {what}", params.name)
        data: dict[str, Any] = {"node": node_brief(lineage.node)}
        if params.direction in ("upstream", "both"):
            data.update(_listed("parents", lineage.parents, node_brief, LISTED))
            data.update(_listed("upstream", lineage.upstream, node_brief, LISTED))
        if params.direction in ("downstream", "both"):
            data.update(_listed("children", lineage.children, node_brief, LISTED))
            data.update(_listed("downstream", lineage.downstream, node_brief, LISTED))
            data.update(_listed("exposures", lineage.exposures, node_brief, LISTED))
            if lineage.semantic:
                data.update(_listed("semantic_layer", lineage.semantic, node_brief, LISTED))
        if lineage.also:
            data["name_also_fits"] = [node_brief(n) for n in lineage.also]
        failing = [
            t.name
            for t in lineage.tests
            if (r := lineage.test_results.get(t.unique_id)) is not None and r.status in PROBLEMS
        ]
        data["tests"] = _compact({"count": len(lineage.tests), "not_passing": failing}) or {
            "count": 0
        }
        return self._result(ToolStatus.SUCCESS, invocation, data)

    def last_run(self, params: LastRunParams) -> ToolResult:
        what = "latest run results (run_results.json)" + (
            f", status {params.status}" if params.status else ""
        )
        run, invocation = self._read(what, self.project.last_run)
        if run is None:
            return self._result(
                ToolStatus.NO_DATA,
                invocation,
                {"searched": f"run_results.json in {self.where}", "found": 0},
            )
        return self._run_result(run, params.status, params.limit, invocation)

    def _run_result(
        self, run: DbtRun, status: str | None, limit: int, invocation: str
    ) -> ToolResult:
        keep = _wanted(status)
        selected = [r for r in run.results if keep(r.status)]
        # Problems first: they are why anyone asks.
        selected.sort(key=lambda r: (r.status not in PROBLEMS, r.status == "skipped"))
        data = run_summary(run)
        if not selected:
            data["searched"] = f"{len(run.results)} results for status {status}"
            return self._result(ToolStatus.NO_DATA, invocation, data)
        data.update(_listed("results", selected, result_brief, limit))
        return self._result(ToolStatus.SUCCESS, invocation, data)

    def freshness(self, params: FreshnessParams) -> ToolResult:
        what = "source freshness (sources.json)" + (
            f", status {params.status}" if params.status else ""
        )
        items, invocation = self._read(what, self.project.freshness)
        if params.status == "stale":
            items = [i for i in items if i.status != "pass"]
        elif params.status is not None:
            items = [i for i in items if i.status == params.status]
        if not items:
            return self._result(
                ToolStatus.NO_DATA,
                invocation,
                {"searched": f"sources.json in {self.where}", "status": params.status, "found": 0},
            )
        order = {"runtime error": 0, "error": 1, "fail": 1, "warn": 2, "not computed": 3, "pass": 4}
        items = sorted(items, key=lambda i: (order.get(i.status, 0), i.source_name, i.table))
        return self._result(
            ToolStatus.SUCCESS, invocation, _listed("sources", items, freshness_brief, LISTED)
        )

    def tests(self, params: NodeParams) -> ToolResult:
        what = f"tests of {params.name!r} and their latest results (manifest, run_results)"
        try:
            lineage, invocation = self._read(
                what, lambda: self.project.lineage(params.name, depth=1)
            )
        except NotFound as exc:
            return self._not_found(exc, f"{self.where}: {what}", params.name)
        info = getattr(self.project, "test_info", None)
        rows = []
        for test in lineage.tests:
            result = lineage.test_results.get(test.unique_id)
            details = info(test.unique_id) if callable(info) else None
            rows.append(
                _compact(
                    {
                        "name": test.name,
                        "unique_id": test.unique_id,
                        "column": getattr(details, "column", ""),
                        "test": getattr(details, "kind", ""),
                        "severity": getattr(details, "severity", ""),
                        "status": result.status if result else "not run",
                        "message": _cut(result.message) if result else "",
                        "failures": result.failures if result else None,
                    }
                )
            )
        node = node_brief(lineage.node)
        if not rows:
            return self._result(
                ToolStatus.NO_DATA,
                invocation,
                {"node": node, "searched": "tests that read this node", "found": 0},
            )
        rows.sort(key=lambda r: (r["status"] not in PROBLEMS, r["name"]))
        data = {"node": node, **_listed("tests", rows, lambda r: r, LISTED)}
        return self._result(ToolStatus.SUCCESS, invocation, data)

    # -- dbt Cloud --------------------------------------------------------------------------

    def cloud_runs(self, params: CloudRunsParams) -> ToolResult:
        client = self._client()
        with client.recording() as calls:
            runs = client.runs(
                job_id=params.job_id,
                status=params.status,
                limit=params.limit,
                include_related=("job", "trigger"),
            )
        invocation = "; ".join(calls)
        if not runs:
            return self._result(
                ToolStatus.NO_DATA,
                invocation,
                _compact(
                    {
                        "searched": f"runs of account {client.account_id}",
                        "job_id": params.job_id,
                        "status": params.status,
                        "found": 0,
                    }
                ),
                system=client.system,
            )
        return self._result(
            ToolStatus.SUCCESS,
            invocation,
            {"runs": [cloud_run_brief(r) for r in runs]},
            system=client.system,
        )

    def cloud_run(self, params: CloudRunParams) -> ToolResult:
        client = self._client()
        with client.recording() as calls:
            run = client.run(params.run_id)
            if self.cloud_project is not None:
                dbt_run = self.cloud_project.cloud_run(params.run_id)
            else:
                dbt_run = cloud_dbt_run(client, params.run_id, run=run)
        data = {**cloud_run_brief(run), **run_summary(dbt_run)}
        data["steps"] = [
            _compact({"index": s.index, "name": s.name, "status": s.status_text})
            for s in run.run_steps or ()
        ]
        failed = [s for s in run.run_steps or () if s.status == 20]
        if failed and failed[0].logs:
            data["failed_step_log_tail"] = failed[0].logs.strip().splitlines()[-LOG_LINES:]
        problems = [r for r in dbt_run.results if r.status in PROBLEMS]
        data.update(_listed("problems", problems, result_brief, LISTED))
        return self._result(ToolStatus.SUCCESS, "; ".join(calls), data, system=client.system)

    def _client(self) -> DbtCloudClient:
        if self.client is None:  # the tools are only registered with a client
            raise RuntimeError("dbt Cloud tools need a client")
        return self.client

    # -- check ------------------------------------------------------------------------------

    def check(self) -> Check:
        checks = [_check_of(self._project)] if self._project is not None else []
        if self.client is not None and self.client is not getattr(self._project, "client", None):
            checks.append(self.client.check())
        if len(checks) == 1:
            return checks[0]
        first, second = checks
        return Check(
            system=first.system,
            ok=first.ok and second.ok,
            detail=f"{first.detail} | {second.system}: {second.detail}",
            target=first.target,
            version=first.version,
        )


def cloud_run_brief(run: Run) -> dict[str, Any]:
    return _compact(
        {
            "run_id": run.id,
            "job_id": run.job_definition_id,
            "job_name": run.job.name if run.job else "",
            "status": run.status_text,
            "status_message": run.status_message,
            "trigger": run.trigger.cause if run.trigger else "",
            "git_sha": run.git_sha,
            "started_at": run.started_at,
            "finished_at": run.finished_at,
            "duration": run.duration_humanized or run.duration,
            "url": run.href,
        }
    )


def _check_of(project: DbtProject) -> Check:
    check = getattr(project, "check", None)
    if callable(check):
        result = check()
        if isinstance(result, Check):
            return result
    as_of = project.as_of()
    return Check(
        system=project.system,
        ok=True,
        detail=f"artifacts generated {as_of:%Y-%m-%d %H:%M} UTC" if as_of else "artifacts readable",
    )


def dbt_toolset(
    project: DbtProject | None, cloud: DbtCloudClient | CloudProject | None = None
) -> StaticToolset:
    """The dbt tools over `project`; with `cloud`, also the dbt Cloud run tools.

    Either may be missing (a deployment with only local artifacts, or only a dbt Cloud token
    and no production job to read artifacts from), not both.
    """
    tools = _Tools(project, cloud)
    system = tools.system
    listed: list[Tool[Any]] = []
    if project is not None:
        listed += [
            _tool("dbt_find_node", NodeParams, tools.find_node, system),
            _tool("dbt_lineage", LineageParams, tools.lineage, system),
            _tool("dbt_last_run", LastRunParams, tools.last_run, system),
            _tool("dbt_source_freshness", FreshnessParams, tools.freshness, system),
            _tool("dbt_tests", NodeParams, tools.tests, system),
        ]
    if tools.client is not None:
        cloud_system = tools.client.system
        listed += [
            _tool("dbt_cloud_runs", CloudRunsParams, tools.cloud_runs, cloud_system),
            _tool("dbt_cloud_run", CloudRunParams, tools.cloud_run, cloud_system),
        ]
    return StaticToolset(system=system, tool_list=tuple(listed), checker=tools.check)


P = TypeVar("P", bound=BaseModel)


def _tool(name: str, params: type[P], run: Callable[[P], ToolResult], system: str) -> Tool[P]:
    return Tool(name=name, description=_DESCRIPTIONS[name], params=params, run=run, system=system)

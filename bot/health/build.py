"""Read the sources into a `HealthReport`.

Every source is asked once, in parallel, each call with the report's deadline (`bot.fanout`):
Airflow's runs across all DAGs in one paged listing (``/dags/~/dagRuns``, pages read a few at
a time) covering the window, the window before it and the chart's 14 days — so the previous
window, the usual durations and the chart cost pages, not requests per DAG — plus import
errors; dbt's last run and source freshness; the warehouse's tables (last-altered times); the
bot's incidents. A source that cannot be read becomes a `Gap` the report names, never a failed
report.

The counts are plain: a run belongs to the window when it started in it (a run not started yet:
when it is due). ``failed`` and ``succeeded`` count finished runs; everything else is active.
"""

from __future__ import annotations

import dataclasses
from collections import Counter, defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from statistics import median
from typing import Any
from zoneinfo import ZoneInfo

from bot import phrases
from bot.errors import SourceError
from bot.facts import AirflowHealth, Dag, DagRun, DbtNode, DbtRun, ImportError_, RunListing
from bot.fanout import Outcome, gather
from bot.health.report import (
    CHART_DAYS,
    FINISHED,
    USUAL_MIN_RUNS,
    USUAL_OF_LAST,
    AirflowPart,
    DagRow,
    Day,
    DbtPart,
    Gap,
    HealthReport,
    IncidentsPart,
    ModelTests,
    Period,
    SlowRun,
    SpendLine,
    TableAge,
    WarehousePart,
    totals_of,
)
from bot.health.selection import Filters, dag_matches, select_nodes
from bot.messages import Progress, no_progress
from bot.ports import Sources
from bot.store.incidents import Incidents

TIMEOUT_S = 30.0
# Runs read per report at most (the newest are kept; the report says when it was cut).
MAX_RUNS = 200_000
# Pages of runs read at once: enough to hide round trips, few enough to spare the Airflow API.
CONCURRENCY = 4
# DAGs listed to apply tag and owner filters.
DAG_LIMIT = 20_000
SLOWEST_LISTED = 5
# Failing DAGs the chart gives a colour of their own; the rest are "other".
CHART_HIGHLIGHT = 4
# Warehouse tables not altered for this long (or twice the window, if longer) stopped updating.
STALE_TABLE_AFTER = timedelta(hours=48)
# Materializations whose table a build rewrites; views and ephemeral models have no data age.
_BUILT = frozenset({"table", "incremental", "snapshot"})
_DBT_BAD = ("error", "fail", "runtime error", "warn")
_NEVER = datetime.min.replace(tzinfo=UTC)


@dataclass(frozen=True, kw_only=True)
class Scope:
    """What to report on: the kind of report, its window, and how much to read."""

    kind: str = "digest"  # "digest" or "status"
    window: timedelta = timedelta(hours=24)
    label: str = "last 24 hours"
    # Compare with the window before and read the chart's history (digest); status does not.
    compare: bool = True
    timezone: str = "UTC"
    filters: Filters = field(default_factory=Filters)
    timeout_s: float = TIMEOUT_S
    max_runs: int = MAX_RUNS
    concurrency: int = CONCURRENCY


def build(
    sources: Sources,
    scope: Scope,
    *,
    incidents: Incidents | None = None,
    spend: Callable[[], SpendLine | None] | None = None,
    progress: Progress = no_progress,
) -> HealthReport:
    now = sources.now()
    since = now - scope.window
    lookback = since - max(scope.window, timedelta(days=CHART_DAYS) - scope.window)
    if not scope.compare:
        lookback = since
    airflow, dbt, warehouse = sources.airflow, sources.dbt, sources.warehouse
    filters = scope.filters
    calls: dict[str, tuple[str, Callable[[], Any]]] = {}
    if airflow is not None:
        calls["runs"] = (
            airflow.system,
            lambda: airflow.runs_since(
                lookback, max_runs=scope.max_runs, concurrency=scope.concurrency
            ),
        )
        calls["import_errors"] = (airflow.system, airflow.import_errors)
        if scope.kind == "status":
            calls["health"] = (airflow.system, airflow.health)
        if filters.airflow:
            calls["dags"] = (airflow.system, lambda: airflow.dags(limit=DAG_LIMIT))
    want_nodes = dbt is not None and (
        bool(filters.select) or (warehouse is not None and scope.kind == "digest")
    )
    if dbt is not None:
        calls["dbt_run"] = (dbt.system, dbt.last_run)
        calls["freshness"] = (dbt.system, dbt.freshness)
        if want_nodes:
            kinds = ("model", "snapshot", "seed", "source") + (("test",) if filters.select else ())
            calls["dbt_nodes"] = (
                dbt.system,
                lambda: [n for kind in kinds for n in dbt.nodes(kind)],
            )
    if warehouse is not None and scope.kind == "digest":
        calls["tables"] = (warehouse.system, warehouse.tables)
    if incidents is not None:
        calls["open_incidents"] = ("pipebot", lambda: incidents.open_incidents(limit=200))
        calls["seen_incidents"] = ("pipebot", lambda: incidents.seen_since(since, limit=1000))
    if spend is not None:
        calls["spend"] = ("warehouse", spend)
    read = sorted({system for system, _ in calls.values()} - {"pipebot"})
    if read:
        progress(f"{scope.label.capitalize()}: reading " + " and ".join(read))
    out = gather(calls, timeout=scope.timeout_s)

    gaps: list[Gap] = []
    consulted: list[str] = []
    window = Period(start=since, end=now)
    previous = Period(start=since - scope.window, end=since) if scope.compare else None

    airflow_part = None
    if airflow is not None:
        allowed = _allowed_dags(out.get("dags"), filters, gaps)
        airflow_part = _airflow(
            out,
            window=window,
            previous=previous,
            lookback=lookback,
            zone=ZoneInfo(scope.timezone),
            allowed=allowed,
            gaps=gaps,
        )
        consulted.append(
            f"{airflow.system}: DAG runs since {phrases.timestamp(lookback)} "
            f"({phrases.plural(airflow_part.requests, 'request')}), import errors"
            + (", health" if scope.kind == "status" else "")
            + (", DAGs (tags and owners)" if filters.airflow else "")
        )

    dbt_part = None
    freshness = None
    selected: set[str] | None = None
    nodes: list[DbtNode] | None = None
    if dbt is not None:
        nodes_out: Outcome[list[DbtNode]] | None = out.get("dbt_nodes")
        if nodes_out is not None:
            if nodes_out.ok and nodes_out.value is not None:
                nodes = nodes_out.value
            else:
                gaps.append(
                    Gap(source=dbt.system, what="the project's nodes", reason=nodes_out.error)
                )
        if filters.select:
            if nodes is not None:
                selected = select_nodes(nodes, filters.select, dbt.lineage)
            else:
                selected = set()  # the selector cannot be applied: report nothing as selected
        dbt_part = _dbt(out["dbt_run"], dbt, selected, gaps)
        fresh: Outcome[list[Any]] = out["freshness"]
        if fresh.ok and fresh.value is not None:
            freshness = tuple(f for f in fresh.value if selected is None or f.unique_id in selected)
        else:
            gaps.append(Gap(source=fresh.system, what="source freshness", reason=fresh.error))
        consulted.append(f"{dbt.system}: run results, source freshness")

    warehouse_part = None
    if warehouse is not None and scope.kind == "digest":
        warehouse_part = _warehouse(
            out["tables"],
            nodes=nodes if dbt is not None else None,
            selected=selected,
            now=now,
            stale_after=max(STALE_TABLE_AFTER, 2 * scope.window),
            gaps=gaps,
        )
        consulted.append(f"{warehouse.system}: tables' last-altered times")

    incidents_part = None
    if incidents is not None:
        opened: Outcome[list[Any]] = out["open_incidents"]
        seen: Outcome[list[Any]] = out["seen_incidents"]
        if opened.ok and seen.ok and opened.value is not None and seen.value is not None:
            incidents_part = IncidentsPart(seen=len(seen.value), open=tuple(opened.value))
        else:
            gaps.append(Gap(source="pipebot", what="incidents", reason=opened.error or seen.error))
        consulted.append("pipebot: incidents")

    spend_line = None
    if spend is not None:
        spent: Outcome[SpendLine | None] = out["spend"]
        if spent.ok:
            spend_line = spent.value
        else:
            gaps.append(Gap(source=spent.system, what="warehouse spend", reason=spent.error))

    return HealthReport(
        kind=scope.kind,
        generated_at=now,
        window=window,
        label=scope.label,
        previous=previous,
        timezone=scope.timezone,
        filters=filters,
        airflow=airflow_part,
        dbt=dbt_part,
        sources=freshness,
        warehouse=warehouse_part,
        incidents=incidents_part,
        spend=spend_line,
        unread=tuple(gaps),
        not_configured=tuple(s for s in ("Airflow", "dbt") if s not in sources.configured()),
        consulted=tuple(consulted),
        environment=sources.label,
    )


# --- Airflow --------------------------------------------------------------------------------


def when(dag_run: DagRun) -> datetime:
    """When a run happened: its start; a run not started yet, when it is due."""
    return (
        dag_run.start_date
        or dag_run.run_after
        or dag_run.logical_date
        or dag_run.end_date
        or _NEVER
    )


def _allowed_dags(
    outcome: Outcome[Any] | None, filters: Filters, gaps: list[Gap]
) -> set[str] | None:
    if outcome is None:
        return None
    if not outcome.ok or outcome.value is None:
        gaps.append(
            Gap(
                source=outcome.system,
                what="DAGs (to apply the tag and owner filters: nothing is shown unfiltered)",
                reason=outcome.error,
            )
        )
        return set()
    dags: list[Dag] = outcome.value
    return {d.dag_id for d in dags if dag_matches(d, filters)}


def _airflow(
    out: dict[str, Outcome[Any]],
    *,
    window: Period,
    previous: Period | None,
    lookback: datetime,
    zone: ZoneInfo,
    allowed: set[str] | None,
    gaps: list[Gap],
) -> AirflowPart:
    listing_out: Outcome[RunListing] = out["runs"]
    errors_out: Outcome[list[ImportError_]] = out["import_errors"]
    health_out: Outcome[AirflowHealth] | None = out.get("health")
    import_errors = None
    if errors_out.ok and errors_out.value is not None:
        import_errors = tuple(errors_out.value)
    else:
        gaps.append(Gap(source=errors_out.system, what="import errors", reason=errors_out.error))
    health = None
    if health_out is not None:
        if health_out.ok:
            health = health_out.value
        else:
            gaps.append(Gap(source=health_out.system, what="health", reason=health_out.error))
    empty = totals_of([])
    if not listing_out.ok or listing_out.value is None:
        gaps.append(Gap(source=listing_out.system, what="DAG runs", reason=listing_out.error))
        return AirflowPart(
            reached=False,
            totals=empty,
            previous=None,
            dags=(),
            import_errors=import_errors,
            health=health,
        )
    listing = listing_out.value
    complete = listing.complete
    if listing.capped and not listing.failed_pages and listing.runs:
        # Only the newest runs were read: the window itself is whole when they reach back
        # past its start; only the history before it (comparison, chart) is cut.
        oldest = min(when(r) for r in listing.runs)
        if oldest < window.start:
            complete = True
            gaps.append(
                Gap(
                    source=listing_out.system,
                    what=f"DAG runs before {phrases.timestamp(oldest)}",
                    reason=listing.problem,
                )
            )
    if not complete:
        gaps.append(Gap(source=listing_out.system, what="DAG runs", reason=listing.problem))
    runs = [r for r in listing.runs if allowed is None or r.dag_id in allowed]
    runs.sort(key=when, reverse=True)
    in_window: dict[str, list[DagRun]] = defaultdict(list)
    before: dict[str, list[DagRun]] = defaultdict(list)
    in_previous: list[DagRun] = []
    for dag_run in runs:
        at = when(dag_run)
        if at >= window.start:
            in_window[dag_run.dag_id].append(dag_run)
        elif at >= lookback:
            before[dag_run.dag_id].append(dag_run)
            if previous is not None and at >= previous.start:
                in_previous.append(dag_run)
    previous_by_dag = Counter(r.dag_id for r in in_previous)
    previous_failed = Counter(r.dag_id for r in in_previous if r.state == "failed")
    rows = [
        _row(
            dag_id,
            window_runs,
            before.get(dag_id, []),
            compare=previous is not None,
            previous_runs=previous_by_dag[dag_id],
            previous_failed=previous_failed[dag_id],
        )
        for dag_id, window_runs in in_window.items()
    ]
    # "Ran last" is when the latest run started, as the run listing is ordered.
    started = {dag_id: when(runs[0]) for dag_id, runs in in_window.items() if runs}
    rows.sort(key=lambda row: _row_order(row, started.get(row.dag_id)))
    usual = {row.dag_id: row.usual_duration_s for row in rows}
    window_runs_all = [r for group in in_window.values() for r in group]
    finished = [r for r in window_runs_all if r.state in FINISHED and r.duration_s is not None]
    finished.sort(key=lambda r: -(r.duration_s or 0.0))
    slowest = tuple(
        SlowRun(
            dag_id=r.dag_id,
            run_id=r.run_id,
            state=r.state,
            duration_s=float(r.duration_s or 0.0),
            usual_duration_s=usual.get(r.dag_id),
            started_at=r.start_date,
        )
        for r in finished[:SLOWEST_LISTED]
    )
    failing_ids = [row.dag_id for row in rows if row.status == "failing"]
    days = _days(runs, window.end, zone, failing_ids) if previous is not None else ()
    return AirflowPart(
        reached=True,
        totals=totals_of([(r.dag_id, r.state, r.duration_s) for r in window_runs_all]),
        previous=(
            totals_of([(r.dag_id, r.state, r.duration_s) for r in in_previous])
            if previous is not None
            else None
        ),
        dags=tuple(rows),
        slowest=slowest,
        days=days,
        import_errors=import_errors,
        health=health,
        runs_read=len(listing.runs),
        requests=listing.requests,
        complete=complete,
    )


def _row(
    dag_id: str,
    window_runs: list[DagRun],
    history: list[DagRun],
    *,
    compare: bool,
    previous_runs: int,
    previous_failed: int,
) -> DagRow:
    """One DAG's row; `window_runs` and `history` newest first."""
    done = [r for r in window_runs if r.state in FINISHED]
    done_before = [r for r in history if r.state in FINISHED]
    latest = done[0] if done else None
    was_failing = bool(done_before) and done_before[0].state == "failed"
    failed = sum(1 for r in done if r.state == "failed")
    if latest is None:
        status = "running"
    elif latest.state == "failed":
        status = "failing"
    elif failed or was_failing:
        status = "recovered"
    else:
        status = "green"
    change = ""
    if compare and status == "failing":
        change = "still" if was_failing else "new"
    elif status == "recovered":
        change = "recovered"
    streak = 0
    for dag_run in (*done, *done_before):
        if dag_run.state != "failed":
            break
        streak += 1
    success = next((r for r in (*done, *done_before) if r.state == "success"), None)
    durations = [r.duration_s for r in done if r.duration_s is not None]
    usual_runs = [
        r.duration_s for r in done_before if r.state == "success" and r.duration_s is not None
    ][:USUAL_OF_LAST]
    shown = latest or window_runs[0]
    return DagRow(
        dag_id=dag_id,
        status=status,
        change=change,
        runs=len(window_runs),
        finished=len(done),
        succeeded=len(done) - failed,
        failed=failed,
        active=len(window_runs) - len(done),
        failure_streak=streak,
        last_success=(success.end_date or success.start_date) if success else None,
        latest_run_id=shown.run_id,
        latest_state=shown.state,
        latest_at=shown.end_date or shown.start_date or shown.run_after,
        median_duration_s=float(median(durations)) if durations else None,
        max_duration_s=float(max(durations)) if durations else None,
        usual_duration_s=(float(median(usual_runs)) if len(usual_runs) >= USUAL_MIN_RUNS else None),
        previous_runs=previous_runs,
        previous_failed=previous_failed,
    )


_ORDER = {"failing": 0, "recovered": 1, "running": 2, "green": 3}
_CHANGE_ORDER = {"new": 0, "still": 1}


def _row_order(row: DagRow, started: datetime | None) -> tuple[int, int, int, float, str]:
    """Failing first (new failures, then the longest streaks), then recovered, running, green;
    within each, the DAG whose latest run started last first."""
    latest = started.timestamp() if started else 0.0
    return (
        _ORDER[row.status],
        _CHANGE_ORDER.get(row.change, 2),
        -row.failure_streak,
        -latest,
        row.dag_id,
    )


def _days(runs: list[DagRun], end: datetime, zone: ZoneInfo, failing: list[str]) -> tuple[Day, ...]:
    """The last `CHART_DAYS` calendar days (in `zone`) up to `end`'s day."""
    last = end.astimezone(zone).date()
    first = last - timedelta(days=CHART_DAYS - 1)
    counts: dict[date, list[DagRun]] = defaultdict(list)
    for dag_run in runs:
        day = when(dag_run).astimezone(zone).date()
        if first <= day <= last:
            counts[day].append(dag_run)
    # The failing DAGs with the most failed runs over the chart get a colour of their own.
    failed_total = Counter(
        r.dag_id for group in counts.values() for r in group if r.state == "failed"
    )
    highlight = sorted(
        (d for d in failing if failed_total[d]), key=lambda d: (-failed_total[d], d)
    )[:CHART_HIGHLIGHT]
    days = []
    for offset in range(CHART_DAYS):
        day = first + timedelta(days=offset)
        group = counts.get(day, [])
        durations = [
            r.duration_s for r in group if r.state in FINISHED and r.duration_s is not None
        ]
        failed_here = Counter(r.dag_id for r in group if r.state == "failed")
        days.append(
            Day(
                day=day,
                runs=len(group),
                failed=sum(failed_here.values()),
                median_duration_s=float(median(durations)) if durations else None,
                run_time_s=float(sum(durations)),
                failed_by_dag=tuple((d, failed_here[d]) for d in highlight),
            )
        )
    return tuple(days)


# --- dbt --------------------------------------------------------------------------------------


def _dbt(
    outcome: Outcome[DbtRun | None], dbt: Any, selected: set[str] | None, gaps: list[Gap]
) -> DbtPart:
    if not outcome.ok:
        gaps.append(Gap(source=outcome.system, what="dbt run results", reason=outcome.error))
        return DbtPart(reached=False, run=None)
    run = outcome.value
    if run is None:
        return DbtPart(
            reached=True, run=None, selected=len(selected) if selected is not None else None
        )
    if selected is not None:
        run = dataclasses.replace(
            run, results=tuple(r for r in run.results if r.unique_id in selected)
        )
    if not run.executed:
        return DbtPart(
            reached=True, run=run, selected=len(selected) if selected is not None else None
        )
    from bot.playbooks.dbt_text import message_gist, short_id  # one wording for every reply

    by_model: dict[str, dict[str, Any]] = {}
    for result in run.results:
        if result.status not in _DBT_BAD:
            continue
        kind = result.unique_id.split(".")[0]
        if kind in ("test", "unit_test"):
            model = _tested(dbt, result.unique_id)
            entry = by_model.setdefault(model, {"failed": [], "warned": [], "error": ""})
            bucket = "warned" if result.status == "warn" else "failed"
            entry[bucket].append(short_id(result.unique_id))
        else:
            entry = by_model.setdefault(result.unique_id, {"failed": [], "warned": [], "error": ""})
            if result.status == "warn":
                entry["warned"].append(short_id(result.unique_id))
            else:
                entry["error"] = message_gist(result.message) or result.status
    rows = [
        ModelTests(
            node=uid,
            name=short_id(uid) if uid else "(tests of no model)",
            failed=tuple(sorted(v["failed"])),
            warned=tuple(sorted(v["warned"])),
            error=v["error"],
        )
        for uid, v in by_model.items()
    ]
    rows.sort(key=lambda m: (not m.error, -len(m.failed), -len(m.warned), m.name))
    return DbtPart(
        reached=True,
        run=run,
        by_model=tuple(rows),
        selected=len(selected) if selected is not None else None,
    )


def _tested(dbt: Any, test_id: str) -> str:
    """The unique id of the model (or source) a test checks; "" when the manifest says none."""
    try:
        node: DbtNode = dbt.node(test_id)
    except SourceError:
        return ""
    return node.tested


# --- warehouse --------------------------------------------------------------------------------


def _relation_key(relation: str) -> str:
    """``"db"."marts"."fct_orders"`` / ``db.marts.fct_orders`` → ``marts.fct_orders``."""
    parts = [p.strip('"`[]').lower() for p in relation.split(".") if p]
    return ".".join(parts[-2:])


def _warehouse(
    outcome: Outcome[Any],
    *,
    nodes: list[DbtNode] | None,
    selected: set[str] | None,
    now: datetime,
    stale_after: timedelta,
    gaps: list[Gap],
) -> WarehousePart:
    if not outcome.ok or outcome.value is None:
        gaps.append(Gap(source=outcome.system, what="warehouse tables", reason=outcome.error))
        return WarehousePart(reached=False, stale_after_s=stale_after.total_seconds())
    wanted: dict[str, str] | None = None
    if nodes is not None:
        # The tables dbt builds (and the sources it reads): their age is the pipeline's.
        wanted = {
            _relation_key(n.relation): n.unique_id
            for n in nodes
            if n.relation
            and (n.resource_type == "source" or n.materialized in _BUILT)
            and (selected is None or n.unique_id in selected)
        }
    checked = 0
    unknown = 0
    stopped: list[TableAge] = []
    for table in outcome.value:
        if table.kind != "table":
            continue
        key = table.qualified_name.lower()
        if wanted is not None and key not in wanted:
            continue
        checked += 1
        if table.last_altered is None:
            unknown += 1
        elif now - table.last_altered > stale_after:
            stopped.append(
                TableAge(
                    relation=table.qualified_name,
                    last_altered=table.last_altered,
                    node=(wanted or {}).get(key, ""),
                )
            )
    stopped.sort(key=lambda t: t.last_altered or _NEVER)
    return WarehousePart(
        reached=True,
        checked=checked,
        stale_after_s=stale_after.total_seconds(),
        stopped=tuple(stopped),
        unknown=unknown,
    )

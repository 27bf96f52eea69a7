"""`HealthReport`: what `status` and `digest` know about the platform, as frozen values.

Everything here was read from a connector or counted from what was read; nothing is worded
yet except `assess`, which names what needs attention (the title of a reply, the `problems` of
the JSON document). Example::

    report.airflow.totals.failed          # failed runs in the window
    [row.dag_id for row in report.airflow.failing]
    report.failing                        # → exit code 1
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime
from statistics import median

from bot import phrases
from bot.facts import AirflowHealth, DbtRun, ImportError_, SourceFreshness
from bot.health.selection import Filters
from bot.store.incidents import Incident

FINISHED = ("success", "failed")
# A DAG is "markedly slower" when its median run in the window took at least this many times
# its usual duration, and at least `SLOWER_MIN_S` longer: a 2 s job taking 4 s is noise.
SLOWER_RATIO = 1.5
SLOWER_MIN_S = 60.0
# "Usual duration": the median of the last this many successful runs before the window.
USUAL_OF_LAST = 10
# Fewer successful runs than this before the window: no usual duration to compare with.
USUAL_MIN_RUNS = 3
CHART_DAYS = 14


@dataclass(frozen=True, kw_only=True)
class Period:
    start: datetime
    end: datetime

    @property
    def seconds(self) -> float:
        return (self.end - self.start).total_seconds()


@dataclass(frozen=True, kw_only=True)
class Totals:
    """Counts over every DAG in one period."""

    dags: int  # DAGs with at least one run
    runs: int
    finished: int  # success or failed
    succeeded: int
    failed: int
    active: int  # running, queued or any state that is not final
    run_time_s: float  # the durations of the finished runs, added up
    median_duration_s: float | None

    @property
    def success_rate(self) -> float | None:
        return self.succeeded / self.finished if self.finished else None


@dataclass(frozen=True, kw_only=True)
class DagRow:
    """One DAG that ran in the window (or failed before it and has not run since)."""

    dag_id: str
    # failing: its latest finished run failed · recovered: the latest succeeded after a failure
    # (in the window, or the last run before it) · green · running: no finished run yet.
    status: str
    # Against the previous window: "new" (failing now, was not) · "still" (failing then and now)
    # · "recovered" · "" (green or running).
    change: str
    runs: int
    finished: int
    succeeded: int
    failed: int
    active: int
    # Failed finished runs in a row, newest first, counted back past the window's start.
    failure_streak: int
    last_success: datetime | None  # in the history read (14 days or two windows)
    latest_run_id: str
    latest_state: str
    latest_at: datetime | None
    median_duration_s: float | None
    max_duration_s: float | None
    usual_duration_s: float | None  # median of the last `USUAL_OF_LAST` successes before
    previous_runs: int
    previous_failed: int
    owners: tuple[str, ...] = ()
    tags: tuple[str, ...] = ()

    @property
    def slower_ratio(self) -> float | None:
        if not self.median_duration_s or not self.usual_duration_s:
            return None
        return self.median_duration_s / self.usual_duration_s

    @property
    def markedly_slower(self) -> bool:
        ratio = self.slower_ratio
        return (
            ratio is not None
            and ratio >= SLOWER_RATIO
            and (self.median_duration_s or 0) - (self.usual_duration_s or 0) >= SLOWER_MIN_S
        )


@dataclass(frozen=True, kw_only=True)
class SlowRun:
    dag_id: str
    run_id: str
    state: str
    duration_s: float
    usual_duration_s: float | None
    started_at: datetime | None

    @property
    def ratio(self) -> float | None:
        return self.duration_s / self.usual_duration_s if self.usual_duration_s else None


@dataclass(frozen=True, kw_only=True)
class Day:
    """One calendar day of the chart (in the report's time zone)."""

    day: date
    runs: int
    failed: int
    median_duration_s: float | None
    run_time_s: float
    # Failed runs of each DAG failing now, on this day: the chart highlights them.
    failed_by_dag: tuple[tuple[str, int], ...] = ()


@dataclass(frozen=True, kw_only=True)
class AirflowPart:
    reached: bool  # False: the runs could not be read at all (`HealthReport.unread` says why)
    totals: Totals
    previous: Totals | None  # None: no comparison asked (status) or nothing read before
    dags: tuple[DagRow, ...]
    slowest: tuple[SlowRun, ...] = ()
    days: tuple[Day, ...] = ()
    import_errors: tuple[ImportError_, ...] | None = None  # None: not read
    health: AirflowHealth | None = None  # status only
    runs_read: int = 0
    requests: int = 0
    complete: bool = True

    @property
    def failing(self) -> tuple[DagRow, ...]:
        return tuple(d for d in self.dags if d.status == "failing")

    @property
    def recovered(self) -> tuple[DagRow, ...]:
        return tuple(d for d in self.dags if d.status == "recovered")

    @property
    def green(self) -> tuple[DagRow, ...]:
        return tuple(d for d in self.dags if d.status == "green")

    @property
    def slower(self) -> tuple[DagRow, ...]:
        rows = [d for d in self.dags if d.markedly_slower]
        return tuple(sorted(rows, key=lambda d: -(d.slower_ratio or 0)))


@dataclass(frozen=True, kw_only=True)
class ModelTests:
    """A model's (or source's) failing and warning data tests, and its own build error."""

    node: str  # unique id of the model or source the tests check
    name: str
    failed: tuple[str, ...] = ()  # test names (fail, error)
    warned: tuple[str, ...] = ()
    error: str = ""  # the model's own build error (status error), its gist


@dataclass(frozen=True, kw_only=True)
class DbtPart:
    reached: bool
    run: DbtRun | None  # None: no run results (or not reached)
    by_model: tuple[ModelTests, ...] = ()
    selected: int | None = None  # nodes the selector kept, when one was given

    @property
    def is_build(self) -> bool:
        return self.run is not None and self.run.executed

    def count(self, *statuses: str) -> int:
        return self.run.count(*statuses) if self.run is not None and self.run.executed else 0


@dataclass(frozen=True, kw_only=True)
class TableAge:
    relation: str  # schema.name
    last_altered: datetime | None
    node: str = ""  # the dbt model or source it holds, when known


@dataclass(frozen=True, kw_only=True)
class WarehousePart:
    """Tables that stopped updating: dbt-built tables (and sources) not altered for longer than
    `stale_after_s` — from the warehouse's own last-altered time."""

    reached: bool
    checked: int = 0
    stale_after_s: float = 0.0
    stopped: tuple[TableAge, ...] = ()
    unknown: int = 0  # checked tables whose last-altered time the warehouse does not say


@dataclass(frozen=True, kw_only=True)
class IncidentsPart:
    seen: int  # incidents with a failure in the window
    open: tuple[Incident, ...]


@dataclass(frozen=True, kw_only=True)
class SpendLine:
    """The warehouse's spend over the window (issue 14's cost line), as the costs playbook
    words it; figures when it has them."""

    text: str
    total: float | None = None
    unit: str = ""
    previous_total: float | None = None


@dataclass(frozen=True, kw_only=True)
class DriftPart:
    """Schema drift found in the warehouse since the last snapshot (filled once drift checks
    exist; None until then)."""

    findings: tuple[str, ...] = ()
    checked_at: datetime | None = None


@dataclass(frozen=True, kw_only=True)
class Gap:
    """Something the report could not read: the source, what, and why (verbatim)."""

    source: str
    what: str
    reason: str


@dataclass(frozen=True, kw_only=True)
class HealthReport:
    kind: str  # "digest" or "status"
    generated_at: datetime
    window: Period
    label: str  # "last 24 hours"
    previous: Period | None = None
    timezone: str = "UTC"
    filters: Filters = field(default_factory=Filters)
    airflow: AirflowPart | None = None  # None: Airflow is not configured
    dbt: DbtPart | None = None
    sources: tuple[SourceFreshness, ...] | None = None  # None: not read
    warehouse: WarehousePart | None = None
    incidents: IncidentsPart | None = None
    spend: SpendLine | None = None
    drift: DriftPart | None = None
    unread: tuple[Gap, ...] = ()
    not_configured: tuple[str, ...] = ()
    consulted: tuple[str, ...] = ()  # what was read, for the reply's sources line
    environment: str = ""  # e.g. the demo's "recorded …" label

    @property
    def failing(self) -> bool:
        """Something is failing: the exit code of ``pipebot digest --exit-code`` is 1."""
        return bool(assess(self).problems)


@dataclass(frozen=True, kw_only=True)
class Assessment:
    problems: tuple[str, ...]  # failing: an owner must act
    unknown: tuple[str, ...]  # could not be confirmed (may be failing)
    warnings: tuple[str, ...]  # worth a look

    @property
    def verdict(self) -> str:
        if self.problems:
            return "failing"
        if self.unknown:
            return "unconfirmed"
        return "warning" if self.warnings else "ok"


def assess(report: HealthReport) -> Assessment:
    """What needs attention, worded short (title phrases), in order of importance."""
    problems: list[str] = []
    unknown: list[str] = []
    warnings: list[str] = []
    airflow = report.airflow
    if airflow is not None:
        if not airflow.reached:
            problems.append("Airflow unreachable")
        if airflow.health is not None and not airflow.health.healthy:
            problems.append("Airflow unhealthy")
        failing = airflow.failing
        if failing:
            new = sum(1 for d in failing if d.change == "new")
            text = phrases.plural(len(failing), "failing DAG")
            if report.kind == "digest" and airflow.previous is not None and new:
                text += f" ({new} new)"
            problems.append(text)
        if airflow.import_errors:
            warnings.append(phrases.plural(len(airflow.import_errors), "DAG import error"))
        if airflow.reached and not airflow.complete:
            unknown.append("some DAG runs unread")
        if airflow.slower:
            warnings.append(phrases.plural(len(airflow.slower), "DAG") + " markedly slower")
    dbt = report.dbt
    if dbt is not None:
        if not dbt.reached:
            problems.append("dbt unreachable")
        elif dbt.run is not None and not dbt.run.executed:
            from bot.playbooks.dbt_text import command_text  # one wording for every reply

            unknown.append(
                f"latest dbt results are from {command_text(dbt.run.command)}, not a build"
            )
        else:
            bad = dbt.count("error", "fail", "runtime error")
            if bad:
                problems.append(phrases.plural(bad, "dbt failure"))
            warned = dbt.count("warn")
            if warned:
                warnings.append(phrases.plural(warned, "dbt warning"))
    if report.sources:
        overdue = [f for f in report.sources if f.past_error_limit]
        late = [f for f in report.sources if f.stale and not f.past_error_limit]
        not_computed = [f for f in report.sources if not f.computed]
        if overdue:
            problems.append(phrases.plural(len(overdue), "source") + " stale past the error limit")
        if late:
            warnings.append(phrases.plural(len(late), "stale source"))
        if not_computed:
            # A rule dbt cannot compute is a known gap, not an unknown run.
            warnings.append(
                phrases.plural(len(not_computed), "source") + " with freshness not computed"
            )
    if report.warehouse is not None and report.warehouse.stopped:
        warnings.append(
            phrases.plural(len(report.warehouse.stopped), "warehouse table") + " stopped updating"
        )
    if report.drift is not None and report.drift.findings:
        warnings.append(phrases.plural(len(report.drift.findings), "schema drift finding"))
    if report.incidents is not None:
        still_open = len(report.incidents.open)
        if still_open:
            warnings.append(phrases.plural(still_open, "open incident"))
    return Assessment(problems=tuple(problems), unknown=tuple(unknown), warnings=tuple(warnings))


def totals_of(runs: list[tuple[str, str, float | None]]) -> Totals:
    """Totals of ``(dag_id, state, duration)`` triples."""
    finished = [r for r in runs if r[1] in FINISHED]
    durations = [r[2] for r in finished if r[2] is not None]
    return Totals(
        dags=len({r[0] for r in runs}),
        runs=len(runs),
        finished=len(finished),
        succeeded=sum(1 for r in finished if r[1] == "success"),
        failed=sum(1 for r in finished if r[1] == "failed"),
        active=len(runs) - len(finished),
        run_time_s=float(sum(durations)),
        median_duration_s=float(median(durations)) if durations else None,
    )

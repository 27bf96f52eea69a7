"""What the core needs from each read-only source, as Protocols the connectors implement.

The core cannot import ``integrations/`` (import-linter enforces it), so it states its needs
here; ``bot/main.py`` plugs the real clients in. Every method may raise a `bot.errors.SourceError`
subclass — `SourceUnavailable`, `SourceAuthError`, `NotFound` (or its `Ambiguous`) — and
nothing else on purpose.
Methods only read.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Protocol

from bot.facts import (
    AirflowHealth,
    ArtifactTimes,
    ColumnUse,
    Dag,
    DagRun,
    DbtNode,
    DbtRun,
    DbtState,
    ImportError_,
    Lineage,
    QueryHistory,
    RunListing,
    SourceFreshness,
    Spend,
    StateRef,
    Table,
    TaskInstance,
    TaskLog,
)
from bot.tools import Check, Toolset


class Orchestrator(Protocol):
    """Airflow (2 or 3) seen read-only."""

    system: str  # "Airflow"

    def health(self) -> AirflowHealth: ...

    def version(self) -> str: ...

    def dags(self, *, limit: int = 500) -> list[Dag]: ...

    def dag(self, dag_id: str) -> Dag:
        """Raises `NotFound` (with close dag ids as suggestions) for an unknown id."""
        ...

    def runs(
        self,
        dag_id: str | None = None,
        *,
        states: Sequence[str] = (),
        since: datetime | None = None,
        limit: int = 25,
    ) -> list[DagRun]:
        """Newest first by when they ran (not by logical date). `dag_id=None` lists across
        all DAGs."""
        ...

    def runs_since(
        self, since: datetime, *, max_runs: int = 200_000, concurrency: int = 4
    ) -> RunListing:
        """Every run of every DAG from `since` on, in any order, read page by page across
        all DAGs (requests grow with pages, not with DAGs), at most `concurrency` pages at a
        time. Beyond `max_runs` the newest are kept and the listing says it is incomplete."""
        ...

    def run(self, dag_id: str, run_id: str) -> DagRun: ...

    def task_instances(
        self, dag_id: str, run_id: str, *, states: Sequence[str] = ()
    ) -> list[TaskInstance]: ...

    def tries(
        self, dag_id: str, run_id: str, task_id: str, *, map_index: int = -1
    ) -> list[TaskInstance]: ...

    def task_log(
        self,
        dag_id: str,
        run_id: str,
        task_id: str,
        try_number: int,
        *,
        map_index: int = -1,
        max_chars: int = 20_000,
    ) -> TaskLog:
        """The tail of one try's log (errors are at the end), at most `max_chars`."""
        ...

    def import_errors(self) -> list[ImportError_]: ...


class DbtProject(Protocol):
    """One view over a dbt project, from local artifacts or dbt Cloud."""

    system: str  # "dbt" or "dbt Cloud"

    def node(self, name: str) -> DbtNode:
        """A model, seed, snapshot, source (``source_name.table``), exposure, metric, semantic
        model, saved query or test by name or unique id. Raises `NotFound` with close names
        as suggestions, and `Ambiguous` with every candidate when a bare name fits several
        tables or exposures (a seed and a source over one table): it never picks silently."""
        ...

    def nodes(self, resource_type: str | None = None) -> list[DbtNode]: ...

    def lineage(self, name: str, *, depth: int | None = None) -> Lineage:
        """The node's neighbourhood; names resolve as in `node` (`Lineage.also` lists the
        lesser kinds the name also fits, e.g. the semantic model named like a model)."""
        ...

    def last_run(self) -> DbtRun | None: ...

    def freshness(self) -> list[SourceFreshness]:
        """Latest source freshness results (empty when never computed)."""
        ...

    def as_of(self) -> datetime | None:
        """When the artifacts were generated."""
        ...

    def artifact_times(self) -> ArtifactTimes:
        """When each artifact was generated: catalog.json older than the last build no
        longer shows the warehouse (schema review)."""
        ...

    def column_uses(self, name: str, columns: Sequence[str]) -> list[ColumnUse]:
        """For each model or snapshot reading `name` directly, which of `columns` its SQL
        selects (parsed: compiled SQL when the manifest has it, else the raw SQL)."""
        ...


class DbtRuns(Protocol):
    """dbt Cloud's run history: a specific run's results, for `triage dbt <run_id>`."""

    system: str

    def cloud_run(self, run_id: int) -> DbtRun:
        """The run's results (from its step artifacts), job name, status and URL."""
        ...

    def previous_run(self, run_id: int) -> DbtRun | None:
        """The last finished run of the same job before `run_id` (None when there is none)."""
        ...


class DbtStates(Protocol):
    """Whole dbt states, for the schema review of a change: an artifacts folder (manifest.json
    + catalog.json), a dbt Cloud run, or production — the latest finished run of the deploy job
    (``PIPEBOT_DBT_CLOUD__JOB_ID``)."""

    system: str

    def state(self, ref: StateRef) -> DbtState:
        """The state `ref` names. Raises `NotFound` (no such folder or run, no manifest.json
        in it), `SourceError` saying why it cannot be used (a run still running, dbt Cloud not
        configured for a run id, a folder chat may not read), or `SourceUnavailable`."""
        ...


class WarehouseCatalog(Protocol):
    """Warehouse metadata only: schemas, tables, columns, sizes, freshness."""

    system: str  # "warehouse"
    dialect: str

    def schemas(self) -> list[str]: ...

    def tables(self, schema: str | None = None) -> list[Table]:
        """Every table of `schema` (or of the configured schemas) in bulk queries."""
        ...

    def table(self, schema: str, name: str) -> Table: ...


class WarehouseUsage(Protocol):
    """What the warehouse bills and which queries ran: its own usage views, read-only.

    Raises `SourceAuthError` naming the grant to add when the login may not read them.
    """

    system: str  # "warehouse"
    dialect: str
    where: str  # credential-free, e.g. "Snowflake xy12345/ANALYTICS"
    # How far behind the spend view runs: a window ending later would look like a drop.
    settles: timedelta

    def spend(self, since: datetime, until: datetime) -> Spend:
        """Spend per warehouse and UTC day for ``since <= t < until`` (`Spend.unavailable`
        says why when the warehouse keeps none)."""
        ...

    def queries(
        self,
        since: datetime,
        until: datetime,
        *,
        order: str = "slowest",
        limit: int = 10,
        failed_only: bool = False,
        warehouse: str | None = None,
    ) -> QueryHistory:
        """At most `limit` queries started in the window: ``slowest`` (elapsed), ``costliest``
        (`QueryHistory.cost_means`) or ``newest`` first; only failed ones with
        `failed_only`."""
        ...


_SETTING = {
    "airflow": "PIPEBOT_AIRFLOW__BASE_URL",
    "dbt": "PIPEBOT_DBT__ARTIFACTS_DIR or PIPEBOT_DBT_CLOUD__*",
    "warehouse": "PIPEBOT_WAREHOUSE__URL",
}


def _utcnow() -> datetime:
    return datetime.now(UTC)


def no_usage(dialect: str) -> str:
    """Why a warehouse without `Sources.usage` has no spend or query history to show."""
    on = f" (this one is {dialect})" if dialect else ""
    return (
        "the warehouse's spend and query history are not read: pipebot reads them on "
        f"Snowflake, BigQuery, Redshift and Databricks{on}, with PIPEBOT_WAREHOUSE__USAGE on"
    )


@dataclass(frozen=True, kw_only=True)
class Sources:
    """The connectors this deployment has, plus the clock they are read against.

    A `None` source is not configured. The demo freezes `now` at the time its data was
    recorded so "failed in the last 24 h" stays true for recorded data.
    """

    airflow: Orchestrator | None = None
    dbt: DbtProject | None = None
    dbt_runs: DbtRuns | None = None
    # Whole states to compare (`schema-review <base> <target>`); folders need no setting.
    dbt_states: DbtStates | None = None
    warehouse: WarehouseCatalog | None = None
    # The warehouse's spend and query history (None: its dialect has none pipebot reads, or
    # PIPEBOT_WAREHOUSE__USAGE is off).
    usage: WarehouseUsage | None = None
    toolsets: tuple[Toolset, ...] = ()
    now: Callable[[], datetime] = field(default=_utcnow)
    label: str = ""  # e.g. "demo environment (recorded 2026-11-25)"

    def missing(self, needs: Sequence[str]) -> str | None:
        """What to configure for `needs` (a command's `Command.needs`), or None when it is."""
        have = {"airflow": self.airflow, "dbt": self.dbt, "warehouse": self.warehouse}
        for need in needs:
            if need == "any" and self.airflow is None and self.dbt is None:
                return "nothing is configured: set PIPEBOT_AIRFLOW__BASE_URL or PIPEBOT_DBT__*"
            if need in have and have[need] is None:
                return f"{need} is not configured: set {_SETTING[need]}"
            if need == "usage" and self.usage is None:
                return no_usage(self.warehouse.dialect if self.warehouse else "")
        return None

    def configured(self) -> list[str]:
        return [
            name
            for name, source in (
                ("Airflow", self.airflow),
                ("dbt", self.dbt),
                ("warehouse", self.warehouse),
            )
            if source is not None
        ]

    def checks(self) -> list[Check]:
        return [toolset.check() for toolset in self.toolsets]

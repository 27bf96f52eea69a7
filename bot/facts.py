"""Facts the connectors deliver to the core, as frozen values.

Connectors (``integrations/``) map upstream payloads to these types; playbooks and renderers
only ever see these, never a raw API response. Every field is something a connector read —
nothing here is computed by a model. Enum-like strings (states, statuses) keep the upstream
value verbatim so a new upstream value is shown rather than dropped.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from types import MappingProxyType
from typing import Any, NamedTuple, overload

# --- Airflow -----------------------------------------------------------------------------


@dataclass(frozen=True, kw_only=True)
class AirflowHealth:
    metadatabase: str | None
    scheduler: str | None
    triggerer: str | None = None
    dag_processor: str | None = None
    scheduler_heartbeat: datetime | None = None

    @property
    def healthy(self) -> bool:
        # Triggerer / dag processor report None when not deployed; only "unhealthy" counts.
        parts = (self.metadatabase, self.scheduler, self.triggerer, self.dag_processor)
        return (
            self.metadatabase == "healthy"
            and self.scheduler == "healthy"
            and ("unhealthy" not in parts)
        )


@dataclass(frozen=True, kw_only=True)
class Dag:
    dag_id: str
    display_name: str = ""
    description: str = ""
    is_paused: bool = False
    owners: tuple[str, ...] = ()
    tags: tuple[str, ...] = ()
    schedule: str = ""  # human summary, e.g. "@daily" or "0 6 * * *"
    fileloc: str = ""
    has_import_errors: bool = False
    next_run: datetime | None = None
    last_parsed: datetime | None = None
    max_active_runs: int | None = None


@dataclass(frozen=True, kw_only=True)
class DagRun:
    dag_id: str
    run_id: str
    state: str  # queued | running | success | failed (verbatim)
    run_type: str = ""
    logical_date: datetime | None = None
    run_after: datetime | None = None
    start_date: datetime | None = None
    end_date: datetime | None = None
    duration_s: float | None = None
    triggered_by: str = ""
    dag_version: int | None = None
    note: str = ""


@dataclass(frozen=True, kw_only=True)
class TaskInstance:
    """A task instance, or one try of it (from the tries endpoint)."""

    dag_id: str
    run_id: str
    task_id: str
    state: str | None
    try_number: int
    max_tries: int
    map_index: int = -1
    operator: str = ""
    start_date: datetime | None = None
    end_date: datetime | None = None
    duration_s: float | None = None
    hostname: str = ""
    owner: str = ""  # the task's owner when the API exposes it
    # Set (to why) on a try that was counted, not read: Airflow < 2.10 has no tries endpoint.
    inferred: str = ""


@dataclass(frozen=True, kw_only=True)
class LogError:
    """An exception found in a task log."""

    exc_type: str
    message: str
    # Last frames, innermost last, as "path:line in function".
    frames: tuple[str, ...] = ()


@dataclass(frozen=True, kw_only=True)
class TaskLog:
    """The readable tail of a task log and the errors extracted from it."""

    dag_id: str
    run_id: str
    task_id: str
    try_number: int
    lines: tuple[str, ...]
    errors: tuple[LogError, ...] = ()
    # Characters in the log before the tail we kept (0 when the whole log is here).
    omitted_chars: int = 0
    source: str = ""  # where the log came from (file on the worker, remote store)


@dataclass(frozen=True, kw_only=True)
class RunListing:
    """Every DAG run of a period, read across all DAGs (the digest's input).

    `complete` is False when pages could not be read or the period held more runs than the
    reader's cap: `problem` says which (and the digest says so rather than guessing).
    """

    runs: tuple[DagRun, ...]
    total: int | None  # what the server said the period holds
    complete: bool = True
    problem: str = ""
    requests: int = 0  # HTTP requests made for it
    # The period held more runs than the cap: only the newest were read (the oldest missing).
    capped: bool = False
    failed_pages: int = 0  # pages that could not be read (runs missing anywhere)


@dataclass(frozen=True, kw_only=True)
class ImportError_:
    """A DAG file that failed to import (name avoids the builtin)."""

    filename: str
    stack_trace: str
    timestamp: datetime | None = None


# --- dbt ---------------------------------------------------------------------------------


@dataclass(frozen=True, kw_only=True)
class ColumnDoc:
    name: str
    description: str = ""
    data_type: str = ""  # declared in YAML, else from the catalog, else ""
    tests: tuple[str, ...] = ()
    declared: bool = False  # listed in the project's YAML
    declared_type: str = ""  # the YAML's data_type (contracts), "" when not declared
    catalog_type: str = ""  # the type catalog.json saw, "" when the catalog lacks the column


@dataclass(frozen=True, kw_only=True)
class DbtNode:
    unique_id: str
    name: str
    resource_type: str  # model | seed | snapshot | test | unit_test | source | exposure | metric …
    package: str = ""
    path: str = ""
    description: str = ""
    owners: tuple[str, ...] = ()
    group: str = ""
    materialized: str = ""
    tags: tuple[str, ...] = ()
    relation: str = ""  # fully qualified warehouse name
    access: str = ""
    contract_enforced: bool = False
    columns: tuple[ColumnDoc, ...] = ()
    # Exposures only: what kind (dashboard, ml …) and where it lives.
    exposure_type: str = ""
    url: str = ""
    # Sources only: freshness criteria as text, e.g. "warn after 6 hours, error after 1 day".
    freshness_rule: str = ""
    # Data tests and unit tests: the unique id of the model (or source) they check.
    tested: str = ""
    # Metrics only: simple, ratio, cumulative, derived, conversion.
    metric_type: str = ""


@dataclass(frozen=True, kw_only=True)
class DbtResult:
    """One node's result in a dbt invocation (run_results.json)."""

    unique_id: str
    status: str  # success | error | skipped | pass | fail | warn | … (verbatim)
    message: str = ""
    failures: int | None = None
    execution_time_s: float | None = None
    completed_at: datetime | None = None
    compiled_code: str = ""


# dbt commands whose run_results.json records nodes being built or tested. The others that
# write one (compile, docs generate, ls, parse, show, run-operation) report "success" for each
# node they only compiled or listed: that says nothing about the data, and read as a build it
# is a false all-clear.
EXECUTING_COMMANDS = frozenset({"build", "run", "test", "seed", "snapshot", "retry", "clone"})


@dataclass(frozen=True, kw_only=True)
class DbtRun:
    """A dbt invocation: local run_results.json or a dbt Cloud run."""

    invocation_id: str
    # build | run | test | docs generate | compile | … ("seed + build" for a dbt Cloud run's
    # steps; "" when the artifact does not say)
    command: str
    generated_at: datetime | None
    elapsed_s: float | None
    results: tuple[DbtResult, ...]
    # dbt Cloud only.
    cloud_run_id: int | None = None
    job_name: str = ""
    url: str = ""
    status: str = ""  # dbt Cloud's humanized status when known
    # Set when these are results pipebot kept: the latest run_results came from a command that
    # builds nothing (`superseded_by`, e.g. "docs generate", at `superseded_at`; "" when there
    # are no run results now) and pipebot had seen this run before, at `kept_at`.
    superseded_by: str = ""
    superseded_at: datetime | None = None
    kept_at: datetime | None = None

    @property
    def executed(self) -> bool:
        """Whether the command built or tested nodes (see `EXECUTING_COMMANDS`)."""
        words = [part.strip() for part in self.command.split("+") if part.strip()]
        if words:
            return any(word in EXECUTING_COMMANDS for word in words)
        # No command recorded (hand-trimmed or very old artifacts): a test reported as
        # "success" was compiled, not run (a test that ran passes, fails, warns or errors).
        return not any(
            r.status == "success" and r.unique_id.startswith(("test.", "unit_test."))
            for r in self.results
        )

    def count(self, *statuses: str) -> int:
        return sum(1 for r in self.results if r.status in statuses)

    @property
    def problems(self) -> tuple[DbtResult, ...]:
        bad = {"error", "fail", "runtime error", "partial success", "warn"}
        return tuple(r for r in self.results if r.status in bad)


# The status of a source that has a freshness rule but no result in sources.json.
NOT_COMPUTED = "not computed"


@dataclass(frozen=True, kw_only=True)
class SourceFreshness:
    """One source with a freshness rule: dbt's verdict, or why there is none."""

    unique_id: str
    source_name: str
    table: str
    # pass | warn | error | runtime error (verbatim from sources.json), or `NOT_COMPUTED`
    status: str
    max_loaded_at: datetime | None = None
    snapshotted_at: datetime | None = None
    age_s: float | None = None
    rule: str = ""
    owners: tuple[str, ...] = ()
    error: str = ""
    # Why dbt gave no verdict (status runtime error or not computed), e.g. "no loaded_at_field".
    reason: str = ""

    @property
    def computed(self) -> bool:
        """dbt measured the source's age (whatever the verdict)."""
        return self.status in ("pass", "warn", "error", "fail")

    @property
    def stale(self) -> bool:
        return self.status in ("warn", "error", "fail")

    @property
    def past_error_limit(self) -> bool:
        # `fail` is not in the schema but some producers write it (dbt-artifacts.md §5).
        return self.status in ("error", "fail")


@dataclass(frozen=True, kw_only=True)
class Lineage:
    """A node's neighbourhood, nearest first.

    The blast radius is `downstream` (models, seeds, snapshots: what gets rebuilt from it) and
    `exposures` (dashboards, apps). The semantic layer built on it — metrics, semantic models,
    saved queries — is listed apart in `semantic`, never counted as downstream models.
    """

    node: DbtNode
    parents: tuple[DbtNode, ...]  # everything it reads (semantic nodes for a metric)
    children: tuple[DbtNode, ...]  # the models, seeds and snapshots that read it directly
    upstream: tuple[DbtNode, ...]  # every ancestor, tests excluded
    downstream: tuple[DbtNode, ...]  # every model, seed and snapshot built from it
    exposures: tuple[DbtNode, ...]
    tests: tuple[DbtNode, ...] = ()  # data tests and unit tests on it
    # Results of those tests in the latest run, keyed by unique id.
    test_results: dict[str, DbtResult] = field(default_factory=dict)
    # The run `test_results` come from, as `DbtProject.last_run` returns it (None: no run
    # results). A run that built nothing (`not run.executed`) contributes no test results.
    run: DbtRun | None = None
    # Metrics, semantic models and saved queries built on it (always complete, like exposures).
    semantic: tuple[DbtNode, ...] = ()
    # Other nodes the name asked about also fits, of kinds a bare name does not pick first
    # (the semantic model named like its model): shown so the choice is never silent.
    also: tuple[DbtNode, ...] = ()


@dataclass(frozen=True, kw_only=True)
class ColumnUse:
    """Which of some columns of a node a model reading it selects, read from its SQL."""

    reader: DbtNode  # the model or snapshot (without its columns)
    columns: tuple[str, ...] = ()  # selected for certain
    # Perhaps selected: an unqualified name with several candidate tables, Jinja pipebot does
    # not render, or SQL it could not read (then `problem` says why).
    maybe: tuple[str, ...] = ()
    code: str = ""  # "compiled" or "raw": which SQL was read
    problem: str = ""


@dataclass(frozen=True, kw_only=True)
class ArtifactTimes:
    """When each dbt artifact was generated (None: absent, or it does not say)."""

    manifest: datetime | None = None
    catalog: datetime | None = None
    run_results: datetime | None = None
    sources: datetime | None = None


# --- dbt states: a whole project at one moment, for the schema review of a change ----------


@dataclass(frozen=True, slots=True, kw_only=True)
class StateRef:
    """Which dbt state to load (`bot.ports.DbtStates`): an artifacts folder, a dbt Cloud run,
    or production — the latest run of the configured deploy job."""

    kind: str  # "dir" | "run" | "production"
    value: str = ""  # the folder or the run id; "" for production

    def __str__(self) -> str:
        if self.kind == "run":
            return f"dbt Cloud run {self.value}"
        if self.kind == "production":
            return "production (the deploy job's latest run)"
        return f"the folder {self.value}"


# An empty mapping that cannot be changed: the default meta of the state values below.
_NO_META: Mapping[str, Any] = MappingProxyType({})


class StateColumn(NamedTuple):
    """One column of a node in a state: the warehouse's view (catalog.json) and the project's
    (YAML) side by side. The state values are named tuples, not frozen dataclasses: a large
    project has 100,000 columns, built in a third of the time (bench/bench_schema_diff.py)."""

    name: str
    position: int | None = None  # 1-based, catalog.json's index; None when only declared
    data_type: str = ""  # the warehouse type catalog.json saw ("" when it lacks the column)
    declared_type: str = ""  # the YAML's data_type
    description: str = ""
    declared: bool = False  # listed in the project's YAML
    # Column constraints: "not_null", "unique", "primary_key", "foreign_key", "check: <expr>".
    constraints: tuple[str, ...] = ()
    tests: tuple[str, ...] = ()  # kinds of the data tests on it: not_null, unique, …
    meta: Mapping[str, Any] = _NO_META  # meta and config.meta, merged
    tags: tuple[str, ...] = ()

    @property
    def not_null(self) -> bool:
        """Declared never null: a constraint, or a not_null test."""
        return (
            "not_null" in self.constraints
            or "primary_key" in self.constraints
            or "not_null" in self.tests
        )


class StateNode(NamedTuple):
    """A model, seed, snapshot, source or exposure of a state."""

    unique_id: str
    name: str  # sources: "source_name.table"
    resource_type: str
    package: str = ""
    path: str = ""
    relation: str = ""  # fully qualified warehouse name
    description: str = ""
    owners: tuple[str, ...] = ()
    group: str = ""
    materialized: str = ""
    access: str = ""
    contract_enforced: bool = False
    constraints: tuple[str, ...] = ()  # model-level constraints, as for columns
    version: str = ""
    tags: tuple[str, ...] = ()
    meta: Mapping[str, Any] = _NO_META  # meta and config.meta, merged
    checksum: str = ""  # of the file: equal checksums mean unchanged code
    columns: tuple[StateColumn, ...] = ()
    in_catalog: bool = False  # catalog.json lists it: its columns are the warehouse's
    parents: tuple[str, ...] = ()  # unique ids it reads (exposures: depends on)
    # The SQL to read columns from: compiled when the manifest has it, else the raw SQL with
    # ref()/source() replaced by relations; `sql_partial` when other Jinja was left out.
    sql: str = ""
    sql_kind: str = ""  # "compiled" | "raw" | ""
    sql_partial: bool = False
    exposure_type: str = ""  # exposures: dashboard, ml, …
    url: str = ""

    def column(self, name: str) -> StateColumn | None:
        wanted = name.lower()
        return next((c for c in self.columns if c.name.lower() == wanted), None)


class StateTest(NamedTuple):
    """A data test of a state: generic (on a column) or singular (its own SQL)."""

    unique_id: str
    name: str
    kind: str  # not_null, unique, accepted_values, relationships, … or "singular"
    attached: str = ""  # unique id of the node it tests ("" when unknown)
    column: str = ""  # generic tests: the column it tests
    parents: tuple[str, ...] = ()
    sql: str = ""  # singular tests: their SQL, rendered as for models


@dataclass(frozen=True, slots=True, kw_only=True)
class DbtState:
    """A dbt project as one set of artifacts describes it (manifest.json + catalog.json)."""

    label: str  # where it came from, e.g. "dbt Cloud run 4242 (job 'CI checks')"
    nodes: Mapping[str, StateNode]  # models, seeds, snapshots, sources by unique id
    exposures: Mapping[str, StateNode] = field(default_factory=dict)
    tests: Mapping[str, StateTest] = field(default_factory=dict)
    project: str = ""
    adapter: str = ""  # dbt adapter type: duckdb, snowflake, …
    dialect: str = ""  # its sqlglot dialect ("" for sqlglot's default)
    dbt_version: str = ""
    generated_at: datetime | None = None  # manifest.json
    catalog_at: datetime | None = None  # None: no catalog.json, warehouse types unknown
    run_id: int | None = None  # dbt Cloud
    url: str = ""  # dbt Cloud run page


# --- warehouse ---------------------------------------------------------------------------


class Column(NamedTuple):
    """One column. A named tuple rather than a frozen dataclass: a warehouse catalog holds
    100,000 of them and a tuple is built in a third of the time (bench/bench_catalog.py)."""

    name: str
    data_type: str
    nullable: bool | None = None
    position: int | None = None
    comment: str | None = None  # the warehouse's column comment/description; None: none


class Columns(Sequence[Column]):
    """A table's columns, built on first use from what the catalog query returned.

    A warehouse catalog holds 100,000 columns and a listing looks at few of them, so building
    every `Column` up front was half the time of reading the catalog (bench/bench_catalog.py).
    Behaves as an immutable sequence equal to the tuple of its columns.
    """

    __slots__ = ("_build", "_built", "_count")

    def __init__(self, build: Callable[[], tuple[Column, ...]], count: int) -> None:
        self._build: Callable[[], tuple[Column, ...]] | None = build
        self._built: tuple[Column, ...] | None = None
        self._count = count

    def _all(self) -> tuple[Column, ...]:
        built = self._built
        if built is None:
            assert self._build is not None
            built = self._built = self._build()
            self._build = None
        return built

    def __len__(self) -> int:
        return self._count if self._built is None else len(self._built)

    @overload
    def __getitem__(self, index: int) -> Column: ...

    @overload
    def __getitem__(self, index: slice) -> tuple[Column, ...]: ...

    def __getitem__(self, index: int | slice) -> Column | tuple[Column, ...]:
        return self._all()[index]

    def __iter__(self) -> Iterator[Column]:
        return iter(self._all())

    def __eq__(self, other: object) -> bool:
        if isinstance(other, Columns | tuple):
            return self._all() == tuple(other)
        return NotImplemented

    def __hash__(self) -> int:
        return hash(self._all())

    def __repr__(self) -> str:
        return f"Columns({self._all()!r})"


@dataclass(frozen=True, kw_only=True)
class Table:
    database: str
    schema: str
    name: str
    kind: str  # table | view | materialized view | …
    columns: Sequence[Column] = ()
    row_count: int | None = None  # estimate where the dialect offers one
    last_altered: datetime | None = None
    size_bytes: int | None = None
    comment: str | None = None  # the warehouse's table comment/description; None: none

    @property
    def qualified_name(self) -> str:
        return f"{self.schema}.{self.name}"


# --- warehouse usage: spend and query history ----------------------------------------------


@dataclass(frozen=True, kw_only=True)
class Price:
    """What the warehouse's unit of spend costs in money — always an estimate: contracts,
    discounts and adjustments are not in the usage views."""

    amount: float  # money for `per` units
    currency: str  # e.g. "USD"
    per: float = 1.0  # units `amount` is for (BigQuery: the bytes of a TiB)
    per_label: str = ""  # "credit", "TiB billed", "DBU"
    origin: str = ""  # where the price comes from, e.g. "PIPEBOT_WAREHOUSE__CREDIT_PRICE"

    def cost(self, units: float) -> float:
        return units / self.per * self.amount


@dataclass(frozen=True, kw_only=True)
class SpendDay:
    """Metered use of one warehouse (Snowflake warehouse, BigQuery project, Databricks SQL
    warehouse or product) on one UTC day, inside the window asked for."""

    day: date
    warehouse: str
    amount: float  # in `Spend.unit`
    queries: int | None = None  # jobs or statements counted, where the view says
    # Named components the warehouse reports, e.g. ("compute credits", 11.5) or
    # ("slot-hours", 3.2).
    parts: tuple[tuple[str, float], ...] = ()


@dataclass(frozen=True, kw_only=True)
class Spend:
    """A warehouse account's spend over a window, per warehouse and day, in its own unit.

    `unavailable` says why there is none (Redshift keeps no spend view); then `days` is empty.
    """

    unit: str  # "credits", "bytes billed", "DBUs"
    days: tuple[SpendDay, ...] = ()
    source: str = ""  # the view read, e.g. "SNOWFLAKE.ACCOUNT_USAGE.WAREHOUSE_METERING_HISTORY"
    price: Price | None = None
    unavailable: str = ""

    @property
    def total(self) -> float:
        return sum(d.amount for d in self.days)

    def by_warehouse(self) -> dict[str, float]:
        totals: dict[str, float] = {}
        for d in self.days:
            totals[d.warehouse] = totals.get(d.warehouse, 0.0) + d.amount
        return totals


@dataclass(frozen=True, kw_only=True)
class QueryRecord:
    """One query from the warehouse's query history. `text` is cut short and its literals are
    masked (they can hold personal data or secrets); unknown figures stay None."""

    query_id: str
    user: str = ""
    tag: str = ""  # Snowflake QUERY_TAG, Redshift query_label, BigQuery labels, client app
    warehouse: str = ""
    status: str = ""  # verbatim: SUCCESS / FAIL, DONE, success / failed, FINISHED / FAILED
    failed: bool = False
    error: str = ""
    started_at: datetime | None = None
    elapsed_s: float | None = None
    queued_s: float | None = None
    compute_s: float | None = None  # execution / slot / task time, as the warehouse counts it
    bytes_scanned: int | None = None
    bytes_billed: int | None = None  # BigQuery only
    credits: float | None = None  # Snowflake estimate (see `QueryHistory.cost_means`)
    tables: tuple[str, ...] = ()
    text: str = ""


@dataclass(frozen=True, kw_only=True)
class QueryHistory:
    """Queries of a window, ordered as asked, with what the figures mean on this warehouse."""

    records: tuple[QueryRecord, ...]
    source: str = ""
    cost_means: str = ""  # what "costliest" orders by here, e.g. "bytes billed"
    notes: tuple[str, ...] = ()  # what is unknown and why (tables read not granted …)

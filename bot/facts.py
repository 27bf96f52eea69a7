"""Facts the connectors deliver to the core, as frozen values.

Connectors (``integrations/``) map upstream payloads to these types; playbooks and renderers
only ever see these, never a raw API response. Every field is something a connector read —
nothing here is computed by a model. Enum-like strings (states, statuses) keep the upstream
value verbatim so a new upstream value is shown rather than dropped.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import NamedTuple, overload

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
    resource_type: str  # model | seed | snapshot | test | source | exposure | …
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


@dataclass(frozen=True, kw_only=True)
class DbtRun:
    """A dbt invocation: local run_results.json or a dbt Cloud run."""

    invocation_id: str
    command: str  # build | run | test | …
    generated_at: datetime | None
    elapsed_s: float | None
    results: tuple[DbtResult, ...]
    # dbt Cloud only.
    cloud_run_id: int | None = None
    job_name: str = ""
    url: str = ""
    status: str = ""  # dbt Cloud's humanized status when known

    def count(self, *statuses: str) -> int:
        return sum(1 for r in self.results if r.status in statuses)

    @property
    def problems(self) -> tuple[DbtResult, ...]:
        bad = {"error", "fail", "runtime error", "partial success", "warn"}
        return tuple(r for r in self.results if r.status in bad)


@dataclass(frozen=True, kw_only=True)
class SourceFreshness:
    unique_id: str
    source_name: str
    table: str
    status: str  # pass | warn | error | runtime error (verbatim)
    max_loaded_at: datetime | None = None
    snapshotted_at: datetime | None = None
    age_s: float | None = None
    rule: str = ""
    owners: tuple[str, ...] = ()
    error: str = ""


@dataclass(frozen=True, kw_only=True)
class Lineage:
    """A node's neighbourhood. Lists hold unique ids, nearest first."""

    node: DbtNode
    parents: tuple[DbtNode, ...]
    children: tuple[DbtNode, ...]
    upstream: tuple[DbtNode, ...]
    downstream: tuple[DbtNode, ...]
    exposures: tuple[DbtNode, ...]
    tests: tuple[DbtNode, ...] = ()
    # Results of those tests in the latest run, keyed by unique id.
    test_results: dict[str, DbtResult] = field(default_factory=dict)


# --- warehouse ---------------------------------------------------------------------------


class Column(NamedTuple):
    """One column. A named tuple rather than a frozen dataclass: a warehouse catalog holds
    100,000 of them and a tuple is built in a third of the time (bench/bench_catalog.py)."""

    name: str
    data_type: str
    nullable: bool | None = None
    position: int | None = None


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

    @property
    def qualified_name(self) -> str:
        return f"{self.schema}.{self.name}"

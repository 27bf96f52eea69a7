"""The triage report: facts under stable keys (``pipebot triage --format json``)."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from datetime import datetime
from typing import Any

from bot.terminal import strip_strings

SCHEMA = "pipebot.triage/1"
HISTORY = 25  # recent runs read for history, last success, usual duration
DEEP_TASKS = 3  # failed tasks whose logs and tries are read
FLAKY_RUNS = 5  # earlier runs checked for the same task's retries
LOG_CHARS = 20_000
EXCERPT_LINES = 12
TIMEOUT_S = 15.0
PROBLEM_STATES = ("failed", "upstream_failed", "up_for_retry")


@dataclass(frozen=True, kw_only=True)
class TryFact:
    try_number: int
    state: str
    duration_s: float | None
    started_at: datetime | None


@dataclass(frozen=True, kw_only=True)
class TaskFinding:
    task_id: str
    state: str
    try_number: int
    log_try: int  # the try whose log was read
    max_tries: int
    duration_s: float | None
    operator: str
    error_type: str
    error_message: str
    frames: tuple[str, ...]
    category: str
    evidence: str
    advice: str
    log_excerpt: tuple[str, ...]
    log_omitted_chars: int
    tries: tuple[TryFact, ...]


@dataclass(frozen=True, kw_only=True)
class Flakiness:
    task_id: str
    runs_checked: int
    runs_with_retries: int
    runs_failed: int
    verdict: str  # flaky | failing repeatedly | first failure | stable


@dataclass(frozen=True, kw_only=True)
class ExposureFact:
    name: str
    type: str
    owners: tuple[str, ...]
    url: str


@dataclass(frozen=True, kw_only=True)
class DbtFailure:
    unique_id: str
    name: str
    resource_type: str
    status: str
    message: str
    owners: tuple[str, ...]
    # Models affected: what is built from it; for a test, from the model it checks (and for
    # a unit test the model itself, which `dbt build` then skips).
    downstream: int
    tested: tuple[str, ...] = ()  # tests and unit tests: the model(s) they check
    diff: tuple[str, ...] = ()  # failing unit tests: the expected/actual rows, uncoloured


@dataclass(frozen=True, kw_only=True)
class TriageReport:
    system: str  # "airflow" | "dbt"
    subject: str  # DAG id or dbt job / invocation
    run_id: str
    run_state: str
    url: str = ""
    started_at: datetime | None = None
    ended_at: datetime | None = None
    duration_s: float | None = None
    usual_duration_s: float | None = None
    failed: tuple[TaskFinding, ...] = ()
    upstream_failed: tuple[str, ...] = ()
    retried: tuple[TaskFinding, ...] = ()
    flaky: tuple[Flakiness, ...] = ()
    history_checked: int = 0
    history_failed: int = 0
    last_success_run_id: str = ""
    last_success_at: datetime | None = None
    changes: tuple[str, ...] = ()
    owners: tuple[str, ...] = ()
    dbt_models: tuple[str, ...] = ()
    impact_models: tuple[str, ...] = ()
    # Metrics, semantic models and saved queries built on what failed ("metric `revenue`").
    impact_semantic: tuple[str, ...] = ()
    exposures: tuple[ExposureFact, ...] = ()
    stale_sources: tuple[str, ...] = ()
    dbt_failures: tuple[DbtFailure, ...] = ()
    dbt_skipped: int = 0
    # dbt: the command whose results these are; when pipebot kept them because the newest run
    # results came from a command that builds nothing, that command, when it ran, and when
    # pipebot had seen the kept run.
    dbt_command: str = ""
    dbt_superseded_by: str = ""
    dbt_superseded_at: datetime | None = None
    dbt_kept_at: datetime | None = None
    unavailable: tuple[str, ...] = ()
    sources: tuple[str, ...] = ()
    hypothesis: str = ""
    checked_at: datetime | None = None

    @property
    def fingerprint(self) -> str:
        nodes = ",".join(
            sorted({f.task_id for f in self.failed} | {f.unique_id for f in self.dbt_failures})
        )
        return f"{self.system}:{self.subject}:{nodes}"

    @property
    def category(self) -> str:
        return self.failed[0].category if self.failed else ""

    def to_dict(self) -> dict[str, Any]:
        body = asdict(self)
        body["fingerprint"] = self.fingerprint
        native: dict[str, Any] = json.loads(json.dumps({"schema": SCHEMA, **body}, default=_iso))
        # Messages and log lines come from terminals: no colour codes in the JSON.
        cleaned: dict[str, Any] = strip_strings(native)
        return cleaned


def _iso(value: object) -> str:
    if isinstance(value, datetime):
        return value.isoformat()
    raise TypeError(f"not JSON-serialisable: {type(value).__name__}")

"""Airflow payloads (v2 and v1) → the frozen facts of `bot.facts`.

Lenient on purpose: a missing or oddly typed field becomes an empty value rather than an
exception, enum-like strings are kept verbatim (new states appear across minor versions),
and dates accept ``Z``, offsets and nanoseconds.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

import msgspec

from bot.facts import AirflowHealth, Dag, DagRun, ImportError_, TaskInstance
from integrations.airflow._logs import parse_time


def _text(value: Any) -> str:
    return value if isinstance(value, str) else "" if value is None else str(value)


def _int(value: Any) -> int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    try:
        return int(str(value))
    except ValueError:
        return None


def _float(value: Any) -> float | None:
    if isinstance(value, bool) or value is None:
        return None
    try:
        return float(value)
    except (TypeError, ValueError):
        return None


def _duration(value: Any, start: datetime | None, end: datetime | None) -> float | None:
    """The reported duration, else end − start: Airflow 2's DAG runs have no `duration`."""
    seconds = _float(value)
    if seconds is None and start is not None and end is not None and end >= start:
        seconds = (end - start).total_seconds()
    return seconds


def _status(part: Any) -> str | None:
    if isinstance(part, Mapping):
        status = part.get("status")
        return None if status is None else str(status)
    return None


def health(payload: Mapping[str, Any]) -> AirflowHealth:
    scheduler = payload.get("scheduler")
    heartbeat = (
        scheduler.get("latest_scheduler_heartbeat") if isinstance(scheduler, Mapping) else None
    )
    return AirflowHealth(
        metadatabase=_status(payload.get("metadatabase")),
        scheduler=_status(scheduler),
        triggerer=_status(payload.get("triggerer")),
        dag_processor=_status(payload.get("dag_processor")),
        scheduler_heartbeat=parse_time(heartbeat),
    )


def _schedule(payload: Mapping[str, Any]) -> str:
    summary = payload.get("timetable_summary")
    if summary:
        return _text(summary)
    interval = payload.get("schedule_interval")  # v1: {"__type": "CronExpression", "value": …}
    if isinstance(interval, Mapping):
        if interval.get("value") is not None:
            return _text(interval["value"])
        if interval.get("__type") == "TimeDelta":
            days, seconds = interval.get("days", 0), interval.get("seconds", 0)
            return f"every {days} d {seconds} s" if days else f"every {seconds} s"
    return _text(interval or payload.get("timetable_description"))


def dag(payload: Mapping[str, Any]) -> Dag:
    tags = payload.get("tags") or ()
    owners = payload.get("owners") or ()
    return Dag(
        dag_id=_text(payload.get("dag_id")),
        display_name=_text(payload.get("dag_display_name") or payload.get("dag_id")),
        description=_text(payload.get("description")),
        is_paused=bool(payload.get("is_paused")),
        owners=tuple(_text(o) for o in owners if o),
        tags=tuple(_text(t.get("name")) if isinstance(t, Mapping) else _text(t) for t in tags if t),
        schedule=_schedule(payload),
        fileloc=_text(payload.get("relative_fileloc") or payload.get("fileloc")),
        has_import_errors=bool(payload.get("has_import_errors")),
        # When the next run is due, never its logical date (`next_dagrun` in v1,
        # `next_dagrun_logical_date` in v2): that is the start of its interval, a day earlier
        # for a daily DAG, so it reads as a run in the past.
        next_run=parse_time(
            payload.get("next_dagrun_run_after")  # v2
            or payload.get("next_dagrun_create_after")  # v1
            or payload.get("next_dagrun_data_interval_end")
        ),
        last_parsed=parse_time(payload.get("last_parsed_time")),
        max_active_runs=_int(payload.get("max_active_runs")),
    )


def dag_run(payload: Mapping[str, Any]) -> DagRun:
    versions = payload.get("dag_versions")
    version = None
    if isinstance(versions, list) and versions and isinstance(versions[-1], Mapping):
        version = _int(versions[-1].get("version_number"))
    triggered_by = _text(payload.get("triggered_by"))
    if not triggered_by and payload.get("external_trigger") is not None:  # v1
        triggered_by = "external" if payload["external_trigger"] else "scheduler"
    logical = payload.get("logical_date") or payload.get("execution_date")
    start, end = parse_time(payload.get("start_date")), parse_time(payload.get("end_date"))
    return DagRun(
        dag_id=_text(payload.get("dag_id")),
        run_id=_text(payload.get("dag_run_id") or payload.get("run_id")),
        state=_text(payload.get("state")),
        run_type=_text(payload.get("run_type")),
        logical_date=parse_time(logical),
        run_after=parse_time(payload.get("run_after")),
        start_date=start,
        end_date=end,
        duration_s=_duration(payload.get("duration"), start, end),
        triggered_by=triggered_by,
        dag_version=version,
        note=_text(payload.get("note")),
    )


class _Version(msgspec.Struct):
    version_number: int | None = None


class _RunRow(msgspec.Struct):
    """The fields of a DAG run the facts keep (v2 and v1 names), decoded in C."""

    dag_id: str = ""
    dag_run_id: str | None = None
    run_id: str | None = None  # v1
    state: str | None = None
    run_type: str | None = None
    logical_date: datetime | None = None
    execution_date: datetime | None = None  # v1
    run_after: datetime | None = None
    start_date: datetime | None = None
    end_date: datetime | None = None
    duration: float | None = None
    triggered_by: str | None = None
    external_trigger: bool | None = None  # v1
    note: str | None = None
    dag_versions: list[_Version] | None = None


class _RunPage(msgspec.Struct):
    dag_runs: list[_RunRow] = msgspec.field(default_factory=list)
    total_entries: int | None = None


_PAGE = msgspec.json.Decoder(_RunPage)


def dag_run_page(body: bytes) -> tuple[list[DagRun], int | None] | None:
    """A page of DAG runs straight from the response bytes — a digest reads 40,000 runs, and
    the lenient `dag_run` costs five times as much per run (bench/bench_digest_scale.py).
    None when the page does not have the documented types: `dag_run` reads it instead."""
    try:
        page = _PAGE.decode(body)
    except (msgspec.ValidationError, msgspec.DecodeError):
        return None
    runs = []
    for row in page.dag_runs:
        triggered_by = row.triggered_by or ""
        if not triggered_by and row.external_trigger is not None:
            triggered_by = "external" if row.external_trigger else "scheduler"
        versions = row.dag_versions
        runs.append(
            DagRun(
                dag_id=row.dag_id,
                run_id=row.dag_run_id or row.run_id or "",
                state=row.state or "",
                run_type=row.run_type or "",
                logical_date=row.logical_date or row.execution_date,
                run_after=row.run_after,
                start_date=row.start_date,
                end_date=row.end_date,
                duration_s=_duration(row.duration, row.start_date, row.end_date),
                triggered_by=triggered_by,
                dag_version=versions[-1].version_number if versions else None,
                note=row.note or "",
            )
        )
    return runs, page.total_entries


def task_instance(payload: Mapping[str, Any]) -> TaskInstance:
    state = payload.get("state")
    map_index = _int(payload.get("map_index"))
    start, end = parse_time(payload.get("start_date")), parse_time(payload.get("end_date"))
    try_number = _int(payload.get("try_number")) or 0
    # A task that never ran (upstream_failed, skipped: try 0) has no duration; Airflow 2
    # stamps it with start = end and says 0 s.
    duration = None if try_number == 0 else _duration(payload.get("duration"), start, end)
    return TaskInstance(
        dag_id=_text(payload.get("dag_id")),
        run_id=_text(payload.get("dag_run_id") or payload.get("run_id")),
        task_id=_text(payload.get("task_id")),
        state=None if state is None else str(state),
        try_number=try_number,
        max_tries=_int(payload.get("max_tries")) or 0,
        map_index=-1 if map_index is None else map_index,
        # "@task" says more than "_PythonDecoratedOperator".
        operator=_text(payload.get("operator_name") or payload.get("operator")),
        start_date=start,
        end_date=end,
        duration_s=duration,
        hostname=_text(payload.get("hostname")),
        owner=_text(payload.get("owner")),
    )


def import_error(payload: Mapping[str, Any]) -> ImportError_:
    return ImportError_(
        filename=_text(payload.get("filename")),
        stack_trace=_text(payload.get("stack_trace") or payload.get("stacktrace")),
        timestamp=parse_time(payload.get("timestamp")),
    )

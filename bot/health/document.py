"""A `HealthReport` as the JSON document ``pipebot.digest/1`` (``docs/digest.md`` documents
every key; a test holds the two together).

Numbers stay numbers, times are ISO 8601 in UTC, durations are seconds, a part that was not
configured is ``null`` and a part that could not be read says so in ``unread``. Keys are only
ever added; ``schema`` changes when one is removed or changes meaning.

    >>> doc = document(report)
    >>> [d["dag_id"] for d in doc["airflow"]["failing"]]
    ['orders_daily']
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

from bot.facts import DbtRun, SourceFreshness
from bot.health.report import (
    AirflowPart,
    DagRow,
    DbtPart,
    HealthReport,
    Period,
    Totals,
    assess,
)

SCHEMA = "pipebot.digest/1"


def document(
    report: HealthReport, *, chart: dict[str, Any] | None = None, summary: str = ""
) -> dict[str, Any]:
    """The report as JSON-native values. `chart` (``path``, ``width``, ``height``) when one was
    drawn; `summary` the agent's, when it wrote one."""
    verdict = assess(report)
    return {
        "schema": SCHEMA,
        "kind": report.kind,
        "generated_at": _time(report.generated_at),
        "window": {**_period(report.window), "label": report.label},
        "previous_window": _period(report.previous) if report.previous else None,
        "timezone": report.timezone,
        "filters": {
            "tags": list(report.filters.tags),
            "owners": list(report.filters.owners),
            "dbt_select": list(report.filters.select),
        },
        "verdict": verdict.verdict,
        "failing": report.failing,
        "problems": list(verdict.problems),
        "unknown": list(verdict.unknown),
        "warnings": list(verdict.warnings),
        "airflow": _airflow(report.airflow) if report.airflow is not None else None,
        "dbt": _dbt(report.dbt) if report.dbt is not None else None,
        "sources": (
            [_freshness(f) for f in report.sources] if report.sources is not None else None
        ),
        "warehouse": (
            {
                "reached": report.warehouse.reached,
                "checked": report.warehouse.checked,
                "stale_after_s": report.warehouse.stale_after_s,
                "unknown": report.warehouse.unknown,
                "stopped_updating": [
                    {
                        "relation": t.relation,
                        "last_altered": _time(t.last_altered),
                        "age_s": _age(t.last_altered, report.generated_at),
                        "node": t.node or None,
                    }
                    for t in report.warehouse.stopped
                ],
            }
            if report.warehouse is not None
            else None
        ),
        "incidents": (
            {
                "seen_in_window": report.incidents.seen,
                "open": [
                    {
                        "id": i.id,
                        "subject": i.subject,
                        "node": i.node or None,
                        "status": i.status,
                        "occurrences": i.occurrences,
                        "first_seen_at": _time(i.first_seen_at),
                        "age_s": _age(i.first_seen_at, report.generated_at),
                        "acknowledged_by": i.acknowledged_by,
                    }
                    for i in report.incidents.open
                ],
            }
            if report.incidents is not None
            else None
        ),
        "spend": (
            {
                "text": report.spend.text,
                "total": report.spend.total,
                "unit": report.spend.unit or None,
                "previous_total": report.spend.previous_total,
            }
            if report.spend is not None
            else None
        ),
        "drift": (
            {
                "findings": list(report.drift.findings),
                "checked_at": _time(report.drift.checked_at),
            }
            if report.drift is not None
            else None
        ),
        "unread": [{"source": g.source, "what": g.what, "reason": g.reason} for g in report.unread],
        "not_configured": list(report.not_configured),
        "chart": chart,
        "summary": summary or None,
    }


def to_json(report: HealthReport, **kwargs: Any) -> str:
    return json.dumps(document(report, **kwargs), indent=2, ensure_ascii=False)


def _airflow(part: AirflowPart) -> dict[str, Any]:
    return {
        "reached": part.reached,
        "complete": part.complete,
        "runs_read": part.runs_read,
        "requests": part.requests,
        "health": (
            {
                "healthy": part.health.healthy,
                "metadatabase": part.health.metadatabase,
                "scheduler": part.health.scheduler,
                "triggerer": part.health.triggerer,
                "dag_processor": part.health.dag_processor,
            }
            if part.health is not None
            else None
        ),
        "totals": _totals(part.totals),
        "previous": _totals(part.previous) if part.previous is not None else None,
        "change": _change(part.totals, part.previous),
        "failing": [_row(d) for d in part.failing],
        "recovered": [_row(d) for d in part.recovered],
        "dags": [_row(d) for d in part.dags],
        "slower": [d.dag_id for d in part.slower],
        "slowest_runs": [
            {
                "dag_id": r.dag_id,
                "run_id": r.run_id,
                "state": r.state,
                "duration_s": r.duration_s,
                "usual_duration_s": r.usual_duration_s,
                "ratio": _round(r.ratio),
                "started_at": _time(r.started_at),
            }
            for r in part.slowest
        ],
        "import_errors": (
            [{"filename": e.filename, "timestamp": _time(e.timestamp)} for e in part.import_errors]
            if part.import_errors is not None
            else None
        ),
        "days": [
            {
                "date": d.day.isoformat(),
                "runs": d.runs,
                "failed": d.failed,
                "median_duration_s": d.median_duration_s,
                "run_time_s": d.run_time_s,
                "failed_by_dag": dict(d.failed_by_dag),
            }
            for d in part.days
        ],
    }


def _totals(totals: Totals) -> dict[str, Any]:
    return {
        "dags": totals.dags,
        "runs": totals.runs,
        "finished": totals.finished,
        "succeeded": totals.succeeded,
        "failed": totals.failed,
        "active": totals.active,
        "success_rate": _round(totals.success_rate),
        "run_time_s": totals.run_time_s,
        "median_duration_s": totals.median_duration_s,
    }


def _change(now: Totals, before: Totals | None) -> dict[str, Any] | None:
    if before is None:
        return None
    rate_now, rate_before = now.success_rate, before.success_rate
    return {
        "success_rate_pts": (
            _round((rate_now - rate_before) * 100)
            if rate_now is not None and rate_before is not None
            else None
        ),
        "failed": now.failed - before.failed,
        "run_time_pct": (
            _round((now.run_time_s - before.run_time_s) / before.run_time_s * 100)
            if before.run_time_s
            else None
        ),
    }


def _row(row: DagRow) -> dict[str, Any]:
    return {
        "dag_id": row.dag_id,
        "status": row.status,
        "change": row.change or None,
        "runs": row.runs,
        "finished": row.finished,
        "succeeded": row.succeeded,
        "failed": row.failed,
        "active": row.active,
        "failure_streak": row.failure_streak,
        "last_success": _time(row.last_success),
        "latest_run_id": row.latest_run_id,
        "latest_state": row.latest_state,
        "latest_at": _time(row.latest_at),
        "median_duration_s": row.median_duration_s,
        "max_duration_s": row.max_duration_s,
        "usual_duration_s": row.usual_duration_s,
        "slower_ratio": _round(row.slower_ratio),
        "markedly_slower": row.markedly_slower,
        "previous_runs": row.previous_runs,
        "previous_failed": row.previous_failed,
    }


def _dbt(part: DbtPart) -> dict[str, Any]:
    run: DbtRun | None = part.run
    return {
        "reached": part.reached,
        "selected": part.selected,
        "run": (
            {
                "invocation_id": run.invocation_id,
                "command": run.command,
                "generated_at": _time(run.generated_at),
                "elapsed_s": run.elapsed_s,
                "is_build": run.executed,
                "job_name": run.job_name or None,
                "url": run.url or None,
                "kept": run.kept_at is not None,
                "counts": _counts(run),
            }
            if run is not None
            else None
        ),
        "models": [
            {
                "node": m.node or None,
                "name": m.name,
                "error": m.error or None,
                "failed_tests": list(m.failed),
                "warned_tests": list(m.warned),
            }
            for m in part.by_model
        ],
    }


def _counts(run: DbtRun) -> dict[str, int]:
    counts: dict[str, int] = {}
    for result in run.results:
        counts[result.status] = counts.get(result.status, 0) + 1
    return dict(sorted(counts.items()))


def _freshness(item: SourceFreshness) -> dict[str, Any]:
    return {
        "unique_id": item.unique_id,
        "source": item.source_name,
        "table": item.table,
        "status": item.status,
        "stale": item.stale,
        "past_error_limit": item.past_error_limit,
        "max_loaded_at": _time(item.max_loaded_at),
        "age_s": item.age_s,
        "rule": item.rule or None,
        "owners": list(item.owners),
        "reason": item.reason or None,
    }


def _period(period: Period) -> dict[str, Any]:
    return {"start": _time(period.start), "end": _time(period.end)}


def _time(value: datetime | None) -> str | None:
    return value.astimezone(UTC).isoformat() if value is not None else None


def _age(value: datetime | None, now: datetime) -> float | None:
    return (now - value).total_seconds() if value is not None else None


def _round(value: float | None) -> float | None:
    return round(value, 4) if value is not None else None

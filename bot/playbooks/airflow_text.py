"""Shared one-line descriptions of Airflow facts."""

from __future__ import annotations

from datetime import datetime

from bot import phrases
from bot.facts import DagRun, TaskInstance

STATE_MARK = {
    "success": "✓",
    "failed": "✗",
    "running": "…",
    "queued": "·",
    "upstream_failed": "↑✗",
    "up_for_retry": "↻",
    "skipped": "–",
}


def run_line(dag_run: DagRun, now: datetime, *, with_dag: bool = False) -> str:
    mark = STATE_MARK.get(dag_run.state, "?")
    started = dag_run.start_date or dag_run.run_after
    line = f"{mark} {dag_run.state}"
    if with_dag:
        line += f" `{dag_run.dag_id}`"
    line += f" — `{dag_run.run_id}`, started {phrases.ago(started, now)}"
    if dag_run.duration_s is not None:
        line += f", took {phrases.duration(dag_run.duration_s)}"
    return line


def task_line(ti: TaskInstance) -> str:
    line = f"{STATE_MARK.get(ti.state or '', '?')} `{ti.task_id}` {ti.state or 'no state'}"
    if ti.map_index >= 0:
        line += f" [map {ti.map_index}]"
    if ti.state in ("failed", "up_for_retry", "success") and ti.try_number:
        # max_tries counts retries; the first try is extra.
        line += f", try {ti.try_number} of {ti.max_tries + 1}"
    if ti.duration_s is not None:
        line += f", {phrases.duration(ti.duration_s)}"
    return line

"""Shared one-line descriptions of Airflow facts."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from bot import phrases
from bot.facts import Dag, DagRun, ImportError_, TaskInstance
from bot.messages import Code, Field, Reply, Section, Tone

IMPORT_TRACE_LINES = 12

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
    line = f"{mark} {dag_run.state}"
    if with_dag:
        line += f" `{dag_run.dag_id}`"
    line += f" — `{dag_run.run_id}`, " + (
        f"started {phrases.ago(dag_run.start_date, now)}"
        if dag_run.start_date
        else "not started yet"
    )
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


def next_run_text(dag: Dag, now: datetime) -> str:
    """When the next run is due — and, when that is already past, that it is overdue.

    A due time in the past means the scheduler has not created the run: the DAG is paused,
    the scheduler is down or behind, or scheduling is off. Shown as such, never as if the
    next run were still ahead.
    """
    if dag.next_run is None:
        return "none scheduled"
    when = phrases.timestamp(dag.next_run)
    if dag.next_run >= now:
        return f"{when} (in {phrases.duration((dag.next_run - now).total_seconds())})"
    late = phrases.duration((now - dag.next_run).total_seconds())
    if dag.is_paused:
        return f"{when} — overdue by {late}: the DAG is paused"
    return f"{when} — overdue by {late}: not started yet; is the scheduler running?"


def latest_finished(runs: Sequence[DagRun]) -> DagRun | None:
    """The newest run that finished (runs are newest first)."""
    return next((r for r in runs if r.state in ("success", "failed")), None)


def _file_name(path: str) -> str:
    return path.replace("\\", "/").rsplit("/", 1)[-1]


def import_errors_of(dag_id: str, errors: Sequence[ImportError_]) -> list[ImportError_]:
    """The import errors of files that may define `dag_id`.

    Airflow cannot say which DAGs a file that fails to import would define, so this reads
    what it can: a file named after the DAG, or a file whose traceback names it (the
    ``dag_id="…"`` line, a module or path built from the name).
    """
    wanted = dag_id.lower()
    return [
        error
        for error in errors
        if wanted in _file_name(error.filename).lower() or wanted in error.stack_trace.lower()
    ]


def error_line(error: ImportError_) -> str:
    """The exception line of an import error's traceback (its last non-empty line)."""
    lines = [line.strip() for line in error.stack_trace.splitlines() if line.strip()]
    return lines[-1] if lines else "no traceback"


def missing_dag_reply(
    dag_id: str,
    not_found: str,
    suggestions: Sequence[str],
    import_errors: Sequence[ImportError_] | None,
    now: datetime,
) -> Reply:
    """The answer for a DAG id Airflow does not know.

    When a DAG file that mentions the id fails to import, that file's error is the answer:
    the DAG does not exist for Airflow until its file imports. Otherwise: not found, the
    close names, and the files that fail to import (a DAG in one of them is missing too).
    """
    close = (
        (" Did you mean " + ", ".join(f"`{s}`" for s in suggestions) + "?") if suggestions else ""
    )
    errors = list(import_errors or ())
    mine = import_errors_of(dag_id, errors)
    if not mine:
        text = f"{not_found}.{close}"
        if errors:
            files = ", ".join(f"`{_file_name(e.filename)}`" for e in errors[:5])
            text += (
                f" {phrases.plural(len(errors), 'DAG file')} "
                f"{'fails' if len(errors) == 1 else 'fail'} to import ({files}); "
                "a DAG defined in one of them is missing until its file imports."
            )
        return Reply(title=f"No DAG `{dag_id}`", tone=Tone.WARNING, text=text)
    sections = []
    for error in mine[:3]:
        trace = [line for line in error.stack_trace.splitlines() if line.strip()]
        sections.append(
            Section(
                heading=f"Import error in {_file_name(error.filename)}",
                fields=(
                    Field("File", f"`{error.filename}`"),
                    Field("Error", f"`{error_line(error)}`"),
                    # Airflow stamps the error at each failed parse: "seen", not "since".
                    Field("Last seen", phrases.ago(error.timestamp, now)),
                ),
                code=Code(
                    text="\n".join(trace[-IMPORT_TRACE_LINES:]),
                    language="text",
                    title=f"traceback of {_file_name(error.filename)}",
                    truncated_from=len(error.stack_trace)
                    if len(trace) > IMPORT_TRACE_LINES
                    else None,
                ),
            )
        )
    files = ", ".join(f"`{_file_name(e.filename)}`" for e in mine)
    return Reply(
        title=f"{dag_id}: its DAG file fails to import",
        tone=Tone.ERROR,
        text=(
            f"Airflow has no DAG `{dag_id}`: {files}, which "
            + ("mentions it, fails" if len(mine) == 1 else "mention it, fail")
            + " to import, so the scheduler has no such DAG — no runs, no tasks — until the "
            "file imports again." + close
        ),
        sections=tuple(sections),
        sources=("Airflow: DAGs, import errors",),
    )

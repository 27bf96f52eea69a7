"""`dag <dag_id>`: one DAG — what it is, who owns it, how its recent runs went."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from bot.commands import Request
from bot.errors import NotFound
from bot.facts import Dag, DagRun, TaskInstance
from bot.fanout import gather
from bot.messages import Field, Reply, Section, Tone
from bot.owners import unique_owners
from bot.playbooks.airflow_text import (
    latest_finished,
    missing_dag_reply,
    next_run_text,
    run_line,
    task_line,
)
from bot.playbooks.replies import missing_argument, not_found_reply, source_missing

RECENT = 10
TIMEOUT_S = 20.0


def run(request: Request) -> Reply:
    airflow = request.sources.airflow
    if airflow is None:
        return source_missing("Airflow")
    if not request.args:
        return missing_argument("dag <dag_id>", "the DAG id, e.g. `dag orders_daily`")
    dag_id = request.args[0]
    now = request.sources.now()
    request.progress(f"Airflow: reading DAG {dag_id} and its recent runs")
    calls: dict[str, tuple[str, Callable[[], Any]]] = {
        "dag": (airflow.system, lambda: airflow.dag(dag_id)),
        "runs": (airflow.system, lambda: airflow.runs(dag_id, limit=RECENT)),
    }
    out = gather(calls, timeout=TIMEOUT_S)
    if isinstance(out["dag"].exc, NotFound):
        return _missing(request, dag_id, out["dag"].exc)
    if not out["dag"].ok:
        return not_found_reply(out["dag"], what=f"DAG `{dag_id}`")
    dag = out["dag"].value
    assert isinstance(dag, Dag)
    sections = [
        Section(
            text=dag.description,
            fields=tuple(
                f
                for f in (
                    Field("Owners", ", ".join(unique_owners(dag.owners)) or "–"),
                    Field("Schedule", dag.schedule or "none"),
                    Field("Paused", "yes" if dag.is_paused else "no"),
                    Field("Next run", next_run_text(dag, now)) if dag.next_run else None,
                    Field("Tags", ", ".join(dag.tags)) if dag.tags else None,
                    Field("File", f"`{dag.fileloc}`") if dag.fileloc else None,
                )
                if f is not None
            ),
        )
    ]
    tone = Tone.INFO
    notes: list[str] = []
    if dag.has_import_errors:
        tone = Tone.WARNING
        notes.append("This DAG's file currently has import errors.")
    runs_out = out["runs"]
    if runs_out.ok:
        runs: list[DagRun] = runs_out.value or []
        finished = [r for r in runs if r.state in ("success", "failed")]
        ok = sum(1 for r in finished if r.state == "success")
        summary = (
            f"{ok} of {len(finished)} finished runs succeeded."
            if finished
            else "No finished runs yet."
        )
        sections.append(
            Section(
                heading=f"Last {len(runs)} runs" if runs else "Runs",
                text=summary,
                bullets=tuple(run_line(r, now) for r in runs),
            )
        )
        latest = latest_finished(runs)
        if latest is not None and latest.state == "failed":
            tone = Tone.ERROR
            heading = "Latest run failed" if latest is runs[0] else "Latest finished run failed"
            sections.append(_failed_tasks(request, dag_id, latest, heading))
    else:
        sections.append(Section(heading="Runs", text=f"unknown — {runs_out.error}"))
    return Reply(
        title=f"DAG {dag.dag_id}" + (" (paused)" if dag.is_paused else ""),
        tone=tone,
        sections=tuple(sections),
        sources=(f"{airflow.system}: DAG {dag_id}, its last {RECENT} runs",),
        notes=tuple(notes + ([request.sources.label] if request.sources.label else [])),
    )


def _missing(request: Request, dag_id: str, exc: NotFound) -> Reply:
    """No such DAG: with its import error when a file that mentions it fails to import."""
    airflow = request.sources.airflow
    assert airflow is not None
    errors = gather({"errors": (airflow.system, airflow.import_errors)}, timeout=TIMEOUT_S)
    return missing_dag_reply(
        dag_id, exc.reason, exc.suggestions, errors["errors"].value, request.sources.now()
    )


def _failed_tasks(request: Request, dag_id: str, dag_run: DagRun, heading: str) -> Section:
    airflow = request.sources.airflow
    assert airflow is not None
    request.progress(f"Airflow: reading task states of run {dag_run.run_id}")
    out = gather(
        {
            "tis": (
                airflow.system,
                lambda: airflow.task_instances(
                    dag_id, dag_run.run_id, states=("failed", "upstream_failed", "up_for_retry")
                ),
            )
        },
        timeout=TIMEOUT_S,
    )["tis"]
    if not out.ok:
        return Section(heading=heading, text=f"Task states unknown — {out.error}")
    tis: list[TaskInstance] = out.value or []
    return Section(
        heading=heading,
        text=f"Run `{dag_run.run_id}`. Use `triage {dag_id}` for the error, history and impact.",
        bullets=tuple(task_line(ti) for ti in tis) or ("no failed tasks reported",),
    )

"""`runs [dag_id]`: the most recent DAG runs, across all DAGs or for one."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from typing import Any

from bot.commands import Request
from bot.errors import NotFound
from bot.fanout import gather
from bot.messages import Reply, Section, Tone
from bot.playbooks.airflow_text import latest_finished, missing_dag_reply, run_line
from bot.playbooks.replies import not_found_reply, source_missing

LIMIT = 15
TIMEOUT_S = 20.0


def run(request: Request) -> Reply:
    airflow = request.sources.airflow
    if airflow is None:
        return source_missing("Airflow")
    dag_id = request.args[0] if request.args else None
    now = request.sources.now()
    scope = f"DAG {dag_id}" if dag_id else "all DAGs"
    request.progress(f"Airflow: listing recent runs of {scope}")
    calls: dict[str, tuple[str, Callable[[], Any]]] = {
        "runs": (airflow.system, lambda: airflow.runs(dag_id, limit=LIMIT))
    }
    if dag_id is not None:
        # Airflow 2 lists no runs for an unknown DAG and Airflow 3 answers 404: asking for
        # the DAG itself gives one answer on both, with close names and import errors.
        calls["dag"] = (airflow.system, lambda: airflow.dag(dag_id))
        calls["import_errors"] = (airflow.system, airflow.import_errors)
    answers = gather(calls, timeout=TIMEOUT_S)
    if dag_id is not None and isinstance(answers["dag"].exc, NotFound):
        missing = answers["dag"].exc
        return missing_dag_reply(
            dag_id, missing.reason, missing.suggestions, answers["import_errors"].value, now
        )
    out = answers["runs"]
    if not out.ok:
        return not_found_reply(out, what=f"runs of {scope}")
    runs = out.value or []
    if not runs:
        return Reply(
            title=f"No runs of {scope} yet",
            text="Airflow has no DAG runs to show.",
            sources=(f"{airflow.system}: DAG runs of {scope}",),
        )
    states = Counter(r.state for r in runs)
    summary = ", ".join(f"{count} {state}" for state, count in states.most_common())
    latest = latest_finished(runs)
    return Reply(
        title=f"Last {len(runs)} runs of {scope}",
        tone=Tone.ERROR if latest and latest.state == "failed" else Tone.INFO,
        sections=(
            Section(
                text=summary,
                bullets=tuple(run_line(r, now, with_dag=dag_id is None) for r in runs),
            ),
        ),
        sources=(f"{airflow.system}: DAG runs of {scope}, newest first by when they ran",),
        notes=(request.sources.label,) if request.sources.label else (),
    )

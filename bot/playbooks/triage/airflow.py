"""Triage of an Airflow DAG run: two rounds of parallel, deadline-bound reads."""

from __future__ import annotations

import statistics
from collections.abc import Callable, Sequence
from dataclasses import replace
from datetime import datetime
from typing import Any

from bot.errors import NotFound
from bot.facts import Dag, DagRun, Lineage, SourceFreshness, TaskInstance
from bot.failure import Category, classify
from bot.fanout import Outcome, gather
from bot.messages import Reply, Tone
from bot.owners import unique_owners
from bot.playbooks.airflow_text import missing_dag_reply
from bot.playbooks.dbt_text import freshness_line
from bot.playbooks.replies import not_found_reply
from bot.playbooks.triage.report import (
    DEEP_TASKS,
    EXCERPT_LINES,
    FLAKY_RUNS,
    HISTORY,
    LOG_CHARS,
    PROBLEM_STATES,
    TIMEOUT_S,
    ExposureFact,
    Flakiness,
    TaskFinding,
    TriageReport,
    TryFact,
)
from bot.ports import Sources


def triage_airflow(
    sources: Sources,
    *,
    dag_id: str,
    run_id: str | None = None,
    progress: Callable[[str], None] = lambda _: None,
) -> TriageReport | Reply:
    airflow = sources.airflow
    assert airflow is not None
    system = airflow.system
    progress(f"{system}: reading {dag_id}'s recent runs, failed tasks and owners")
    calls: dict[str, tuple[str, Callable[[], Any]]] = {
        "runs": (system, lambda: airflow.runs(dag_id, limit=HISTORY)),
        "dag": (system, lambda: airflow.dag(dag_id)),
        "failed_tis": (system, lambda: airflow.task_instances(dag_id, "~", states=PROBLEM_STATES)),
        "import_errors": (system, airflow.import_errors),
    }
    if run_id is not None:
        calls["run"] = (system, lambda: airflow.run(dag_id, run_id))
        calls["run_tis"] = (system, lambda: airflow.task_instances(dag_id, run_id))
    dbt = sources.dbt
    if dbt is not None:
        calls[f"lineage:{dag_id}"] = (dbt.system, _bind_lineage(dbt, dag_id))
        calls["freshness"] = (dbt.system, dbt.freshness)
    first = gather(calls, timeout=TIMEOUT_S)

    missing = first["dag"].exc
    if isinstance(missing, NotFound):
        # A DAG whose file fails to import exists only as that import error: show it.
        return missing_dag_reply(
            dag_id,
            missing.reason,
            missing.suggestions,
            first["import_errors"].value,
            sources.now(),
        )
    if not first["dag"].ok:
        return not_found_reply(first["dag"], what=f"DAG `{dag_id}`")
    # A dbt lookup of a name that is not a dbt node is expected, not a failure.
    unavailable = [
        f"{o.system} {name.replace('_', ' ').replace(':', ' of ', 1)}: {o.error}"
        for name, o in first.items()
        if not o.ok and not isinstance(o.exc, NotFound)
    ]
    runs: list[DagRun] = first["runs"].value or []
    chosen = _choose_run(first, runs, run_id)
    if chosen is None:
        return Reply(
            title=f"Nothing to triage for {dag_id}",
            tone=Tone.INFO,
            text=f"No runs of `{dag_id}` found" + (f" with id `{run_id}`." if run_id else "."),
            sources=(f"{system}: DAG runs of {dag_id}",),
        )
    # Task instances of the chosen run: all of them if we asked, else the problem ones we have.
    if "run_tis" in first and first["run_tis"].ok:
        run_tis: list[TaskInstance] = first["run_tis"].value or []
    else:
        run_tis = [t for t in (first["failed_tis"].value or []) if t.run_id == chosen.run_id]
        if chosen.state == "success" or (not run_tis and first["failed_tis"].ok is False):
            # A successful run has no problem tasks to list; fetch all to find retries.
            extra = gather(
                {"tis": (system, lambda: airflow.task_instances(dag_id, chosen.run_id))},
                timeout=TIMEOUT_S,
            )["tis"]
            run_tis = extra.value or [] if extra.ok else run_tis
    failed = [t for t in run_tis if t.state == "failed"]
    upstream_failed = sorted(t.task_id for t in run_tis if t.state == "upstream_failed")
    retried = [t for t in run_tis if t.state in ("success", "up_for_retry") and t.try_number > 1]
    deep = (failed + retried)[:DEEP_TASKS]

    earlier = [r for r in runs if r.run_id != chosen.run_id][:FLAKY_RUNS]
    second_calls: dict[str, tuple[str, Callable[[], Any]]] = {}
    for ti in deep:
        progress(f"{system}: reading log of {ti.task_id}, try {log_try(ti)}")
        second_calls[f"log:{ti.task_id}"] = (
            system,
            _bind_log(airflow, dag_id, chosen.run_id, ti),
        )
        second_calls[f"tries:{ti.task_id}"] = (
            system,
            _bind_tries(airflow, dag_id, chosen.run_id, ti.task_id, ti.map_index),
        )
        for past in earlier:
            second_calls[f"past:{ti.task_id}:{past.run_id}"] = (
                system,
                _bind_tries(airflow, dag_id, past.run_id, ti.task_id, ti.map_index),
            )
    dag = first["dag"].value
    assert isinstance(dag, Dag)
    if dbt is not None:
        for name in _dbt_names(dag, run_tis) - {dag_id}:
            second_calls[f"lineage:{name}"] = (dbt.system, _bind_lineage(dbt, name))
    second = gather(second_calls, timeout=TIMEOUT_S) if second_calls else {}
    unavailable += [
        f"{o.system} {name.replace(':', ' of ', 1)}: {o.error}"
        for name, o in second.items()
        if not o.ok and not isinstance(o.exc, NotFound)
    ]

    findings = {ti.task_id: _finding(ti, second) for ti in deep}
    unavailable += [
        f"{system} tries of {ti.task_id}: {inferred}"
        for ti in deep
        for inferred in _inferred(second.get(f"tries:{ti.task_id}"))
    ]
    flaky = tuple(_flakiness(ti, earlier, second) for ti in deep)
    found = [
        o.value for name, o in {**first, **second}.items() if name.startswith("lineage:") and o.ok
    ]
    lineages = list({lin.node.unique_id: lin for lin in found if lin is not None}.values())

    successes = [r for r in runs if r.state == "success" and r.run_id != chosen.run_id]
    previous_success = successes[0] if successes else None
    # A run that succeeded (after retries or not) is its own last success, not the one before.
    last_success = chosen if chosen.state == "success" else previous_success
    durations = [r.duration_s for r in successes if r.duration_s is not None]
    changes = []
    if (
        previous_success
        and previous_success.dag_version
        and chosen.dag_version
        and (previous_success.dag_version != chosen.dag_version)
    ):
        changes.append(
            f"DAG version {previous_success.dag_version} → {chosen.dag_version} "
            "since the last success"
        )
    relevant_import_errors = [
        e
        for e in (first["import_errors"].value or [])
        if dag.fileloc and e.filename.endswith(dag.fileloc.split("/")[-1])
    ]
    if relevant_import_errors:
        changes.append(
            f"the DAG file has an import error now: {relevant_import_errors[0].filename}"
        )
    exposures = exposures_of(lineages)
    owners = unique_owners(
        [*dag.owners, *(o for ti in run_tis for o in ([ti.owner] if ti.owner else []))]
        + [o for lin in lineages for o in lin.node.owners]
        + [o for e in exposures for o in e.owners]
    )
    # The dashboards' and sources' owners as the report writes them ("dana@example.com" is
    # @dana here).
    exposures = tuple(replace(e, owners=unique_owners(e.owners, known=owners)) for e in exposures)
    stale = stale_upstream(first.get("freshness"), lineages, sources.now(), known=owners)
    used = [
        f"{system}: runs, task instances, tries and logs of {dag_id}",
    ]
    if dbt is not None:
        used.append(f"{dbt.system if dbt else 'dbt'}: lineage, exposures, source freshness")
    return TriageReport(
        system="airflow",
        subject=dag_id,
        run_id=chosen.run_id,
        run_state=chosen.state,
        started_at=chosen.start_date,
        ended_at=chosen.end_date,
        duration_s=chosen.duration_s,
        usual_duration_s=statistics.median(durations) if durations else None,
        failed=tuple(findings[t.task_id] for t in failed if t.task_id in findings),
        upstream_failed=tuple(upstream_failed),
        retried=tuple(findings[t.task_id] for t in retried if t.task_id in findings),
        flaky=flaky,
        history_checked=len(runs),
        history_failed=sum(1 for r in runs if r.state == "failed"),
        last_success_run_id=last_success.run_id if last_success else "",
        last_success_at=(last_success.end_date or last_success.start_date)
        if last_success
        else None,
        changes=tuple(changes),
        owners=owners,
        dbt_models=tuple(lin.node.name for lin in lineages),
        impact_models=tuple(
            sorted(
                {n.name for lin in lineages for n in lin.downstream if n.resource_type == "model"}
            )
        ),
        exposures=exposures,
        stale_sources=stale,
        unavailable=tuple(unavailable),
        sources=tuple(used),
        checked_at=sources.now(),
    )


def log_try(ti: TaskInstance) -> int:
    """The try whose log explains the problem: for a task that succeeded after retries, the
    last failed try (the one before the success), else its latest try."""
    if ti.state == "success" and ti.try_number > 1:
        return ti.try_number - 1
    return max(ti.try_number, 1)


def _bind_log(airflow: Any, dag_id: str, run_id: str, ti: TaskInstance) -> Callable[[], Any]:
    return lambda: airflow.task_log(
        dag_id,
        run_id,
        ti.task_id,
        log_try(ti),
        map_index=ti.map_index,
        max_chars=LOG_CHARS,
    )


def _bind_tries(
    airflow: Any, dag_id: str, run_id: str, task_id: str, map_index: int
) -> Callable[[], Any]:
    return lambda: airflow.tries(dag_id, run_id, task_id, map_index=map_index)


def _choose_run(
    first: dict[str, Outcome[Any]], runs: list[DagRun], run_id: str | None
) -> DagRun | None:
    if run_id is not None:
        if "run" in first and first["run"].ok:
            chosen: DagRun | None = first["run"].value
            return chosen
        return next((r for r in runs if r.run_id == run_id), None)
    finished = [r for r in runs if r.state in ("failed", "success")]
    failed = [r for r in finished if r.state == "failed"]
    # The newest failure is what people ask about; with none, the newest finished run (its
    # retries may still tell a flaky story).
    if failed:
        return failed[0]
    return finished[0] if finished else (runs[0] if runs else None)


def _finding(ti: TaskInstance, second: dict[str, Outcome[Any]]) -> TaskFinding:
    log_out = second.get(f"log:{ti.task_id}")
    tries_out = second.get(f"tries:{ti.task_id}")
    log = log_out.value if log_out is not None and log_out.ok else None
    tries: list[TaskInstance] = (
        (tries_out.value or []) if tries_out is not None and tries_out.ok else []
    )
    errors = log.errors if log is not None else ()
    lines = log.lines if log is not None else ()
    if ti.state == "upstream_failed":
        verdict = classify((), ())
        category, evidence, advice = (
            Category.DEPENDENCY.value,
            "upstream task failed",
            verdict.advice,
        )
    else:
        verdict = classify(errors, lines)
        category, evidence, advice = verdict.category.value, verdict.evidence, verdict.advice
    error = errors[-1] if errors else None
    return TaskFinding(
        task_id=ti.task_id,
        state=ti.state or "",
        try_number=ti.try_number,
        log_try=log_try(ti),
        max_tries=ti.max_tries,
        duration_s=ti.duration_s,
        operator=ti.operator,
        error_type=error.exc_type if error else "",
        error_message=error.message if error else "",
        frames=error.frames[-3:] if error else (),
        category=category,
        evidence=evidence,
        advice=advice,
        log_excerpt=_excerpt(lines, error.exc_type if error else ""),
        log_omitted_chars=log.omitted_chars if log is not None else 0,
        tries=tuple(
            TryFact(
                try_number=t.try_number,
                state=t.state or ("not recorded" if t.inferred else ""),
                duration_s=t.duration_s,
                started_at=t.start_date,
            )
            for t in sorted(tries, key=lambda t: t.try_number)
        ),
    )


def _inferred(outcome: Outcome[Any] | None) -> list[str]:
    """Why tries were counted rather than read (at most one reason), for the report's notes."""
    tries: list[TaskInstance] = (outcome.value or []) if outcome is not None and outcome.ok else []
    return list(dict.fromkeys(t.inferred for t in tries if t.inferred))[:1]


def _excerpt(lines: Sequence[str], exc_type: str) -> tuple[str, ...]:
    """The few lines around the error: where the exception type first appears, else the tail."""
    if not lines:
        return ()
    anchor = next((i for i, line in enumerate(lines) if exc_type and exc_type in line), None)
    if anchor is None:
        anchor = next(
            (i for i, line in enumerate(lines) if "error" in line.lower() or "Traceback" in line),
            len(lines) - 1,
        )
    start = max(0, anchor - 4)
    return tuple(lines[start : start + EXCERPT_LINES])


def _flakiness(
    ti: TaskInstance, earlier: list[DagRun], second: dict[str, Outcome[Any]]
) -> Flakiness:
    histories: list[list[TaskInstance]] = []
    this = second.get(f"tries:{ti.task_id}")
    if this is not None and this.ok and this.value:
        histories.append(this.value)
    for past in earlier:
        outcome = second.get(f"past:{ti.task_id}:{past.run_id}")
        if outcome is not None and outcome.ok and outcome.value:
            histories.append(outcome.value)
    with_retries = sum(
        1 for tries in histories if len(tries) > 1 or max(t.try_number for t in tries) > 1
    )
    failed_runs = sum(
        1 for tries in histories if max(tries, key=lambda t: t.try_number).state == "failed"
    )
    recovered = sum(
        1
        for tries in histories
        if len(tries) > 1 and max(tries, key=lambda t: t.try_number).state == "success"
    )
    if recovered:
        verdict = "flaky"
    elif failed_runs > 1:
        verdict = "failing repeatedly"
    elif failed_runs == 1:
        verdict = "first failure"
    else:
        verdict = "stable"
    return Flakiness(
        task_id=ti.task_id,
        runs_checked=len(histories),
        runs_with_retries=with_retries,
        runs_failed=failed_runs,
        verdict=verdict,
    )


def _dbt_names(dag: Dag, tis: Sequence[TaskInstance]) -> set[str]:
    """Names of the dbt nodes this DAG may build: the DAG's and its tasks' own names, and
    ``dbt:<model>`` tags. Each is looked up in parallel; unknown names are simply not dbt."""
    tagged = {t.split(":", 1)[1] for t in dag.tags if t.startswith("dbt:")}
    return {dag.dag_id, *(ti.task_id for ti in tis), *tagged}


def _bind_lineage(dbt: Any, name: str) -> Callable[[], Any]:
    return lambda: dbt.lineage(name)


def exposures_of(lineages: Sequence[Lineage]) -> tuple[ExposureFact, ...]:
    seen: dict[str, ExposureFact] = {}
    for lin in lineages:
        for exposure in lin.exposures:
            seen.setdefault(
                exposure.unique_id,
                ExposureFact(
                    name=exposure.name,
                    type=exposure.exposure_type or "exposure",
                    owners=exposure.owners,
                    url=exposure.url,
                ),
            )
    return tuple(seen.values())


def stale_upstream_sources(
    fresh: Outcome[Any] | None, lineages: Sequence[Lineage]
) -> list[SourceFreshness]:
    """The sources upstream of `lineages` that are not fresh (stale or not measured)."""
    if fresh is None or not fresh.ok or not fresh.value:
        return []
    if not lineages:
        return []  # without a link to dbt we cannot say which sources this run depends on
    upstream = {n.unique_id for lin in lineages for n in lin.upstream}
    return [f for f in fresh.value if f.status != "pass" and f.unique_id in upstream]


def stale_upstream(
    fresh: Outcome[Any] | None,
    lineages: Sequence[Lineage],
    now: datetime,
    *,
    known: Sequence[str] = (),
) -> tuple[str, ...]:
    """`stale_upstream_sources` as lines, each owner written as on the reply's other lines."""
    stale = stale_upstream_sources(fresh, lineages)
    everyone = [*known, *(o for f in stale for o in f.owners)]
    return tuple(
        freshness_line(replace(f, owners=unique_owners(f.owners, known=everyone)), now)
        for f in stale
    )

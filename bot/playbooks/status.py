"""`status`: the state of the data platform in one look.

Airflow health, DAG runs that failed in the last 24 hours, import errors, the last dbt run and
stale sources — each source asked in parallel, each answer independent of the others.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from typing import Any

from bot import phrases
from bot.commands import Request
from bot.facts import AirflowHealth, DagRun, DbtRun, ImportError_, SourceFreshness
from bot.fanout import Outcome, gather
from bot.messages import Field, Reply, Section, Tone
from bot.playbooks.dbt_text import (
    command_text,
    freshness_counts,
    freshness_line,
    kept_note,
    not_a_build,
    result_line,
    run_counts,
)

WINDOW = timedelta(hours=24)
TIMEOUT_S = 20.0
MAX_LISTED = 10


def run(request: Request) -> Reply:
    sources = request.sources
    now = sources.now()
    calls: dict[str, tuple[str, Callable[[], Any]]] = {}
    airflow, dbt = sources.airflow, sources.dbt
    if airflow is not None:
        calls["health"] = (airflow.system, airflow.health)
        calls["failed"] = (
            airflow.system,
            lambda: airflow.runs(states=("failed",), since=now - WINDOW, limit=100),
        )
        calls["import_errors"] = (airflow.system, airflow.import_errors)
    if dbt is not None:
        calls["dbt_run"] = (dbt.system, dbt.last_run)
        calls["freshness"] = (dbt.system, dbt.freshness)
    if not calls:
        return Reply(
            title="Nothing to report yet",
            tone=Tone.WARNING,
            text="No source is configured, so there is nothing to check.",
            notes=tuple(phrases.not_configured(s) for s in ("Airflow", "dbt", "warehouse")),
        )
    request.progress("Checking " + " and ".join(sorted({system for system, _ in calls.values()})))
    out = gather(calls, timeout=TIMEOUT_S)

    sections: list[Section] = []
    problems: list[str] = []
    warnings: list[str] = []
    unknown: list[str] = []
    used: list[str] = []
    if airflow is not None:
        sections.append(_airflow(out, now, problems, warnings))
        since = phrases.timestamp(now - WINDOW)
        used.append(f"{airflow.system}: health, DAG runs failed since {since}, import errors")
    if dbt is not None:
        sections.extend(dbt_sections(out, now, problems, warnings, unknown))
        used.append(f"{dbt.system}: run results, source freshness")

    if problems:
        tone, title = Tone.ERROR, "Needs attention: " + ", ".join(problems + unknown + warnings)
    elif unknown:
        # What could not be checked may be failing: never "fine" while it is unknown.
        tone, title = Tone.WARNING, "Not confirmed: " + ", ".join(unknown + warnings)
    elif warnings:
        tone, title = Tone.WARNING, "Mostly fine: " + ", ".join(warnings)
    else:
        tone, title = Tone.SUCCESS, "All clear"
    notes = [phrases.not_configured(s) for s in ("Airflow", "dbt") if s not in sources.configured()]
    if sources.label:
        notes.append(sources.label)
    return Reply(
        title=title, tone=tone, sections=tuple(sections), sources=tuple(used), notes=tuple(notes)
    )


def _airflow(
    out: dict[str, Outcome[Any]], now: Any, problems: list[str], warnings: list[str]
) -> Section:
    fields: list[Field] = []
    bullets: list[str] = []
    health: Outcome[AirflowHealth] = out["health"]
    if health.ok and health.value is not None:
        h = health.value
        parts = [
            f"{name} {state}"
            for name, state in (
                ("metadatabase", h.metadatabase),
                ("scheduler", h.scheduler),
                ("triggerer", h.triggerer),
                ("dag processor", h.dag_processor),
            )
            if state is not None
        ]
        fields.append(Field("Health", "healthy" if h.healthy else ", ".join(parts)))
        if not h.healthy:
            problems.append("Airflow unhealthy")
    else:
        fields.append(Field("Health", f"unknown — {health.error}"))
        problems.append("Airflow unreachable")
    failed: Outcome[list[DagRun]] = out["failed"]
    if failed.ok and failed.value is not None:
        runs = failed.value
        fields.append(Field("Failed runs (24 h)", str(len(runs))))
        if runs:
            problems.append(phrases.plural(len(runs), "failed run"))
        for dag_run in runs[:MAX_LISTED]:
            when = dag_run.end_date or dag_run.start_date or dag_run.run_after
            bullets.append(
                f"`{dag_run.dag_id}` failed {phrases.ago(when, now)} — run `{dag_run.run_id}`"
            )
        if len(runs) > MAX_LISTED:
            bullets.append(phrases.more(MAX_LISTED, len(runs)))
    else:
        fields.append(Field("Failed runs (24 h)", f"unknown — {failed.error}"))
    errors: Outcome[list[ImportError_]] = out["import_errors"]
    if errors.ok and errors.value is not None:
        fields.append(Field("Import errors", str(len(errors.value))))
        if errors.value:
            warnings.append(phrases.plural(len(errors.value), "DAG import error"))
            bullets.extend(f"import error in `{e.filename}`" for e in errors.value[:MAX_LISTED])
    else:
        fields.append(Field("Import errors", f"unknown — {errors.error}"))
    return Section(heading="Airflow", fields=tuple(fields), bullets=tuple(bullets))


def dbt_sections(
    out: dict[str, Outcome[Any]],
    now: Any,
    problems: list[str],
    warnings: list[str],
    unknown: list[str] | None = None,
) -> list[Section]:
    """The last dbt run and source freshness from the outcomes `dbt_run` and `freshness`;
    appends what needs attention to `problems` and `warnings` (shared with `digest`), and what
    could not be confirmed to `unknown` (to `warnings` when not given)."""
    unknown = warnings if unknown is None else unknown
    sections: list[Section] = []
    last: Outcome[DbtRun | None] = out["dbt_run"]
    if not last.ok:
        sections.append(
            Section(
                heading="dbt",
                text=phrases.UNREACHABLE.format(system=last.system, reason=last.error),
            )
        )
        problems.append("dbt unreachable")
    elif last.value is None:
        sections.append(Section(heading="dbt", text="No dbt run results found."))
    elif not last.value.executed:
        # `dbt docs generate` after a build: its "success" per compiled node is no result.
        dbt_run = last.value
        unknown.append(f"latest dbt results are from {command_text(dbt_run.command)}, not a build")
        sections.append(
            Section(
                heading="dbt",
                fields=(
                    Field(
                        "Latest results",
                        f"{command_text(dbt_run.command)} {phrases.ago(dbt_run.generated_at, now)}"
                        " — builds and tests nothing",
                    ),
                ),
                text=not_a_build(dbt_run),
            )
        )
    else:
        dbt_run = last.value
        bad = dbt_run.count("error", "fail", "runtime error")
        if bad:
            problems.append(phrases.plural(bad, "dbt failure"))
        warned = dbt_run.count("warn")
        if warned:
            warnings.append(phrases.plural(warned, "dbt warning"))
        shown = dbt_run.problems[:MAX_LISTED]
        bullets = [result_line(r) for r in shown]
        if len(dbt_run.problems) > MAX_LISTED:
            bullets.append(phrases.more(MAX_LISTED, len(dbt_run.problems)))
        kept = " (kept by pipebot)" if dbt_run.kept_at is not None else ""
        sections.append(
            Section(
                heading="dbt",
                text=kept_note(dbt_run),
                fields=(
                    Field(
                        "Last run",
                        f"{command_text(dbt_run.command)} "
                        f"{phrases.ago(dbt_run.generated_at, now)}{kept}",
                    ),
                    Field("Results", run_counts(dbt_run)),
                ),
                bullets=tuple(bullets),
            )
        )
    fresh: Outcome[list[SourceFreshness]] = out["freshness"]
    if not fresh.ok:
        sections.append(Section(heading="Source freshness", text=f"unknown — {fresh.error}"))
    elif fresh.value:
        items = fresh.value
        # Past the error limit is a failure, not a warning: "Mostly fine" would hide it.
        overdue = [f for f in items if f.past_error_limit]
        late = [f for f in items if f.stale and not f.past_error_limit]
        not_computed = [f for f in items if not f.computed]
        if overdue:
            problems.append(phrases.plural(len(overdue), "source") + " stale past the error limit")
        if late:
            warnings.append(phrases.plural(len(late), "stale source"))
        if not_computed:
            # A rule dbt cannot compute (no loaded_at_field) is a known gap, not an unknown run.
            warnings.append(
                phrases.plural(len(not_computed), "source") + " with freshness not computed"
            )
        listed = [*overdue, *late, *not_computed]
        sections.append(
            Section(
                heading="Source freshness",
                text=freshness_counts(items) + ".",
                bullets=tuple(freshness_line(f, now) for f in listed[:MAX_LISTED])
                + ((phrases.more(MAX_LISTED, len(listed)),) if len(listed) > MAX_LISTED else ()),
            )
        )
    return sections

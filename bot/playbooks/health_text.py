"""The words for a `HealthReport`, shared by `status` and `digest` so both say a fact the same
way: a failing DAG's line, the dbt run and source freshness sections, the direction of a
figure against the previous window."""

from __future__ import annotations

from datetime import datetime

from bot import phrases
from bot.health.report import Assessment, DagRow, HealthReport, ModelTests
from bot.messages import Field, Section, Tone
from bot.playbooks.dbt_text import (
    command_text,
    freshness_counts,
    freshness_line,
    kept_note,
    not_a_build,
    result_line,
    run_counts,
)

LISTED = 10


def tone_and_verdict(assessment: Assessment) -> tuple[Tone, str]:
    """The reply's tone and its verdict phrase (lower case: "needs attention: …")."""
    problems, unknown, warnings = assessment.problems, assessment.unknown, assessment.warnings
    if problems:
        return Tone.ERROR, "needs attention: " + ", ".join(problems + unknown + warnings)
    if unknown:
        # What could not be checked may be failing: never "fine" while it is unknown.
        return Tone.WARNING, "not confirmed: " + ", ".join(unknown + warnings)
    if warnings:
        return Tone.WARNING, "mostly fine: " + ", ".join(warnings)
    return Tone.SUCCESS, "all clear"


def failing_line(row: DagRow, now: datetime, *, history: str = "") -> str:
    """`history`: how far back runs were read ("the last 14 days"), for a DAG that has failed
    since before the window."""
    if row.last_success:
        since_ok = f"last success {phrases.ago(row.last_success, now)}"
    elif history and row.failure_streak > row.finished:
        since_ok = f"no success in {history}"
    else:
        since_ok = "no success in the window"
    mark = {"new": "new failure", "still": "still failing"}.get(row.change, "")
    return (
        f"✗ `{row.dag_id}`"
        + (f" ({mark})" if mark else "")
        + f" — {row.failed} of {row.finished} runs failed, "
        f"{phrases.plural(row.failure_streak, 'failure')} in a row, {since_ok}; "
        f"latest `{row.latest_run_id}` (`triage {row.dag_id}`)"
    )


def recovered_line(row: DagRow, now: datetime) -> str:
    return (
        f"↺ `{row.dag_id}` recovered — {row.failed} of {row.finished} runs failed, "
        f"latest succeeded {phrases.ago(row.latest_at, now)}"
    )


def model_line(model: ModelTests) -> str:
    parts = []
    if model.error:
        parts.append(f"build error: {model.error[:200]}")
    if model.failed:
        parts.append(
            f"{phrases.plural(len(model.failed), 'test')} failing: "
            + ", ".join(f"`{t}`" for t in model.failed[:5])
            + (f" {phrases.more(5, len(model.failed))}" if len(model.failed) > 5 else "")
        )
    if model.warned:
        parts.append(
            f"{phrases.plural(len(model.warned), 'warning')}: "
            + ", ".join(f"`{t}`" for t in model.warned[:5])
            + (f" {phrases.more(5, len(model.warned))}" if len(model.warned) > 5 else "")
        )
    return f"`{model.name}` — " + "; ".join(parts)


def dbt_sections(report: HealthReport, *, by_model: bool = False) -> list[Section]:
    """The last dbt run and source freshness. `by_model`: the run's failing tests and
    warnings grouped by the model they check (the digest), else one line per problem."""
    sections: list[Section] = []
    dbt = report.dbt
    now = report.generated_at
    if dbt is not None:
        run = dbt.run
        if not dbt.reached:
            gap = next((g for g in report.unread if g.what == "dbt run results"), None)
            sections.append(
                Section(
                    heading="dbt",
                    text=phrases.UNREACHABLE.format(
                        system=gap.source if gap else "dbt", reason=gap.reason if gap else ""
                    ),
                )
            )
        elif run is None:
            sections.append(Section(heading="dbt", text="No dbt run results found."))
        elif not run.executed:
            # `dbt docs generate` after a build: its "success" per compiled node is no result.
            sections.append(
                Section(
                    heading="dbt",
                    fields=(
                        Field(
                            "Latest results",
                            f"{command_text(run.command)} {phrases.ago(run.generated_at, now)}"
                            " — builds and tests nothing",
                        ),
                    ),
                    text=not_a_build(run),
                )
            )
        else:
            if by_model:
                bullets = [model_line(m) for m in dbt.by_model[:LISTED]]
                if len(dbt.by_model) > LISTED:
                    bullets.append(phrases.more(LISTED, len(dbt.by_model)))
            else:
                bullets = [result_line(r) for r in run.problems[:LISTED]]
                if len(run.problems) > LISTED:
                    bullets.append(phrases.more(LISTED, len(run.problems)))
            kept = " (kept by pipebot)" if run.kept_at is not None else ""
            fields = [
                Field(
                    "Last run",
                    f"{command_text(run.command)} {phrases.ago(run.generated_at, now)}{kept}",
                ),
                Field("Results", run_counts(run)),
            ]
            if dbt.selected is not None:
                fields.append(
                    Field("Selected", f"{dbt.selected:,} nodes ({report.filters.describe()})")
                )
            sections.append(
                Section(
                    heading="dbt",
                    text=kept_note(run),
                    fields=tuple(fields),
                    bullets=tuple(bullets),
                )
            )
    if dbt is not None:
        gap = next((g for g in report.unread if g.what == "source freshness"), None)
        if gap is not None:
            sections.append(Section(heading="Source freshness", text=f"unknown — {gap.reason}"))
        elif report.sources:
            items = list(report.sources)
            overdue = [f for f in items if f.past_error_limit]
            late = [f for f in items if f.stale and not f.past_error_limit]
            not_computed = [f for f in items if not f.computed]
            listed = [*overdue, *late, *not_computed]
            sections.append(
                Section(
                    heading="Source freshness",
                    text=freshness_counts(items) + ".",
                    bullets=tuple(freshness_line(f, now) for f in listed[:LISTED])
                    + ((phrases.more(LISTED, len(listed)),) if len(listed) > LISTED else ()),
                )
            )
    return sections


def import_error_bullets(report: HealthReport) -> list[str]:
    errors = report.airflow.import_errors if report.airflow is not None else None
    return [f"import error in `{e.filename}`" for e in (errors or ())[:LISTED]]


def notes(report: HealthReport) -> tuple[str, ...]:
    out = [phrases.not_configured(s) for s in report.not_configured]
    if report.environment:
        out.append(report.environment)
    return tuple(out)

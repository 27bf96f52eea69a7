"""A `TriageReport` as a `Reply`."""

from __future__ import annotations

from datetime import datetime

from bot import phrases
from bot.messages import Action, Code, Field, Link, Reply, Section, Tone
from bot.owners import OwnerDirectory
from bot.playbooks.dbt_text import kept_text, message_gist
from bot.playbooks.triage.report import Flakiness, TaskFinding, TriageReport


def render(report: TriageReport, *, platform: str, owners: OwnerDirectory) -> Reply:
    if report.system == "dbt":
        return _render_dbt(report, platform, owners)
    sections: list[Section] = []
    now = report.checked_at or datetime.now().astimezone()
    problem = bool(report.failed) or report.run_state == "failed"
    head_fields = [
        Field("Run", f"`{report.run_id}` — {report.run_state}"),
        Field("Owners", owners.mentions(report.owners, platform)),
    ]
    if report.duration_s is not None:
        usual = (
            f" (usually {phrases.duration(report.usual_duration_s)})"
            if report.usual_duration_s is not None
            else ""
        )
        head_fields.append(Field("Duration", phrases.duration(report.duration_s) + usual))
    if report.last_success_run_id and report.last_success_run_id == report.run_id:
        # This run is the last success: the one before it is not news.
        this_run = "this run succeeded after a retry" if report.retried else "this run"
        head_fields.append(Field("Last success", this_run))
    elif report.last_success_at is not None:
        head_fields.append(Field("Last success", phrases.ago(report.last_success_at, now)))
    elif report.history_checked:
        head_fields.append(Field("Last success", f"none in the last {report.history_checked} runs"))
    if report.history_checked:
        head_fields.append(
            Field("Recent runs", f"{report.history_failed} of {report.history_checked} failed")
        )
    sections.append(Section(fields=tuple(head_fields)))

    for finding in report.failed:
        sections.append(_finding_section(finding, heading=f"Failed: {finding.task_id}"))
    if report.upstream_failed:
        roots = ", ".join(f"`{f.task_id}`" for f in report.failed) or "an upstream task"
        sections.append(
            Section(
                heading="Did not run (upstream failed)",
                text=f"Blocked by {roots}: " + ", ".join(f"`{t}`" for t in report.upstream_failed),
            )
        )
    for finding in report.retried:
        sections.append(_finding_section(finding, heading=f"Needed a retry: {finding.task_id}"))
    flaky_lines = [_history_line(f) for f in report.flaky if f.runs_checked]
    if flaky_lines:
        sections.append(Section(heading="History", bullets=tuple(flaky_lines)))
    impact: list[str] = []
    if report.dbt_models:
        impact.append("dbt models built here: " + ", ".join(f"`{m}`" for m in report.dbt_models))
    if report.impact_models:
        impact.append(
            "downstream models: " + ", ".join(f"`{m}`" for m in report.impact_models[:15])
        )
    impact.extend(
        f"{e.type} `{e.name}` — owner {owners.mentions(e.owners, platform, known=report.owners)}"
        + (f" — {e.url}" if e.url else "")
        for e in report.exposures
    )
    if impact:
        sections.append(Section(heading="What is affected", bullets=tuple(impact)))
    if report.changes:
        sections.append(Section(heading="What changed", bullets=report.changes))
    if report.stale_sources:
        sections.append(Section(heading="Sources upstream not fresh", bullets=report.stale_sources))
    if report.hypothesis:
        sections.append(
            Section(
                heading="Likely cause and next steps (AI, from the facts above)",
                text=report.hypothesis,
            )
        )
    notes = [f"Could not check {u}" for u in report.unavailable]
    if problem:
        first = report.failed[0] if report.failed else None
        title = f"{report.subject} failed" + (
            f": {first.task_id} — {first.error_type or first.category}" if first else ""
        )
        tone = Tone.ERROR
    elif report.retried:
        title, tone = f"{report.subject} succeeded after retries", Tone.WARNING
    else:
        title, tone = f"{report.subject}: run {report.run_state}, nothing failed", Tone.SUCCESS
    return Reply(
        title=title,
        tone=tone,
        sections=tuple(sections),
        actions=(
            Action(
                label="Re-run triage",
                action_id="command",
                value=f"triage {report.subject} {report.run_id}",
            ),
        ),
        sources=report.sources,
        notes=tuple(notes),
    )


def _history_line(f: Flakiness) -> str:
    """``transform — failing repeatedly: failed in 2 of the last 2 runs``: only the counts
    that are true and not zero (never "retried in 0")."""
    counts = [
        (verb, n) for verb, n in (("retried", f.runs_with_retries), ("failed", f.runs_failed)) if n
    ]
    if not counts:
        story = f"no retry or failure in the last {phrases.plural(f.runs_checked, 'run')}"
    elif f.runs_checked == 1:
        story = " and ".join(verb for verb, _ in counts) + " in the only run checked"
    else:
        story = " and ".join(f"{verb} in {n}" for verb, n in counts)
        story += f" of the last {f.runs_checked} runs"
    return f"`{f.task_id}` — {f.verdict}: {story}"


def _finding_section(finding: TaskFinding, *, heading: str) -> Section:
    tries = ", ".join(
        f"try {t.try_number} {t.state}"
        + (f" ({phrases.duration(t.duration_s)})" if t.duration_s else "")
        for t in finding.tries
    )
    fields = [
        Field(
            "Error",
            f"`{finding.error_type}`: {finding.error_message}"
            if finding.error_type
            else "no exception found in the log",
        ),
        Field("Kind", f"{finding.category} ({finding.evidence})"),
        Field("Tries", tries or f"try {finding.try_number} of {finding.max_tries + 1}"),
    ]
    if finding.frames:
        fields.append(Field("Where", " ← ".join(f"`{f}`" for f in reversed(finding.frames))))
    code = None
    if finding.log_excerpt:
        code = Code(
            text="\n".join(finding.log_excerpt),
            language="text",
            title=f"log of {finding.task_id}, try {finding.log_try}",
            truncated_from=None,
        )
    return Section(
        heading=heading, fields=tuple(fields), text=f"What to do: {finding.advice}", code=code
    )


def _render_dbt(report: TriageReport, platform: str, owners: OwnerDirectory) -> Reply:
    bullets = [
        f"{f.resource_type.replace('_', ' ')} `{f.name}`"
        + (" of " + ", ".join(f"`{t}`" for t in f.tested) if f.tested else "")
        + f" — {f.status}: {message_gist(f.message).rstrip(':')}"
        f" — owner {owners.mentions(f.owners, platform, known=report.owners)}"
        + (f" — {phrases.plural(f.downstream, 'model')} affected" if f.downstream else "")
        for f in report.dbt_failures
    ]
    sections = [
        Section(
            fields=(
                Field("Run", f"`{report.run_id}` — {report.run_state}"),
                Field("Owners", owners.mentions(report.owners, platform)),
                Field("Duration", phrases.duration(report.duration_s)),
                Field("Skipped", str(report.dbt_skipped)),
            )
        ),
        Section(heading="Failures", bullets=tuple(bullets) or ("none",)),
    ]
    if report.dbt_kept_at is not None:
        # The newest run results are not these (`dbt docs generate` came after): say so first.
        kept = kept_text(
            command=report.dbt_command,
            superseded_by=report.dbt_superseded_by,
            superseded_at=report.dbt_superseded_at,
            generated_at=report.ended_at or report.dbt_kept_at,
        )
        sections.insert(0, Section(text=kept))
    # A unit test's expected/actual table is its real error: shown whole, as dbt prints it.
    sections.extend(
        Section(
            heading=f"Unit test {f.name}: actual differs from expected",
            text="Cells read expected→actual; `---` rows were expected but not returned, "
            "`+++` rows were returned but not expected.",
            code=Code(text="\n".join(f.diff), language="text", title=f"diff of {f.name}"),
        )
        for f in report.dbt_failures
        if f.diff
    )
    impact = []
    if report.impact_models:
        impact.append(
            "downstream models: " + ", ".join(f"`{m}`" for m in report.impact_models[:15])
        )
    impact.extend(
        f"{e.type} `{e.name}` — owner {owners.mentions(e.owners, platform, known=report.owners)}"
        for e in report.exposures
    )
    if report.impact_semantic:
        impact.append("semantic layer: " + ", ".join(report.impact_semantic[:15]))
    if impact:
        sections.append(Section(heading="What is affected", bullets=tuple(impact)))
    if report.changes:
        sections.append(Section(heading="What changed", bullets=report.changes))
    if report.stale_sources:
        sections.append(Section(heading="Sources upstream not fresh", bullets=report.stale_sources))
    if report.hypothesis:
        sections.append(
            Section(
                heading="Likely cause and next steps (AI, from the facts above)",
                text=report.hypothesis,
            )
        )
    if report.url:
        sections.append(Section(links=(Link("Open the run in dbt Cloud", report.url),)))
    return Reply(
        title=f"{report.subject}: "
        + (f"{len(report.dbt_failures)} failures" if report.dbt_failures else report.run_state),
        tone=Tone.ERROR if report.dbt_failures else Tone.SUCCESS,
        sections=tuple(sections),
        sources=report.sources,
        notes=tuple(f"Could not check {u}" for u in report.unavailable),
    )

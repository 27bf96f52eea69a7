"""`status`: the state of the data platform in one look.

Airflow health, the DAGs failing in the last 24 hours and their failed runs, import errors,
the last dbt run and stale sources. It is the same `HealthReport` the digest builds
(`bot.health`), over 24 hours and without the comparison with the day before — so both say the
same thing about the same facts — rendered short.
"""

from __future__ import annotations

from datetime import timedelta

from bot import phrases
from bot.commands import Request
from bot.health.build import Scope, build
from bot.health.report import HealthReport, assess
from bot.messages import Field, Reply, Section, Tone
from bot.playbooks.health_text import (
    LISTED,
    dbt_sections,
    import_error_bullets,
    notes,
    recovered_line,
    tone_and_verdict,
)

WINDOW = timedelta(hours=24)
TIMEOUT_S = 20.0
MAX_LISTED = LISTED
SCOPE = Scope(
    kind="status", window=WINDOW, label="last 24 hours", compare=False, timeout_s=TIMEOUT_S
)


def run(request: Request) -> Reply:
    sources = request.sources
    if sources.airflow is None and sources.dbt is None:
        return Reply(
            title="Nothing to report yet",
            tone=Tone.WARNING,
            text="No source is configured, so there is nothing to check.",
            notes=tuple(phrases.not_configured(s) for s in ("Airflow", "dbt", "warehouse")),
        )
    request.progress(
        "Checking " + " and ".join(s for s in ("Airflow", "dbt") if s in sources.configured())
    )
    return render(build(sources, SCOPE))


def render(report: HealthReport) -> Reply:
    """The status reply of `report`."""
    sections: list[Section] = []
    if report.airflow is not None:
        sections.append(_airflow(report))
    sections.extend(dbt_sections(report))
    tone, verdict = tone_and_verdict(assess(report))
    return Reply(
        title=verdict[0].upper() + verdict[1:],
        tone=tone,
        sections=tuple(sections),
        sources=report.consulted,
        notes=notes(report),
    )


def _airflow(report: HealthReport) -> Section:
    part = report.airflow
    assert part is not None
    now = report.generated_at
    fields: list[Field] = []
    bullets: list[str] = []
    gaps = {g.what: g for g in report.unread}
    if part.health is not None:
        h = part.health
        states = [
            f"{name} {state}"
            for name, state in (
                ("metadatabase", h.metadatabase),
                ("scheduler", h.scheduler),
                ("triggerer", h.triggerer),
                ("dag processor", h.dag_processor),
            )
            if state is not None
        ]
        fields.append(Field("Health", "healthy" if h.healthy else ", ".join(states)))
    elif "health" in gaps:
        fields.append(Field("Health", f"unknown — {gaps['health'].reason}"))
    if part.reached:
        fields.append(Field("Failed runs (24 h)", str(part.totals.failed)))
        for row in part.failing[:MAX_LISTED]:
            bullets.append(
                f"`{row.dag_id}` failed {phrases.ago(row.latest_at, now)} — run "
                f"`{row.latest_run_id}`"
                + (f" ({row.failed} of {row.finished} runs failed)" if row.finished > 1 else "")
            )
        if len(part.failing) > MAX_LISTED:
            bullets.append(phrases.more(MAX_LISTED, len(part.failing)))
        bullets += [recovered_line(row, now) for row in part.recovered[:MAX_LISTED]]
    else:
        gap = gaps.get("DAG runs")
        fields.append(Field("Failed runs (24 h)", f"unknown — {gap.reason if gap else ''}"))
    if part.import_errors is not None:
        fields.append(Field("Import errors", str(len(part.import_errors))))
        bullets += import_error_bullets(report)
    elif "import errors" in gaps:
        fields.append(Field("Import errors", f"unknown — {gaps['import errors'].reason}"))
    return Section(heading="Airflow", fields=tuple(fields), bullets=tuple(bullets))

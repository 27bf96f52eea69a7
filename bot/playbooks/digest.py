"""`digest [window] [filters]`: the pipeline-health digest a team reads once a day.

Over a window (default 24 h, e.g. `digest 7d`) it builds a `HealthReport` (`bot.health`):
every DAG's runs — which fail (new failures apart from those still failing), which recovered,
which got markedly slower than usual — each figure against the window before, the dbt run's
failing tests and warnings by model, stale sources and warehouse tables that stopped updating,
open incidents and their age, and what could not be read. The reply puts the top lines first
(what needs attention, the direction, a chart of the last 14 days) and the details after them
(`Reply.details`: the thread in Slack and Discord, collapsed in Markdown). With an agent, a
short summary written from these facts (and only these) opens the reply.

Filters narrow it: ``tag:<DAG tag>``, ``owner:<DAG owner>``, ``dbt:<selector>``
(`bot.health.selection`), in chat, in a schedule and on the command line.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from datetime import datetime, timedelta

from bot import phrases
from bot.agent import Agent
from bot.commands import Request
from bot.health.build import Scope, build
from bot.health.chart import Chart, ChartUnavailable, charts_dir, draw, prune
from bot.health.report import CHART_DAYS, HealthReport, SpendLine, Totals, assess
from bot.health.selection import FilterError, Filters, is_filter
from bot.messages import Field, Image, Reply, Section, Tone
from bot.playbooks import costs, schedules
from bot.playbooks.health_text import (
    LISTED,
    dbt_sections,
    failing_line,
    import_error_bullets,
    model_line,
    notes,
    recovered_line,
    tone_and_verdict,
)
from bot.playbooks.incidents import parse_duration
from bot.playbooks.replies import agent_text
from bot.ports import Sources
from bot.prompts import prompt
from bot.rendering import from_dict, to_dict
from bot.store import Store
from bot.store.digests import Digests
from bot.store.incidents import Incidents

USAGE = (
    "digest [now] [window, e.g. 24h or 7d] [tag:<DAG tag>] [owner:<DAG owner>] "
    "[dbt:<selector>] | digest schedule|list|remove …"
)
# Subcommands that manage schedules rather than report.
SUBCOMMANDS = ("schedule", "list", "remove")
DEFAULT_WINDOW = timedelta(hours=24)
MAX_WINDOW = timedelta(days=31)
TIMEOUT_S = 30.0
# Lines in the top part of the digest; the rest is in the details.
TOP = 5
CHART_HEADING = f"Last {CHART_DAYS} days"


def run(
    request: Request,
    incidents: Incidents | None = None,
    agent: Agent | None = None,
    digests: Digests | None = None,
    *,
    timezone: str = "UTC",
    chart: bool = True,
) -> Reply:
    """The digest as a reply (`chart`: drawn to a temporary file the channel attaches)."""
    if request.args[:1] and request.args[0] in SUBCOMMANDS:
        return schedules.run(request, digests)
    parsed = parse_args(request.args)
    if isinstance(parsed, Reply):
        return parsed
    window, filters = parsed
    if request.sources.airflow is None and request.sources.dbt is None:
        return nothing_to_digest(request.sources)
    report = report_for(request, window, filters, incidents=incidents, timezone=timezone)
    drawn: Chart | None = None
    why_not = ""
    if chart and report.airflow is not None and report.airflow.reached:
        try:
            drawn = draw_to_temp(report, request.message.event_id)
        except ChartUnavailable as exc:
            why_not = str(exc)
    reply = render(report, chart=drawn, chart_missing=why_not)
    verdict = assess(report)
    if agent is not None and (verdict.problems or verdict.unknown or verdict.warnings):
        reply = _with_summary(reply, report.label, agent, request)
    return reply


def parse_args(args: tuple[str, ...]) -> tuple[timedelta, Filters] | Reply:
    """``[now] [window] [filters…]`` → the window and filters, or the reply saying what is
    wrong."""
    words = list(args[1:] if args[:1] == ("now",) else args)
    window = DEFAULT_WINDOW
    if words and not is_filter(words[0]):
        parsed = parse_window(words[0])
        if parsed is None:
            return Reply(
                title="Invalid window",
                tone=Tone.WARNING,
                text=f"`{words[0]}` is not a window I can digest. Usage: `{USAGE}` "
                "(minutes `m`, hours `h`, days `d` or weeks `w`, up to 31 days).",
            )
        window = parsed
        words = words[1:]
    try:
        filters = Filters.parse(words)
    except FilterError as exc:
        return Reply(title="Invalid filter", tone=Tone.WARNING, text=f"{exc}. Usage: `{USAGE}`")
    return window, filters


def nothing_to_digest(sources: Sources) -> Reply:
    return Reply(
        title="Nothing to digest",
        tone=Tone.WARNING,
        text="Neither Airflow nor dbt is configured, so there is no pipeline to report on.",
        notes=(phrases.not_configured("Airflow"), phrases.not_configured("dbt")),
    )


def report_for(
    request: Request,
    window: timedelta,
    filters: Filters,
    *,
    incidents: Incidents | None = None,
    timezone: str = "UTC",
) -> HealthReport:
    """Read the sources into the digest's `HealthReport`."""
    sources = request.sources
    scope = Scope(
        kind="digest",
        window=window,
        label=f"last {_span(window)}",
        compare=True,
        timezone=timezone,
        filters=filters,
        timeout_s=TIMEOUT_S,
    )
    request.progress(
        f"Digest of the last {_span(window)}: reading "
        + " and ".join(s for s in ("Airflow", "dbt") if s in sources.configured())
    )
    return build(sources, scope, incidents=incidents, spend=_spend(sources, window))


def _spend(sources: Sources, window: timedelta) -> Callable[[], SpendLine | None] | None:
    """How to read the warehouse's spend line for the window (the cost line of the `costs`
    playbook, kept in `HealthReport.spend`); None without the warehouse's usage views."""
    return costs.spend_line(sources, window)


def draw_to_temp(report: HealthReport, key: str) -> Chart:
    """The chart of `report` in the charts folder (old charts there are pruned)."""
    directory = charts_dir()
    prune(directory)
    name = hashlib.sha256(f"{key}:{report.generated_at.isoformat()}".encode()).hexdigest()[:16]
    return draw(report, directory / f"digest-{name}.png")


def exit_code(report: HealthReport) -> int:
    """``pipebot digest --exit-code``: 1 when something is failing, else 0."""
    return 1 if report.failing else 0


# --- the reply --------------------------------------------------------------------------------


def render(report: HealthReport, *, chart: Chart | None = None, chart_missing: str = "") -> Reply:
    """The digest reply: top lines (what needs attention, the direction, the chart), then the
    details."""
    assessment = assess(report)
    tone, verdict = tone_and_verdict(assessment)
    scope = report.filters.describe()
    title = f"Pipeline digest, {report.label}" + (f" ({scope})" if scope else "") + f" — {verdict}"
    top: list[Section] = []
    attention = _attention(report)
    if attention:
        top.append(Section(heading="Needs attention", bullets=tuple(attention)))
    if chart is not None:
        top.append(
            Section(
                heading=CHART_HEADING,
                text="Failed DAG runs per day (failing DAGs in colour) and the median run time.",
                image=Image(url=str(chart.path), alt=chart.alt),
            )
        )
    extra = list(notes(report))
    if chart_missing:
        extra.append(f"No chart: {chart_missing}.")
    return Reply(
        title=title,
        tone=tone,
        text=_direction(report),
        sections=tuple(top),
        details=tuple(_details(report)),
        sources=report.consulted,
        notes=tuple(extra),
    )


def _attention(report: HealthReport) -> list[str]:
    """The few lines a reader must see: failing DAGs (new first), dbt failures, what is stale,
    what could not be read."""
    now = report.generated_at
    lines: list[str] = []
    airflow = report.airflow
    history = f"the last {_span(report.generated_at - _lookback(report))}"
    if airflow is not None and airflow.reached:
        failing = airflow.failing
        lines += [failing_line(row, now, history=history) for row in failing[:TOP]]
        if len(failing) > TOP:
            lines.append(f"{phrases.more(TOP, len(failing))} failing DAGs in the details")
        recovered = airflow.recovered
        if recovered:
            names = ", ".join(f"`{r.dag_id}`" for r in recovered[:TOP])
            lines.append(
                f"↺ {len(recovered)} recovered: {names}"
                + (f" {phrases.more(TOP, len(recovered))}" if len(recovered) > TOP else "")
            )
        slower = airflow.slower
        if slower:
            names = ", ".join(
                f"`{d.dag_id}` ({d.slower_ratio:.1f}× its usual "
                f"{phrases.duration(d.usual_duration_s)})"
                for d in slower[:3]
            )
            lines.append(
                f"Slower than usual: {names}"
                + (f" {phrases.more(3, len(slower))}" if len(slower) > 3 else "")
            )
    dbt = report.dbt
    if dbt is not None and dbt.is_build and dbt.by_model:
        failing_models = [m for m in dbt.by_model if m.error or m.failed]
        lines += [model_line(m) for m in failing_models[:3]]
        if len(failing_models) > 3:
            lines.append(f"{phrases.more(3, len(failing_models))} dbt models in the details")
    if report.sources:
        overdue = [f for f in report.sources if f.past_error_limit]
        if overdue:
            lines.append(
                "Stale past the error limit: "
                + ", ".join(f"`{f.source_name}.{f.table}`" for f in overdue[:3])
                + (f" {phrases.more(3, len(overdue))}" if len(overdue) > 3 else "")
            )
    if report.warehouse is not None and report.warehouse.stopped:
        stopped = report.warehouse.stopped
        lines.append(
            f"{phrases.plural(len(stopped), 'warehouse table')} stopped updating: "
            + ", ".join(f"`{t.relation}`" for t in stopped[:3])
            + (f" {phrases.more(3, len(stopped))}" if len(stopped) > 3 else "")
        )
    if report.incidents is not None and report.incidents.open:
        oldest = min(report.incidents.open, key=lambda i: i.first_seen_at)
        lines.append(
            f"{phrases.plural(len(report.incidents.open), 'open incident')}, the oldest "
            f"#{oldest.id} `{oldest.subject}` open for {_age(oldest.first_seen_at, now)}"
        )
    lines += [f"Could not read {g.what} ({g.source}): {g.reason}" for g in report.unread]
    return lines


def _direction(report: HealthReport) -> str:
    """The run figures against the previous window, in one line."""
    airflow = report.airflow
    if airflow is None or not airflow.reached:
        return ""
    now, before = airflow.totals, airflow.previous
    if not now.runs and not (before and before.runs):
        return "No DAG runs in the window."
    span = _span(report.window.end - report.window.start)
    if before is not None and not before.runs:
        before = None  # nothing to compare with: no arrows against zero
        against = f" (no runs in the previous {span})"
    else:
        against = f" (against the previous {span})" if before is not None else ""
    rate = f"{now.success_rate:.0%}" if now.success_rate is not None else "–"
    parts = [
        f"{now.finished:,} runs finished, {rate} succeeded{_rate_change(now, before)}",
        f"{now.failed:,} failed{_count_change(now.failed, before.failed if before else None)}",
        f"run time {phrases.duration(now.run_time_s)}{_pct_change(now, before)}",
    ]
    return " · ".join(parts) + against


def _rate_change(now: Totals, before: Totals | None) -> str:
    if before is None or now.success_rate is None or before.success_rate is None:
        return ""
    pts = (now.success_rate - before.success_rate) * 100
    if abs(pts) < 0.5:
        return " (same)"
    return f" ({'▲' if pts > 0 else '▼'} {abs(pts):.0f} pts)"


def _count_change(now: int, before: int | None) -> str:
    if before is None:
        return ""
    if now == before:
        return " (same)"
    return f" ({'▲' if now > before else '▼'} {abs(now - before):,} from {before:,})"


def _pct_change(now: Totals, before: Totals | None) -> str:
    if before is None or not before.run_time_s:
        return ""
    pct = (now.run_time_s - before.run_time_s) / before.run_time_s * 100
    if abs(pct) < 0.5:
        return " (same)"
    return f" ({'▲' if pct > 0 else '▼'} {abs(pct):.0f}%)"


def _details(report: HealthReport) -> list[Section]:
    sections: list[Section] = []
    now = report.generated_at
    airflow = report.airflow
    if airflow is not None:
        if not airflow.reached:
            gap = next((g for g in report.unread if g.what == "DAG runs"), None)
            sections.append(
                Section(
                    heading="Airflow",
                    text=phrases.UNREACHABLE.format(
                        system=gap.source if gap else "Airflow", reason=gap.reason if gap else ""
                    ),
                )
            )
        else:
            sections.append(_airflow_section(report))
            slow = _slow_section(report)
            if slow is not None:
                sections.append(slow)
    sections.extend(dbt_sections(report, by_model=True))
    warehouse = report.warehouse
    if warehouse is not None and warehouse.reached:
        bullets = tuple(
            f"`{t.relation}` — last altered {phrases.ago(t.last_altered, now)}"
            + (f" (`{t.node.rsplit('.', 1)[-1]}`)" if t.node else "")
            for t in warehouse.stopped[:LISTED]
        ) + (
            (phrases.more(LISTED, len(warehouse.stopped)),)
            if len(warehouse.stopped) > LISTED
            else ()
        )
        text = (
            f"{phrases.plural(warehouse.checked, 'table')} checked; not altered for more than "
            f"{phrases.duration(warehouse.stale_after_s)}: {len(warehouse.stopped)}"
            + (
                f"; {warehouse.unknown} without a last-altered time in the warehouse"
                if warehouse.unknown
                else ""
            )
            + "."
        )
        sections.append(Section(heading="Warehouse tables", text=text, bullets=bullets))
    if report.incidents is not None:
        rows = report.incidents.open
        sections.append(
            Section(
                heading="Incidents",
                fields=(
                    Field("Seen in the window", str(report.incidents.seen)),
                    Field("Still open", str(len(rows))),
                ),
                bullets=tuple(
                    f"#{i.id} `{i.subject}`"
                    + (f" / `{i.node}`" if i.node else "")
                    + f" — {i.status} for {_age(i.first_seen_at, now)}, "
                    f"{phrases.plural(i.occurrences, 'failure')}"
                    + (f", on it: {i.acknowledged_by}" if i.acknowledged_by else "")
                    for i in rows[:LISTED]
                ),
            )
        )
    if report.spend is not None:
        sections.append(Section(heading="Warehouse spend", text=report.spend.text))
    if report.drift is not None and report.drift.findings:
        sections.append(
            Section(heading="Schema drift", bullets=tuple(report.drift.findings[:LISTED]))
        )
    if report.unread:
        sections.append(
            Section(
                heading="Could not read",
                bullets=tuple(f"{g.source}: {g.what} — {g.reason}" for g in report.unread),
            )
        )
    return sections


def _airflow_section(report: HealthReport) -> Section:
    airflow = report.airflow
    assert airflow is not None
    now = report.generated_at
    totals, before = airflow.totals, airflow.previous
    if before is not None and not before.runs:
        before = None  # nothing ran before: no comparison with zero
    rate = f" ({totals.succeeded / totals.finished:.0%})" if totals.finished else ""
    fields = [
        Field(
            "Runs finished",
            f"{totals.finished}, {totals.succeeded} succeeded{rate}"
            + (f" — before: {before.finished}, {before.succeeded} succeeded" if before else ""),
        ),
        Field(
            "Failed runs",
            f"{totals.failed}" + _count_change(totals.failed, before.failed if before else None),
        ),
        Field(
            "Run time",
            f"{phrases.duration(totals.run_time_s)} in all, median run "
            f"{phrases.duration(totals.median_duration_s)}" + _pct_change(totals, before),
        ),
        Field("Running or queued", str(totals.active)),
        Field("DAGs that ran", str(totals.dags)),
    ]
    if airflow.import_errors is not None:
        fields.append(Field("Import errors", str(len(airflow.import_errors))))
    else:
        gap = next((g for g in report.unread if g.what == "import errors"), None)
        fields.append(Field("Import errors", f"unknown — {gap.reason if gap else ''}"))
    history = f"the last {_span(now - _lookback(report))}"
    bullets = [failing_line(d, now, history=history) for d in airflow.failing[:LISTED]]
    if len(airflow.failing) > LISTED:
        bullets.append(phrases.more(LISTED, len(airflow.failing)))
    bullets += [recovered_line(d, now) for d in airflow.recovered[:LISTED]]
    green = airflow.green
    if green:
        names = ", ".join(f"`{d.dag_id}` ({d.finished})" for d in green[:LISTED])
        extra = f" and {len(green) - LISTED} more" if len(green) > LISTED else ""
        bullets.append(f"✓ all runs succeeded: {names}{extra}")
    bullets += import_error_bullets(report)
    text = ""
    if not airflow.complete:
        gap = next((g for g in report.unread if g.what == "DAG runs"), None)
        text = f"Not every run was read: {gap.reason if gap else 'the listing was cut'}."
    return Section(heading="Airflow", fields=tuple(fields), bullets=tuple(bullets), text=text)


def _slow_section(report: HealthReport) -> Section | None:
    airflow = report.airflow
    assert airflow is not None
    bullets = [
        f"`{d.dag_id}` — median run {phrases.duration(d.median_duration_s)}, "
        f"{d.slower_ratio or 0:.1f}× its usual {phrases.duration(d.usual_duration_s)}"
        for d in airflow.slower[:LISTED]
    ]
    bullets += [
        f"slowest: `{r.dag_id}` run `{r.run_id}` took {phrases.duration(r.duration_s)}"
        + (
            f" ({r.ratio:.1f}× its usual {phrases.duration(r.usual_duration_s)})"
            if r.ratio is not None
            else ""
        )
        for r in airflow.slowest
    ]
    if not bullets:
        return None
    return Section(heading="Run time", bullets=tuple(bullets))


def _lookback(report: HealthReport) -> datetime:
    span = report.window.end - report.window.start
    return report.window.end - max(2 * span, timedelta(days=CHART_DAYS))


def _age(then: datetime, now: datetime) -> str:
    return phrases.duration(max(0.0, (now - then).total_seconds()))


# --- scheduled digests ------------------------------------------------------------------------


def scheduled(
    payload: dict[str, object],
    *,
    sources: Sources,
    store: Store,
    agent: Agent | None = None,
) -> Reply | None:
    """The digest a ``digest`` job (submitted by the clock) posts; None when its schedule was
    removed or paused meanwhile.

    The digest is built once per schedule and slot: it is stored with the run's "handled" mark,
    so a job retried after a crash posts the same digest (its posts are keyed by the slot).
    """
    schedule_id = int(str(payload["schedule_id"]))
    key = schedules.job_key(schedule_id, datetime.fromisoformat(str(payload["slot"])))
    handled, stored = store.events.result(key)
    if handled:
        return from_dict(stored) if stored else None
    schedule = store.digests.schedule(schedule_id)
    if schedule is None or not schedule.enabled:
        return None
    reply = run(
        schedules.digest_request(payload, sources),
        store.incidents,
        agent,
        timezone=str(payload.get("timezone") or schedule.timezone or "UTC"),
    )
    with store.sessions.begin() as session:
        if not store.events.mark(session, key, result=to_dict(reply)):
            session.rollback()  # another run of this slot committed first
            stored = store.events.result(key)[1]
            return from_dict(stored) if stored else None
        run_id = store.digests.claim_run(schedule.id, str(payload["slot"]), session=session)
        if run_id is not None:
            store.digests.finish_run(run_id, session=session)
    return reply


def parse_window(text: str) -> timedelta | None:
    """``24h``, ``7d``, ``90m``, ``2w`` → the window; None when it is not one (or > 31 days)."""
    parsed = parse_duration(text)
    if parsed is None or not timedelta(0) < parsed <= MAX_WINDOW:
        return None
    return parsed


def _with_summary(reply: Reply, scope: str, agent: Agent, request: Request) -> Reply:
    """The agent's few bullets on top; the facts stay as they are if it cannot answer."""
    request.progress("Agent: summarising the digest")
    facts = json.dumps(
        {
            "title": reply.title,
            "direction": reply.text,
            "sections": [
                {
                    "heading": s.heading,
                    "text": s.text,
                    "fields": {f.label: f.value for f in s.fields},
                    "bullets": list(s.bullets),
                }
                for s in (*reply.sections, *reply.details)
            ],
        },
        ensure_ascii=False,
        indent=1,
    )
    answer = agent.answer(prompt("digest", scope=scope, facts=facts), history=[], request=request)
    summary = agent_text(answer)
    if answer.tone is Tone.ERROR or not summary:
        return reply
    return Reply(
        title=reply.title,
        tone=reply.tone,
        text=reply.text,
        sections=(Section(heading="Summary", text=summary), *reply.sections),
        details=reply.details,
        sources=reply.sources + answer.sources,
        notes=(*reply.notes, "Summary written by the agent from the facts below."),
    )


def _span(window: timedelta) -> str:
    """``24 hours``, ``7 days``, ``hour``, ``90 minutes`` (after "last")."""
    seconds = int(window.total_seconds())
    if seconds >= 2 * 86400 and seconds % 86400 == 0:
        return phrases.plural(seconds // 86400, "day")
    if seconds % 3600 == 0:
        return "hour" if seconds == 3600 else phrases.plural(seconds // 3600, "hour")
    return phrases.plural(seconds // 60, "minute")

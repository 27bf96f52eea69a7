"""`digest [window]`: the pipeline-health digest a team reads once a day.

Over a window (default 24 h, e.g. `digest 7d`): every DAG's runs — which keep failing, which
recovered, which are all green — the success rate, DAG import errors, the last dbt run, stale
sources and the incidents opened in the window. Each source is asked in parallel with a deadline;
a source that is down becomes a line in the digest, not a failed digest. With an agent, a short
summary written from these facts (and only these) opens the reply.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from bot import phrases
from bot.agent import Agent
from bot.commands import Request
from bot.facts import DagRun, ImportError_
from bot.fanout import Outcome, gather
from bot.messages import Field, Reply, Section, Tone
from bot.playbooks import schedules
from bot.playbooks.incidents import parse_duration
from bot.playbooks.replies import agent_text
from bot.playbooks.status import dbt_sections
from bot.ports import Sources
from bot.prompts import prompt
from bot.rendering import from_dict, to_dict
from bot.store import Store
from bot.store.digests import Digests
from bot.store.incidents import Incident, Incidents

USAGE = "digest [now] [window, e.g. 24h or 7d] | digest schedule|list|remove …"
# Subcommands that manage schedules rather than report.
SUBCOMMANDS = ("schedule", "list", "remove")
DEFAULT_WINDOW = timedelta(hours=24)
MAX_WINDOW = timedelta(days=31)
TIMEOUT_S = 30.0
# Runs read per digest; a window with more is reported as such rather than silently cut.
RUN_LIMIT = 1000
LISTED = 10
FINISHED = ("success", "failed")


@dataclass(frozen=True, kw_only=True)
class DagHealth:
    """One DAG's runs in the window, newest first."""

    dag_id: str
    runs: tuple[DagRun, ...]

    @property
    def finished(self) -> list[DagRun]:
        return [r for r in self.runs if r.state in FINISHED]

    @property
    def failed(self) -> int:
        return sum(1 for r in self.runs if r.state == "failed")

    @property
    def latest(self) -> DagRun | None:
        finished = self.finished
        return finished[0] if finished else None

    @property
    def verdict(self) -> str:
        """failing (latest run failed) | recovered (failed earlier, latest succeeded) | green."""
        latest = self.latest
        if latest is not None and latest.state == "failed":
            return "failing"
        return "recovered" if self.failed else "green"


def run(
    request: Request,
    incidents: Incidents | None = None,
    agent: Agent | None = None,
    digests: Digests | None = None,
) -> Reply:
    if request.args[:1] and request.args[0] in ("schedule", "list", "remove"):
        return schedules.run(request, digests)
    window = DEFAULT_WINDOW
    args = request.args[1:] if request.args[:1] == ("now",) else request.args
    if args:
        parsed = parse_window(args[0])
        if parsed is None:
            return Reply(
                title="Invalid window",
                tone=Tone.WARNING,
                text=f"`{args[0]}` is not a window I can digest. Usage: `{USAGE}` "
                "(minutes `m`, hours `h`, days `d` or weeks `w`, up to 31 days).",
            )
        window = parsed
    sources = request.sources
    now = sources.now()
    since = now - window
    scope = f"last {_span(window)}"
    calls: dict[str, tuple[str, Callable[[], Any]]] = {}
    airflow, dbt = sources.airflow, sources.dbt
    if airflow is not None:
        calls["runs"] = (airflow.system, lambda: airflow.runs(since=since, limit=RUN_LIMIT))
        calls["import_errors"] = (airflow.system, airflow.import_errors)
    if dbt is not None:
        calls["dbt_run"] = (dbt.system, dbt.last_run)
        calls["freshness"] = (dbt.system, dbt.freshness)
    if incidents is not None:
        calls["incidents"] = ("pipebot", lambda: incidents.seen_since(since))
    if airflow is None and dbt is None:
        return Reply(
            title="Nothing to digest",
            tone=Tone.WARNING,
            text="Neither Airflow nor dbt is configured, so there is no pipeline to report on.",
            notes=(phrases.not_configured("Airflow"), phrases.not_configured("dbt")),
        )
    request.progress(
        f"Digest of the {scope}: reading "
        + " and ".join(sorted({system for system, _ in calls.values()} - {"pipebot"}))
    )
    out = gather(calls, timeout=TIMEOUT_S)

    problems: list[str] = []
    warnings: list[str] = []
    unknown: list[str] = []
    sections: list[Section] = []
    used: list[str] = []
    if airflow is not None:
        sections.extend(_airflow(out, now, problems, warnings))
        used.append(f"{airflow.system}: DAG runs since {phrases.timestamp(since)}, import errors")
    if dbt is not None:
        sections.extend(dbt_sections(out, now, problems, warnings, unknown))
        used.append(f"{dbt.system}: run results, source freshness")
    if incidents is not None:
        sections.append(_incidents(out["incidents"], now, warnings))
        used.append("pipebot: incidents")

    if problems:
        tone, verdict = Tone.ERROR, "needs attention: " + ", ".join(problems + unknown + warnings)
    elif unknown:
        # What could not be checked may be failing: never "fine" while it is unknown.
        tone, verdict = Tone.WARNING, "not confirmed: " + ", ".join(unknown + warnings)
    elif warnings:
        tone, verdict = Tone.WARNING, "mostly fine: " + ", ".join(warnings)
    else:
        tone, verdict = Tone.SUCCESS, "all clear"
    reply = Reply(
        title=f"Pipeline digest, {scope} — {verdict}",
        tone=tone,
        sections=tuple(sections),
        sources=tuple(used),
        notes=tuple(
            [phrases.not_configured(s) for s in ("Airflow", "dbt") if s not in sources.configured()]
            + ([sources.label] if sources.label else [])
        ),
    )
    if agent is not None and (problems or unknown or warnings):
        reply = _with_summary(reply, scope, agent, request)
    return reply


def scheduled(
    payload: dict[str, Any],
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
    key = schedules.job_key(int(payload["schedule_id"]), datetime.fromisoformat(payload["slot"]))
    handled, stored = store.events.result(key)
    if handled:
        return from_dict(stored) if stored else None
    schedule = store.digests.schedule(int(payload["schedule_id"]))
    if schedule is None or not schedule.enabled:
        return None
    reply = run(schedules.digest_request(payload, sources), store.incidents, agent)
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


def _airflow(
    out: dict[str, Outcome[Any]], now: datetime, problems: list[str], warnings: list[str]
) -> list[Section]:
    runs_out: Outcome[list[DagRun]] = out["runs"]
    if not runs_out.ok or runs_out.value is None:
        problems.append("Airflow unreachable")
        return [
            Section(
                heading="Airflow",
                text=phrases.UNREACHABLE.format(system=runs_out.system, reason=runs_out.error),
            )
        ]
    runs = runs_out.value
    by_dag: dict[str, list[DagRun]] = {}
    for dag_run in sorted(runs, key=_when, reverse=True):
        by_dag.setdefault(dag_run.dag_id, []).append(dag_run)
    dags = [DagHealth(dag_id=d, runs=tuple(r)) for d, r in by_dag.items()]
    finished = [r for r in runs if r.state in FINISHED]
    succeeded = sum(1 for r in finished if r.state == "success")
    active = sum(1 for r in runs if r.state not in FINISHED)
    fields = [
        Field(
            "Runs finished",
            f"{len(finished)}, {succeeded} succeeded"
            + (f" ({succeeded / len(finished):.0%})" if finished else ""),
        ),
        Field("Running or queued", str(active)),
        Field("DAGs that ran", str(len(dags))),
    ]
    failing = [d for d in dags if d.verdict == "failing"]
    recovered = [d for d in dags if d.verdict == "recovered"]
    green = [d for d in dags if d.verdict == "green" and d.finished]
    if failing:
        problems.append(phrases.plural(len(failing), "failing DAG"))
    bullets = [_failing_line(d, now) for d in failing[:LISTED]]
    if len(failing) > LISTED:
        bullets.append(phrases.more(LISTED, len(failing)))
    bullets += [_recovered_line(d, now) for d in recovered[:LISTED]]
    if green:
        names = ", ".join(f"`{d.dag_id}` ({len(d.finished)})" for d in green[:LISTED])
        extra = f" and {len(green) - LISTED} more" if len(green) > LISTED else ""
        bullets.append(f"✓ all runs succeeded: {names}{extra}")
    notes = ""
    if len(runs) >= RUN_LIMIT:
        notes = f"Only the newest {RUN_LIMIT} runs of the window were read."
    errors: Outcome[list[ImportError_]] = out["import_errors"]
    if errors.ok and errors.value is not None:
        fields.append(Field("Import errors", str(len(errors.value))))
        if errors.value:
            warnings.append(phrases.plural(len(errors.value), "DAG import error"))
            bullets.extend(f"import error in `{e.filename}`" for e in errors.value[:LISTED])
    else:
        fields.append(Field("Import errors", f"unknown — {errors.error}"))
    return [
        Section(heading="Airflow", fields=tuple(fields), bullets=tuple(bullets), text=notes),
    ]


def _when(dag_run: DagRun) -> datetime:
    stamp = dag_run.start_date or dag_run.run_after or dag_run.logical_date or dag_run.end_date
    return stamp or datetime.min.replace(tzinfo=UTC)


def _failing_line(dag: DagHealth, now: datetime) -> str:
    latest = dag.latest
    assert latest is not None  # failing DAGs have a finished latest run
    streak = 0
    for dag_run in dag.finished:
        if dag_run.state != "failed":
            break
        streak += 1
    last_ok = next((r for r in dag.finished if r.state == "success"), None)
    since_ok = (
        f"last success {phrases.ago(last_ok.end_date or last_ok.start_date, now)}"
        if last_ok
        else "no success in the window"
    )
    return (
        f"✗ `{dag.dag_id}` — {dag.failed} of {len(dag.finished)} runs failed, "
        f"{phrases.plural(streak, 'failure')} in a row, {since_ok}; "
        f"latest `{latest.run_id}` (`triage {dag.dag_id}`)"
    )


def _recovered_line(dag: DagHealth, now: datetime) -> str:
    latest = dag.latest
    assert latest is not None
    return (
        f"↺ `{dag.dag_id}` recovered — {dag.failed} of {len(dag.finished)} runs failed, "
        f"latest succeeded {phrases.ago(latest.end_date or latest.start_date, now)}"
    )


def _incidents(outcome: Outcome[list[Incident]], now: datetime, warnings: list[str]) -> Section:
    if not outcome.ok or outcome.value is None:
        return Section(heading="Incidents", text=f"unknown — {outcome.error}")
    rows = outcome.value
    still_open = [i for i in rows if i.is_open]
    if still_open:
        warnings.append(phrases.plural(len(still_open), "open incident"))
    bullets = tuple(
        f"#{i.id} `{i.subject}`"
        + (f" / `{i.node}`" if i.node else "")
        + f" — {i.status}, {phrases.plural(i.occurrences, 'failure')}, "
        f"first {phrases.ago(i.first_seen_at, now)}"
        + (f", on it: {i.acknowledged_by}" if i.acknowledged_by else "")
        for i in rows[:LISTED]
    )
    return Section(
        heading="Incidents",
        fields=(
            Field("Seen in the window", str(len(rows))),
            Field("Still open", str(len(still_open))),
        ),
        bullets=bullets,
    )


def _with_summary(reply: Reply, scope: str, agent: Agent, request: Request) -> Reply:
    """The agent's few bullets on top; the facts stay as they are if it cannot answer."""
    request.progress("Agent: summarising the digest")
    facts = json.dumps(
        {
            "title": reply.title,
            "sections": [
                {
                    "heading": s.heading,
                    "text": s.text,
                    "fields": {f.label: f.value for f in s.fields},
                    "bullets": list(s.bullets),
                }
                for s in reply.sections
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
        sections=(Section(heading="Summary", text=summary), *reply.sections),
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

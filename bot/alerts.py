"""Alert intake: turn an alert (a webhook, or another bot's message in a channel) into a triage
posted once, in the right thread, grouped into an incident.

The desk decides; handlers only parse payloads into an `Alert` and post what the desk returns.
The same failing run reported several ways (Airflow callback, the SlackNotifier message, a
retried delivery) is one key in the idempotency ledger, so it is triaged and posted once.

**Once, with its effect.** The triage is read-only and may run more than once; what it decides
— the incident's new state and the posts to make — commits in one transaction with the alert's
"handled" mark, which stores those posts. A job that crashes before the commit triages again;
one that runs after it gets the stored posts back and only finishes posting them (each post has
its own idempotency key).
"""

from __future__ import annotations

import logging
import re
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import msgspec
from sqlalchemy.orm import Session

from bot import phrases
from bot.agent import Agent
from bot.commands import Request
from bot.messages import InboundMessage, Link, Reply, Section, ThreadRef, Tone, no_progress
from bot.owners import OwnerDirectory
from bot.playbooks.incidents import buttons
from bot.playbooks.triage import (
    TriageReport,
    render,
    triage_airflow,
    triage_dbt,
    with_hypothesis,
)
from bot.ports import Sources
from bot.settings import AlertMatcherSpec, AlertSettings
from bot.store import Store
from bot.store.incidents import Incident

log = logging.getLogger(__name__)

FAILED, SUCCEEDED = "failed", "succeeded"
# The job kind of an accepted alert (webhooks submit it; a channel's poster runs it).
ALERT_JOB = "alert"


@dataclass(frozen=True, kw_only=True)
class Alert:
    """What an alert says, whatever brought it."""

    source: str  # airflow-callback | dbt-cloud | alertmanager | chat
    system: str  # airflow | dbt | generic
    subject: str  # DAG id, dbt job, or alert name
    run_id: str = ""
    status: str = FAILED  # failed | succeeded
    task: str = ""
    title: str = ""
    detail: str = ""
    url: str = ""
    thread: ThreadRef | None = None  # the alert's own chat thread, when it came from a channel

    @property
    def key(self) -> str:
        """One key per (run, outcome): the same failure delivered three ways is one key."""
        run = self.run_id or self.title or self.detail[:80]
        return f"alert:{self.system}:{self.subject}:{run}:{self.status}"


@dataclass(frozen=True, kw_only=True)
class Post:
    """A reply to post: where, under which idempotency key, and for which incident."""

    reply: Reply
    key: str
    thread: ThreadRef | None  # None: the configured alert channel, as a new thread
    incident_id: int | None = None


@dataclass(frozen=True)
class Handled:
    """What an alert's "handled" mark stores: which delivery handled it, and what it posts."""

    delivery: str
    posts: tuple[Post, ...]


# Built-in recognisers for alerts other tools post in channels. Their wording is
# configurable upstream, so these cover the defaults; teams add their own via settings.
DEFAULT_MATCHERS: tuple[AlertMatcherSpec, ...] = (
    AlertMatcherSpec(
        name="airflow",
        system="airflow",
        pattern=r"(?is)\bdag(?:[ _]?id)?\b[*_`\s]*[:=]?[*_`\s]*(?P<dag_id>[A-Za-z0-9_.-]+)"
        r"(?:.*?\btask(?:[ _]?id)?\b[*_`\s]*[:=]?[*_`\s]*(?P<task_id>[A-Za-z0-9_.-]+))?"
        r".*?\brun(?:[ _]?id)?\b[*_`\s]*[:=]?[*_`\s]*(?P<run_id>[A-Za-z0-9_:+.\-]+)",
    ),
    AlertMatcherSpec(
        name="dbt-cloud",
        system="dbt",
        pattern=r"(?is)dbt(?: cloud)?\b.*?\bjob\b[*_`\s]*(?P<job>[^*_`\n]+?)[*_`\s]*"
        r"(?:has |was )?(?P<status>failed|errored|succeeded|cancelled).*?"
        r"(?:/runs/|run\s*#?)(?P<run_id>\d{3,})",
    ),
    AlertMatcherSpec(
        name="elementary",
        system="dbt",
        pattern=r"(?is)(?P<status>failure|error|warning)s?:\s*.*?dbt (?:test|model)?.*?"
        r"(?P<job>model\.[A-Za-z0-9_.]+|[A-Za-z0-9_]+)",
    ),
)


class AlertMatchers:
    def __init__(self, specs: Sequence[AlertMatcherSpec]) -> None:
        self._compiled = [(spec, re.compile(spec.pattern)) for spec in specs]

    @classmethod
    def from_settings(cls, settings: AlertSettings) -> AlertMatchers:
        # Team-specific matchers first: they know their own wording best.
        return cls([*settings.matchers, *DEFAULT_MATCHERS])

    def match(self, text: str, *, thread: ThreadRef) -> Alert | None:
        """Recognise another bot's alert message; None when it is not one."""
        for spec, pattern in self._compiled:
            found = pattern.search(text)
            if found is None:
                continue
            groups = {k: v for k, v in found.groupdict().items() if v}
            subject = groups.get("dag_id") or groups.get("job", "").strip()
            if not subject:
                continue
            status = groups.get("status", "failed").lower()
            return Alert(
                source=f"chat:{spec.name}",
                system=spec.system,
                subject=subject,
                run_id=groups.get("run_id", ""),
                task=groups.get("task_id", ""),
                status=SUCCEEDED if status in ("succeeded", "success") else FAILED,
                title=text.strip().splitlines()[0][:200] if text.strip() else "",
                thread=thread,
            )
        return None


class AlertDesk:
    def __init__(
        self,
        *,
        store: Store,
        sources: Sources,
        settings: AlertSettings,
        owners: OwnerDirectory,
        platform: str = "slack",
        agent: Agent | None = None,
    ) -> None:
        self._agent = agent
        self._store = store
        self._sources = sources
        self._window = timedelta(hours=settings.window_hours)
        self._owners = owners
        self._platform = platform

    def process(self, alert: Alert, *, delivery: str, final: bool = True) -> list[Post]:
        """Triage, group and decide what to post (empty when muted or a known repeat).

        `delivery` names the job carrying this alert (the same on every retry of that job).
        Deliveries of one alert (a webhook and another bot's message) wait for each other: the
        first triages and posts; the others find it handled and post nothing — the first one's
        job, retried if need be, finishes its posts. A retry of the job that handled it gets
        the posts decided then. Unless `final`, a failing triage raises so that the job runs
        again; on the final attempt the alert is recorded as it came, with a note that it could
        not be triaged.
        """
        with self._store.locks.hold(f"alert:{alert.key}"):
            return self._process(alert, delivery=delivery, final=final)

    def _process(self, alert: Alert, *, delivery: str, final: bool) -> list[Post]:
        handled, stored = self._store.events.result(alert.key)
        if handled:
            return self._handled(alert, delivery, stored)
        report: TriageReport | Reply | None = None
        if alert.status != SUCCEEDED:
            try:
                report = self._triage(alert)
            except Exception:
                if not final:
                    raise
                ref = uuid.uuid4().hex[:8]
                log.exception("triage of an alert failed", extra={"ref": ref, "alert": alert.key})
                report = self._untriaged(alert, failed_ref=ref)
        with self._store.sessions.begin() as session:
            if report is None:
                posts = self._resolved(alert, session)
            else:
                posts = self._failed(alert, report, session)
            result = msgspec.json.decode(msgspec.json.encode(Handled(delivery, tuple(posts))))
            if not self._store.events.mark(session, alert.key, result=result):
                session.rollback()  # another delivery committed first
                return self._handled(alert, delivery, self._store.events.result(alert.key)[1])
        return posts

    @staticmethod
    def _handled(alert: Alert, delivery: str, stored: Any) -> list[Post]:
        handled = msgspec.convert(stored, Handled)
        if handled.delivery != delivery:
            log.info("alert handled by another delivery", extra={"alert": alert.key})
            return []
        log.info("alert handled before; its posts are returned", extra={"alert": alert.key})
        return list(handled.posts)

    def attach(self, incident_id: int, thread: ThreadRef) -> None:
        """Remember the thread a new incident was posted in (handlers call this after posting;
        first writer wins, so calling it again on a retry changes nothing)."""
        self._attach(incident_id, thread, None)

    def _attach(self, incident_id: int, thread: ThreadRef, session: Session | None) -> None:
        self._store.incidents.attach_thread(
            incident_id,
            platform=thread.platform,
            workspace=thread.workspace,
            channel=thread.channel,
            thread=thread.thread,
            session=session,
        )

    def _resolved(self, alert: Alert, session: Session) -> list[Post]:
        resolved = self._store.incidents.record_success(
            system=alert.system,
            subject=alert.subject,
            run_id=alert.run_id or "(unknown)",
            session=session,
        )
        posts = []
        for incident in resolved:
            reply = Reply(
                title=f"Resolved: {incident.subject}",
                tone=Tone.SUCCESS,
                text=f"The next run ({alert.run_id or 'latest'}) succeeded, so incident "
                f"#{incident.id} is resolved after "
                f"{phrases.plural(incident.occurrences, 'failure')}.",
            )
            posts.append(
                Post(
                    reply=reply,
                    key=f"incident:{incident.id}:resolved",
                    thread=_thread_of(incident),
                    incident_id=incident.id,
                )
            )
        return posts

    def _failed(self, alert: Alert, report: TriageReport | Reply, session: Session) -> list[Post]:
        if isinstance(report, TriageReport):
            fingerprint, title = (
                report.fingerprint,
                render(report, platform=self._platform, owners=self._owners).title,
            )
            node = ",".join(f.task_id for f in report.failed) or ",".join(
                f.name for f in report.dbt_failures
            )
            run_id = report.run_id
        else:
            fingerprint = f"{alert.system}:{alert.subject}:{alert.task}"
            title, node, run_id = alert.title or f"{alert.subject} failed", alert.task, alert.run_id
        occurrence = self._store.incidents.record_failure(
            fingerprint=fingerprint,
            system=alert.system,
            subject=alert.subject,
            node=node,
            title=title,
            run_id=run_id or alert.key,
            window=self._window,
            facts=report.to_dict() if isinstance(report, TriageReport) else None,
            session=session,
        )
        incident = occurrence.incident
        if occurrence.muted:
            log.info("muted failure recorded", extra={"fingerprint": fingerprint})
            return []
        if not occurrence.new:
            if not occurrence.repeat:
                return []
            return [self._repeat(incident, run_id, alert)]
        if alert.thread is not None:
            self._attach(incident.id, alert.thread, session)
        reply = self._incident_reply(report, alert, incident)
        return [
            Post(
                reply=reply,
                key=f"incident:{incident.id}:opened",
                thread=alert.thread,
                incident_id=incident.id,
            )
        ]

    def _triage(self, alert: Alert) -> TriageReport | Reply:
        report: TriageReport | Reply
        if alert.system == "airflow" and self._sources.airflow is not None:
            report = triage_airflow(
                self._sources, dag_id=alert.subject, run_id=alert.run_id or None
            )
        elif alert.system == "dbt" and self._sources.dbt is not None:
            run_id = alert.run_id if alert.run_id.isdigit() and self._sources.dbt_runs else None
            report = triage_dbt(self._sources, run_id=run_id)
        else:
            return self._untriaged(alert)
        if isinstance(report, TriageReport) and self._agent is not None:
            report = with_hypothesis(report, self._agent, self._request(alert))
        return report

    def _request(self, alert: Alert) -> Request:
        """The agent works for the alert as if someone had asked in its thread."""
        thread = alert.thread
        message = InboundMessage(
            platform=thread.platform if thread else "alert",
            workspace=thread.workspace if thread else "",
            channel=thread.channel if thread else "alerts",
            thread=thread.thread if thread else alert.key,
            user="pipebot-alerts",
            text=f"triage {alert.subject}",
            event_id=f"{alert.key}:hypothesis",
        )
        return Request(message=message, args=(), sources=self._sources, progress=no_progress)

    def _untriaged(self, alert: Alert, *, failed_ref: str = "") -> Reply:
        if failed_ref:
            notes: tuple[str, ...] = (phrases.TRIAGE_FAILED.format(ref=failed_ref),)
        elif alert.system in ("airflow", "dbt"):
            notes = (f"{alert.system} is not connected, so I could not look deeper.",)
        else:
            notes = ()
        return Reply(
            title=alert.title or f"{alert.subject} failed",
            tone=Tone.ERROR,
            text=alert.detail or "An alert fired.",
            notes=notes,
        )

    def _incident_reply(
        self, report: TriageReport | Reply, alert: Alert, incident: Incident
    ) -> Reply:
        base = (
            render(report, platform=self._platform, owners=self._owners)
            if isinstance(report, TriageReport)
            else report
        )
        sections = base.sections
        if alert.url:
            sections = (*sections, Section(links=(Link("Open the alert", alert.url),)))
        return Reply(
            title=f"#{incident.id} {base.title}",
            tone=base.tone,
            text=base.text,
            sections=sections,
            actions=(*base.actions, *buttons(incident)),
            sources=base.sources,
            notes=(*base.notes, f"Incident #{incident.id} ({incident.fingerprint})."),
        )

    def _repeat(self, incident: Incident, run_id: str, alert: Alert) -> Post:
        span = phrases.duration((incident.last_seen_at - incident.first_seen_at).total_seconds())
        reply = Reply(
            title=f"{incident.subject} failed again",
            tone=Tone.ERROR,
            text=(
                f"Run `{run_id}` failed the same way: {phrases.ordinal(incident.occurrences)} "
                f"time in {span} (incident #{incident.id}, {incident.status})."
            ),
            actions=buttons(incident),
        )
        return Post(
            reply=reply,
            key=f"incident:{incident.id}:repeat:{incident.occurrences}",
            thread=_thread_of(incident) or alert.thread,
            incident_id=incident.id,
        )


def _thread_of(incident: Incident) -> ThreadRef | None:
    if incident.thread is None or incident.channel is None:
        return None
    return ThreadRef(
        platform=incident.platform or "slack",
        workspace=incident.workspace or "",
        channel=incident.channel,
        thread=incident.thread,
    )

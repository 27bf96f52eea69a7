"""`incidents` and `incident ack|snooze|resolve|mute|unmute <id> [duration]`.

These change only pipebot's own records (who is on it, until when it is quiet); they never
touch Airflow or dbt.
"""

from __future__ import annotations

import re
from datetime import datetime, timedelta

from bot import phrases
from bot.commands import Request
from bot.messages import Action, Reply, Section, Tone
from bot.store.incidents import Incident, Incidents

USAGE = "incident ack|snooze|resolve|mute|unmute <id> [duration, e.g. 2h]"
_DURATION = re.compile(r"^(\d+)\s*(m|min|h|d|w)$")
_UNIT = {"m": 60, "min": 60, "h": 3600, "d": 86400, "w": 604800}


def parse_duration(text: str) -> timedelta | None:
    match = _DURATION.match(text.strip().lower())
    if match is None:
        return None
    return timedelta(seconds=int(match.group(1)) * _UNIT[match.group(2)])


def list_open(request: Request, incidents: Incidents) -> Reply:
    now = request.sources.now()
    rows = incidents.open_incidents()
    if not rows:
        return Reply(title="No open incidents", tone=Tone.SUCCESS, text="Nothing is on fire.")
    bullets = tuple(_line(i, now) for i in rows)
    return Reply(
        title=phrases.plural(len(rows), "open incident"),
        tone=Tone.WARNING,
        sections=(Section(bullets=bullets),),
        notes=(f"Act on one with `{USAGE}`.",),
    )


def act(request: Request, incidents: Incidents) -> Reply:
    args = request.args
    if len(args) < 2 or args[0] not in {"ack", "snooze", "resolve", "mute", "unmute"}:
        return Reply(title="Missing argument", tone=Tone.WARNING, text=f"Usage: `{USAGE}`")
    verb, ident = args[0], args[1].lstrip("#")
    if not ident.isdigit():
        return Reply(
            title="Not an incident id",
            tone=Tone.WARNING,
            text=f"`{ident}` is not an incident number.",
        )
    incident = incidents.get(int(ident))
    if incident is None:
        return Reply(
            title="No such incident", tone=Tone.WARNING, text=f"There is no incident #{ident}."
        )
    who = request.message.user_name or request.message.user
    now = request.sources.now()
    duration = parse_duration(args[2]) if len(args) > 2 else None
    if len(args) > 2 and duration is None:
        return Reply(
            title="Unknown duration",
            tone=Tone.WARNING,
            text=f"`{args[2]}` is not a duration; use e.g. `30m`, `2h`, `1d`.",
        )
    if verb == "ack":
        incident = incidents.acknowledge(incident.id, by=who, now=now)
        text = f"{who} is looking at incident #{incident.id}."
    elif verb == "snooze":
        until = now + (duration or timedelta(hours=4))
        incident = incidents.snooze(incident.id, until=until, by=who)
        text = f"Incident #{incident.id} snoozed until {phrases.timestamp(until)} by {who}."
    elif verb == "resolve":
        incident = incidents.resolve(incident.id, by=who, now=now)
        text = f"Incident #{incident.id} resolved by {who}."
    elif verb == "mute":
        mute_until = now + duration if duration else None
        incidents.mute(incident.fingerprint, by=who, until=mute_until)
        text = (
            f"Failures like incident #{incident.id} (`{incident.fingerprint}`) are muted "
            + (f"until {phrases.timestamp(mute_until)}" if mute_until else "until unmuted")
            + f" by {who}. They are still recorded."
        )
    else:
        found = incidents.unmute(incident.fingerprint)
        text = f"`{incident.fingerprint}` " + ("unmuted." if found else "was not muted.")
    return Reply(title=f"Incident #{incident.id}: {incident.status}", tone=Tone.INFO, text=text)


def _line(incident: Incident, now: datetime) -> str:
    line = (
        f"#{incident.id} `{incident.subject}`"
        + (f" / `{incident.node}`" if incident.node else "")
        + f" — {incident.status}, {phrases.plural(incident.occurrences, 'failure')}, "
        f"first {phrases.ago(incident.first_seen_at, now)}, "
        f"last {phrases.ago(incident.last_seen_at, now)}"
    )
    if incident.acknowledged_by:
        line += f", on it: {incident.acknowledged_by}"
    return line


def buttons(incident: Incident) -> tuple[Action, ...]:
    """The lifecycle buttons an incident post carries (each sends a command line)."""
    return (
        Action(
            label="Acknowledge",
            action_id="command",
            value=f"incident ack {incident.id}",
            style="primary",
        ),
        Action(label="Snooze 4h", action_id="command", value=f"incident snooze {incident.id} 4h"),
        Action(label="Resolve", action_id="command", value=f"incident resolve {incident.id}"),
        Action(
            label="Mute", action_id="command", value=f"incident mute {incident.id}", style="danger"
        ),
        Action(label="Triage again", action_id="command", value=_triage_line(incident)),
    )


def _triage_line(incident: Incident) -> str:
    """The command that triages the incident's subject afresh (its newest failed run)."""
    if incident.system == "dbt":
        run = incident.last_run_id or ""
        return f"triage dbt {run}".strip() if run.isdigit() else "triage dbt"
    return f"triage {incident.subject}"

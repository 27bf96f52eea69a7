"""`digest schedule|list|remove`: digests a channel receives on its own, and the job that posts
one.

A schedule is a cron line and a time zone in the store, made from a plain form (`daily 09:00`,
`weekdays 08:30 Europe/Berlin`, `monday 09:00`). The single `pipebot clock` process fires it:
it submits one ``digest`` job per schedule and slot (the job key is unique, so a second clock by
mistake posts nothing twice), and a worker builds the digest and posts it through the outbox.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from bot.commands import Request
from bot.health.selection import FilterError, Filters, is_filter
from bot.messages import InboundMessage, Reply, Section, Tone, no_progress
from bot.ports import Sources
from bot.store.digests import Digests, DigestSchedule

DIGEST_JOB = "digest"
USAGE = (
    "digest schedule daily|weekdays|<weekday> <HH:MM> [time zone, e.g. Europe/Berlin] "
    "[tag:<DAG tag>] [owner:<DAG owner>] [dbt:<selector>] · digest list · digest remove <id>"
)
# The schedule's name (unique per channel) is its cadence and filters; longer ones are cut and
# keep a hash so two long filter sets never collide.
NAME_MAX = 64
# Channels that can receive a post nobody asked for in that moment.
POSTING_PLATFORMS = frozenset({"slack", "discord"})
_TIME = re.compile(r"^([01]?\d|2[0-3]):([0-5]\d)$")
_DAYS = {
    "monday": "mon",
    "tuesday": "tue",
    "wednesday": "wed",
    "thursday": "thu",
    "friday": "fri",
    "saturday": "sat",
    "sunday": "sun",
}


@dataclass(frozen=True, kw_only=True)
class Cadence:
    """A schedule's plain form and the cron line it stands for."""

    label: str  # "daily 09:00"
    cron: str  # "0 9 * * *"
    window: str  # the digest window: a day, or a week for weekly digests


def cadence(when: str, at: str) -> Cadence | None:
    """`daily`/`weekdays`/`monday`…`sunday` (or `mon`…`sun`) at `HH:MM`; None if invalid."""
    match = _TIME.match(at)
    if match is None:
        return None
    hour, minute = int(match.group(1)), int(match.group(2))
    when = when.lower()
    day = _DAYS.get(when) or (when if when in _DAYS.values() else None)
    if when == "daily":
        dow, window = "*", "24h"
    elif when == "weekdays":
        dow, window = "mon-fri", "24h"
    elif day is not None:
        dow, window = day, "7d"
    else:
        return None
    label = f"{when} {hour:02d}:{minute:02d}"
    return Cadence(label=label, cron=f"{minute} {hour} * * {dow}", window=window)


def run(request: Request, digests: Digests | None) -> Reply:
    """The `schedule`, `list` and `remove` subcommands of `digest`."""
    if digests is None:
        return Reply(
            title="Scheduled digests need the bot's database",
            tone=Tone.WARNING,
            text="This pipebot runs without a store, so it cannot keep schedules.",
        )
    verb, args = request.args[0], request.args[1:]
    message = request.message
    if verb == "list":
        return _list(digests.schedules(channel=message.channel), message)
    if verb == "remove":
        return _remove(digests, args, message)
    return _schedule(digests, args, message)


def _schedule(digests: Digests, args: tuple[str, ...], message: InboundMessage) -> Reply:
    if message.platform not in POSTING_PLATFORMS:
        return Reply(
            title="Schedule digests from a Slack or Discord channel",
            tone=Tone.WARNING,
            text="A scheduled digest is posted to the channel it was scheduled in; run "
            "`digest schedule …` in the Slack or Discord channel that should receive it.",
        )
    if len(args) < 2:
        return _usage("Give when and at what time")
    found = cadence(args[0], args[1])
    if found is None:
        return _usage(f"`{' '.join(args[:2])}` is not a schedule I understand")
    rest = list(args[2:])
    zone = rest.pop(0) if rest and not is_filter(rest[0]) else "UTC"
    try:
        ZoneInfo(zone)
    except (ZoneInfoNotFoundError, ValueError):
        return _usage(f"`{zone}` is not a time zone (use an IANA name such as Europe/Berlin)")
    try:
        filters = Filters.parse(rest)
    except FilterError as exc:
        return _usage(str(exc))
    name = _name(found.label, filters)
    schedule = digests.add_schedule(
        name=name,
        platform=message.platform,
        workspace=message.workspace,
        channel=message.channel,
        cron=found.cron,
        timezone=zone,
        created_by=message.user_name or message.user,
        filters=filters.text(),
    )
    if schedule is None:
        return Reply(
            title="Already scheduled",
            tone=Tone.INFO,
            text=f"This channel already gets a digest {name}. `digest list` shows them.",
        )
    narrowed = f", narrowed to {filters.describe()}" if not filters.empty else ""
    return Reply(
        title=f"Digest scheduled: {found.label} {zone}",
        tone=Tone.SUCCESS,
        text=f"This channel gets the pipeline digest of the last {_window_words(found.window)} "
        f"{found.label} ({zone}){narrowed}. Schedule #{schedule.id}; "
        f"`digest remove {schedule.id}` stops it.",
        notes=("Scheduled digests are posted by the `pipebot clock` process.",),
    )


def _name(label: str, filters: Filters) -> str:
    name = " ".join(part for part in (label, filters.text()) if part)
    if len(name) <= NAME_MAX:
        return name
    digest = hashlib.sha1(name.encode()).hexdigest()[:8]
    return f"{name[: NAME_MAX - 10]}… {digest}"


def _list(schedules: list[DigestSchedule], message: InboundMessage) -> Reply:
    mine = [
        s for s in schedules if s.platform == message.platform and s.workspace == message.workspace
    ]
    if not mine:
        return Reply(
            title="No digests scheduled here",
            tone=Tone.INFO,
            text="Schedule one with `digest schedule daily 09:00 Europe/Berlin`.",
        )
    return Reply(
        title=f"{len(mine)} digest schedule{'s' if len(mine) != 1 else ''} in this channel",
        sections=(
            Section(
                bullets=tuple(
                    f"#{s.id} {_cadence_label(s)} {s.timezone}"
                    + (f" {s.filters}" if s.filters else "")
                    + (f" — by {s.created_by}" if s.created_by else "")
                    + ("" if s.enabled else " (paused)")
                    for s in mine
                )
            ),
        ),
        notes=("`digest remove <id>` stops one.",),
    )


def _remove(digests: Digests, args: tuple[str, ...], message: InboundMessage) -> Reply:
    if len(args) != 1 or not args[0].lstrip("#").isdigit():
        return _usage("Give the schedule's number, as `digest list` shows it")
    schedule_id = int(args[0].lstrip("#"))
    schedule = digests.schedule(schedule_id)
    if schedule is None or (schedule.platform, schedule.workspace, schedule.channel) != (
        message.platform,
        message.workspace,
        message.channel,
    ):
        # Only from the channel that receives it: one channel cannot silence another's digest.
        return Reply(
            title=f"No schedule #{schedule_id} in this channel",
            tone=Tone.WARNING,
            text="`digest list` shows this channel's schedules.",
        )
    digests.remove_schedule(schedule_id)
    return Reply(
        title=f"Stopped digest #{schedule_id}",
        tone=Tone.SUCCESS,
        text=f"No more {schedule.name} digests here.",
    )


def _cadence_label(schedule: DigestSchedule) -> str:
    """The cadence part of a schedule's name (its filters are listed apart)."""
    if schedule.filters and schedule.name.endswith(schedule.filters):
        return schedule.name[: -len(schedule.filters)].strip()
    return schedule.name


def _usage(problem: str) -> Reply:
    return Reply(
        title="Cannot schedule that", tone=Tone.WARNING, text=f"{problem}. Usage: `{USAGE}`"
    )


def _window_words(window: str) -> str:
    return "24 hours" if window == "24h" else "7 days"


# --- the posted digest ---------------------------------------------------------------------


def job_payload(schedule: DigestSchedule, slot: datetime) -> dict[str, Any]:
    """What the clock submits for one schedule and slot: a weekly schedule covers 7 days."""
    return {
        "schedule_id": schedule.id,
        "slot": slot.isoformat(),
        "platform": schedule.platform,
        "workspace": schedule.workspace,
        "channel": schedule.channel,
        "window": "7d" if _weekly(schedule.cron) else "24h",
        "timezone": schedule.timezone,
        "filters": schedule.filters,
    }


def job_key(schedule_id: int, slot: datetime) -> str:
    return f"digest:{schedule_id}:{slot.isoformat()}"


def digest_request(payload: dict[str, Any], sources: Sources) -> Request:
    """The request a scheduled digest runs as (no person asked; the clock did)."""
    key = job_key(int(payload["schedule_id"]), datetime.fromisoformat(payload["slot"]))
    args = (str(payload["window"]), *str(payload.get("filters") or "").split())
    message = InboundMessage(
        platform=str(payload["platform"]),
        workspace=str(payload["workspace"]),
        channel=str(payload["channel"]),
        thread="",
        user="pipebot clock",
        text="digest " + " ".join(args),
        event_id=key,
    )
    return Request(message=message, args=args, sources=sources, progress=no_progress)


def _weekly(cron: str) -> bool:
    return cron.rsplit(maxsplit=1)[-1] in _DAYS.values()


__all__ = [
    "DIGEST_JOB",
    "Cadence",
    "cadence",
    "digest_request",
    "job_key",
    "job_payload",
    "run",
]

"""`pipebot clock`: the one scheduler process.

APScheduler keeps one cron job per digest schedule in the store (re-read every
`sync_interval` seconds, so schedules made in chat start without a restart). When one fires,
the clock submits a ``digest`` job keyed by schedule and slot — the slot being the cron time
that fired, not the clock's reading — so a second clock by mistake, or a restart inside the
misfire grace time, submits nothing twice. A `pipebot serve` worker runs the job and posts.

Once a day (`RETENTION_HOUR` UTC) the clock also prunes the bot's bookkeeping older than its
retention window (`bot.store.retention`); a second clock pruning too does no harm.

With a warehouse configured, it submits one ``drift`` job a day (`DriftSchedule`, e.g. 06:00
Europe/Berlin), keyed by that day's slot like a digest: a worker snapshots the catalog and
posts the changes no dbt run explains (`bot.drift`). The clock itself reads no warehouse.
"""

from __future__ import annotations

import logging
import signal
import threading
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from types import FrameType
from typing import Any
from zoneinfo import ZoneInfo

from apscheduler.schedulers.background import BackgroundScheduler
from apscheduler.triggers.cron import CronTrigger

from bot.drift import DRIFT_JOB, DriftJob, scheduled_key
from bot.playbooks.schedules import DIGEST_JOB, job_key, job_payload
from bot.store import Store, retention
from bot.store.digests import DigestSchedule

log = logging.getLogger(__name__)

SYNC_JOB = "sync-schedules"
RETENTION_JOB = "prune"
DRIFT_SCHEDULE_JOB = "drift"
RETENTION_HOUR, RETENTION_MINUTE = 3, 41
# A fire later than this (the clock was down) is skipped: a digest hours late misleads.
MISFIRE_GRACE_S = 15 * 60
# How far back to look for the cron time a late fire belongs to.
LOOKBACK = timedelta(days=8)

# (job key, job kind, payload): the work engine's `submit`.
Submit = Callable[[str, str, Any], object]


@dataclass(frozen=True, kw_only=True)
class DriftSchedule:
    """When the daily drift snapshot is taken (`PIPEBOT_DRIFT__TIME` and `__TIMEZONE`)."""

    time: str = "06:00"  # HH:MM
    timezone: str = "UTC"

    def trigger(self) -> CronTrigger:
        hour, _, minute = self.time.partition(":")
        return CronTrigger(hour=int(hour), minute=int(minute), timezone=ZoneInfo(self.timezone))


def trigger_of(schedule: DigestSchedule) -> CronTrigger:
    return CronTrigger.from_crontab(schedule.cron, timezone=ZoneInfo(schedule.timezone))


def slot_of(trigger: CronTrigger, now: datetime) -> datetime | None:
    """The latest fire time of `trigger` at or before `now` (within `LOOKBACK`), in UTC."""
    latest: datetime | None = None
    fire: datetime | None = trigger.get_next_fire_time(None, now - LOOKBACK)
    while fire is not None and fire <= now:
        latest = fire
        fire = trigger.get_next_fire_time(fire, fire + timedelta(seconds=1))
    return latest.astimezone(UTC) if latest is not None else None


class Clock:
    def __init__(
        self,
        store: Store,
        *,
        submit: Submit,
        sync_interval: float = 60.0,
        retention: retention.Windows | None = None,
        drift: DriftSchedule | None = None,
        now: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self._store = store
        self._submit = submit
        self._retention = retention
        self._drift = drift
        self._sync_interval = sync_interval
        self._now = now
        self._scheduler = BackgroundScheduler(
            timezone=UTC,
            job_defaults={"coalesce": True, "misfire_grace_time": MISFIRE_GRACE_S},
        )
        self._known: dict[int, str] = {}  # schedule id → "cron@tz" it is scheduled with
        self._stop = threading.Event()

    def fire(self, schedule_id: int) -> bool:
        """Submit the digest of `schedule_id` for its latest slot; False if already submitted,
        or the schedule is gone or paused."""
        schedule = self._store.digests.schedule(schedule_id)
        if schedule is None or not schedule.enabled:
            return False
        slot = slot_of(trigger_of(schedule), self._now())
        if slot is None:
            return False
        submitted = self._submit(
            job_key(schedule.id, slot), DIGEST_JOB, job_payload(schedule, slot)
        )
        if submitted:
            log.info("digest submitted", extra={"schedule": schedule.id, "slot": slot.isoformat()})
        return bool(submitted)

    def fire_drift(self) -> bool:
        """Submit the drift check of the latest daily slot; False if already submitted (or no
        drift schedule)."""
        if self._drift is None:
            return False
        slot = slot_of(self._drift.trigger(), self._now())
        if slot is None:
            return False
        job = DriftJob(snapshot=scheduled_key(slot))
        submitted = self._submit(job.key, DRIFT_JOB, job)
        if submitted:
            log.info("drift check submitted", extra={"slot": slot.isoformat()})
        return bool(submitted)

    def sync(self) -> None:
        """Make the scheduler's jobs match the schedules in the store."""
        current = {s.id: s for s in self._store.digests.schedules() if s.enabled}
        for schedule_id in set(self._known) - set(current):
            self._scheduler.remove_job(f"digest-{schedule_id}")
            del self._known[schedule_id]
        for schedule in current.values():
            signature = f"{schedule.cron}@{schedule.timezone}"
            if self._known.get(schedule.id) == signature:
                continue
            try:
                trigger = trigger_of(schedule)
            except (ValueError, KeyError) as exc:
                log.error(
                    "digest schedule skipped: %s",
                    exc,
                    extra={"schedule": schedule.id, "cron": schedule.cron},
                )
                continue
            self._scheduler.add_job(
                self.fire,
                trigger,
                args=[schedule.id],
                id=f"digest-{schedule.id}",
                replace_existing=True,
            )
            self._known[schedule.id] = signature

    def prune(self) -> dict[str, int]:
        """Delete the bookkeeping older than its retention window (rows deleted per kind)."""
        deleted = retention.prune(self._store, self._retention or retention.Windows())
        log.info("retention: old rows pruned", extra={"deleted": deleted})
        return deleted

    def jobs(self) -> list[str]:
        """Ids of the scheduled jobs (for tests and logs)."""
        return sorted(job.id for job in self._scheduler.get_jobs())

    def start(self) -> None:
        self._scheduler.start()
        self._scheduler.add_job(
            self.sync,
            "interval",
            seconds=self._sync_interval,
            id=SYNC_JOB,
            next_run_time=datetime.now(UTC),
            replace_existing=True,
        )
        self._scheduler.add_job(
            self.prune,
            CronTrigger(hour=RETENTION_HOUR, minute=RETENTION_MINUTE, timezone=UTC),
            id=RETENTION_JOB,
            replace_existing=True,
        )
        if self._drift is not None:
            self._scheduler.add_job(
                self.fire_drift,
                self._drift.trigger(),
                id=DRIFT_SCHEDULE_JOB,
                replace_existing=True,
            )

    def stop(self) -> None:
        self._stop.set()
        if self._scheduler.running:
            # Not wait=True: APScheduler 3 then holds its job-store lock while waiting for the
            # running jobs, and a `sync` in progress needs that lock to add a job — a deadlock
            # that a SIGTERM during the first sync hit. A running job (a few quick database
            # writes) still finishes: its thread is not a daemon.
            self._scheduler.shutdown(wait=False)

    def run(self) -> int:
        """Run until SIGTERM/SIGINT; the exit code for the process."""

        received: list[int] = []

        def stop(signum: int, _frame: FrameType | None) -> None:
            # Only note it, and set the event from another thread: logging here could
            # re-enter a write to stderr the signal interrupted, and Event.set could wait on
            # the lock the interrupted main thread holds inside Event.wait.
            received.append(signum)
            threading.Thread(target=self._stop.set, daemon=True).start()

        signal.signal(signal.SIGTERM, stop)
        signal.signal(signal.SIGINT, stop)
        self.start()
        drift = f"{self._drift.time} {self._drift.timezone}" if self._drift else None
        log.info("clock started", extra={"sync_interval_s": self._sync_interval, "drift": drift})
        while not self._stop.wait(1.0):
            pass
        log.info("clock stopping", extra={"signal": received[0] if received else None})
        self.stop()
        return 0

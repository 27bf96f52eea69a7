"""Retention: the bot's bookkeeping is pruned once a day (`pipebot clock`).

What goes: processed-event marks, accepted-event ids and finished jobs after ``jobs_days``/
``events_days``, sent or given-up posts after ``posts_days``, the audit of tool and LLM calls
after ``audit_days``, warehouse snapshots after ``drift`` (``PIPEBOT_DRIFT__RETENTION_DAYS``;
the newest snapshot always stays: the next drift check compares with it). Conversations
(thread memory), incidents and digest schedules stay.
On PostgreSQL procrastinate's own finished jobs are removed by its builtin cleanup task.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from bot.store import Store
from bot.store.tables import utcnow


@dataclass(frozen=True, kw_only=True)
class Windows:
    events: timedelta = timedelta(days=14)
    jobs: timedelta = timedelta(days=14)
    posts: timedelta = timedelta(days=14)
    audit: timedelta = timedelta(days=90)
    drift: timedelta = timedelta(days=30)


def prune(store: Store, windows: Windows, *, now: datetime | None = None) -> dict[str, int]:
    """Delete what is older than its window; rows deleted per kind."""
    now = now or utcnow()
    return {
        "processed_events": store.events.prune(now - windows.events),
        "accepted_events": store.accepted.prune(now - windows.events),
        "jobs": store.jobs.prune(now - windows.jobs),
        "outbox": store.outbox.prune(now - windows.posts),
        "audit": store.audit.prune(now - windows.audit),
        "drift_snapshots": store.drift.prune(now - windows.drift),
    }

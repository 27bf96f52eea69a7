"""Schedules across a daylight-saving change, with filters, weekly windows — fired by the real
`Clock` (APScheduler's cron trigger) against a controlled clock and the real local work engine.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from bot.commands import Request
from bot.messages import InboundMessage, no_progress
from bot.playbooks import digest, schedules
from bot.playbooks.schedules import DIGEST_JOB, digest_request, job_payload
from bot.store import Store
from bot.store.digests import DigestSchedule
from bot.work.local import LocalEngine
from handlers.clock import Clock, trigger_of
from integrations.demo import demo_sources


def said(store: Store, text: str, *, channel: str = "C1") -> Any:
    message = InboundMessage(
        platform="slack",
        workspace="T1",
        channel=channel,
        thread="",
        user="U1",
        user_name="dana",
        text=text,
        event_id=f"ev:{text}",
    )
    args = tuple(text.split()[1:])
    request = Request(message=message, args=args, sources=demo_sources(), progress=no_progress)
    return digest.run(request, store.incidents, None, store.digests)


class Recorder:
    """The clock's submit, into the real local engine (its unique job key is the lock)."""

    def __init__(self, store: Store) -> None:
        self.engine = LocalEngine(store)
        self.slots: list[datetime] = []

    def __call__(self, key: str, kind: str, payload: dict[str, Any]) -> bool:
        assert kind == DIGEST_JOB
        submitted = bool(self.engine.submit(key, kind, payload))
        if submitted:
            self.slots.append(datetime.fromisoformat(payload["slot"]))
        return submitted


def berlin_nine(store: Store) -> DigestSchedule:
    said(store, "digest schedule daily 09:00 Europe/Berlin")
    (schedule,) = store.digests.schedules()
    return schedule


@pytest.mark.parametrize(
    ("days", "instants"),
    [
        # Spring forward (Sunday 2026-03-29, 02:00 → 03:00): 09:00 CET is 08:00 UTC, then
        # 09:00 CEST is 07:00 UTC.
        (
            (datetime(2026, 3, 28), datetime(2026, 3, 29), datetime(2026, 3, 30)),
            ("2026-03-28T08:00", "2026-03-29T07:00", "2026-03-30T07:00"),
        ),
        # Fall back (Sunday 2026-10-25, 03:00 → 02:00): 07:00 UTC, then 08:00 UTC.
        (
            (datetime(2026, 10, 24), datetime(2026, 10, 25), datetime(2026, 10, 26)),
            ("2026-10-24T07:00", "2026-10-25T08:00", "2026-10-26T08:00"),
        ),
    ],
)
def test_nine_in_berlin_fires_at_the_right_utc_instants_across_dst(
    sqlite_store: Store, days: tuple[datetime, ...], instants: tuple[str, ...]
) -> None:
    schedule = berlin_nine(sqlite_store)
    assert (schedule.cron, schedule.timezone) == ("0 9 * * *", "Europe/Berlin")
    recorder = Recorder(sqlite_store)
    reading: list[datetime] = []
    clock = Clock(sqlite_store, submit=recorder, now=lambda: reading[-1])
    expected = [datetime.fromisoformat(i).replace(tzinfo=UTC) for i in instants]
    for day, at in zip(days, expected, strict=True):
        # The trigger names the instant itself …
        trigger = trigger_of(schedule)
        fire = trigger.get_next_fire_time(None, day.replace(tzinfo=UTC))
        assert fire is not None and fire.astimezone(UTC) == at
        # … and the clock, woken a few seconds late (as APScheduler does), submits that slot.
        reading.append(at + timedelta(seconds=4))
        assert clock.fire(schedule.id) is True
    assert recorder.slots == expected


def test_two_clocks_submit_each_slot_once_across_dst(sqlite_store: Store) -> None:
    schedule = berlin_nine(sqlite_store)
    recorder = Recorder(sqlite_store)
    at = datetime(2026, 3, 29, 7, 0, 2, tzinfo=UTC)  # 09:00:02 CEST, the first summer morning
    clocks = [Clock(sqlite_store, submit=recorder, now=lambda: at) for _ in range(2)]
    assert [c.fire(schedule.id) for c in clocks] == [True, False]
    assert recorder.slots == [datetime(2026, 3, 29, 7, 0, tzinfo=UTC)]


def test_a_weekly_schedule_covers_seven_days_and_keeps_its_filters(sqlite_store: Store) -> None:
    answer = said(sqlite_store, "digest schedule monday 08:30 Europe/Berlin owner:dana dbt:tag:x")
    assert answer.title == "Digest scheduled: monday 08:30 Europe/Berlin"
    assert "narrowed to DAGs owned by dana; dbt tag:x" in answer.text
    (schedule,) = sqlite_store.digests.schedules()
    assert schedule.filters == "owner:dana dbt:tag:x"
    assert schedule.cron == "30 8 * * mon"
    # The same cadence with other filters is another schedule; the same filters are refused.
    assert said(sqlite_store, "digest schedule monday 08:30 Europe/Berlin").title.startswith(
        "Digest scheduled"
    )
    again = said(sqlite_store, "digest schedule monday 08:30 Europe/Berlin owner:dana dbt:tag:x")
    assert again.title == "Already scheduled"
    listed = said(sqlite_store, "digest list")
    assert (
        f"#{schedule.id} monday 08:30 Europe/Berlin owner:dana dbt:tag:x — by dana"
        in listed.sections[0].bullets
    )

    payload = job_payload(schedule, datetime(2026, 11, 30, 7, 30, tzinfo=UTC))
    assert (payload["window"], payload["filters"], payload["timezone"]) == (
        "7d",
        "owner:dana dbt:tag:x",
        "Europe/Berlin",
    )
    request = digest_request(payload, demo_sources())
    assert request.args == ("7d", "owner:dana", "dbt:tag:x")
    window, filters = digest.parse_args(request.args)  # type: ignore[misc]
    assert window == timedelta(days=7) and filters.owners == ("dana",)


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("digest schedule daily 09:00 Europe/Berlin colour:red", "`colour:red` is not a filter"),
        ("digest schedule daily 09:00 dbt:bogus:x", "does not know the dbt selector method"),
    ],
)
def test_bad_filters_are_refused_with_what_to_type(
    sqlite_store: Store, text: str, problem: str
) -> None:
    answer = said(sqlite_store, text)
    assert answer.title == "Cannot schedule that" and problem in answer.text
    assert sqlite_store.digests.schedules() == []


def test_a_scheduled_digest_is_narrowed_by_its_filters(sqlite_store: Store) -> None:
    said(sqlite_store, "digest schedule daily 09:00 UTC owner:dana")
    (schedule,) = sqlite_store.digests.schedules()
    payload = job_payload(schedule, datetime(2026, 11, 25, 9, 0, tzinfo=UTC))
    reply = digest.scheduled(payload, sources=demo_sources(), store=sqlite_store)
    assert reply is not None
    assert reply.title.startswith("Pipeline digest, last 24 hours (DAGs owned by dana) — ")
    airflow = next(s for s in reply.details if s.heading == "Airflow")
    assert {f.label: f.value for f in airflow.fields}["DAGs that ran"] == "1"
    assert "orders_daily" in reply.sections[0].bullets[0]
    # Posted once per slot: asked again, the stored digest comes back.
    assert digest.scheduled(payload, sources=demo_sources(), store=sqlite_store) == reply
    assert schedules.job_key(schedule.id, datetime(2026, 11, 25, 9, 0, tzinfo=UTC)) == (
        f"digest:{schedule.id}:2026-11-25T09:00:00+00:00"
    )

"""The clock's daily drift job: one per slot (the time in its zone), whatever clocks fire it; only
scheduled when a warehouse is configured."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from bot.drift import DRIFT_JOB, scheduled_key
from bot.store import Store
from bot.work.local import LocalEngine
from handlers.clock import Clock, DriftSchedule, slot_of


def test_the_slot_is_the_configured_time_in_its_zone() -> None:
    berlin = DriftSchedule(time="06:30", timezone="Europe/Berlin").trigger()
    # 05:40 UTC is 06:40 in Berlin (winter): that day's 06:30 Berlin slot, 05:30 UTC.
    assert slot_of(berlin, datetime(2026, 12, 3, 5, 40, tzinfo=UTC)) == datetime(
        2026, 12, 3, 5, 30, tzinfo=UTC
    )
    assert slot_of(berlin, datetime(2026, 12, 3, 5, 0, tzinfo=UTC)) == datetime(
        2026, 12, 2, 5, 30, tzinfo=UTC
    )


def test_a_slot_is_submitted_once_by_any_number_of_clocks(sqlite_store: Store) -> None:
    submitted: list[tuple[str, str, Any]] = []
    engine = LocalEngine(sqlite_store)

    def submit(key: str, kind: str, payload: Any) -> bool:
        submitted.append((key, kind, payload))
        return engine.submit(key, kind, payload)

    at = datetime(2026, 12, 3, 6, 0, 1, tzinfo=UTC)
    clocks = [
        Clock(sqlite_store, submit=submit, drift=DriftSchedule(), now=lambda: at) for _ in range(2)
    ]
    assert [clock.fire_drift() for clock in clocks] == [True, False]
    slot = datetime(2026, 12, 3, 6, 0, tzinfo=UTC)
    assert {(key, kind) for key, kind, _ in submitted} == {
        (f"drift:{scheduled_key(slot)}", DRIFT_JOB)
    }
    assert sqlite_store.jobs.counts() == {"queued": 1}


def test_drift_is_scheduled_only_with_a_drift_schedule(tmp_path: Path) -> None:
    store = Store.open(f"sqlite:///{tmp_path}/clock.db")
    submit = LocalEngine(store).submit
    with_drift = Clock(store, submit=submit, drift=DriftSchedule(time="07:15"))
    without = Clock(store, submit=submit)
    try:
        with_drift.start()
        without.start()
        assert "drift" in with_drift.jobs() and "drift" not in without.jobs()
        assert without.fire_drift() is False
    finally:
        with_drift.stop()
        without.stop()
        store.close()


def test_pipebot_clock_schedules_drift_when_a_warehouse_is_configured(tmp_path: Path) -> None:
    import json
    import signal
    import subprocess
    import sys
    import time

    def started_line(**env: str) -> dict[str, Any]:
        process = subprocess.Popen(
            [sys.executable, "-m", "bot", "clock", "--sync-interval", "1"],
            stderr=subprocess.PIPE,
            stdout=subprocess.DEVNULL,
            text=True,
            cwd=tmp_path,
            env={
                "PATH": "/usr/bin:/bin",
                "HOME": str(tmp_path),
                "PIPEBOT_DATABASE_URL": f"sqlite:///{tmp_path}/clock.db",
                "PIPEBOT_LOG_FORMAT": "json",
                **env,
            },
        )
        try:
            assert process.stderr is not None
            deadline = time.monotonic() + 30
            while True:
                assert time.monotonic() < deadline and process.poll() is None
                line = process.stderr.readline()
                if '"clock started"' in line:
                    found: dict[str, Any] = json.loads(line)
                    break
            process.send_signal(signal.SIGTERM)
            assert process.wait(15) == 0
        finally:
            if process.poll() is None:
                process.kill()
        return found

    warehouse = {"PIPEBOT_WAREHOUSE__URL": f"sqlite:///{tmp_path}/warehouse.db"}
    assert started_line().get("drift") is None
    berlin = started_line(
        **warehouse, PIPEBOT_DRIFT__TIME="7:30", PIPEBOT_DRIFT__TIMEZONE="Europe/Berlin"
    )
    assert berlin["drift"] == "07:30 Europe/Berlin"
    off = started_line(**warehouse, PIPEBOT_DRIFT__ENABLED="false")
    assert off.get("drift") is None

"""Scheduled digests end to end: `/pipebot digest schedule …` through the real Slack HTTP
endpoint of `pipebot serve` (fake Slack Web API), the clock firing through APScheduler's real
cron triggers, and the digest of the demo environment posted once to the channel."""

from __future__ import annotations

import json
import struct
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest

from bot.compose import build_app, build_server
from bot.playbooks.schedules import cadence
from bot.settings import Settings
from bot.store import Store
from bot.store.digests import DigestSchedule
from bot.work.local import LocalEngine
from handlers.clock import Clock, slot_of, trigger_of
from handlers.server import Server, ServerThread
from integrations.demo import demo_sources
from tests.fakes.slack_api import BOT_TOKEN, FakeSlack
from tests.slack.conftest import SIGNING_SECRET, command_body, sign


def schedule(cron: str, tz: str = "UTC") -> DigestSchedule:
    return DigestSchedule(
        id=1,
        name="x",
        platform="slack",
        workspace="T1",
        channel="C1",
        cron=cron,
        timezone=tz,
        created_by="dana",
        enabled=True,
    )


def test_slot_is_the_cron_time_that_fired_in_the_schedules_zone() -> None:
    berlin = trigger_of(schedule("0 9 * * *", "Europe/Berlin"))
    # 08:05 UTC is 09:05 in Berlin (winter): the 09:00 Berlin slot of that day.
    assert slot_of(berlin, datetime(2026, 11, 26, 8, 5, tzinfo=UTC)) == datetime(
        2026, 11, 26, 8, 0, tzinfo=UTC
    )
    # 07:59 UTC is before it: the previous day's slot.
    assert slot_of(berlin, datetime(2026, 11, 26, 7, 59, tzinfo=UTC)) == datetime(
        2026, 11, 25, 8, 0, tzinfo=UTC
    )
    weekdays = trigger_of(schedule("30 8 * * mon-fri"))
    # Sunday 2026-11-29: the last weekday slot is Friday's.
    assert slot_of(weekdays, datetime(2026, 11, 29, 12, 0, tzinfo=UTC)) == datetime(
        2026, 11, 27, 8, 30, tzinfo=UTC
    )


@pytest.mark.parametrize(
    ("when", "at", "cron", "window"),
    [
        ("daily", "09:00", "0 9 * * *", "24h"),
        ("weekdays", "8:30", "30 8 * * mon-fri", "24h"),
        ("Monday", "07:05", "5 7 * * mon", "7d"),
        ("fri", "17:00", "0 17 * * fri", "7d"),
    ],
)
def test_plain_cadences_become_cron_lines(when: str, at: str, cron: str, window: str) -> None:
    found = cadence(when, at)
    assert found is not None and (found.cron, found.window) == (cron, window)
    trigger_of(schedule(found.cron))  # APScheduler accepts it


@pytest.mark.parametrize(("when", "at"), [("hourly", "09:00"), ("daily", "25:00"), ("daily", "9")])
def test_unknown_cadences_are_refused(when: str, at: str) -> None:
    assert cadence(when, at) is None


class Serving:
    def __init__(self, url: str, fake: FakeSlack, store: Store, server: Server) -> None:
        self.http = httpx.Client(base_url=url, timeout=10)
        self.fake = fake
        self.store = store
        self.server = server

    def command(self, text: str) -> str:
        """Send a signed `/pipebot <text>` and return the text of the answer posted for it."""
        before = len(self._answers())
        body = command_body(text)
        response = self.http.post(
            "/slack/events",
            content=body.encode(),
            headers={"Content-Type": "application/x-www-form-urlencoded", **sign(body)},
        )
        assert response.status_code == 200
        self.fake.wait_until(lambda _: len(self._answers()) > before, timeout=20)
        return self._answers()[-1]

    def _answers(self) -> list[str]:
        return [
            json.dumps(c.params.get("blocks") or []) + str(c.params.get("text"))
            for c in self.fake.calls
            if c.method in ("chat.update", "chat.postMessage", "chat.postEphemeral")
            and c.status == 200
            and "⏳" not in str(c.params.get("text"))
        ]

    def digests_posted(self) -> list[Any]:
        """The digests' top messages (their details go in the thread under them)."""
        return [
            c
            for c in self.fake.calls_to("chat.postMessage", ok_only=True)
            if "Pipeline digest" in str(c.params.get("text")) and "thread_ts" not in c.params
        ]


@pytest.fixture
def serving(tmp_path: Path) -> Iterator[Serving]:
    with FakeSlack() as fake:
        settings = Settings(
            database_url=f"sqlite:///{tmp_path}/serve.db",
            slack={
                "bot_token": BOT_TOKEN,
                "signing_secret": SIGNING_SECRET,
                "api_url": fake.api_url,
                "mode": "http",
            },
            work={"concurrency": 4},
        )
        app = build_app(settings, demo_sources())
        server = build_server(app)
        running = ServerThread(server).start()
        try:
            yield Serving(running.url, fake, app.store, server)
        finally:
            running.stop()


def test_a_scheduled_digest_is_posted_once_even_with_two_clocks(serving: Serving) -> None:
    answer = serving.command("digest schedule daily 09:00 Europe/Berlin")
    assert "Digest scheduled: daily 09:00 Europe/Berlin" in answer
    assert "Already scheduled" in serving.command("digest schedule daily 09:00 Europe/Berlin")
    assert "not a time zone" in serving.command("digest schedule daily 09:00 Mars/Olympus")
    (made,) = serving.store.digests.schedules()
    assert (made.cron, made.timezone, made.channel) == ("0 9 * * *", "Europe/Berlin", "C1")
    assert f"#{made.id} daily 09:00 Europe/Berlin" in serving.command("digest list")

    at_nine_berlin = datetime(2026, 11, 26, 8, 0, 3, tzinfo=UTC)
    submit = serving.server.engine.submit
    clocks = [Clock(serving.store, submit=submit, now=lambda: at_nine_berlin) for _ in range(2)]
    clocks[0].sync()
    assert clocks[0].jobs() == [f"digest-{made.id}"]
    assert [clock.fire(made.id) for clock in clocks] == [True, False]

    assert serving.server.engine.wait_idle(30), "the digest job did not finish"
    (posted,) = serving.digests_posted()
    assert posted.params["channel"] == "C1" and "thread_ts" not in posted.params
    text = json.dumps(posted.params.get("blocks")) + str(posted.params["text"])
    assert "Pipeline digest, last 24 hours" in text and "orders_daily" in text
    assert serving.store.digests.run_status(made.id, "2026-11-26T08:00:00+00:00") == (1, "posted")
    # The chart goes up with the digest (files_upload_v2), in the channel under it; the
    # details go in the digest's thread.
    (asked,) = serving.fake.calls_to("files.getUploadURLExternal", ok_only=True)
    assert asked.params["filename"].endswith(".png")
    (uploaded,) = serving.fake.calls_to("upload")
    (shared,) = serving.fake.calls_to("files.completeUploadExternal", ok_only=True)
    assert shared.params["channel_id"] == "C1" and not shared.params.get("thread_ts")
    (chart,) = serving.fake.files.values()
    assert png_size(chart["data"]) == (1200, 1200)
    assert uploaded.params["bytes"] == len(chart["data"])
    assert chart["alt_txt"].startswith("Bar and line chart of the last 14 days")
    digest_ts = posted.ts
    replies = serving.fake.thread("C1", str(digest_ts))
    assert any("Details" in json.dumps(m.get("blocks")) for m in replies[1:])

    assert f"Stopped digest #{made.id}" in serving.command(f"digest remove {made.id}")
    assert serving.store.digests.schedules() == []
    clocks[0].sync()
    assert clocks[0].jobs() == []
    assert clocks[1].fire(made.id) is False


def png_size(data: bytes) -> tuple[int, int]:
    """Width and height from a PNG's IHDR chunk (after checking it is one)."""
    assert data[:8] == b"\x89PNG\r\n\x1a\n" and data[12:16] == b"IHDR"
    width, height = struct.unpack(">II", data[16:24])
    return width, height


def test_scheduling_needs_a_slack_channel(tmp_path: Path) -> None:
    import subprocess
    import sys

    result = subprocess.run(
        [sys.executable, "-m", "bot", "demo"],
        input="digest schedule daily 09:00\ndigest list\n",
        capture_output=True,
        text=True,
        timeout=120,
        cwd=tmp_path,
        env={"PATH": "/usr/bin:/bin", "HOME": str(tmp_path)},
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert "Schedule digests from a Slack or Discord channel" in result.stdout
    assert "No digests scheduled here" in result.stdout


def test_pipebot_clock_runs_until_sigterm(tmp_path: Path) -> None:
    import signal
    import subprocess
    import sys

    url = f"sqlite:///{tmp_path}/clock.db"
    store = Store.open(url)
    store.digests.add_schedule(
        name="daily 09:00",
        platform="slack",
        workspace="T1",
        channel="C1",
        cron="0 9 * * *",
        timezone="UTC",
        created_by="dana",
    )
    store.close()
    process = subprocess.Popen(
        [sys.executable, "-m", "bot", "clock", "--sync-interval", "1"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        cwd=tmp_path,
        env={
            "PATH": "/usr/bin:/bin",
            "HOME": str(tmp_path),
            "PIPEBOT_DATABASE_URL": url,
            "PIPEBOT_LOG_LEVEL": "INFO",
        },
    )
    try:
        assert process.stderr is not None
        seen = ""
        deadline = time.monotonic() + 30
        while "clock started" not in seen:  # each line arrives as the clock logs it
            assert time.monotonic() < deadline and process.poll() is None, seen
            seen += process.stderr.readline()
        process.send_signal(signal.SIGTERM)
        _, err = process.communicate(timeout=15)
        err = seen + err
    finally:
        if process.poll() is None:
            process.kill()
    assert process.returncode == 0, err
    assert "clock started" in err and "clock stopping" in err


def test_a_broken_schedule_row_is_skipped_not_fatal(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    store = Store.open(f"sqlite:///{tmp_path}/clock.db")
    for name, cron, tz in (("bad", "61 9 * * *", "UTC"), ("zone", "0 9 * * *", "Mars/Olympus")):
        store.digests.add_schedule(
            name=name,
            platform="slack",
            workspace="T1",
            channel="C1",
            cron=cron,
            timezone=tz,
            created_by="",
        )
    good = store.digests.add_schedule(
        name="good",
        platform="slack",
        workspace="T1",
        channel="C1",
        cron="0 9 * * *",
        timezone="UTC",
        created_by="",
    )
    assert good is not None
    clock = Clock(store, submit=LocalEngine(store).submit)
    clock.sync()
    assert clock.jobs() == [f"digest-{good.id}"]
    assert sum("digest schedule skipped" in r.getMessage() for r in caplog.records) == 2
    store.close()


def test_the_clock_prunes_old_bookkeeping_once_a_day(sqlite_store: Store) -> None:
    from datetime import timedelta

    from sqlalchemy import text

    from bot.store import retention
    from bot.store.tables import utcnow

    old, recent = utcnow() - timedelta(days=20), utcnow() - timedelta(days=2)
    ancient = utcnow() - timedelta(days=120)
    with sqlite_store.sessions.begin() as session:
        for key, at in (("old", old), ("recent", recent)):
            sqlite_store.events.mark(session, f"ev:{key}", result=None)
            session.execute(
                text("update processed_events set created_at = :at where key = :key"),
                {"at": at.replace(tzinfo=None), "key": f"ev:{key}"},
            )
    for key in ("old", "recent"):
        sqlite_store.jobs.submit(f"job:{key}", "note", {})
        row = sqlite_store.outbox.attempt(
            f"post:{key}",
            platform="slack",
            workspace="T",
            channel="C",
            thread=None,
            kind="post",
            body={},
        )
        sqlite_store.outbox.sent(row.id, "1.2")
        sqlite_store.audit.tool_call(tool="t", system="s", invocation=key, status="ok")
    with sqlite_store.sessions.begin() as session:
        session.execute(text("update jobs set status = 'done'"))
        for table in ("jobs", "outbox", "tool_calls"):
            session.execute(
                text(f"update {table} set created_at = :at where {_key_column(table)} like :k"),
                {"at": old.replace(tzinfo=None), "k": "%old"},
            )
        session.execute(
            text("update tool_calls set created_at = :at where invocation = 'old'"),
            {"at": ancient.replace(tzinfo=None)},
        )
    clock = Clock(sqlite_store, submit=LocalEngine(sqlite_store).submit)
    deleted = clock.prune()
    assert deleted == {
        "processed_events": 1,
        "accepted_events": 0,
        "jobs": 1,
        "outbox": 1,
        "audit": 1,
        "drift_snapshots": 0,
    }
    assert sqlite_store.events.seen("ev:recent") and not sqlite_store.events.seen("ev:old")
    assert sqlite_store.outbox.get("post:recent") is not None
    assert sqlite_store.outbox.get("post:old") is None
    assert retention.prune(sqlite_store, retention.Windows()) == dict.fromkeys(deleted, 0)
    clock.start()
    try:
        assert "prune" in clock.jobs()
    finally:
        clock.stop()


def _key_column(table: str) -> str:
    return {"jobs": "key", "outbox": "idempotency_key", "tool_calls": "invocation"}[table]

"""SIGKILL between the drift snapshot and its post, on SQLite and on the real PostgreSQL: the
day's snapshot is taken and its changes decided, the post has not reached Slack (rate-limited)
or has reached it without an answer (the connection dropped) when `pipebot serve` dies; after a
restart the changes are posted exactly once, and the snapshot is not taken again."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy.engine import Engine

from bot.compose import build_engine
from bot.settings import Settings
from bot.store import Store
from bot.store.outbox import SENT
from handlers.clock import Clock, DriftSchedule
from tests.crash.support import Serve, post_keys, text_of
from tests.crash.test_kill import RECOVERY_S, running_jobs, wait_for
from tests.drift.support import PgSchema, pg_schema
from tests.fakes.slack_api import FakeSlack

DRIFT_CHANNEL = "CDRIFT"
DAY_1 = datetime(2026, 12, 3, 6, 0, 5, tzinfo=UTC)


@pytest.fixture(params=["sqlite", "postgresql"])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path}/crash.db"
    return str(request.getfixturevalue("pg_url"))


@pytest.fixture
def warehouse_schema(pg_engine: Engine) -> Iterator[PgSchema]:
    with pg_schema(pg_engine) as schema:
        yield schema


@pytest.fixture
def fake() -> Iterator[FakeSlack]:
    with FakeSlack() as running:
        yield running


@pytest.mark.parametrize("slack", ["rate-limited", "dropped"])
def test_a_drift_post_survives_sigkill_after_its_snapshot(
    database_url: str, fake: FakeSlack, warehouse_schema: PgSchema, tmp_path: Path, slack: str
) -> None:
    serve = Serve(
        tmp_path,
        database_url=database_url,
        fake=fake,
        extra_env={
            "PIPEBOT_WAREHOUSE__URL": warehouse_schema.url,
            "PIPEBOT_WAREHOUSE__SCHEMAS": warehouse_schema.name,
            "PIPEBOT_DRIFT__CHANNEL": DRIFT_CHANNEL,
        },
    )
    store = Store.open(database_url)
    engine = build_engine(Settings(database_url=database_url), store, role="clock")

    def fire(at: datetime) -> None:
        clock = Clock(store, submit=engine.submit, drift=DriftSchedule(), now=lambda: at)
        assert clock.fire_drift()

    def decided() -> int:
        latest = store.drift.latest(decided=True)
        return latest.id if latest is not None else 0

    serve.start()
    try:
        fire(DAY_1)
        wait_for(lambda: decided() > 0, 60, "the first snapshot")
        first = decided()
        warehouse_schema.ddl("ALTER TABLE {s}.orders DROP COLUMN email")
        if slack == "rate-limited":
            fake.rate_limit("chat.postMessage", retry_after=1, times=10_000)
        else:
            fake.drop_after("chat.postMessage")
        fire(DAY_1 + timedelta(days=1))
        wait_for(lambda: decided() > first, 60, "the second snapshot decided")
        second = decided()
        key = f"slack:drift:{first}:{second}:0"
        wait_for(lambda: store.outbox.get(key) is not None, 60, "the post attempted")
        if slack == "dropped":
            fake.wait_until(lambda f: len(f.messages(DRIFT_CHANNEL)) == 1, 30)
        serve.kill()
        if slack == "rate-limited":
            assert fake.messages(DRIFT_CHANNEL) == []
            fake.reset()  # Slack takes posts again
        serve.start()
        wait_for(lambda: getattr(store.outbox.get(key), "status", "") == SENT, RECOVERY_S, "sent")
        wait_for(lambda: running_jobs(database_url) == 0, 30, "no job left running")
        newest = store.drift.latest()
    finally:
        serve.stop()
        store.close()
    (post,) = fake.messages(DRIFT_CHANNEL)
    assert f"`{warehouse_schema.name}.orders.email` dropped" in text_of(post)
    assert post_keys(fake) == {key: 1}
    # The snapshot the killed job took is the one posted about: it was not taken again.
    assert newest is not None and newest.id == second

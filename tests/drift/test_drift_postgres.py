"""Warehouse drift on the real PostgreSQL (issue 15, part 8): the clock's daily job snapshots a
schema of our own, someone runs ``ALTER TABLE`` outside dbt, the next day's snapshot reports it
— once, through the real `pipebot serve` app, its work engine, the outbox and the fake Slack
Web API — and running the job again, or a second clock, posts nothing more."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from bot.compose import App, build_app, build_server, build_sources
from bot.drift import DRIFT_JOB, ChangeKind, DriftJob, DriftWatch, latest, scheduled_key
from bot.messages import Tone
from bot.playbooks import drift as playbook
from bot.ports import Sources
from bot.rendering import to_text
from bot.settings import Settings
from bot.store import Store
from handlers.clock import Clock, DriftSchedule
from handlers.server import Server, ServerThread
from integrations.warehouse import Catalog
from tests.crash.support import post_keys
from tests.drift.support import PgSchema
from tests.fakes.slack_api import BOT_TOKEN, FakeSlack
from tests.playbooks.test_digest_and_schema_review import ask
from tests.shell import pipebot
from tests.slack.conftest import SIGNING_SECRET

DRIFT_CHANNEL = "CDRIFT"
DAY_1 = datetime(2026, 12, 3, 6, 0, 2, tzinfo=UTC)


@dataclass
class Stack:
    app: App
    server: Server
    fake: FakeSlack

    def clock(self, at: datetime) -> Clock:
        return Clock(
            self.app.store,
            submit=self.server.engine.submit,
            drift=DriftSchedule(time="06:00", timezone="UTC"),
            now=lambda: at,
        )

    def idle(self) -> None:
        assert self.server.engine.wait_idle(60), f"jobs pending: {self.server.engine.counts()}"

    def drift_posts(self) -> list[dict[str, Any]]:
        return self.fake.messages(DRIFT_CHANNEL)


@pytest.fixture
def stack(store_url: str, warehouse_schema: PgSchema) -> Iterator[Stack]:
    with FakeSlack() as fake:
        settings = Settings(
            database_url=store_url,
            slack={  # type: ignore[arg-type]
                "bot_token": BOT_TOKEN,
                "signing_secret": SIGNING_SECRET,
                "api_url": fake.api_url,
                "mode": "http",
            },
            warehouse={"url": warehouse_schema.url, "schemas": [warehouse_schema.name]},  # type: ignore[arg-type]
            drift={"channel": DRIFT_CHANNEL},  # type: ignore[arg-type]
            work={"concurrency": 2},  # type: ignore[arg-type]
        )
        store = Store.open(store_url)
        app = build_app(settings, build_sources(settings, store=store), store=store)
        server = build_server(app)
        running = ServerThread(server).start()
        try:
            yield Stack(app=app, server=server, fake=fake)
        finally:
            running.stop()
            store.close()


def text_of(message: dict[str, Any]) -> str:
    return json.dumps(message.get("blocks") or []) + str(message.get("text") or "")


def test_an_alter_table_outside_dbt_is_posted_once(
    stack: Stack, warehouse_schema: PgSchema
) -> None:
    # Day 1: the first snapshot; nothing to compare with, nothing posted.
    assert [stack.clock(DAY_1).fire_drift() for _ in range(2)] == [True, False]
    stack.idle()
    first = stack.app.store.drift.latest()
    assert first is not None and first.decided and first.relation_count == 3
    assert stack.drift_posts() == []

    warehouse_schema.ddl(
        "ALTER TABLE {s}.orders ADD COLUMN discount numeric",
        "ALTER TABLE {s}.orders ALTER COLUMN id DROP NOT NULL",
        "DROP VIEW {s}.big_orders",
        "ALTER TABLE {s}.orders DROP COLUMN email",
        "ALTER TABLE {s}.orders ALTER COLUMN amount TYPE text",
        "CREATE TABLE {s}.refunds (id bigint, order_id bigint)",
    )

    # Day 2, with a second clock by mistake: one job, one post.
    day_2 = DAY_1 + timedelta(days=1)
    assert [stack.clock(day_2).fire_drift() for _ in range(2)] == [True, False]
    stack.idle()
    (post,) = stack.drift_posts()
    text = text_of(post)
    schema = warehouse_schema.name
    for line in (
        f"`{schema}.orders.discount` added (numeric)",
        f"`{schema}.orders.email` dropped (was text)",
        f"`{schema}.orders.amount` retyped: numeric(12,2) \\u2192 text",
        f"`{schema}.orders.id` is now nullable (was not null)",
        f"`{schema}.big_orders` (view) dropped",
        f"`{schema}.refunds` (table) added",
    ):
        assert line in text, text
    assert "Warehouse drift: 6 unexpected changes" in text
    assert "dbt is not configured" in text

    # The job again (at least once: a retry, a redelivery): the stored decision, not re-sent.
    second = stack.app.store.drift.latest()
    assert second is not None and second.base_id == first.id
    job = DriftJob(snapshot=scheduled_key(day_2 - timedelta(seconds=2)))
    assert stack.server.engine.submit(job.key, DRIFT_JOB, job) is False  # the clock's key
    assert stack.server.engine.submit(f"{job.key}:again", DRIFT_JOB, job) is True
    stack.idle()
    # Day 3: nothing changed since day 2, so nothing to say.
    assert stack.clock(day_2 + timedelta(days=1)).fire_drift()
    stack.idle()
    assert len(stack.drift_posts()) == 1
    assert all(count == 1 for count in post_keys(stack.fake).values()), post_keys(stack.fake)
    assert post_keys(stack.fake)[f"slack:drift:{first.id}:{second.id}:0"] == 1

    found = latest(stack.app.store.drift)  # what the digest may mention: day 3's nothing
    assert found is not None and found.changes == ()


def test_the_command_shows_what_changed_since_the_last_snapshot_and_its_age(
    sqlite_store: Store, warehouse_schema: PgSchema
) -> None:
    now = [datetime.now(UTC)]
    sources = Sources(
        warehouse=Catalog(warehouse_schema.url, [warehouse_schema.name]), now=lambda: now[0]
    )
    schema = warehouse_schema.name
    no_snapshot = playbook.run(ask(sources), sqlite_store.drift)
    assert no_snapshot.title == "No catalog snapshot yet"
    DriftWatch(sqlite_store, sources).snapshot("manual:1")
    now[0] += timedelta(hours=5)
    unchanged = playbook.run(ask(sources), sqlite_store.drift)
    assert unchanged.title == "No unexpected change since the last snapshot"
    assert "snapshot #1, taken 5h 00m ago" in to_text(unchanged)

    warehouse_schema.ddl("ALTER TABLE {s}.customers ADD COLUMN tier varchar(16)")
    changed = playbook.run(ask(sources, schema), sqlite_store.drift)
    assert changed.tone is Tone.WARNING
    assert changed.title == "1 unexpected change since the last snapshot"
    assert f"`{schema}.customers.tier` added (character varying(16))" in to_text(changed)
    # Looking changes nothing: no snapshot is taken, and it still shows the change.
    assert sqlite_store.drift.latest() is not None
    assert sqlite_store.drift.latest().id == 1  # type: ignore[union-attr]

    other = playbook.run(ask(sources, "nosuch"), sqlite_store.drift)
    assert other.title == "Schema not snapshotted"
    assert f"they cover {schema}" in other.text and f"`drift {schema}`" in other.text


def test_a_catalog_cut_at_the_row_cap_reports_no_drops(
    sqlite_store: Store, warehouse_schema: PgSchema
) -> None:
    capped = Sources(warehouse=Catalog(warehouse_schema.url, [warehouse_schema.name], row_cap=2))
    watch = DriftWatch(sqlite_store, capped, schemas=[warehouse_schema.name])
    watch.check("one")
    warehouse_schema.ddl("ALTER TABLE {s}.big_orders RENAME TO a_orders")
    report = watch.check("two")
    # Relations past the cap were not read: their absence is no drop; the rest is compared.
    assert all(c.kind is not ChangeKind.RELATION_DROPPED for c in report.changes)
    assert any("row or byte cap" in note for note in report.notes)


def test_a_configured_schema_that_vanished_is_one_change(
    sqlite_store: Store, warehouse_schema: PgSchema
) -> None:
    sources = Sources(warehouse=Catalog(warehouse_schema.url))
    watch = DriftWatch(sqlite_store, sources, schemas=[warehouse_schema.name])
    watch.check("one")
    warehouse_schema.ddl("DROP SCHEMA {s} CASCADE")
    report = watch.check("two")
    (change,) = report.unexpected
    assert (change.kind, change.schema, change.before) == (
        ChangeKind.SCHEMA_DROPPED,
        warehouse_schema.name,
        "3 relations",
    )
    assert "is gone (it had 3 relations)" in to_text(playbook.render(report))


def test_pipebot_drift_snapshot_and_pipebot_drift(
    tmp_path: Path, warehouse_schema: PgSchema
) -> None:
    env = {
        "PIPEBOT_DATABASE_URL": f"sqlite:///{tmp_path}/cli.db",
        "PIPEBOT_WAREHOUSE__URL": warehouse_schema.url,
        "PIPEBOT_DRIFT__SCHEMAS": warehouse_schema.name,
    }
    first = pipebot(["drift", "snapshot"], tmp_path, **env)
    assert (first.returncode, "First catalog snapshot") == (0, first.stdout.splitlines()[0])
    warehouse_schema.ddl("ALTER TABLE {s}.customers DROP COLUMN name")
    looked = pipebot(["drift"], tmp_path, **env)
    assert looked.returncode == 1, looked.stdout + looked.stderr
    assert "1 unexpected change since the last snapshot" in looked.stdout
    second = pipebot(["drift", "snapshot", "--format", "json"], tmp_path, **env)
    assert second.returncode == 1, second.stderr
    assert "Warehouse drift: 1 unexpected change" in second.stdout
    # The workers post it: the job waits for `pipebot serve` in the store.
    store = Store.open(env["PIPEBOT_DATABASE_URL"])
    try:
        assert store.jobs.counts() == {"queued": 1}
    finally:
        store.close()
    assert pipebot(["drift"], tmp_path, **env).returncode == 0
    usage = pipebot(["drift", "a", "b"], tmp_path, **env)
    assert usage.returncode == 2 and "at most one schema" in usage.stderr
    nothing = pipebot(["drift"], tmp_path, PIPEBOT_DATABASE_URL=env["PIPEBOT_DATABASE_URL"])
    assert nothing.returncode == 2 and "PIPEBOT_WAREHOUSE__URL" in nothing.stderr

"""The bot's store on SQLite and on the real PostgreSQL (each test runs on both)."""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import inspect

from bot.messages import ThreadRef
from bot.store import Store, schema
from bot.store.audit import LlmUsage
from bot.store.tables import Base


def test_migrations_create_exactly_the_models(store: Store) -> None:
    with store.engine.connect() as connection:
        diff = compare_metadata(MigrationContext.configure(connection), Base.metadata)
    assert diff == []
    assert schema.current_revision(store.engine) == schema.head_revision(store.engine)
    tables = set(inspect(store.engine).get_table_names())
    assert {
        "conversations",
        "messages",
        "processed_events",
        "tool_calls",
        "llm_calls",
        "incidents",
        "digest_schedules",
        "digest_runs",
        "outbox",
        "jobs",
    } <= tables


def test_upgrade_is_idempotent(store_url: str) -> None:
    first = Store.open(store_url)
    second = Store.open(store_url)  # a second start must not fail or re-create
    assert schema.current_revision(second.engine) == schema.head_revision(second.engine)
    first.close()
    second.close()


def test_event_claimed_once_even_concurrently(store: Store) -> None:
    results: list[bool] = []
    barrier = threading.Barrier(8)

    def claim() -> None:
        barrier.wait()
        results.append(store.events.claim("slack:T1:Ev1"))

    threads = [threading.Thread(target=claim) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(results) == [False] * 7 + [True]
    assert store.events.seen("slack:T1:Ev1")
    assert not store.events.seen("slack:T1:Ev2")


def test_prune_forgets_old_events(store: Store) -> None:
    store.events.claim("old")
    assert store.events.prune(datetime.now(UTC) + timedelta(seconds=1)) == 1
    assert store.events.claim("old")


def test_threads_keep_history_in_order(store: Store) -> None:
    ref = ThreadRef(platform="slack", workspace="T1", channel="C1", thread="1700000000.000100")
    conversation = store.threads.touch(ref)
    assert store.threads.touch(ref) == conversation
    assert store.threads.find(ref) == conversation
    for i in range(5):
        store.threads.add(conversation, role="user" if i % 2 == 0 else "bot", text=f"m{i}")
    history = store.threads.history(conversation, limit=3)
    assert [m.text for m in history] == ["m2", "m3", "m4"]
    assert history[0].created_at.tzinfo is UTC
    other = ThreadRef(platform="slack", workspace="T1", channel="C1", thread="other")
    assert store.threads.find(other) is None


def test_outbox_records_once_and_retries(store: Store) -> None:
    target = {"platform": "slack", "workspace": "T1", "channel": "C1"}
    assert store.outbox.enqueue("reply:Ev1", body={"text": "hi"}, thread="1.2", **target)
    assert not store.outbox.enqueue("reply:Ev1", body={"text": "again"}, **target)
    claimed = store.outbox.claim_due(platform="slack")
    assert [item.key for item in claimed] == ["reply:Ev1"]
    assert claimed[0].body == {"text": "hi"} and claimed[0].attempts == 1
    assert store.outbox.claim_due(platform="slack") == []  # leased
    store.outbox.mark_retry(
        claimed[0].id, "429 ratelimited", at=datetime.now(UTC) - timedelta(seconds=1)
    )
    again = store.outbox.claim_due(platform="slack")
    assert again[0].attempts == 2
    store.outbox.mark_sent(again[0].id, "1700000000.000200")
    item = store.outbox.get("reply:Ev1")
    assert item is not None and item.status == "sent" and item.remote_ref == "1700000000.000200"
    assert store.outbox.claim_due(platform="slack") == []
    assert store.outbox.counts() == {"sent": 1}


def test_outbox_lease_expiry_makes_post_due_again(store: Store) -> None:
    store.outbox.enqueue("k", platform="slack", workspace="T", channel="C", body={})
    store.outbox.claim_due(platform="slack", lease=timedelta(seconds=-1))
    assert [i.key for i in store.outbox.claim_due(platform="slack")] == ["k"]


def test_jobs_submit_once_claim_finish_and_retry(store: Store) -> None:
    job_id = store.jobs.submit("slack:Ev9", "message", {"text": "status"})
    assert job_id is not None
    assert store.jobs.submit("slack:Ev9", "message", {"text": "status"}) is None
    job = store.jobs.claim(lease=timedelta(minutes=5))
    assert job is not None and job.payload == {"text": "status"} and job.attempts == 1
    assert store.jobs.claim(lease=timedelta(minutes=5)) is None
    store.jobs.fail(job.id, "boom", retry_at=datetime.now(UTC) - timedelta(seconds=1))
    again = store.jobs.claim(lease=timedelta(minutes=5))
    assert again is not None and again.attempts == 2
    store.jobs.finish(again.id)
    assert store.jobs.status("slack:Ev9") == "done"


def test_crashed_job_is_claimed_again_after_its_lease(store: Store) -> None:
    store.jobs.submit("k", "message", {})
    assert store.jobs.claim(lease=timedelta(seconds=-1)) is not None  # worker "dies"
    assert store.jobs.claim(lease=timedelta(minutes=5)) is not None


def test_digest_run_claimed_once_per_slot(store: Store) -> None:
    schedule = store.digests.add_schedule(
        name="daily",
        platform="slack",
        workspace="T1",
        channel="C1",
        cron="0 9 * * mon-fri",
        timezone="Europe/Berlin",
        created_by="U1",
    )
    assert schedule is not None
    assert (
        store.digests.add_schedule(
            name="daily",
            platform="slack",
            workspace="T1",
            channel="C1",
            cron="0 10 * * *",
            timezone="UTC",
            created_by="U2",
        )
        is None
    )
    run = store.digests.claim_run(schedule.id, "2026-11-25")
    assert run is not None
    assert store.digests.claim_run(schedule.id, "2026-11-25") is None
    assert store.digests.claim_run(schedule.id, "2026-11-26") is not None
    store.digests.finish_run(run)
    assert [s.name for s in store.digests.schedules(channel="C1")] == ["daily"]
    assert store.digests.remove_schedule(schedule.id)
    assert store.digests.schedules() == []


def test_audit_sums_tokens(store: Store) -> None:
    ref = ThreadRef(platform="console", workspace="local", channel="c", thread="t")
    conversation = store.threads.touch(ref)
    usage = LlmUsage(
        model="claude-sonnet-5-5",
        stop_reason="end_turn",
        input_tokens=100,
        output_tokens=20,
        cache_read_tokens=1000,
        cache_write_tokens=0,
        cost_usd=0.001,
    )
    store.audit.llm_call(usage, conversation_id=conversation)
    store.audit.llm_call(usage)
    since = datetime.now(UTC) - timedelta(minutes=1)
    assert store.audit.tokens_used(since=since) == 2 * 1120
    assert store.audit.tokens_used(since=since, conversation_id=conversation) == 1120
    store.audit.tool_call(
        tool="get_dag",
        system="Airflow",
        invocation="GET /api/v2/dags/x",
        status="success",
        conversation_id=conversation,
    )
    assert store.audit.tool_calls(conversation_id=conversation) == ["GET /api/v2/dags/x"]


def test_naive_datetimes_are_refused(store: Store) -> None:
    store.jobs.submit("k", "message", {})
    job = store.jobs.claim(lease=timedelta(minutes=1))
    assert job is not None
    with pytest.raises(Exception, match="naive datetime"):
        store.jobs.fail(job.id, "x", retry_at=datetime.now())


def test_unreachable_database_is_a_clear_error() -> None:
    from bot.errors import StoreError

    with pytest.raises(StoreError, match="cannot open the bot database"):
        Store.open("postgresql+psycopg://nobody:secretpw@127.0.0.1:1/none")


def test_incident_grouping_within_window(store: Store) -> None:
    kwargs = {
        "fingerprint": "airflow:orders_daily:transform",
        "system": "airflow",
        "subject": "orders_daily",
        "node": "transform",
        "title": "orders_daily failed",
        "window": timedelta(hours=24),
    }
    t0 = datetime(2026, 11, 25, 8, 0, tzinfo=UTC)
    first = store.incidents.record_failure(run_id="r1", now=t0, **kwargs)
    assert first.new and not first.repeat and not first.muted
    same_run = store.incidents.record_failure(run_id="r1", now=t0 + timedelta(minutes=1), **kwargs)
    assert not same_run.new and not same_run.repeat and same_run.incident.occurrences == 1
    again = store.incidents.record_failure(run_id="r2", now=t0 + timedelta(hours=1), **kwargs)
    assert (
        again.repeat and again.incident.id == first.incident.id and again.incident.occurrences == 2
    )
    later = store.incidents.record_failure(run_id="r3", now=t0 + timedelta(hours=30), **kwargs)
    assert later.new and later.incident.id != first.incident.id


def test_incident_lifecycle_and_auto_resolve(store: Store) -> None:
    occ = store.incidents.record_failure(
        fingerprint="airflow:d:t",
        system="airflow",
        subject="d",
        node="t",
        title="d failed",
        run_id="r1",
        window=timedelta(hours=24),
    )
    incident_id = occ.incident.id
    attached = store.incidents.attach_thread(
        incident_id, platform="slack", workspace="T", channel="C", thread="1.1"
    )
    assert attached.thread == "1.1"
    assert (
        store.incidents.attach_thread(
            incident_id, platform="slack", workspace="T", channel="C", thread="2.2"
        ).thread
        == "1.1"
    )
    assert store.incidents.acknowledge(incident_id, by="dana").acknowledged_by == "dana"
    until = datetime.now(UTC) + timedelta(hours=2)
    assert store.incidents.snooze(incident_id, until=until, by="dana").status == "snoozed"
    assert [i.id for i in store.incidents.open_incidents()] == [incident_id]
    resolved = store.incidents.record_success(system="airflow", subject="d", run_id="r9")
    assert [i.id for i in resolved] == [incident_id]
    assert resolved[0].resolved_by == "automatically: run r9 succeeded"
    assert store.incidents.open_incidents() == []
    assert store.incidents.record_success(system="airflow", subject="d", run_id="r10") == []


def test_muted_fingerprints_are_recorded_but_flagged(store: Store) -> None:
    store.incidents.mute("airflow:d:t", by="dana", until=None)
    occ = store.incidents.record_failure(
        fingerprint="airflow:d:t",
        system="airflow",
        subject="d",
        node="t",
        title="x",
        run_id="r1",
        window=timedelta(hours=1),
    )
    assert occ.muted and occ.new
    assert store.incidents.unmute("airflow:d:t")
    assert not store.incidents.is_muted("airflow:d:t")
    store.incidents.mute("x", by="dana", until=datetime.now(UTC) - timedelta(seconds=1))
    assert not store.incidents.is_muted("x")


def test_concurrent_claims_never_share_a_job_or_a_post(store: Store) -> None:
    for i in range(40):
        store.jobs.submit(f"j{i}", "message", {})
        store.outbox.enqueue(f"o{i}", platform="slack", workspace="T", channel="C", body={})
    jobs: list[int] = []
    posts: list[int] = []
    barrier = threading.Barrier(6)

    def worker() -> None:
        barrier.wait()
        while (job := store.jobs.claim(lease=timedelta(minutes=5))) is not None:
            jobs.append(job.id)
        while batch := store.outbox.claim_due(platform="slack", limit=3):
            posts.extend(item.id for item in batch)

    threads = [threading.Thread(target=worker) for _ in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(jobs) == sorted(set(jobs)) and len(jobs) == 40
    assert sorted(posts) == sorted(set(posts)) and len(posts) == 40


def test_concurrent_submits_from_two_stores_accept_each_key_once(store_url: str) -> None:
    """Group commit: a burst of submits (duplicates among them, from two engines standing for
    two web processes) records every key once and tells each duplicate so."""
    stores = [Store.open(store_url), Store.open(store_url)]
    results: list[tuple[str, int | None]] = []
    barrier = threading.Barrier(8)

    def web(n: int) -> None:
        store = stores[n % 2]
        barrier.wait()
        for i in range(25):
            key = f"burst-{(i + n) % 30}"  # every key is sent by several threads
            results.append((key, store.jobs.submit(key, "message", {"n": n})))

    threads = [threading.Thread(target=web, args=(n,)) for n in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    accepted = [(key, job_id) for key, job_id in results if job_id is not None]
    assert len(results) == 200
    assert sorted(key for key, _ in accepted) == sorted({key for key, _ in results})
    assert len({job_id for _, job_id in accepted}) == len(accepted)
    for store in stores:
        claimed = 0
        while store.jobs.claim(lease=timedelta(minutes=5)) is not None:
            claimed += 1
        if claimed:
            assert claimed == len(accepted)
    for store in stores:
        store.close()


def test_sqlite_writers_of_other_processes_queue_on_the_lock_file(tmp_path: object) -> None:
    """A writer elsewhere holding the lock file holds back this process's writes until done."""
    import fcntl
    import os

    store = Store.open(f"sqlite:///{tmp_path}/pipebot.db")
    lock = os.open(f"{tmp_path}/pipebot.db-writers.lock", os.O_RDWR | os.O_CREAT)
    fcntl.flock(lock, fcntl.LOCK_EX)
    done = threading.Event()
    writer = threading.Thread(target=lambda: (store.jobs.submit("held", "message", {}), done.set()))
    writer.start()
    assert not done.wait(0.5), "the write did not wait for the other process's lock"
    fcntl.flock(lock, fcntl.LOCK_UN)
    assert done.wait(5)
    writer.join()
    os.close(lock)
    assert store.jobs.status("held") == "queued"
    store.close()


def test_claims_from_two_engines_on_one_sqlite_file(tmp_path: object) -> None:
    """Two processes' worth of engines on one SQLite file still claim each row once."""
    url = f"sqlite:///{tmp_path}/shared.db"
    first, second = Store.open(url), Store.open(url)
    for i in range(30):
        first.jobs.submit(f"j{i}", "message", {})
    claimed: list[int] = []
    barrier = threading.Barrier(4)

    def worker(store: Store) -> None:
        barrier.wait()
        while (job := store.jobs.claim(lease=timedelta(minutes=5))) is not None:
            claimed.append(job.id)

    threads = [threading.Thread(target=worker, args=(s,)) for s in (first, second, first, second)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(claimed) == 30 and len(set(claimed)) == 30
    first.close()
    second.close()


def test_two_processes_migrating_a_new_database_at_once(store_url: str) -> None:
    """`--role web` and `--role worker` start together on a fresh database."""
    import subprocess
    import sys

    code = "import sys; from bot.store import Store; Store.open(sys.argv[1]).close()"
    starts = [
        subprocess.Popen([sys.executable, "-c", code, store_url], stderr=subprocess.PIPE, text=True)
        for _ in range(3)
    ]
    failures = [p.communicate(timeout=120)[1] for p in starts if p.wait(timeout=120) != 0]
    assert failures == []
    opened = Store.open(store_url, upgrade=False)
    assert schema.current_revision(opened.engine) == schema.head_revision(opened.engine)
    opened.close()

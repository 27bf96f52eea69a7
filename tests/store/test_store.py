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
        context = MigrationContext.configure(
            connection, opts={"include_object": schema.include_object}
        )
        diff = compare_metadata(context, Base.metadata)
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
        "workers",
        "accepted_events",
    } <= tables
    if store.backend == "postgresql":  # procrastinate's schema, applied by migration 0003
        assert {"procrastinate_jobs", "procrastinate_workers"} <= tables


def test_upgrade_is_idempotent(store_url: str) -> None:
    first = Store.open(store_url)
    second = Store.open(store_url)  # a second start must not fail or re-create
    assert schema.current_revision(second.engine) == schema.head_revision(second.engine)
    first.close()
    second.close()


def test_an_event_is_marked_once_even_concurrently(store: Store) -> None:
    """The mark is written in the caller's transaction; of eight racing runs one wins."""
    results: list[bool] = []
    barrier = threading.Barrier(8)

    def mark(n: int) -> None:
        barrier.wait()
        with store.sessions.begin() as session:
            results.append(store.events.mark(session, "slack:T1:Ev1", result={"n": n}))

    threads = [threading.Thread(target=mark, args=(n,)) for n in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(results) == [False] * 7 + [True]
    handled, result = store.events.result("slack:T1:Ev1")
    assert handled and set(result) == {"n"}
    assert store.events.result("slack:T1:Ev2") == (False, None)


def test_a_mark_rolled_back_with_its_effect_was_never_made(store: Store) -> None:
    """A run that fails after marking (its effect could not be stored) leaves no mark, so the
    retry does the work again."""

    def fail_after_marking() -> None:
        with store.sessions.begin() as session:
            assert store.events.mark(session, "alert:x", result=["post"])
            raise RuntimeError("the incident could not be stored")

    with pytest.raises(RuntimeError):
        fail_after_marking()
    assert not store.events.seen("alert:x")


def test_prune_forgets_old_events(store: Store) -> None:
    with store.sessions.begin() as session:
        store.events.mark(session, "old")
    assert store.events.prune(datetime.now(UTC) + timedelta(seconds=1)) == 1
    assert not store.events.seen("old")


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


def test_an_outbox_row_counts_attempts_and_keeps_its_first_body(store: Store) -> None:
    target = {"platform": "slack", "workspace": "T1", "channel": "C1", "kind": "post"}
    first = store.outbox.attempt("reply:Ev1", body={"text": "hi"}, thread="1.2", **target)
    assert (first.status, first.attempts, first.body) == ("sending", 1, {"text": "hi"})
    store.outbox.failed(first.id, "ConnectionResetError")
    again = store.outbox.attempt("reply:Ev1", body={"text": "re-rendered"}, thread="1.2", **target)
    assert (again.id, again.attempts, again.body) == (first.id, 2, {"text": "hi"})
    assert again.last_error == "ConnectionResetError"
    store.outbox.sent(again.id, "1700000000.000200")
    item = store.outbox.get("reply:Ev1")
    assert item is not None and item.status == "sent" and item.remote_ref == "1700000000.000200"
    after = store.outbox.attempt("reply:Ev1", body={}, thread="1.2", **target)
    assert (after.status, after.attempts) == ("sent", 2)  # a sent row is final
    assert store.outbox.counts() == {"sent": 1}


def test_outbox_keys_longer_than_the_column_stay_distinct(store: Store) -> None:
    target = {"platform": "slack", "workspace": "T", "channel": "C", "kind": "post", "thread": None}
    long = "slack:incident:" + "x" * 400
    a = store.outbox.attempt(long + ":0", body={}, **target)
    b = store.outbox.attempt(long + ":1", body={}, **target)
    assert a.id != b.id and len(a.key) == 255
    assert store.outbox.get(long + ":1") is not None


def test_jobs_submit_once_claim_finish_and_retry(store: Store) -> None:
    job_id = store.jobs.submit("slack:Ev9", "message", {"text": "status"})
    assert job_id is not None
    assert store.jobs.submit("slack:Ev9", "message", {"text": "status"}) is None
    job = store.jobs.claim("w1")
    assert job is not None and job.payload == {"text": "status"} and job.attempts == 1
    assert store.jobs.claim("w1") is None
    store.jobs.retry(job.id, "w1", "boom", at=datetime.now(UTC) - timedelta(seconds=1))
    again = store.jobs.claim("w2")
    assert again is not None and again.attempts == 2
    store.jobs.finish(again.id, "w1")  # not its worker any more: nothing changes
    assert store.jobs.status("slack:Ev9") == "running"
    store.jobs.finish(again.id, "w2")
    assert store.jobs.status("slack:Ev9") == "done"


def test_jobs_of_dead_workers_go_back_to_the_queue(store: Store) -> None:
    store.jobs.submit("a", "message", {})
    store.jobs.submit("b", "message", {})
    assert store.jobs.claim("alive") is not None
    assert store.jobs.claim("dead") is not None
    assert store.jobs.release_dead(["alive"]) == 1
    assert store.jobs.claim("alive") is not None  # b, again
    assert store.jobs.counts() == {"running": 2}


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
    job = store.jobs.claim("w")
    assert job is not None
    with pytest.raises(Exception, match="naive datetime"):
        store.jobs.retry(job.id, "w", "x", at=datetime.now())


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


def test_concurrent_claims_never_share_a_job(store: Store) -> None:
    for i in range(40):
        store.jobs.submit(f"j{i}", "message", {})
    jobs: list[int] = []
    barrier = threading.Barrier(6)

    def worker(n: int) -> None:
        barrier.wait()
        while (job := store.jobs.claim(f"w{n}")) is not None:
            jobs.append(job.id)

    threads = [threading.Thread(target=worker, args=(n,)) for n in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(jobs) == sorted(set(jobs)) and len(jobs) == 40


def test_concurrent_submits_from_two_stores_accept_each_key_once(store_url: str) -> None:
    """A burst of submits (duplicates among them, from two engines standing for two
    processes) records every key once and tells each duplicate so."""
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
        store.close()


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


def test_a_named_lock_has_one_holder_at_a_time(store: Store) -> None:
    order: list[str] = []
    inside = threading.Event()
    release = threading.Event()

    def first() -> None:
        with store.locks.hold("alert:x") as held:
            assert held
            order.append("first in")
            inside.set()
            release.wait(10)
            order.append("first out")

    holder = threading.Thread(target=first)
    holder.start()
    assert inside.wait(10)
    with store.locks.hold("alert:x", timeout=0.2) as held:
        assert not held  # not had in time: the caller goes ahead anyway
    with store.locks.hold("alert:other") as held:
        assert held  # another name is free
    release.set()
    with store.locks.hold("alert:x", timeout=10) as held:
        assert held
        order.append("second in")
    holder.join(10)
    assert order == ["first in", "first out", "second in"]

"""Kept dbt runs on SQLite and on the real PostgreSQL (each test runs on both)."""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta

from sqlalchemy import inspect

from bot.facts import DbtResult, DbtRun
from bot.store import Store

T0 = datetime(2026, 11, 25, 6, 0, tzinfo=UTC)
KEY = "dbt-artifacts:/srv/shop/target"


def _run(ident: str, at: datetime, *statuses: str) -> DbtRun:
    return DbtRun(
        invocation_id=ident,
        command="build",
        generated_at=at,
        elapsed_s=12.5,
        results=tuple(
            DbtResult(
                unique_id=f"model.shop.m{n}",
                status=status,
                message="Binder Error: …" if status == "error" else "",
                failures=None,
                completed_at=at,
                compiled_code="select 1" if status == "error" else "",
            )
            for n, status in enumerate(statuses)
        ),
        cloud_run_id=None,
    )


def test_the_table_exists(store: Store) -> None:
    assert "dbt_kept_runs" in inspect(store.engine).get_table_names()


def test_a_kept_run_comes_back_whole(store: Store) -> None:
    assert store.dbt_runs.kept(KEY) is None and store.dbt_runs.kept_id(KEY) is None
    run = _run("a", T0, "success", "error")
    assert store.dbt_runs.keep(KEY, run, seen_at=T0 + timedelta(minutes=1))
    kept = store.dbt_runs.kept(KEY)
    assert kept is not None
    assert kept.run == run
    assert kept.seen_at == T0 + timedelta(minutes=1)
    assert store.dbt_runs.kept_id(KEY) == "a"
    assert store.dbt_runs.kept("dbt-cloud:1:job:2") is None  # per project


def test_newer_runs_replace_older_never_the_reverse(store: Store) -> None:
    assert store.dbt_runs.keep(KEY, _run("a", T0, "error"))
    assert not store.dbt_runs.keep(KEY, _run("a", T0, "error"))  # seen again: no write
    assert store.dbt_runs.keep(KEY, _run("b", T0 + timedelta(hours=1), "success"))
    # An older copy of the artifacts put back in the folder does not displace the newer run.
    assert not store.dbt_runs.keep(KEY, _run("a", T0, "error"))
    kept = store.dbt_runs.kept(KEY)
    assert kept is not None and kept.run.invocation_id == "b"


def test_racing_processes_keep_the_newest(store: Store) -> None:
    runs = [_run(f"r{n}", T0 + timedelta(minutes=n), "success") for n in range(8)]
    barrier = threading.Barrier(len(runs))

    def keep(run: DbtRun) -> None:
        barrier.wait()
        store.dbt_runs.keep(KEY, run)

    threads = [threading.Thread(target=keep, args=(run,)) for run in runs]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    kept = store.dbt_runs.kept(KEY)
    assert kept is not None and kept.run.invocation_id == "r7"

"""SIGKILL mid-job, on SQLite and on the real PostgreSQL: a slash command and an Airflow alert
whose jobs are running when `pipebot serve` dies are answered exactly once after a restart, and
within 60 s of the kill."""

from __future__ import annotations

import signal
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text

from tests.crash.support import ALERT_CHANNEL, Serve, post_keys, text_of
from tests.fakes.airflow_server import GatedAirflow
from tests.fakes.slack_api import FakeSlack

# The recorded failing run of the demo's orders_daily DAG.
RUN_ID = "manual__2026-11-25T20:42:42.032326+00:00"
RECOVERY_S = 60


def running_jobs(database_url: str) -> int:
    engine = create_engine(database_url)
    try:
        with engine.connect() as connection:
            if engine.dialect.name == "postgresql":
                query = "select count(*) from procrastinate_jobs where status = 'doing'"
            else:
                query = "select count(*) from jobs where status = 'running'"
            return int(connection.execute(text(query)).scalar_one())
    finally:
        engine.dispose()


def wait_for(condition: Callable[[], object], timeout: float, what: str) -> None:
    """Poll `condition` until it holds; fail naming `what` once `timeout` s have passed."""
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"{what} within {timeout} s"
        time.sleep(0.1)


@pytest.fixture(params=["sqlite", "postgresql"])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path}/crash.db"
    return str(request.getfixturevalue("pg_url"))


@pytest.fixture
def fake() -> Iterator[FakeSlack]:
    with FakeSlack() as running:
        yield running


def test_jobs_running_at_sigkill_are_answered_once_after_a_restart(
    database_url: str, fake: FakeSlack, tmp_path: Path
) -> None:
    with GatedAirflow() as airflow:
        serve = Serve(tmp_path, database_url=database_url, fake=fake, airflow_url=airflow.url)
        airflow.close_gate()
        serve.start()
        try:
            assert serve.command("triage orders_daily")[0] == 200
            alert = {"dag_id": "orders_daily", "run_id": RUN_ID, "task_id": "transform"}
            assert serve.airflow_alert({**alert, "state": "failed"}).status_code == 200
            # Both jobs are mid-flight: one waits on Airflow, the other on the first one's login.
            airflow.wait_blocked(1, timeout=30)
            wait_for(lambda: running_jobs(database_url) == 2, 30, "two jobs running")
            fake.wait_until(lambda f: len(f.messages("C1")) == 1, 30)  # "working…" is up
            serve.kill()
            killed_at = time.monotonic()
            airflow.open_gate()

            serve.start()
            fake.wait_until(
                lambda f: (
                    any("KeyError" in text_of(m) for m in f.messages("C1"))
                    and any("KeyError" in text_of(m) for m in f.messages(ALERT_CHANNEL))
                ),
                timeout=RECOVERY_S,
            )
            answered_after = time.monotonic() - killed_at
            wait_for(lambda: running_jobs(database_url) == 0, 30, "no job left running")
        finally:
            serve.stop()
    assert answered_after < RECOVERY_S
    # Exactly once: one top-level message per conversation, and no key posted twice.
    command_top = [m for m in fake.messages("C1") if m.get("thread_ts") in (None, m["ts"])]
    assert len(command_top) == 1, command_top
    assert "orders_daily failed" in text_of(command_top[0])  # "working…" became the answer
    alert_top = [m for m in fake.messages(ALERT_CHANNEL) if m.get("thread_ts") in (None, m["ts"])]
    assert len(alert_top) == 1, alert_top
    assert "transform" in text_of(alert_top[0])
    assert all(count == 1 for count in post_keys(fake).values()), post_keys(fake)
    store = database_url.split(":", maxsplit=1)[0]
    print(f"\n[{store}] answered {answered_after:.1f} s after SIGKILL")


def test_sigterm_lets_the_running_job_finish_and_nothing_is_posted_twice(
    database_url: str, fake: FakeSlack, tmp_path: Path
) -> None:
    with GatedAirflow() as airflow:
        serve = Serve(tmp_path, database_url=database_url, fake=fake, airflow_url=airflow.url)
        airflow.close_gate()
        serve.start()
        try:
            assert serve.command("triage orders_daily")[0] == 200
            airflow.wait_blocked(1, timeout=30)
            wait_for(lambda: running_jobs(database_url) == 1, 30, "the job running")
            assert serve.process is not None
            serve.process.send_signal(signal.SIGTERM)
            airflow.open_gate()  # the job can finish while the process drains
            serve.process.wait(60)
            # uvicorn re-raises the signal it handled once it has shut down gracefully.
            assert serve.process.returncode in (0, -signal.SIGTERM), serve.tail()
            assert "Application shutdown complete" in serve.tail()
            fake.wait_until(lambda f: any("KeyError" in text_of(m) for m in f.messages("C1")), 30)
            serve.start()  # a restart finds nothing left to do
            wait_for(lambda: running_jobs(database_url) == 0, 30, "no job left running")
        finally:
            serve.stop()
    top = [m for m in fake.messages("C1") if m.get("thread_ts") in (None, m["ts"])]
    assert len(top) == 1 and "orders_daily failed" in text_of(top[0])
    assert all(count == 1 for count in post_keys(fake).values()), post_keys(fake)

"""`bot.metrics` in the core: job runs timed on both engines (their log lines naming the job),
store gauges that survive a store outage, failures classified for the connector series."""

from __future__ import annotations

import io
import json
import logging
import threading
import uuid
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import create_engine

from bot import logs, metrics
from bot.errors import NotFound, ReadOnlyViolation, SourceAuthError, SourceError, SourceUnavailable
from bot.redaction import Redactor
from bot.store import Store
from bot.work import Attempt, Engine, JobKind, Policy
from bot.work.local import LocalEngine
from tests.server.scrape import Scrape


def engine_for(store: Store, **options: Any) -> Engine:
    if store.backend == "postgresql":
        from bot.work.postgres import ProcrastinateEngine

        return ProcrastinateEngine(store, **options)
    return LocalEngine(store, poll=0.05, **options)


def job_seconds(kind: str, outcome: str) -> float:
    value = metrics.REGISTRY.get_sample_value(
        "pipebot_job_duration_seconds_count", {"kind": kind, "outcome": outcome}
    )
    return value or 0.0


def test_each_job_run_is_timed_and_its_log_lines_name_the_job(store: Store) -> None:
    kind = f"metrics-{uuid.uuid4().hex[:6]}"
    stream = io.StringIO()
    logs.configure(level="INFO", fmt="json", redactor=Redactor.build([]), stream=stream)
    done = threading.Event()

    def run(payload: dict[str, str], attempt: Attempt) -> None:
        logging.getLogger("pipebot.test").info("working on %s", payload["what"])
        if attempt.number == 1:
            raise RuntimeError("the first run fails")
        done.set()

    engine = engine_for(store, policy=Policy(max_attempts=2))
    engine.register([JobKind(kind, run, dict)])
    engine.start()
    try:
        assert engine.submit("metrics:job:1", kind, {"what": "it"})
        assert done.wait(30)
        assert engine.wait_idle(30)
    finally:
        engine.stop(5)
    assert job_seconds(kind, "error") == 1
    assert job_seconds(kind, "done") == 1
    lines = [json.loads(line) for line in stream.getvalue().splitlines() if line.startswith("{")]
    working = [line for line in lines if line["msg"] == "working on it"]
    assert len(working) == 2
    assert all(line["job"] == "metrics:job:1" and line["job_kind"] == kind for line in working)


def test_a_store_that_cannot_be_read_is_reported_not_raised(tmp_path: Path) -> None:
    broken = Store.from_engine(create_engine(f"sqlite:///{tmp_path}/missing/nothing.db"))
    body = metrics.exposition(metrics.StoreGauges(broken, LocalEngine(broken)))
    scraped = Scrape.parse(body.decode())
    assert scraped.value("pipebot_store_up") == 0
    assert "pipebot_jobs" not in scraped.families
    assert "pipebot_events_received_total" in scraped.families  # the counters still answer


def test_oldest_waiting_job_age_comes_from_the_store(store: Store) -> None:
    engine = engine_for(store)
    assert engine.oldest_waiting() is None
    assert engine.submit("metrics:age:1", "never-run", {})
    scraped = Scrape.parse(metrics.exposition(metrics.StoreGauges(store, engine)).decode())
    assert scraped.value("pipebot_jobs", status="queued") == 1
    assert 0 <= scraped.value("pipebot_job_oldest_age_seconds") < 60


@pytest.mark.parametrize(
    ("error", "reason"),
    [
        (SourceAuthError("Airflow", "401"), "auth"),
        (NotFound("Airflow", "no such DAG"), "not_found"),
        (ReadOnlyViolation("warehouse", "a write"), "refused"),
        (SourceUnavailable("warehouse", "timed out"), "unavailable"),
        (SourceError("dbt", "odd answer"), "error"),
        (ValueError("a bug"), "error"),
    ],
)
def test_failures_are_classified_for_the_connector_series(
    error: BaseException, reason: str
) -> None:
    labels = {"connector": "warehouse", "operation": f"test-{type(error).__name__}"}
    with pytest.raises(type(error)), metrics.connector_call(**labels):
        raise error
    errors = {**labels, "reason": reason}
    assert metrics.REGISTRY.get_sample_value("pipebot_connector_errors_total", errors) == 1
    assert metrics.REGISTRY.get_sample_value("pipebot_connector_requests_total", labels) == 1

"""`dag`, `runs` and `digest` against the real Airflow of the harness, Airflow 3 and Airflow 2:
each test runs on both and expects the same facts — durations, owners, order, import errors.

The fixture's runs (tests/stack/airflow_fixtures.py): shop_ingest twice (the second triggered
after the first finished but dated 2026-01-05, so it ran last yet has the earliest logical
date), orders_daily once (fails in `transform`), payments_sync once (succeeds on its retry),
and broken_dag.py as an import error. No scheduled run is ever created.
"""

from __future__ import annotations

import re
from collections.abc import Callable

import pytest

from bot.commands import Request
from bot.messages import Reply, Tone
from bot.playbooks import dag, digest, runs
from bot.ports import Sources
from bot.rendering import to_text
from integrations.airflow import AirflowClient
from tests.agent.support import ProgressLog, inbound
from tests.stack.airflow_fixtures import AirflowEnv

pytestmark = pytest.mark.integration

Ask = Callable[..., Reply]


@pytest.fixture
def ask(any_airflow: AirflowEnv) -> Ask:
    client = AirflowClient(any_airflow.base_url, username="viewer", password="viewer")
    sources = Sources(airflow=client)

    def run(command: Callable[[Request], Reply], *args: str) -> Reply:
        request = Request(
            message=inbound(" ".join(args)), args=args, sources=sources, progress=ProgressLog()
        )
        return command(request)

    return run


def field(reply: Reply, label: str) -> str:
    return next(
        f.value for s in (*reply.sections, *reply.details) for f in s.fields if f.label == label
    )


def run_ids(bullets: tuple[str, ...]) -> list[str]:
    return [re.findall(r"`([^`]+)`", b)[-1] for b in bullets]


def test_dag_shows_owner_overdue_next_run_runs_and_the_failed_tasks(ask: Ask) -> None:
    reply = ask(dag.run, "orders_daily")
    assert reply.title == "DAG orders_daily"
    assert reply.tone is Tone.ERROR
    assert field(reply, "Owners").lstrip("@") == "dana"  # one person, one mention
    # The harness never schedules, so the run due at the end of the last interval (a
    # midnight) was never created: shown as overdue, never as a run still ahead.
    assert re.fullmatch(
        r"\d{4}-\d\d-\d\d 00:00 UTC — overdue by .+: not started yet; is the scheduler running\?",
        field(reply, "Next run"),
    ), field(reply, "Next run")
    [last_runs] = [s for s in reply.sections if s.heading == "Last 1 runs"]
    assert last_runs.text == "0 of 1 finished runs succeeded."
    assert re.search(r", took \d", last_runs.bullets[0])  # a duration on Airflow 2 as well
    failed = reply.sections[-1]
    assert failed.heading == "Latest run failed"
    assert sorted(failed.bullets) == [
        "↑✗ `notify` upstream_failed",  # no duration: they never ran (Airflow 2 says 0 s)
        "↑✗ `publish_dashboard` upstream_failed",
        failed.bullets[0],
    ]
    assert re.fullmatch(r"✗ `transform` failed, try 1 of 1, [\d.]+m?s", failed.bullets[0])


def test_runs_of_a_dag_are_ordered_by_when_they_ran(ask: Ask, any_airflow: AirflowEnv) -> None:
    reply = ask(runs.run, "shop_ingest")
    assert reply.title == "Last 2 runs of DAG shop_ingest"
    [section] = reply.sections
    # The run dated 2026-01-05 ran last: it is the newest, whatever its logical date.
    assert run_ids(section.bullets) == [any_airflow.late_run_id, any_airflow.run_ids["shop_ingest"]]
    assert all(re.search(r"took \d", b) for b in section.bullets)
    assert section.text == "2 success"


def test_runs_of_all_dags_newest_first(ask: Ask, any_airflow: AirflowEnv) -> None:
    reply = ask(runs.run)
    [section] = reply.sections
    ids = run_ids(section.bullets)
    assert ids[0] == any_airflow.late_run_id
    assert set(ids) == {any_airflow.late_run_id, *any_airflow.run_ids.values()}
    assert section.text == "3 success, 1 failed"


def test_runs_of_an_unknown_dag_suggest_close_names(ask: Ask) -> None:
    # Airflow 2 lists no runs for an unknown DAG, Airflow 3 answers 404: one answer for both.
    reply = ask(runs.run, "shop_ingst")
    assert reply.title == "No DAG `shop_ingst`"
    assert reply.text.startswith("Airflow has no DAG `shop_ingst`. Did you mean `shop_ingest`?")
    assert "/api/" not in reply.text


def test_dag_that_is_only_an_import_error(ask: Ask) -> None:
    reply = ask(dag.run, "shop_refunds")
    assert reply.title == "shop_refunds: its DAG file fails to import"
    assert field(reply, "Error") == "`ModuleNotFoundError: No module named 'shop_refunds_sdk'`"


def test_digest_counts_the_same_runs_on_both(ask: Ask, any_airflow: AirflowEnv) -> None:
    reply = ask(digest.run)
    text = to_text(reply)
    assert reply.title == (
        "Pipeline digest, last 24 hours — needs attention: 1 failing DAG (1 new), "
        "1 DAG import error"
    )
    [airflow] = [s for s in reply.details if s.heading == "Airflow"]
    assert field(reply, "Runs finished") == "4, 3 succeeded (75%)"
    assert field(reply, "Running or queued") == "0"
    assert field(reply, "DAGs that ran") == "3"
    assert field(reply, "Import errors") == "1"
    orders = any_airflow.run_ids["orders_daily"]
    assert airflow.bullets[0] == (
        "✗ `orders_daily` (new failure) — 1 of 1 runs failed, 1 failure in a row, "
        "no success in the window; "
        f"latest `{orders}` (`triage orders_daily`)"
    )
    # shop_ingest first: its last run is the newest.
    assert "✓ all runs succeeded: `shop_ingest` (2), `payments_sync` (1)" in text
    assert re.search(r"import error in `(.*/)?broken_dag\.py`", text)

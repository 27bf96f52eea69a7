"""AirflowClient against the real Airflow 2.10.5 of the second harness (tests/stack/airflow2.py):
``/api/v1``, basic auth, the FAB *Viewer* role. The facts the playbooks need come out as they
do from Airflow 3 (test_client_live.py); where Airflow 2 answers differently, the client says
the same thing anyway (durations, the next run, order, tries)."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import urlsplit

import pytest
import requests
from requests.adapters import HTTPAdapter

from bot.errors import NotFound, SourceAuthError, SourceError
from integrations.airflow import AirflowClient
from tests.stack.airflow_fixtures import LATE_LOGICAL_DATE, AirflowEnv

pytestmark = pytest.mark.integration


@pytest.fixture(params=["admin", "viewer"])
def client(request: pytest.FixtureRequest, airflow2_stack: AirflowEnv) -> AirflowClient:
    user = getattr(airflow2_stack, request.param)
    return AirflowClient(airflow2_stack.base_url, username=user.username, password=user.password)


def test_version_health_and_detected_api(client: AirflowClient) -> None:
    assert client.api_version == "v1"
    assert client.version() == "2.10.5"
    health = client.health()
    assert health.healthy and health.scheduler_heartbeat is not None
    check = client.check()
    assert check.ok, check.detail
    assert check.detail == f"API v1 reachable; user {client._username} can read DAGs and DAG runs"


def test_dags_owners_and_the_next_run_when_it_is_due(client: AirflowClient) -> None:
    dags = {d.dag_id: d for d in client.dags()}
    assert set(dags) == {"shop_ingest", "orders_daily", "payments_sync"}
    assert dags["orders_daily"].owners == ("dana",)
    assert dags["payments_sync"].owners == ("data-platform",)
    assert dags["orders_daily"].fileloc.endswith("/dags/orders_daily.py")
    # The next run is due at a midnight: when it is created, not its logical date (the day
    # before), which is what Airflow 2's `next_dagrun` holds.
    raw = requests.get(
        f"{client.base_url}/api/v1/dags/orders_daily", auth=("viewer", "viewer"), timeout=10
    ).json()
    due = dags["orders_daily"].next_run
    assert due == datetime.fromisoformat(raw["next_dagrun_create_after"])
    assert due - datetime.fromisoformat(raw["next_dagrun"]) == timedelta(days=1)


def test_runs_have_durations_and_are_ordered_by_when_they_ran(
    client: AirflowClient, airflow2_stack: AirflowEnv
) -> None:
    runs = client.runs("shop_ingest")
    assert [r.run_id for r in runs] == [
        airflow2_stack.late_run_id,
        airflow2_stack.run_ids["shop_ingest"],
    ]
    assert runs[0].logical_date == datetime.fromisoformat(LATE_LOGICAL_DATE)
    assert runs[0].logical_date < runs[1].logical_date  # type: ignore[operator]
    assert runs[0].start_date > runs[1].start_date  # type: ignore[operator]
    for run in client.runs(limit=50):
        assert run.start_date and run.end_date and run.duration_s is not None
        assert run.duration_s == (run.end_date - run.start_date).total_seconds()
    started = [r.start_date for r in client.runs(limit=50)]
    assert started == sorted(started, reverse=True)  # type: ignore[type-var]
    since = datetime.now(UTC) - timedelta(hours=24)
    failed = client.runs(states=("failed",), since=since)
    assert [r.run_id for r in failed] == [airflow2_stack.run_ids["orders_daily"]]


def test_failing_run_tasks_and_log(client: AirflowClient, airflow2_stack: AirflowEnv) -> None:
    run_id = airflow2_stack.run_ids["orders_daily"]
    run = client.run("orders_daily", run_id)
    assert (run.state, run.run_type, run.triggered_by) == ("failed", "manual", "external")
    tasks = {t.task_id: t for t in client.task_instances("orders_daily", run_id)}
    assert tasks["transform"].state == "failed"
    assert tasks["transform"].duration_s is not None
    assert tasks["notify"].state == "upstream_failed" and tasks["notify"].duration_s is None
    log = client.task_log("orders_daily", run_id, "transform", 1)
    assert log.errors[0].exc_type == "KeyError"
    assert "column 'amount' missing from raw.orders" in log.errors[0].message
    assert any(re.search(r"orders_daily.py:\d+ in transform$", f) for f in log.errors[0].frames)


def test_tries_endpoint_of_2_10(client: AirflowClient, airflow2_stack: AirflowEnv) -> None:
    run_id = airflow2_stack.run_ids["payments_sync"]
    tries = client.tries("payments_sync", run_id, "sync_payments")
    assert [(t.try_number, t.state, t.inferred) for t in tries] == [
        (1, "failed", ""),
        (2, "success", ""),
    ]
    first = client.task_log("payments_sync", run_id, "sync_payments", 1)
    assert first.errors[0].exc_type == "ConnectionError"


def test_import_errors(client: AirflowClient) -> None:
    [error] = client.import_errors()
    assert error.filename.endswith("/dags/broken_dag.py")
    assert "ModuleNotFoundError: No module named 'shop_refunds_sdk'" in error.stack_trace


def test_unknown_dag(client: AirflowClient) -> None:
    with pytest.raises(NotFound) as caught:
        client.dag("orders_dialy")
    assert caught.value.suggestions == ("orders_daily",)
    assert caught.value.reason == "Airflow has no DAG `orders_dialy`"


def test_forcing_api_v2_on_airflow_2_says_what_to_set(airflow2_stack: AirflowEnv) -> None:
    client = AirflowClient(
        airflow2_stack.base_url, username="viewer", password="viewer", api_version="v2"
    )
    with pytest.raises(SourceError) as caught:
        client.dag("orders_daily")
    assert not isinstance(caught.value, NotFound)
    assert "Airflow 2.10.5 serves /api/v1: set PIPEBOT_AIRFLOW__API_VERSION=v1" in str(caught.value)
    check = client.check()
    assert not check.ok and "PIPEBOT_AIRFLOW__API_VERSION=v1" in check.detail


def test_viewer_may_read_but_not_trigger(airflow2_stack: AirflowEnv) -> None:
    answer = requests.post(
        f"{airflow2_stack.base_url}/api/v1/dags/shop_ingest/dagRuns",
        json={},
        auth=("viewer", "viewer"),
        timeout=10,
    )
    assert answer.status_code == 403
    check = AirflowClient(airflow2_stack.base_url, username="viewer", password="wrong").check()
    assert not check.ok and check.detail.startswith("not authenticated")
    with pytest.raises(SourceAuthError):
        AirflowClient(airflow2_stack.base_url, username="viewer", password="wrong").dags()


def test_only_gets_reach_airflow_2(airflow2_stack: AirflowEnv) -> None:
    seen: list[tuple[str, str]] = []

    class Spy(HTTPAdapter):
        def send(self, request: requests.PreparedRequest, **kwargs: Any) -> requests.Response:  # type: ignore[override]
            seen.append((request.method or "", urlsplit(request.url or "").path))
            return super().send(request, **kwargs)

    run_id = airflow2_stack.run_ids["payments_sync"]
    client = AirflowClient(
        airflow2_stack.base_url, username="viewer", password="viewer", adapter=Spy()
    )
    client.check()
    client.dag("payments_sync")
    client.runs("payments_sync", since=datetime.now(UTC) - timedelta(days=1))
    client.task_instances("payments_sync", run_id)
    client.tries("payments_sync", run_id, "sync_payments")
    client.task_log("payments_sync", run_id, "sync_payments", 2)
    client.import_errors()
    assert {method for method, _ in seen} == {"GET"}  # basic auth: not even a token exchange

"""What Airflow 2 answers differently, read right (issue 11): the connector against a served
Airflow 2 (`Airflow2`, shaped like the real 2.10.5 of tests/stack/airflow2.py) and, where the
two APIs differ, against Airflow 3 payloads too. The live tests prove the same on real servers.
"""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from bot.errors import NotFound, SourceError
from integrations.airflow import AirflowClient
from integrations.airflow.client import close_names
from integrations.errors import UpstreamNotFound
from tests.integrations.airflow.airflow2_served import Airflow2
from tests.integrations.airflow.served import V2_VERSION, Answer, ServedAdapter

FIRST = "manual__2026-12-03T01:58:57.418021+00:00"
LATE = "manual__2026-01-05T00:00:00+00:00"  # triggered after FIRST, for an earlier date


def shop() -> Airflow2:
    server = Airflow2()
    server.dag("shop_ingest", owner="data-platform")
    server.run(
        "shop_ingest",
        FIRST,
        "success",
        start="2026-12-03T01:58:58.000000+00:00",
        end="2026-12-03T01:59:14.500000+00:00",
    )
    server.run(
        "shop_ingest",
        LATE,
        "success",
        start="2026-12-03T02:00:30.000000+00:00",
        end="2026-12-03T02:00:41.000000+00:00",
    )
    return server  # fmt: skip


def test_v1_run_duration_is_end_minus_start() -> None:
    runs = {r.run_id: r for r in shop().client().runs("shop_ingest")}
    # Airflow 2's DAG runs have no `duration`: the end minus the start is the duration.
    assert runs[FIRST].duration_s == 16.5
    assert runs[LATE].duration_s == 11.0


def test_v1_next_run_is_when_it_is_created_not_its_logical_date() -> None:
    dag = shop().client().dag("shop_ingest")
    # next_dagrun is 2026-12-02 (the interval's start); the run is created at its end.
    assert dag.next_run == datetime(2026, 12, 3, tzinfo=UTC)


def test_v2_next_run_is_run_after_not_the_logical_date() -> None:
    payload = {
        "dag_id": "orders_daily",
        "next_dagrun_logical_date": "2026-12-02T00:00:00Z",
        "next_dagrun_run_after": "2026-12-03T00:00:00Z",
    }
    client = AirflowClient(
        "http://airflow.test",
        adapter=ServedAdapter(
            {
                ("GET", "/api/v2/version"): V2_VERSION,
                ("GET", "/api/v2/dags/orders_daily"): Answer(200, payload),
            }
        ),
    )
    assert client.dag("orders_daily").next_run == datetime(2026, 12, 3, tzinfo=UTC)


def test_runs_are_newest_first_by_when_they_ran_not_by_logical_date() -> None:
    server = shop()
    server.run("shop_ingest", "manual__2026-12-01T00:00:00+00:00", "queued", start=None, end=None)
    runs = server.client().runs("shop_ingest")
    # The queued run has not run yet, so it is the newest; then LATE, which ran after FIRST
    # although its logical date is eleven months earlier.
    assert [r.run_id for r in runs] == ["manual__2026-12-01T00:00:00+00:00", LATE, FIRST]
    asked = [dict(r.query) for r in server.adapter.received if r.path.endswith("/dagRuns")]
    assert asked[0]["order_by"] == "-id"


def test_tries_before_airflow_2_10_are_counted_from_the_try_number() -> None:
    server = Airflow2(version="2.9.3")
    server.dag("payments_sync", owner="data-platform")
    server.run("payments_sync", FIRST, "success", start=None, end=None)
    server.task("payments_sync", FIRST, "sync_payments", "success", try_number=2, max_tries=1)
    tries = server.client().tries("payments_sync", FIRST, "sync_payments")
    assert [(t.try_number, t.state) for t in tries] == [(1, None), (2, "success")]
    assert "new in Airflow 2.10" in tries[0].inferred
    assert tries[1].inferred == ""  # the task instance itself was read


def test_tries_since_airflow_2_10_are_read() -> None:
    server = Airflow2()
    server.dag("payments_sync", owner="data-platform")
    server.task("payments_sync", FIRST, "sync_payments", "success", try_number=2, max_tries=1,
                tries=("failed", "success"))  # fmt: skip
    tries = server.client().tries("payments_sync", FIRST, "sync_payments")
    assert [(t.try_number, t.state, t.inferred) for t in tries] == [
        (1, "failed", ""),
        (2, "success", ""),
    ]


def test_tries_of_a_task_that_does_not_exist_are_not_found_on_old_servers_too() -> None:
    server = Airflow2(version="2.9.3")
    server.dag("payments_sync")
    with pytest.raises(NotFound):
        server.client().tries("payments_sync", FIRST, "nope")


def test_forcing_v2_on_airflow_2_says_to_use_v1() -> None:
    client = shop().client(api_version="v2")
    with pytest.raises(SourceError) as caught:
        client.dags()
    assert not isinstance(caught.value, NotFound)  # not "no such DAG": a wrong setting
    assert caught.value.reason == (
        "http://airflow2.test has no /api/v2 — Airflow 2.10.5 serves /api/v1: set "
        "PIPEBOT_AIRFLOW__API_VERSION=v1 (or leave it unset to detect it)"
    )
    with pytest.raises(SourceError, match="API_VERSION=v1"):
        shop().client(api_version="v2").health()
    with pytest.raises(SourceError, match="API_VERSION=v1"):
        shop().client(api_version="v2").dag("shop_ingest")


def test_forcing_the_right_version_keeps_a_plain_not_found() -> None:
    client = shop().client(api_version="v1")
    with pytest.raises(UpstreamNotFound) as caught:
        client.dag("shop_ingst")
    assert caught.value.suggestions == ("shop_ingest",)
    with pytest.raises(UpstreamNotFound):
        client.dag("shop_ingst")
    # the version was checked once, after the first 404
    checks = [r.path for r in client_adapter(client).received if r.path.endswith("/version")]
    assert checks == ["/api/v1/version"]


def client_adapter(client: AirflowClient) -> ServedAdapter:
    adapter = client.session.get_adapter("http://airflow2.test")
    assert isinstance(adapter, ServedAdapter)
    return adapter


def test_unknown_dag_answers_with_close_names_and_no_http_path() -> None:
    server = shop()
    server.dag("orders_daily")
    with pytest.raises(NotFound) as caught:
        server.client().dag("daily_orders")
    assert caught.value.reason == "Airflow has no DAG `daily_orders`"
    assert "/api/" not in str(caught.value)
    assert caught.value.suggestions == ("orders_daily",)


@pytest.mark.parametrize(
    ("name", "close"),
    [
        ("orders_dialy", ["orders_daily"]),  # spelling
        ("orders", ["orders_daily"]),  # part of the name
        ("daily_orders", ["orders_daily"]),  # the same words in another order
        ("ORDERS_DAILY", ["orders_daily"]),
        ("shop_refunds", []),  # nothing alike: no suggestion rather than a wrong one
    ],
)
def test_close_names(name: str, close: list[str]) -> None:
    assert close_names(name, ["orders_daily", "payments_sync", "shop_ingest"]) == close

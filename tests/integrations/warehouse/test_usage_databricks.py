"""Databricks' spend and query history (`DatabricksUsage`) through the real databricks-sdk
against the local fake of the SQL Statement Execution API, which runs the statement over
system.billing.usage and system.query.history rows in DuckDB and answers INLINE JSON_ARRAY."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest

from bot.errors import SourceAuthError
from bot.settings import WarehouseSettings
from integrations.errors import UpstreamError
from integrations.warehouse import open_catalog, open_usage
from integrations.warehouse.databricks import DatabricksCatalog
from integrations.warehouse.databricks_usage import NO_WAREHOUSE, DatabricksUsage
from integrations.warehouse.usage_toolset import usage_toolset
from tests.fakes.databricks_api import FakeDatabricks

NOW = datetime(2026, 11, 25, 10, 0, tzinfo=UTC)
DAY = datetime(2026, 11, 24, tzinfo=UTC)
WINDOW = (DAY, DAY + timedelta(days=1))
WAREHOUSE = "8a1b2c3d4e5f6a7b"


@pytest.fixture
def dbx() -> Iterator[FakeDatabricks]:
    with FakeDatabricks(token="dapi-test") as fake:
        fake.add_schema("main", "mart")
        fake.warehouses.add(WAREHOUSE)
        for hour in range(6):
            fake.add_usage(
                DAY - timedelta(days=1) + timedelta(hours=hour), 2.0, warehouse_id=WAREHOUSE
            )
            fake.add_usage(DAY + timedelta(hours=hour), 2.0, warehouse_id=WAREHOUSE)
        for hour in range(6, 12):  # the jump: a serverless warehouse left running
            fake.add_usage(DAY + timedelta(hours=hour), 6.5, warehouse_id=WAREHOUSE)
        fake.add_usage(DAY + timedelta(hours=3), 4.0, job_id="912", product="JOBS")
        fake.add_usage(DAY + timedelta(hours=3), 99.0, unit="STORAGE_GB")  # not DBUs
        fake.add_statement(
            "01ef-slow",
            start=DAY + timedelta(hours=6),
            warehouse_id=WAREHOUSE,
            user="dbt-sp@example.com",
            seconds=3600,
            queued=120,
            task_seconds=50_000,
            read_bytes=800_000_000_000,
            client="dbt",
            text="MERGE INTO main.mart.fct_orders USING (SELECT * FROM raw WHERE k = 'x')",
        )
        fake.add_statement(
            "01ef-failed",
            start=DAY + timedelta(hours=7),
            warehouse_id=WAREHOUSE,
            status="FAILED",
            error="[UNRESOLVED_COLUMN] A column with name `amount` cannot be resolved.",
        )
        fake.add_statement(
            "01ef-other", start=DAY + timedelta(hours=8), warehouse_id="ffff", seconds=30
        )
        yield fake


def usage_for(dbx: FakeDatabricks, query: str = f"warehouse_id={WAREHOUSE}") -> DatabricksUsage:
    url = f"databricks://token:dapi-test@127.0.0.1:{dbx.port}?catalog=main&{query}"
    settings = WarehouseSettings(url=url, dbu_price=0.7)
    found = open_usage(settings, open_catalog(settings))
    assert isinstance(found, DatabricksUsage)
    return found


def test_the_warehouse_comes_from_warehouse_id_or_http_path(dbx: FakeDatabricks) -> None:
    assert usage_for(dbx).warehouse_id == WAREHOUSE
    by_path = usage_for(dbx, f"http_path=/sql/1.0/warehouses/{WAREHOUSE}")
    assert by_path.warehouse_id == WAREHOUSE
    assert f"SQL warehouse {WAREHOUSE}" in by_path.where
    catalog = DatabricksCatalog.from_url(f"databricks://token:t@127.0.0.1:{dbx.port}?catalog=main")
    assert catalog.warehouse_id is None


def test_spend_is_dbus_per_warehouse_job_and_day(dbx: FakeDatabricks) -> None:
    usage = usage_for(dbx)
    spend = usage.spend(*WINDOW)
    assert spend.unit == "DBUs"
    assert {(d.day.isoformat(), d.warehouse): d.amount for d in spend.days} == {
        ("2026-11-24", f"warehouse {WAREHOUSE}"): pytest.approx(6 * 2.0 + 6 * 6.5),
        ("2026-11-24", "job 912"): pytest.approx(4.0),
    }
    assert usage.spend(DAY - timedelta(days=1), DAY).total == pytest.approx(12.0)
    assert spend.price is not None and spend.price.origin == "PIPEBOT_WAREHOUSE__DBU_PRICE"
    assert usage.settles == timedelta(hours=6)


def test_statements_are_bound_tagged_and_cancelled_at_the_timeout(dbx: FakeDatabricks) -> None:
    usage_for(dbx).queries(*WINDOW, limit=3)
    (sent,) = dbx.statements
    assert sent["warehouse_id"] == WAREHOUSE
    assert sent["query_tags"] == [{"key": "app", "value": "pipebot"}]
    assert (sent["on_wait_timeout"], sent["wait_timeout"]) == ("CANCEL", "10s")
    assert (sent["disposition"], sent["format"], sent["row_limit"]) == ("INLINE", "JSON_ARRAY", 3)
    assert ":since" in sent["statement"] and "2026-11-24" not in sent["statement"]
    assert {p["name"]: p.get("value") for p in sent["parameters"]} == {
        "since": "2026-11-24T00:00:00.000000Z",
        "until": "2026-11-25T00:00:00.000000Z",
        "order": "slowest",
        "failed_only": "false",
        "warehouse": None,  # no value: NULL
    }


def test_queries(dbx: FakeDatabricks) -> None:
    usage = usage_for(dbx)
    slowest = usage.queries(*WINDOW, order="slowest", limit=5)
    assert [r.query_id for r in slowest.records] == ["01ef-slow", "01ef-other", "01ef-failed"]
    top = slowest.records[0]
    assert (top.user, top.tag, top.warehouse) == ("dbt-sp@example.com", "dbt", WAREHOUSE)
    assert (top.elapsed_s, top.queued_s, top.compute_s, top.bytes_scanned) == (
        3600,
        120,
        50_000,
        800_000_000_000,
    )
    assert top.started_at == DAY + timedelta(hours=6)
    assert "'x'" not in top.text and "k = '…'" in top.text
    assert slowest.notes == ("Tables read are not in system.query.history.",)
    failed = usage.queries(*WINDOW, order="newest", failed_only=True)
    assert [(r.query_id, r.failed) for r in failed.records] == [("01ef-failed", True)]
    assert failed.records[0].error.startswith("[UNRESOLVED_COLUMN]")
    one = usage.queries(*WINDOW, warehouse="ffff")
    assert [r.query_id for r in one.records] == ["01ef-other"]


def test_spend_tool_with_money(dbx: FakeDatabricks) -> None:
    tools = {t.name: t for t in usage_toolset(usage_for(dbx), now=lambda: NOW).tools()}
    spend = tools["warehouse_spend"].call({"days": 1, "until": "2026-11-24"})
    assert spend.status.value == "success", spend.error
    assert spend.data["total"] == pytest.approx(55.0)
    assert spend.data["previous_total"] == pytest.approx(12.0)
    assert spend.data["total_money_estimate"] == "USD 38.50"


def test_missing_grants_and_warehouse(dbx: FakeDatabricks) -> None:
    usage = usage_for(dbx)
    dbx.deny_system("billing")
    with pytest.raises(SourceAuthError) as caught:
        usage.spend(*WINDOW)
    assert "USE SCHEMA and SELECT on system.billing" in caught.value.reason
    assert "INSUFFICIENT_PERMISSIONS" in caught.value.reason
    dbx.deny_warehouse(WAREHOUSE)
    with pytest.raises(SourceAuthError) as denied:
        usage.queries(*WINDOW)
    assert "CAN USE on the SQL warehouse" in denied.value.reason
    assert not usage.check().ok
    without = usage_for(dbx, "schema=mart")
    with pytest.raises(UpstreamError) as caught_missing:
        without.spend(*WINDOW)
    assert caught_missing.value.reason == NO_WAREHOUSE

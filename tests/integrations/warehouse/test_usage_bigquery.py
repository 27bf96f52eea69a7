"""BigQuery's spend and query history (`BigQueryUsage`) through the real google-cloud-bigquery
client against the local fake: ``jobs.query`` over INFORMATION_SCHEMA.JOBS (run by the fake in
DuckDB, answered in the API's wire shape — int64-microsecond TIMESTAMP cells, REPEATED RECORD
cells) and a dry-run ``jobs.insert``."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest

from bot.errors import SourceAuthError
from bot.settings import WarehouseSettings
from integrations.errors import UpstreamError
from integrations.warehouse import open_catalog, open_usage
from integrations.warehouse.bigquery_usage import BigQueryUsage
from integrations.warehouse.usage_toolset import usage_toolset
from tests.fakes.bigquery_api import MIN_BILLED, FakeBigQuery

TIB = 1024**4
NOW = datetime(2026, 11, 25, 10, 0, tzinfo=UTC)
DAY = datetime(2026, 11, 24, tzinfo=UTC)
WINDOW = (DAY, DAY + timedelta(days=1))


def add_jobs(bq: FakeBigQuery) -> None:
    """The 24th: a dbt backfill bills 3 TiB; the 23rd: the usual 0.5 TiB."""
    bq.add_job(
        "bquxjob_backfill",
        created=DAY + timedelta(hours=8),
        user="dbt-prod@pipebot-test.iam.gserviceaccount.com",
        seconds=5400,
        queued=30,
        bytes_billed=3 * TIB,
        slot_ms=90_000_000,
        labels={"dbt_model": "fct_orders", "dbt_invocation": "backfill"},
        tables=["raw.orders", "raw.customers"],
        query="SELECT * FROM raw.orders WHERE email = 'dana@example.com'",
    )
    bq.add_job(
        "bquxjob_failed",
        created=DAY + timedelta(hours=9),
        user="analyst@example.com",
        seconds=2,
        error=("invalidQuery", "Unrecognized name: amount at [1:8]"),
        query="SELECT amount FROM mart.fct_orders",
    )
    bq.add_job(
        "bquxjob_script",  # a script's parent: its children carry the bytes
        created=DAY + timedelta(hours=10),
        statement_type="SCRIPT",
        bytes_billed=3 * TIB,
    )
    bq.add_job(
        "bquxjob_other_project",
        created=DAY + timedelta(hours=11),
        seconds=20,
        bytes_billed=TIB // 4,
        project="pipebot-sandbox",
    )
    bq.add_job(
        "bquxjob_daybefore",
        created=DAY - timedelta(hours=5),
        seconds=600,
        bytes_billed=TIB // 2,
        slot_ms=3_600_000,
        labels={"dbt_model": "fct_orders"},
    )


@pytest.fixture
def bq() -> Iterator[FakeBigQuery]:
    with FakeBigQuery("pipebot-test") as fake:
        fake.add_dataset("mart")
        add_jobs(fake)
        yield fake


def usage_for(bq: FakeBigQuery, **settings: object) -> BigQueryUsage:
    url = f"bigquery://pipebot-test?location=US&api_endpoint={bq.url}"
    warehouse = WarehouseSettings(url=url, **settings)  # type: ignore[arg-type]
    found = open_usage(warehouse, open_catalog(warehouse))
    assert isinstance(found, BigQueryUsage)
    return found


def test_spend_is_bytes_billed_per_project_and_day(bq: FakeBigQuery) -> None:
    usage = usage_for(bq)
    spend = usage.spend(*WINDOW)
    assert spend.unit == "bytes billed"
    rows = {(d.day.isoformat(), d.warehouse): d for d in spend.days}
    assert set(rows) == {("2026-11-24", "pipebot-test"), ("2026-11-24", "pipebot-sandbox")}
    mine = rows[("2026-11-24", "pipebot-test")]
    # The script's parent is not counted twice; failed jobs bill nothing here.
    assert (mine.amount, mine.queries) == (3 * TIB, 2)
    assert dict(mine.parts) == {"slot-hours": 25.0}
    assert spend.total == 3 * TIB + TIB // 4
    assert spend.price is not None and spend.price.cost(spend.total) == pytest.approx(3.25 * 6.25)
    assert "default" in spend.price.origin
    before = usage.spend(DAY - timedelta(days=1), DAY)
    assert before.total == TIB // 2


def test_query_requests_are_labelled_capped_and_bound(bq: FakeBigQuery) -> None:
    usage_for(bq, usage_max_bytes_billed=5 * 1024**3, statement_timeout=12).spend(*WINDOW)
    (body,) = bq.query_bodies
    assert body["labels"] == {"app": "pipebot"}
    assert body["maximumBytesBilled"] == str(5 * 1024**3)
    assert body["jobTimeoutMs"] == "12000"
    assert body["useQueryCache"] is False
    assert body["formatOptions"] == {"useInt64Timestamp": True}
    assert body["parameterMode"] == "NAMED"
    assert "`region-us`" in body["query"] and "@since" in body["query"]
    assert "2026-11-24" not in body["query"]  # the window is bound, never written in
    assert {p["name"]: p["parameterType"]["type"] for p in body["queryParameters"]} == {
        "since": "TIMESTAMP",
        "until": "TIMESTAMP",
    }


def test_queries_costliest_slowest_failed(bq: FakeBigQuery) -> None:
    usage = usage_for(bq)
    costliest = usage.queries(*WINDOW, order="costliest", limit=2)
    top = costliest.records[0]
    assert [r.query_id for r in costliest.records] == ["bquxjob_backfill", "bquxjob_other_project"]
    assert top.user == "dbt-prod@pipebot-test.iam.gserviceaccount.com"
    assert top.tag == "dbt_model=fct_orders, dbt_invocation=backfill"  # REPEATED labels
    assert top.tables == ("pipebot-test.raw.orders", "pipebot-test.raw.customers")
    assert (top.bytes_billed, top.elapsed_s, top.queued_s, top.compute_s) == (
        3 * TIB,
        5430,
        30,
        90_000,
    )
    assert top.started_at == DAY + timedelta(hours=8, seconds=30)  # int64 µs cells, decoded
    assert "dana@example.com" not in top.text
    assert costliest.cost_means.startswith("bytes billed")

    slowest = usage.queries(*WINDOW, order="slowest", limit=5)
    assert [r.query_id for r in slowest.records][:2] == [
        "bquxjob_backfill",
        "bquxjob_other_project",
    ]

    failed = usage.queries(*WINDOW, order="newest", failed_only=True)
    assert [(r.query_id, r.failed, r.status) for r in failed.records] == [
        ("bquxjob_failed", True, "DONE")
    ]
    assert failed.records[0].error == "invalidQuery: Unrecognized name: amount at [1:8]"
    sandbox = usage.queries(*WINDOW, warehouse="pipebot-sandbox")
    assert [r.query_id for r in sandbox.records] == ["bquxjob_other_project"]


def test_tools_answer_why_the_bill_jumped(bq: FakeBigQuery) -> None:
    tools = {t.name: t for t in usage_toolset(usage_for(bq), now=lambda: NOW).tools()}
    spend = tools["warehouse_spend"].call({"days": 1, "until": "2026-11-24"})
    assert spend.status.value == "success", spend.error
    assert spend.data["unit"] == "bytes billed"
    assert spend.data["total"] == 3 * TIB + TIB // 4
    assert spend.data["previous_total"] == TIB // 2
    assert spend.data["change_pct"] == 550.0
    assert spend.data["total_money_estimate"] == "USD 20.31"
    assert spend.data["by_warehouse"][0]["warehouse"] == "pipebot-test"
    queries = tools["warehouse_queries"].call({"until": "2026-11-25", "limit": 1})
    assert queries.status.value == "success", queries.error
    (top,) = queries.data["queries"]
    assert top["query_id"] == "bquxjob_backfill"
    assert top["money_estimate"] == "USD 18.75"
    assert top["tables"] == ["pipebot-test.raw.orders", "pipebot-test.raw.customers"]
    nothing = tools["warehouse_queries"].call({"until": "2026-10-01", "order": "failed"})
    assert nothing.status.value == "no_data"
    assert "failed queries started from 2026-09-30" in nothing.data["searched"]


def test_dry_run_check_and_no_price(bq: FakeBigQuery) -> None:
    usage = usage_for(bq, tib_price="")
    assert usage.spend(*WINDOW).price is None
    check = usage.check()
    assert check.ok, check.detail
    assert check.detail == (
        f"usage: a day of query history would process {MIN_BILLED:,} bytes (cap 1,073,741,824)"
    )
    dry = bq.query_bodies[-1]
    assert dry["configuration"]["dryRun"] is True
    assert dry["configuration"]["labels"] == {"app": "pipebot"}


def test_without_jobs_list_all_the_error_names_the_roles(bq: FakeBigQuery) -> None:
    bq.deny_jobs()
    usage = usage_for(bq)
    with pytest.raises(SourceAuthError) as caught:
        usage.spend(*WINDOW)
    reason = caught.value.reason
    assert reason.startswith("cannot read `region-us`.INFORMATION_SCHEMA.JOBS: BigQuery refused")
    assert "roles/bigquery.resourceViewer" in reason and "jobs.listAll" in reason
    check = usage.check()
    assert not check.ok and "roles/bigquery.resourceViewer" in check.detail


def test_a_query_over_the_byte_cap_runs_nothing(bq: FakeBigQuery) -> None:
    bq.bytes_per_query = 2 * 1024**3
    with pytest.raises(UpstreamError) as caught:
        usage_for(bq).queries(*WINDOW)
    assert "PIPEBOT_WAREHOUSE__USAGE_MAX_BYTES_BILLED" in caught.value.reason
    assert "would bill more than 1,073,741,824 bytes" in caught.value.reason

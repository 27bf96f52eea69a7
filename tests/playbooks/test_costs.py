"""`costs [window]`: spend against the previous window, the warehouses that moved, the
slowest, costliest and failing queries, and the digest's cost line."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest

from bot.commands import Request
from bot.errors import SourceAuthError
from bot.facts import Price, QueryRecord
from bot.messages import InboundMessage, Reply, Tone, no_progress
from bot.playbooks import costs, digest
from bot.ports import Sources
from bot.rendering import to_dict, to_text
from integrations.warehouse.catalog import Catalog
from tests.playbooks.usage_world import RecordedUsage

NOW = datetime(2026, 11, 25, 10, 20, tzinfo=UTC)
# Snowflake's metering is up to 3 h behind: the 24 h window ends at 07:00 on the hour.
UNTIL = datetime(2026, 11, 25, 7, 0, tzinfo=UTC)
SINCE = UNTIL - timedelta(hours=24)
CREDIT = Price(
    amount=3.0, currency="USD", per_label="credit", origin="PIPEBOT_WAREHOUSE__CREDIT_PRICE"
)


def hours(
    start: datetime, count: int, warehouse: str, amount: float
) -> list[tuple[datetime, str, float]]:
    return [(start + timedelta(hours=h), warehouse, amount) for h in range(count)]


def record(query_id: str, started: datetime, **fields: object) -> QueryRecord:
    return QueryRecord(query_id=query_id, started_at=started, **fields)  # type: ignore[arg-type]


def jumped() -> RecordedUsage:
    """Previous 24 h: 25 credits. Last 24 h: 85 — a backfill ran six hours on an X-Large."""
    before = SINCE - timedelta(hours=24)
    return RecordedUsage(
        hours=[
            *hours(before + timedelta(hours=1), 10, "TRANSFORM_WH", 2.0),
            *hours(before + timedelta(hours=12), 5, "LOAD_WH", 1.0),
            *hours(SINCE + timedelta(hours=1), 10, "TRANSFORM_WH", 2.0),
            *hours(SINCE + timedelta(hours=11), 6, "TRANSFORM_WH", 10.0),
            *hours(SINCE + timedelta(hours=18), 5, "LOAD_WH", 1.0),
            # Inside the view's delay: after the window, not counted.
            *hours(UNTIL + timedelta(hours=1), 2, "TRANSFORM_WH", 50.0),
        ],
        records=[
            record(
                "01b8-backfill",
                SINCE + timedelta(hours=11),
                user="DBT_PROD",
                tag="dbt:fct_orders",
                warehouse="TRANSFORM_WH",
                elapsed_s=6 * 3600,
                credits=60.0,
                bytes_scanned=9 * 1024**4,
                tables=("ANALYTICS.RAW.ORDERS", "ANALYTICS.RAW.CUSTOMERS"),
                text="insert into fct_orders select * from raw.orders where id > N",
                status="SUCCESS",
            ),
            record(
                "01b8-slowload",
                SINCE + timedelta(hours=18),
                user="LOADER",
                warehouse="LOAD_WH",
                elapsed_s=2700,
                queued_s=1800,
                credits=0.5,
                status="SUCCESS",
            ),
            record(
                "01b8-failed",
                SINCE + timedelta(hours=20),
                user="ANALYST",
                warehouse="TRANSFORM_WH",
                elapsed_s=1.2,
                status="FAIL",
                failed=True,
                error="000904: SQL compilation error: invalid identifier '…'",
                text="select amount from fct_orders",
            ),
        ],
        price=CREDIT,
    )


@pytest.fixture
def catalog() -> Iterator[Catalog]:
    with Catalog("sqlite://") as found:
        yield found


def sources(catalog: Catalog, usage: RecordedUsage | None, label: str = "") -> Sources:
    return Sources(warehouse=catalog, usage=usage, now=lambda: NOW, label=label)


def ask(sources_: Sources, *args: str) -> Request:
    message = InboundMessage(
        platform="console",
        workspace="local",
        channel="c",
        thread="t",
        user="dana",
        text=" ".join(("costs", *args)),
        event_id="e1",
    )
    return Request(message=message, args=args, sources=sources_, progress=no_progress)


def section(reply: Reply, heading: str) -> tuple[str, ...]:
    (found,) = [s for s in reply.sections if s.heading == heading]
    return found.bullets or (found.text,)


def test_a_jump_is_a_finding_with_its_warehouse_and_queries(catalog: Catalog) -> None:
    usage = jumped()
    reply = costs.run(ask(sources(catalog, usage)))
    assert reply.tone is Tone.ERROR  # up by half or more: exit 1 from the shell
    assert reply.title == (
        "Warehouse spend, last 24 hours: 85.00 credits (≈ USD 255.00) — up 240% on the "
        "previous 24 hours"
    )
    assert reply.text.startswith("2026-11-24 07:00 UTC to 2026-11-25 07:00 UTC")
    # The windows asked for: both end on the hour, 3 h before now.
    assert ("spend", SINCE, UNTIL) in usage.calls
    assert ("spend", SINCE - timedelta(hours=24), SINCE) in usage.calls
    assert section(reply, "By warehouse") == (
        "`TRANSFORM_WH` 80.00 credits (≈ USD 240.00) — +300% (was 20.00 credits)",
        "`LOAD_WH` 5.00 credits (≈ USD 15.00) — ±0% (was 5.00 credits)",
    )
    assert section(reply, "Top movers") == ("`TRANSFORM_WH` +60.00 credits (≈ USD 180.00) — +300%",)
    slowest = section(reply, "Slowest queries")
    assert slowest[0].startswith("`01b8-backfill` 6h 00m, ≈ 60.00 credits, 9.00 TiB scanned — ")
    assert "by DBT_PROD on TRANSFORM_WH at 2026-11-24 18:00 UTC, tag `dbt:fct_orders`" in slowest[0]
    assert "read ANALYTICS.RAW.ORDERS, ANALYTICS.RAW.CUSTOMERS" in slowest[0]
    assert slowest[0].endswith(": `insert into fct_orders select * from raw.orders where id > N`")
    assert "queued 30m 00s" in slowest[1]
    costliest = next(s for s in reply.sections if s.heading == "Costliest queries")
    assert costliest.text == "By estimated credits."
    assert costliest.bullets[0].startswith("`01b8-backfill`")
    (failing,) = section(reply, "Failing queries")
    assert failing.startswith("`01b8-failed` 1.2s — by ANALYST on TRANSFORM_WH")
    assert "error: 000904: SQL compilation error" in failing
    assert reply.sources == ("warehouse: RECORDED.METERING", "warehouse: RECORDED.QUERY_HISTORY")
    assert any(
        n.startswith("Money is an estimate: credits × USD 3.00 per credit") for n in reply.notes
    )
    assert any("run up to 3 hours behind" in n for n in reply.notes)


def test_a_week_shows_each_day(catalog: Catalog) -> None:
    reply = costs.run(ask(sources(catalog, jumped()), "7d"))
    assert reply.title.startswith("Warehouse spend, last 7 days: 110.00 credits")
    assert reply.title.endswith("new: none in the previous 7 days")
    days = section(reply, "By day (UTC)")
    assert days[0].startswith("2026-11-23 — ")
    assert days[-2:] == (
        "2026-11-24 — 80.00 credits (≈ USD 240.00): TRANSFORM_WH 80.00 credits",
        "2026-11-25 — 5.00 credits (≈ USD 15.00): LOAD_WH 5.00 credits",
    )


@pytest.mark.parametrize(("factor", "tone"), [(1.0, Tone.WARNING), (1.3, Tone.WARNING)])
def test_a_small_rise_or_a_failing_query_is_a_warning(
    catalog: Catalog, factor: float, tone: Tone
) -> None:
    usage = jumped()
    usage.hours = [
        *hours(SINCE - timedelta(hours=20), 10, "TRANSFORM_WH", 2.0),
        *hours(SINCE + timedelta(hours=1), 10, "TRANSFORM_WH", 2.0 * factor),
    ]
    assert costs.run(ask(sources(catalog, usage))).tone is tone


def test_steady_spend_and_no_failure_is_fine(catalog: Catalog) -> None:
    usage = jumped()
    usage.hours = [
        *hours(SINCE - timedelta(hours=20), 10, "TRANSFORM_WH", 2.0),
        *hours(SINCE + timedelta(hours=1), 10, "TRANSFORM_WH", 2.0),
    ]
    usage.records = [r for r in usage.records if not r.failed]
    usage.price = None
    reply = costs.run(ask(sources(catalog, usage)))
    assert reply.tone is Tone.SUCCESS
    assert reply.title == (
        "Warehouse spend, last 24 hours: 20.00 credits — unchanged on the previous 24 hours"
    )
    assert section(reply, "Failing queries") == ("No query failed in the window.",)
    assert "Spend is shown in credits; set a price to see money (docs/configuration.md)." in (
        reply.notes
    )


def test_bytes_billed_are_shown_in_binary_units(catalog: Catalog) -> None:
    usage = jumped()
    usage.unit = "bytes billed"
    usage.settles = timedelta(0)
    usage.price = Price(amount=6.25, currency="USD", per=1024.0**4, per_label="TiB billed")
    usage.hours = [(NOW - timedelta(hours=2), "proj", 3 * 1024.0**4)]
    reply = costs.run(ask(sources(catalog, usage)))
    assert reply.title.startswith(
        "Warehouse spend, last 24 hours: 3.00 TiB billed (≈ USD 18.75) — new"
    )
    assert not any("behind" in n for n in reply.notes)


def test_a_warehouse_without_spend_lists_its_queries(catalog: Catalog) -> None:
    usage = jumped()
    usage.unavailable = "Redshift keeps no spend view"
    reply = costs.run(ask(sources(catalog, usage)))
    assert reply.title == "Warehouse queries, last 24 hours"
    assert section(reply, "Spend") == ("Redshift keeps no spend view.",)
    assert reply.tone is Tone.WARNING  # a failing query
    assert section(reply, "Slowest queries")[0].startswith("`01b8-backfill`")


def test_a_missing_grant_says_which(catalog: Catalog) -> None:
    usage = jumped()
    usage.refuse = SourceAuthError(
        "warehouse",
        "cannot read SNOWFLAKE.ACCOUNT_USAGE.WAREHOUSE_METERING_HISTORY: … — grant the role "
        "the SNOWFLAKE.USAGE_VIEWER database role",
    )
    reply = costs.run(ask(sources(catalog, usage)))
    assert reply.tone is Tone.ERROR
    assert reply.title == "Could not read the warehouse's spend and query history"
    assert reply.text.count("USAGE_VIEWER") == 1  # the same reason once, not five times


def test_no_usage_views_no_warehouse_bad_window(catalog: Catalog) -> None:
    none = costs.run(ask(sources(catalog, None)))
    assert none.title == "No spend or query history for this warehouse"
    assert none.text.startswith(
        "The warehouse's spend and query history are not read: pipebot reads them on "
        "Snowflake, BigQuery, Redshift and Databricks (this one is sqlite)"
    )
    missing = costs.run(ask(Sources(now=lambda: NOW)))
    assert missing.title == "warehouse is not configured"
    for bad in (("yesterday",), ("40d",), ("24h", "7d")):
        reply = costs.run(ask(sources(catalog, jumped()), *bad))
        assert (reply.title, reply.tone) == ("Invalid window", Tone.WARNING), bad
        assert "Usage: `costs [window, e.g. 24h or 7d]`" in reply.text


def test_the_reply_as_json_carries_the_figures(catalog: Catalog) -> None:
    body = to_dict(costs.run(ask(sources(catalog, jumped(), label="recorded"))))
    assert body["tone"] == "error"
    headings = [s["heading"] for s in body["sections"]]
    assert headings == [
        "By warehouse",
        "Top movers",
        "Slowest queries",
        "Costliest queries",
        "Failing queries",
    ]
    assert "recorded" in body["notes"]
    assert "85.00 credits" in to_text(costs.run(ask(sources(catalog, jumped()))))


def test_the_digest_cost_line(catalog: Catalog) -> None:
    read = costs.spend_line(sources(catalog, jumped()), timedelta(hours=24))
    assert read is not None
    line = read()
    assert line is not None
    assert line.text == "85.00 credits (≈ USD 255.00) (+240% vs the previous 24 hours)"
    assert (line.total, line.previous_total, line.unit) == (85.0, 25.0, "credits")
    assert costs.spend_line(sources(catalog, None), timedelta(hours=24)) is None
    no_spend = jumped()
    no_spend.unavailable = "Redshift keeps no spend view"
    redshift = costs.spend_line(sources(catalog, no_spend), timedelta(hours=24))
    assert redshift is not None and redshift() is None
    refused = jumped()
    refused.refuse = SourceAuthError("warehouse", "grant USAGE_VIEWER")
    failing = costs.spend_line(sources(catalog, refused), timedelta(days=7))
    assert failing is not None
    with pytest.raises(SourceAuthError):
        failing()


def test_the_digest_carries_the_cost_line() -> None:
    from integrations.demo import demo_sources

    # The demo (recorded Airflow, dbt, DuckDB) with recorded spend standing in for its usage.
    demo = replace(demo_sources(), usage=jumped())
    text = to_text(digest.run(ask(demo), chart=False))
    assert "Warehouse spend" in text
    assert "credits (≈ USD " in text and "vs the previous 24 hours)" in text

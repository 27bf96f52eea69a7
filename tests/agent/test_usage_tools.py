""" "Why did our warehouse bill jump yesterday?" — the agent, through the real SDK against the
fake Messages API, is offered the spend tools of a BigQuery warehouse wired by the composition
root, and what reaches it are the connector's numbers (read from the BigQuery fake)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from bot.compose import build_sources
from bot.settings import Settings
from bot.store import Store
from tests.agent.support import agent_for, request_for
from tests.fakes.anthropic_api import FakeAnthropic, message, text, tool_use
from tests.fakes.bigquery_api import FakeBigQuery

TIB = 1024**4
DAY = datetime(2026, 11, 24, tzinfo=UTC)


@pytest.fixture
def bq() -> Iterator[FakeBigQuery]:
    with FakeBigQuery("pipebot-test") as fake:
        fake.add_dataset("mart")
        fake.add_job("bquxjob_usual", created=DAY - timedelta(hours=6), bytes_billed=TIB // 2)
        fake.add_job(
            "bquxjob_backfill",
            created=DAY + timedelta(hours=8),
            user="dbt-prod@pipebot-test.iam.gserviceaccount.com",
            seconds=5400,
            bytes_billed=3 * TIB,
            labels={"dbt_model": "fct_orders", "dbt_invocation": "backfill"},
            tables=["raw.orders"],
        )
        yield fake


def results(body: dict[str, Any]) -> list[str]:
    return [
        str(block["content"])
        for block in body["messages"][-1]["content"]
        if block.get("type") == "tool_result"
    ]


def test_the_agent_compares_the_days_and_names_the_query(
    api: FakeAnthropic, sqlite_store: Store, bq: FakeBigQuery
) -> None:
    settings = Settings(
        _env_file=None, warehouse={"url": f"bigquery://pipebot-test?api_endpoint={bq.url}"}
    )
    sources = build_sources(settings)
    assert sources.usage is not None
    api.script(
        message(tool_use("warehouse_spend", {"days": 1, "until": "2026-11-24"})),
        message(
            tool_use(
                "warehouse_queries",
                {"order": "costliest", "until": "2026-11-25", "hours": 24, "limit": 3},
            )
        ),
        message(
            text(
                "Spend rose from 0.5 TiB to 3 TiB billed on 2026-11-24: the dbt backfill "
                "`bquxjob_backfill` of fct_orders billed 3 TiB."
            )
        ),
    )
    reply = agent_for(api.url, sqlite_store).answer(
        "why did our warehouse bill jump yesterday?", history=[], request=request_for(sources)
    )

    offered = {tool["name"]: tool for tool in api.bodies[0]["tools"]}
    assert {"warehouse_spend", "warehouse_queries", "list_schemas"} <= set(offered)
    description = " ".join(offered["warehouse_spend"]["description"].split())
    assert '"why did the bill jump yesterday?"' in description  # tools.md, as written
    assert set(offered["warehouse_queries"]["input_schema"]["properties"]) == {
        "order",
        "hours",
        "until",
        "warehouse",
        "limit",
    }

    (spend,) = results(api.bodies[1])
    data = json.loads(spend.split("\n", 1)[1].rsplit("\n", 1)[0])
    assert (data["unit"], data["total"], data["previous_total"], data["change_pct"]) == (
        "bytes billed",
        3 * TIB,
        TIB // 2,
        500.0,
    )
    assert data["total_money_estimate"] == "USD 18.75"
    assert data["price"]["note"].startswith("money is an estimate")
    (queries,) = results(api.bodies[2])
    assert '"query_id":"bquxjob_backfill"' in queries
    assert '"tag":"dbt_model=fct_orders, dbt_invocation=backfill"' in queries
    assert '"tables":["pipebot-test.raw.orders"]' in queries
    assert "bquxjob_usual" not in queries  # the day before is outside the window
    assert any("warehouse_spend(days=1, until='2026-11-24')" in s for s in reply.sources)
    assert any("INFORMATION_SCHEMA.JOBS" in s for s in reply.sources)

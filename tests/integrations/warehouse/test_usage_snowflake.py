"""Snowflake's spend and query history (`SqlUsage`) through the real snowflake-connector-python
and snowflake-sqlalchemy against fakesnow's server (its own venv: tests/stack/snowflake_stack.py).

fakesnow has no SNOWFLAKE.ACCOUNT_USAGE, so the tests create it: the three views pipebot reads,
as tables with the columns Snowflake documents, holding the recorded rows below — the usage
statements then run unchanged through the connector, the dialect and the catalog's engine."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from tests.stack.snowflake_stack import RUNNER, SnowflakeStack

USAGE_RUNNER = RUNNER.with_name("snowflake_usage_runner.py")
NOW = datetime(2026, 11, 25, 10, 0, tzinfo=UTC)
DAY = datetime(2026, 11, 24, tzinfo=UTC)  # "yesterday": the day the bill jumped

# Shaped after docs.snowflake.com/en/sql-reference/account-usage/warehouse_metering_history,
# …/query_history and …/access_history (columns, units: milliseconds, bytes, credits; status
# values SUCCESS / FAIL; warehouse_size 'X-Small' … '6X-Large'; base_objects_accessed as an
# array of {objectDomain, objectName, objectId, columns}), checked 2026-12-04. Not captured from
# a live account (ACCOUNT_USAGE cannot run here); the figures are made up to tell a story: the
# TRANSFORM_WH bill jumps on 2026-11-24 because of a dbt backfill on an X-Large size.
METERING_COLUMNS = (
    "start_time TIMESTAMP_LTZ, end_time TIMESTAMP_LTZ, warehouse_id NUMBER, "
    "warehouse_name VARCHAR, credits_used NUMBER(38,9), credits_used_compute NUMBER(38,9), "
    "credits_used_cloud_services NUMBER(38,9)"
)
QUERY_COLUMNS = (
    "query_id VARCHAR, query_text VARCHAR, database_name VARCHAR, user_name VARCHAR, "
    "role_name VARCHAR, warehouse_name VARCHAR, warehouse_size VARCHAR, query_tag VARCHAR, "
    "execution_status VARCHAR, error_code VARCHAR, error_message VARCHAR, "
    "start_time TIMESTAMP_LTZ, end_time TIMESTAMP_LTZ, total_elapsed_time NUMBER, "
    "bytes_scanned NUMBER, execution_time NUMBER, queued_provisioning_time NUMBER, "
    "queued_repair_time NUMBER, queued_overload_time NUMBER, "
    "credits_used_cloud_services FLOAT"
)
ACCESS_COLUMNS = (
    "query_id VARCHAR, query_start_time TIMESTAMP_LTZ, user_name VARCHAR, "
    "direct_objects_accessed ARRAY, base_objects_accessed ARRAY"
)


def metering() -> list[tuple[datetime, str, float, float]]:
    """(hour, warehouse, compute credits, cloud services credits)."""
    rows = []
    for day in (DAY - timedelta(days=1), DAY):
        rows += [(day + timedelta(hours=h), "TRANSFORM_WH", 2.0, 0.1) for h in (2, 3, 4, 5)]
        rows += [(day + timedelta(hours=h), "LOAD_WH", 1.0, 0.0) for h in (6, 7)]
    # The jump: six more X-Large hours on the 24th.
    rows += [(DAY + timedelta(hours=h), "TRANSFORM_WH", 16.0, 0.2) for h in range(8, 14)]
    # Today, inside the view's 3-hour delay window and later than any window asked below.
    rows.append((NOW - timedelta(hours=1), "TRANSFORM_WH", 1.0, 0.0))
    return rows


# (id, user, warehouse, size, tag, status, error code, error, start, elapsed ms, execution ms,
#  queued overload ms, bytes scanned, text)
QUERIES: list[tuple[Any, ...]] = [
    (
        "01b8f2a1-0000-backfill",
        "DBT_PROD",
        "TRANSFORM_WH",
        "X-Large",
        '{"dbt_model": "fct_orders", "run": "backfill"}',
        "SUCCESS",
        None,
        None,
        DAY + timedelta(hours=8),
        21_600_000,
        21_000_000,
        0,
        9_800_000_000_000,
        "insert into ANALYTICS.MART.FCT_ORDERS select * from ANALYTICS.RAW.ORDERS "
        "where customer_email = 'dana@example.com' and id > 1234567",
    ),
    (
        "01b8f2a1-0000-slowload",
        "LOADER",
        "LOAD_WH",
        "Small",
        "",
        "SUCCESS",
        None,
        None,
        DAY + timedelta(hours=6),
        2_700_000,
        900_000,
        1_800_000,
        52_000_000,
        "copy into RAW.EVENTS from @stage",
    ),
    (
        "01b8f2a1-0000-failed",
        "ANALYST",
        "TRANSFORM_WH",
        "X-Large",
        "looker",
        "FAIL",
        "000904",
        "SQL compilation error: error line 1 at position 7 invalid identifier 'AMOUNT'",
        DAY + timedelta(hours=9),
        1_200,
        0,
        0,
        0,
        "select amount from ANALYTICS.MART.FCT_ORDERS",
    ),
    (
        "01b8f2a1-0000-daybefore",
        "DBT_PROD",
        "TRANSFORM_WH",
        "X-Large",
        '{"dbt_model": "fct_orders"}',
        "SUCCESS",
        None,
        None,
        DAY - timedelta(hours=20),
        1_800_000,
        1_700_000,
        0,
        700_000_000_000,
        "merge into ANALYTICS.MART.FCT_ORDERS using ANALYTICS.RAW.ORDERS",
    ),
]
ACCESS = {
    "01b8f2a1-0000-backfill": ["ANALYTICS.RAW.ORDERS", "ANALYTICS.MART.FCT_ORDERS"],
    "01b8f2a1-0000-slowload": [],
}


def _stamp(value: datetime) -> str:
    return value.astimezone(UTC).strftime("'%Y-%m-%d %H:%M:%S+00:00'")


def _text(value: Any) -> str:
    if value is None:
        return "NULL"
    if isinstance(value, datetime):
        return _stamp(value)
    if isinstance(value, int | float):
        return repr(value)
    return "'" + str(value).replace("'", "''") + "'"


def account_usage(*, access_history: bool = True) -> list[str]:
    """SQL creating SNOWFLAKE.ACCOUNT_USAGE with the recorded rows."""
    statements = [
        "CREATE DATABASE IF NOT EXISTS analytics",
        "CREATE DATABASE IF NOT EXISTS snowflake",
        "CREATE SCHEMA IF NOT EXISTS snowflake.account_usage",
        f"CREATE OR REPLACE TABLE snowflake.account_usage.warehouse_metering_history "
        f"({METERING_COLUMNS})",
        f"CREATE OR REPLACE TABLE snowflake.account_usage.query_history ({QUERY_COLUMNS})",
    ]
    for hour, warehouse, compute, cloud in metering():
        values = [hour, hour + timedelta(hours=1), 1, warehouse, compute + cloud, compute, cloud]
        statements.append(
            "INSERT INTO snowflake.account_usage.warehouse_metering_history VALUES ("
            + ", ".join(_text(v) for v in values)
            + ")"
        )
    for row in QUERIES:
        (
            qid,
            user,
            wh,
            size,
            tag,
            status,
            code,
            error,
            start,
            elapsed,
            run,
            queued,
            scanned,
            sql,
        ) = row
        values = [
            qid, sql, "ANALYTICS", user, "TRANSFORMER", wh, size, tag, status, code, error,
            start, start + timedelta(milliseconds=elapsed), elapsed, scanned, run, 0, 0, queued,
            0.05,
        ]  # fmt: skip
        statements.append(
            "INSERT INTO snowflake.account_usage.query_history VALUES ("
            + ", ".join(_text(v) for v in values)
            + ")"
        )
    if access_history:
        statements.append(
            f"CREATE OR REPLACE TABLE snowflake.account_usage.access_history ({ACCESS_COLUMNS})"
        )
        for qid, tables in ACCESS.items():
            start = next(r[8] for r in QUERIES if r[0] == qid)
            objects = json.dumps(
                [
                    {"objectDomain": "Table", "objectName": t, "objectId": i}
                    for i, t in enumerate(tables)
                ]
                + [{"objectDomain": "Stage", "objectName": "ANALYTICS.RAW.STAGE", "objectId": 9}]
            )
            statements.append(
                "INSERT INTO snowflake.account_usage.access_history SELECT "
                f"{_text(qid)}, {_stamp(start)}, 'DBT_PROD', PARSE_JSON('[]'), "
                f"PARSE_JSON({_text(objects)})"
            )
    else:
        statements.append("DROP TABLE IF EXISTS snowflake.account_usage.access_history")
    return statements


WINDOW = [(DAY).isoformat(), (DAY + timedelta(days=1)).isoformat()]
CALLS: list[list[Any]] = [
    ["spend", *WINDOW],
    ["spend", (DAY - timedelta(days=1)).isoformat(), DAY.isoformat()],
    ["queries", *WINDOW, {"order": "costliest", "limit": 5}],
    ["queries", *WINDOW, {"order": "slowest", "limit": 2}],
    ["queries", *WINDOW, {"order": "newest", "limit": 5, "failed_only": True}],
    ["queries", *WINDOW, {"order": "slowest", "limit": 5, "warehouse": "LOAD_WH"}],
    ["tool", "warehouse_spend", {"days": 1, "until": "2026-11-24"}, NOW.isoformat()],
    [
        "tool",
        "warehouse_queries",
        {"order": "costliest", "until": "2026-11-25", "limit": 1},
        NOW.isoformat(),
    ],
    ["check"],
]


@pytest.fixture(scope="module")
def answers() -> dict[str, Any]:
    """Three jobs on one fakesnow server: the full ACCOUNT_USAGE, then without ACCESS_HISTORY
    (Standard Edition, or no GOVERNANCE_VIEWER), then without ACCOUNT_USAGE at all (no
    USAGE_VIEWER)."""
    runner = USAGE_RUNNER
    with SnowflakeStack() as stack:
        url = stack.url("analytics")
        full = stack.run(
            {"url": url, "setup": account_usage(), "credit_price": 3.0, "calls": CALLS},
            runner=runner,
        )["answers"]
        no_access = stack.run(
            {
                "url": url,
                "setup": account_usage(access_history=False),
                "calls": [["queries", *WINDOW, {"order": "costliest", "limit": 5}]],
            },
            runner=runner,
        )["answers"]
        none = stack.run(
            {
                "url": url,
                # fakesnow cannot drop a database: the views go instead.
                "setup": [
                    f"DROP TABLE IF EXISTS snowflake.account_usage.{view}"
                    for view in ("warehouse_metering_history", "query_history", "access_history")
                ],
                "calls": [["spend", *WINDOW], ["check"]],
            },
            runner=runner,
        )["answers"]
    return {
        **dict(zip((json.dumps(c) for c in CALLS), full, strict=True)),
        "no_access": no_access[0],
        "none_spend": none[0],
        "none_check": none[1],
    }


def asked(answers: dict[str, Any], index: int) -> Any:
    return answers[json.dumps(CALLS[index])]


@pytest.mark.integration
def test_spend_per_warehouse_and_day_in_credits(answers: dict[str, Any]) -> None:
    spend, before = asked(answers, 0), asked(answers, 1)
    assert spend["unit"] == "credits"
    by_warehouse = {d["warehouse"]: d for d in spend["days"]}
    assert {d["day"] for d in spend["days"]} == {"2026-11-24"}
    assert by_warehouse["TRANSFORM_WH"]["amount"] == pytest.approx(4 * 2.1 + 6 * 16.2)
    assert dict(by_warehouse["TRANSFORM_WH"]["parts"]) == pytest.approx(
        {"compute credits": 4 * 2.0 + 6 * 16.0, "cloud services credits": 4 * 0.1 + 6 * 0.2}
    )
    assert by_warehouse["LOAD_WH"]["amount"] == pytest.approx(2.0)
    assert sum(d["amount"] for d in before["days"]) == pytest.approx(4 * 2.1 + 2.0)
    assert spend["price"]["amount"] == 3.0
    assert "WAREHOUSE_METERING_HISTORY" in spend["source"]


@pytest.mark.integration
def test_queries_costliest_slowest_failed_and_per_warehouse(answers: dict[str, Any]) -> None:
    costliest = asked(answers, 2)
    ids = [r["query_id"] for r in costliest["records"]]
    # 21,000,000 ms on X-Large (16 credits an hour) + 0.05 cloud services.
    assert ids[0] == "01b8f2a1-0000-backfill"
    top = costliest["records"][0]
    assert top["credits"] == pytest.approx(21_000_000 / 3_600_000 * 16 + 0.05)
    assert (top["user"], top["warehouse"], top["elapsed_s"]) == ("DBT_PROD", "TRANSFORM_WH", 21600)
    assert top["tag"] == '{"dbt_model": "fct_orders", "run": "backfill"}'
    # Tables read from ACCESS_HISTORY (the stage is not a table); literals masked in the text.
    assert top["tables"] == ["ANALYTICS.RAW.ORDERS", "ANALYTICS.MART.FCT_ORDERS"]
    assert "dana@example.com" not in top["text"] and "1234567" not in top["text"]
    assert "customer_email = '…' and id > N" in top["text"]
    assert "01b8f2a1-0000-daybefore" not in ids  # the day before is outside the window
    assert "estimated credits" in costliest["cost_means"]

    slowest = asked(answers, 3)["records"]
    assert [r["query_id"] for r in slowest] == ["01b8f2a1-0000-backfill", "01b8f2a1-0000-slowload"]
    assert slowest[1]["queued_s"] == 1800

    failed = asked(answers, 4)["records"]
    assert [r["query_id"] for r in failed] == ["01b8f2a1-0000-failed"]
    assert failed[0]["failed"] is True and failed[0]["status"] == "FAIL"
    assert failed[0]["error"].startswith("000904: SQL compilation error")
    assert "'…'" in failed[0]["error"]  # the identifier quoted in the error is masked too

    load = asked(answers, 5)["records"]
    assert [r["warehouse"] for r in load] == ["LOAD_WH"]


@pytest.mark.integration
def test_tools_compare_yesterday_with_the_day_before(answers: dict[str, Any]) -> None:
    spend = asked(answers, 6)
    assert spend["status"] == "success", spend
    data = spend["data"]
    assert data["total"] == pytest.approx(4 * 2.1 + 6 * 16.2 + 2.0)
    assert data["previous_total"] == pytest.approx(4 * 2.1 + 2.0)
    assert data["change_pct"] == pytest.approx(round((107.6 - 10.4) / 10.4 * 100, 1))
    assert data["by_warehouse"][0]["warehouse"] == "TRANSFORM_WH"
    assert data["total_money_estimate"] == "USD 322.80"
    assert data["window"] == {
        "since": "2026-11-24T00:00:00+00:00",
        "until": "2026-11-25T00:00:00+00:00",
    }
    assert "WAREHOUSE_METERING_HISTORY" in spend["invocation"]
    queries = asked(answers, 7)
    assert queries["status"] == "success", queries
    (top,) = queries["data"]["queries"]
    assert (top["query_id"], top["user"]) == ("01b8f2a1-0000-backfill", "DBT_PROD")
    assert top["money_estimate"] == f"USD {(21_000_000 / 3_600_000 * 16 + 0.05) * 3:,.2f}"
    assert "note" in queries["data"]  # the limit was reached


@pytest.mark.integration
def test_without_access_history_tables_are_unknown_not_an_error(answers: dict[str, Any]) -> None:
    found = answers["no_access"]
    assert found["records"][0]["query_id"] == "01b8f2a1-0000-backfill"
    assert all(r["tables"] == [] for r in found["records"])
    assert found["notes"] == [
        "Tables read are unknown: ACCESS_HISTORY needs Enterprise Edition and a role that may "
        "read it (GRANT DATABASE ROLE SNOWFLAKE.GOVERNANCE_VIEWER)."
    ]


@pytest.mark.integration
def test_without_account_usage_the_error_names_the_grant(answers: dict[str, Any]) -> None:
    # Snowflake answers "does not exist or not authorized" (002003); fakesnow with its own
    # words for the same error number.
    refused = answers["none_spend"]
    assert refused["error"] == "UpstreamAuthError"
    assert "GRANT DATABASE ROLE SNOWFLAKE.USAGE_VIEWER TO ROLE" in refused["message"]
    assert "cannot read SNOWFLAKE.ACCOUNT_USAGE.WAREHOUSE_METERING_HISTORY" in refused["message"]
    check = answers["none_check"]
    assert check["ok"] is False and "USAGE_VIEWER" in check["detail"]
    assert asked(answers, 8) == {
        "ok": True,
        "detail": "usage: read the metering and query history (no query in the last day)",
    }

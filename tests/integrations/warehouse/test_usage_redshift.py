"""Redshift's query history (`SqlUsage`) through sqlalchemy-redshift's psycopg2 dialect against
the real PostgreSQL, with ``sys_query_history`` / ``sys_query_detail`` shim tables (the columns
Redshift documents, char-padded as Redshift pads them) in a schema first on the search_path;
user names come from PostgreSQL's own ``pg_catalog.pg_user``, as on Redshift."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import text
from sqlalchemy.engine import Engine, make_url

from integrations.warehouse.catalog import Catalog
from integrations.warehouse.sql import REDSHIFT, SEARCH_PATH
from integrations.warehouse.sql_usage import REDSHIFT_NO_SPEND, SqlUsage
from integrations.warehouse.usage_toolset import usage_toolset

NOW = datetime(2026, 11, 25, 10, 0, tzinfo=UTC)
DAY = datetime(2026, 11, 24)  # UTC, naive as Redshift stores it

# docs.aws.amazon.com/redshift/latest/dg/SYS_QUERY_HISTORY.html and SYS_QUERY_DETAIL.html
# (checked 2026-12-04): times in microseconds, character(n) columns padded with blanks.
SHIMS = [
    """CREATE TABLE sys_query_history (
         user_id integer, query_id bigint, query_label character(320), transaction_id bigint,
         session_id integer, database_name character(128), query_type character(32),
         status character(10), result_cache_hit boolean, start_time timestamp,
         end_time timestamp, elapsed_time bigint, queue_time bigint, execution_time bigint,
         error_message character(512), returned_rows bigint, returned_bytes bigint,
         query_text character(4000), compute_type character(32))""",
    """CREATE TABLE sys_query_detail (
         user_id integer, query_id bigint, child_query_sequence integer, stream_id integer,
         segment_id integer, step_id integer, step_name character(30), table_id integer,
         table_name character(136), start_time timestamp, end_time timestamp, duration bigint,
         input_bytes bigint, input_rows bigint, output_bytes bigint, output_rows bigint)""",
]


@dataclasses.dataclass(frozen=True)
class Shimmed:
    url: str
    user: str
    schema: str  # where the shims are (Redshift keeps the SYS views in pg_catalog)


@pytest.fixture
def shimmed(pg_url: str, pg_engine: Engine) -> Shimmed:
    with pg_engine.begin() as connection:
        user_id, user = connection.execute(
            text("SELECT usesysid, usename FROM pg_catalog.pg_user WHERE usename = current_user")
        ).one()
    history = [
        # (query id, label, database, type, status, start, elapsed s, queue s, execution s,
        #  error, text)
        (101, "dbt", "dev", "INSERT", "success", DAY + timedelta(hours=2), 3000, 60, 2900, None,
         "insert into mart.fct_orders select * from raw.orders where email = 'x@y.z'"),
        (102, "", "dev", "SELECT", "failed", DAY + timedelta(hours=3), 2, 0, 1,
         "column \"amount\" does not exist in orders", "select amount from raw.orders"),
        (103, "pipebot", "dev", "SELECT", "success", DAY + timedelta(hours=4), 1, 0, 1, None,
         "select table_schema from svv_tables"),
        (104, "looker", "other", "SELECT", "success", DAY + timedelta(hours=5), 600, 400, 150,
         None, "select count(*) from mart.fct_orders"),
        (105, "dbt", "dev", "INSERT", "success", DAY - timedelta(hours=2), 9000, 0, 8000, None,
         "insert into mart.fct_orders select 1"),
    ]  # fmt: skip
    details = [
        (101, "scan", 2001, "orders", 5_000_000_000),
        (101, "scan", 2002, "customers", 250_000_000),
        (101, "insert", 2003, "fct_orders", 0),
        (101, "scan", 0, "Internal Worktable", 99),
        (104, "scan", 2003, "fct_orders", 1_000_000),
    ]
    statements = [
        *SHIMS,
        *(
            text(
                "INSERT INTO sys_query_history VALUES (:user_id, :qid, :label, 1, 1, :db, :type, "
                ":status, false, :start, :end, :elapsed, :queue, :run, :error, 0, 0, :text, "
                "'primary')"
            ).bindparams(
                user_id=user_id,
                qid=qid,
                label=label,
                db=db,
                type=kind,
                status=status,
                start=start,
                end=start + timedelta(seconds=elapsed),
                elapsed=elapsed * 1_000_000,
                queue=queue * 1_000_000,
                run=run * 1_000_000,
                error=error,
                text=sql,
            )
            for qid, label, db, kind, status, start, elapsed, queue, run, error, sql in history
        ),
        *(
            text(
                "INSERT INTO sys_query_detail VALUES (:user_id, :qid, 0, 0, 0, 0, :step, :tid, "
                ":name, NULL, NULL, 0, :bytes, 0, 0, 0)"
            ).bindparams(user_id=user_id, qid=qid, step=step, tid=tid, name=name, bytes=size)
            for qid, step, tid, name, size in details
        ),
    ]
    with pg_engine.begin() as connection:
        schema = str(make_url(pg_url).query["options"]).split("=", 1)[1]
        connection.execute(text(f'SET search_path TO "{schema}"'))
        for statement in statements:
            connection.execute(text(statement) if isinstance(statement, str) else statement)
    redshift_url = make_url(pg_url).set(drivername="redshift+psycopg2")
    return Shimmed(
        url=redshift_url.update_query_dict({"sslmode": "disable"}).render_as_string(
            hide_password=False
        ),
        user=str(user),
        schema=schema,
    )


@pytest.fixture
def usage(shimmed: Shimmed) -> Iterator[SqlUsage]:
    # PostgreSQL has no query_group; the pinned search path gains the shims' schema after
    # pg_catalog (on Redshift the SYS views are in pg_catalog).
    session = tuple(
        f'{s}, "{shimmed.schema}"' if s == SEARCH_PATH else s
        for s in REDSHIFT.session
        if "query_group" not in s
    )
    with Catalog(shimmed.url, sql=dataclasses.replace(REDSHIFT, session=session)) as catalog:
        yield SqlUsage(catalog)


WINDOW = (datetime(2026, 11, 24, tzinfo=UTC), datetime(2026, 11, 25, tzinfo=UTC))


def test_redshift_has_no_spend_view_and_says_so(usage: SqlUsage) -> None:
    spend = usage.spend(*WINDOW)
    assert spend.unavailable == REDSHIFT_NO_SPEND
    assert spend.days == () and "node-hour" in spend.unavailable
    assert usage.settles == timedelta(0)


def test_slowest_queries_with_names_tables_and_bytes(usage: SqlUsage, shimmed: Shimmed) -> None:
    history = usage.queries(*WINDOW, order="slowest", limit=3)
    first, second, third = history.records
    assert [r.query_id for r in history.records] == ["101", "104", "102"]
    assert (first.user, first.tag, first.warehouse, first.status) == (
        shimmed.user,
        "dbt",
        "dev",
        "success",
    )
    assert (first.elapsed_s, first.queued_s, first.compute_s) == (3000, 60, 2900)
    # Scans of real tables only (the worktable has table_id 0), bytes summed.
    assert first.tables == ("customers", "orders")
    assert first.bytes_scanned == 5_250_000_000
    assert first.started_at == datetime(2026, 11, 24, 2, 0, tzinfo=UTC)
    assert "x@y.z" not in first.text and "email = '…'" in first.text
    assert third.failed and third.error == 'column "amount" does not exist in orders'
    assert second.tables == ("fct_orders",)
    assert "105" not in [r.query_id for r in history.records]  # the day before
    assert history.source == "SYS_QUERY_HISTORY, SYS_QUERY_DETAIL"
    # Every query is the test login's: Redshift would be showing only its own.
    assert any("SYSLOG ACCESS UNRESTRICTED" in note for note in history.notes)


def test_costliest_failed_and_one_database(usage: SqlUsage) -> None:
    costliest = usage.queries(*WINDOW, order="costliest", limit=2)
    assert [r.query_id for r in costliest.records] == ["101", "104"]
    assert costliest.cost_means.startswith("execution time")
    failed = usage.queries(*WINDOW, order="newest", failed_only=True)
    assert [(r.query_id, r.failed) for r in failed.records] == [("102", True)]
    other = usage.queries(*WINDOW, warehouse="other")
    assert [r.query_id for r in other.records] == ["104"]
    assert usage.queries(*WINDOW, warehouse="none").records == ()


def test_tools_and_check(usage: SqlUsage) -> None:
    tools = {t.name: t for t in usage_toolset(usage, now=lambda: NOW).tools()}
    spend = tools["warehouse_spend"].call({"days": 1})
    assert spend.status.value == "no_data"
    assert spend.data["reason"] == REDSHIFT_NO_SPEND
    failed = tools["warehouse_queries"].call({"order": "failed", "hours": 48})
    assert failed.status.value == "success", failed.error
    assert [q["query_id"] for q in failed.data["queries"]] == ["102"]
    assert failed.data["queries"][0]["failed"] is True
    assert "SYS_QUERY_HISTORY" in failed.invocation
    check = usage.check()
    assert check.ok, check.detail
    assert check.detail == "usage: read the query history (no query in the last day)"

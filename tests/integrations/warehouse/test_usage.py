"""What every warehouse's usage reader shares: the statements and their guard, query text safe
to show, prices, and which warehouses have usage at all."""

from __future__ import annotations

from pathlib import Path

import pytest

from bot.settings import WarehouseSettings
from integrations.errors import SqlRefused
from integrations.warehouse import open_catalog, open_usage
from integrations.warehouse.guard import SqlGuard
from integrations.warehouse.usage import (
    QUERIES,
    USAGE_POLICIES,
    error_line,
    price_for,
    query_text,
    statement,
)

STATEMENTS = sorted(
    (path.parent.name, path.stem.removeprefix("usage_")) for path in QUERIES.glob("*/usage_*.sql")
)


def sql(dialect: str, name: str) -> str:
    return statement(dialect, name).replace("{views}", "`region-us`.INFORMATION_SCHEMA")


def test_every_warehouse_has_its_statements() -> None:
    assert STATEMENTS == [
        ("bigquery", "queries"),
        ("bigquery", "spend"),
        ("databricks", "queries"),
        ("databricks", "spend"),
        ("redshift", "details"),
        ("redshift", "queries"),
        ("redshift", "users"),
        ("snowflake", "queries"),
        ("snowflake", "spend"),
        ("snowflake", "tables"),
    ]


@pytest.mark.parametrize(("dialect", "name"), STATEMENTS)
def test_each_statement_passes_its_usage_guard_with_bound_parameters(
    dialect: str, name: str
) -> None:
    guard = SqlGuard(dialect, row_cap=100, policy=USAGE_POLICIES[dialect])
    guarded = guard.check(sql(dialect, name), row_cap=7)
    assert guarded.limit == 7
    assert guarded.parameters, "a usage statement takes its window or ids as parameters"
    assert set(guarded.parameters) <= {
        "since",
        "until",
        "order",
        "failed_only",
        "warehouse",
        "ids",
    }


@pytest.mark.parametrize(
    ("dialect", "name"), [s for s in STATEMENTS if s[0] != "databricks" and s[1] != "users"]
)
def test_the_catalog_guard_still_refuses_the_usage_views(dialect: str, name: str) -> None:
    # Query history holds other people's query text: only the usage statements read it.
    with pytest.raises(SqlRefused):
        SqlGuard(dialect, row_cap=100).check(sql(dialect, name))


@pytest.mark.parametrize(
    ("dialect", "text"),
    [
        ("snowflake", "SELECT query_text FROM snowflake.account_usage.login_history"),
        ("snowflake", "SELECT * FROM analytics.mart.orders"),
        ("bigquery", "SELECT * FROM `region-us`.INFORMATION_SCHEMA.TABLES"),
        ("redshift", "SELECT * FROM stl_querytext"),
        ("redshift", "SELECT * FROM pg_catalog.pg_user_info"),
        ("databricks", "SELECT * FROM system.access.audit"),
        ("databricks", "SELECT * FROM main.mart.orders"),
    ],
)
def test_the_usage_guard_reads_nothing_else(dialect: str, text: str) -> None:
    with pytest.raises(SqlRefused):
        SqlGuard(dialect, row_cap=10, policy=USAGE_POLICIES[dialect]).check(text)


@pytest.mark.parametrize(
    ("raw", "shown"),
    [
        ("select * from t where email = 'dana@example.com'", "select * from t where email = '…'"),
        ("select 'it''s', 1234567, 42", "select '…', N, 42"),
        ("create user x password = 'hunter2'", "create user x password …"),
        ("SELECT $$secret body$$ AS x", "SELECT '…' AS x"),
        ("select\n  a,\n\tb\nfrom t", "select a, b from t"),
        ("copy into t credentials=(aws_secret_access_key=abc123) ", "copy into t credentials …)"),
        ("select token from sessions", "select token from sessions"),
        ("select 'unterminated", "select '…'"),
        (None, ""),
    ],
)
def test_query_text_masks_literals_and_secrets(raw: str | None, shown: str) -> None:
    assert query_text(raw) == shown


def test_query_text_is_cut() -> None:
    cut = query_text("select " + "a, " * 200 + "b from t", limit=50)
    assert len(cut) <= 50 and cut.endswith(",…")


def test_error_line_keeps_the_code_and_masks_the_message() -> None:
    assert error_line("invalid identifier 'EMAIL'", "000904") == "000904: invalid identifier '…'"
    assert error_line(None, "42") == "42"
    assert error_line("boom") == "boom"


def test_prices() -> None:
    settings = WarehouseSettings(credit_price=3.0, dbu_price=0.55, currency="EUR")
    credit = price_for("snowflake", settings)
    assert credit is not None and credit.cost(10) == 30.0 and credit.currency == "EUR"
    tib = price_for("bigquery", settings)
    assert tib is not None and tib.cost(1024**4 / 2) == 3.125
    assert "default" in tib.origin
    assert price_for("bigquery", WarehouseSettings(tib_price=5.0)).origin == (  # type: ignore[union-attr]
        "PIPEBOT_WAREHOUSE__TIB_PRICE"
    )
    dbu = price_for("databricks", settings)
    assert dbu is not None and dbu.cost(2) == 1.1
    assert price_for("snowflake", WarehouseSettings()) is None
    assert price_for("redshift", settings) is None


def test_catalogs_without_usage_views_have_no_usage(tmp_path: Path) -> None:
    path = tmp_path / "w.sqlite"
    path.touch()
    settings = WarehouseSettings(url=f"sqlite:///{path}")
    assert open_usage(settings, open_catalog(settings)) is None
    duck = WarehouseSettings(url=f"duckdb:///{tmp_path / 'w.duckdb'}")
    assert open_usage(duck, open_catalog(duck)) is None


def test_usage_can_be_turned_off(pg_url: str) -> None:
    settings = WarehouseSettings(url=pg_url.replace("postgresql+psycopg", "redshift+psycopg2"))
    catalog = open_catalog(settings)
    assert open_usage(settings, catalog) is not None
    off = WarehouseSettings(url=settings.url, usage=False)
    assert open_usage(off, catalog) is None

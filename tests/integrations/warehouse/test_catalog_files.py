"""`Catalog` on real DuckDB and SQLite files created by the fixtures."""

from __future__ import annotations

import time
from pathlib import Path

import duckdb
import pytest
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError

from bot.errors import ConfigError, NotFound, SourceUnavailable
from bot.facts import Table
from bot.settings import WarehouseSettings
from integrations.errors import SqlRefused
from integrations.warehouse.catalog import Catalog


def by_name(tables: list[Table]) -> dict[str, Table]:
    return {t.name: t for t in tables}


def shape(table: Table) -> list[tuple[str, str, bool | None, int | None]]:
    return [(c.name, c.data_type, c.nullable, c.position) for c in table.columns]


# --- DuckDB ----------------------------------------------------------------------------------


def test_duckdb_schemas_and_tables(duckdb_file: Path) -> None:
    with Catalog(f"duckdb:///{duckdb_file}") as catalog:
        assert catalog.dialect == "duckdb"
        assert catalog.schemas() == ["main", "mart", "raw"]
        tables = catalog.tables()
    assert [t.qualified_name for t in tables] == [
        "main.seed",
        "mart.big_orders",
        "mart.orders",
        "raw.events",
    ]
    named = by_name(tables)
    assert named["orders"].kind == "table"
    assert named["orders"].row_count == 120
    assert named["big_orders"].kind == "view"
    assert named["big_orders"].row_count is None
    assert {t.database for t in tables} == {"lake"}
    assert shape(named["orders"]) == [
        ("id", "INTEGER", False, 1),
        ("amount", "DECIMAL(12,2)", False, 2),
        ("placed_at", "TIMESTAMP", True, 3),
        ("tags", "VARCHAR[]", True, 4),
        ("address", "STRUCT(city VARCHAR, zip VARCHAR)", True, 5),
    ]
    assert shape(named["seed"])[0] == ("k", "VARCHAR", False, 1)
    assert (named["orders"].comment, named["seed"].comment) == ("orders", None)
    assert [c.comment for c in named["orders"].columns] == [None, "in EUR", None, None, None]


def test_duckdb_configured_schema_and_suggestions(duckdb_file: Path) -> None:
    settings = WarehouseSettings(url=f"duckdb:///{duckdb_file}", schemas="mart")
    with Catalog.from_settings(settings) as catalog:
        assert catalog.schemas() == ["mart"]
        assert [t.name for t in catalog.tables()] == ["big_orders", "orders"]
        with pytest.raises(NotFound) as caught:
            catalog.table("mart", "order")
        assert caught.value.suggestions[0] == "mart.orders"
        check = catalog.check()
    assert check.ok, check.detail
    assert check.detail == "read the catalog of 1 schema(s) (mart): 2 tables and views"
    assert check.version.startswith("DuckDB ")


def test_duckdb_file_is_opened_read_only_without_external_access(
    duckdb_file: Path, tmp_path: Path
) -> None:
    secrets = tmp_path / "secrets.csv"
    secrets.write_text("user,password\nadmin,hunter2\n")
    with Catalog(f"duckdb:///{duckdb_file}") as catalog:
        with catalog._connect() as connection, pytest.raises(DBAPIError, match="read-only"):
            connection.execute(text("INSERT INTO mart.orders (id, amount) VALUES (1, 1)"))
        # Even past the guard, the database itself refuses to read files or change settings.
        with catalog._connect() as connection, pytest.raises(DBAPIError, match="disabled"):
            connection.execute(text(f"SELECT * FROM read_csv('{secrets}')"))
        with catalog._connect() as connection, pytest.raises(DBAPIError, match="locked"):
            connection.execute(text("SET enable_external_access = true"))
    reopened = duckdb.connect(str(duckdb_file))
    try:
        assert reopened.execute("SELECT count(*) FROM mart.orders").fetchone() == (120,)
    finally:
        reopened.close()


def test_duckdb_statement_timeout_interrupts(tmp_path: Path) -> None:
    path = tmp_path / "wide.duckdb"
    writer = duckdb.connect(str(path))
    writer.execute(f"CREATE TABLE wide ({', '.join(f'c{i} INT' for i in range(200))})")
    writer.close()
    slow = "SELECT count(*) AS n FROM " + ", ".join(f"duckdb_columns() AS t{i}" for i in range(5))
    with Catalog(f"duckdb:///{path}", statement_timeout=0.3) as catalog:
        started = time.perf_counter()
        with pytest.raises(SourceUnavailable, match=r"timed out after 0\.3 s"):
            catalog._select(slow)
        assert time.perf_counter() - started < 5
        assert catalog.schemas() == ["main"]  # the connection survives the interrupt


def test_duckdb_missing_file_is_readable(tmp_path: Path) -> None:
    missing = tmp_path / "nope.duckdb"
    with Catalog(f"duckdb:///{missing}") as catalog:
        check = catalog.check()
    assert not check.ok
    assert check.detail == f"DuckDB file {missing} does not exist"
    assert not missing.exists()  # read-only: opening did not create it


# --- SQLite ----------------------------------------------------------------------------------


def test_sqlite_tables_and_columns_in_one_query(sqlite_file: Path) -> None:
    with Catalog(f"sqlite:///{sqlite_file}") as catalog:
        assert catalog.schemas() == ["main"]
        tables = catalog.tables()
    # sqlite_sequence (AUTOINCREMENT bookkeeping) and the index are not relations to describe.
    assert [(t.name, t.kind) for t in tables] == [
        ("big_orders", "view"),
        ("customers", "table"),
        ("orders", "table"),
    ]
    named = by_name(tables)
    assert shape(named["orders"]) == [
        ("id", "INTEGER", True, 1),
        ("customer_id", "INTEGER", False, 2),
        ("amount", "NUMERIC(12, 2)", False, 3),
        ("note", "TEXT", True, 4),
    ]
    assert [c.name for c in named["big_orders"].columns] == ["id", "amount"]
    assert {t.schema for t in tables} == {"main"}
    assert {t.row_count for t in tables} == {None}
    # SQLite has no comments: unknown, not empty.
    assert {t.comment for t in tables} == {None}
    assert {c.comment for t in tables for c in t.columns} == {None}


def test_sqlite_unknown_names(sqlite_file: Path) -> None:
    with Catalog(f"sqlite:///{sqlite_file}") as catalog:
        with pytest.raises(NotFound) as table:
            catalog.table("main", "customer")
        with pytest.raises(NotFound) as schema:
            catalog.tables("mian")
    assert table.value.suggestions[0] == "main.customers"
    assert schema.value.suggestions == ("main",)


def test_sqlite_is_read_only_at_the_database(sqlite_file: Path) -> None:
    with Catalog(f"sqlite:///{sqlite_file}") as catalog:
        for statement in (
            "INSERT INTO orders VALUES (2, 1, 1, 'y')",
            "CREATE TABLE intruder (id INTEGER)",
            "PRAGMA user_version = 7",
        ):
            with catalog._connect() as connection, pytest.raises(DBAPIError, match="readonly"):
                connection.execute(text(statement))
        with catalog._connect() as connection:
            assert connection.execute(text("PRAGMA query_only")).scalar() == 1
        assert [t.name for t in catalog.tables()] == ["big_orders", "customers", "orders"]


def test_sqlite_statement_timeout_interrupts(sqlite_file: Path) -> None:
    endless = (
        "WITH RECURSIVE r(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM r) SELECT count(*) FROM r"
    )
    with Catalog(f"sqlite:///{sqlite_file}", statement_timeout=0.3) as catalog:
        started = time.perf_counter()
        with pytest.raises(SourceUnavailable, match=r"timed out after 0\.3 s"):
            catalog._select(endless)
        assert time.perf_counter() - started < 5
        assert catalog.schemas() == ["main"]


def test_sqlite_missing_file_is_not_created(tmp_path: Path) -> None:
    missing = tmp_path / "missing.sqlite"
    with Catalog(f"sqlite:///{missing}") as catalog, pytest.raises(SourceUnavailable) as caught:
        catalog.tables()
    assert caught.value.reason == (
        f"cannot open SQLite file {missing} read-only (missing or unreadable)"
    )
    assert not missing.exists()


def test_guard_runs_before_the_file_is_touched(sqlite_file: Path) -> None:
    with Catalog(f"sqlite:///{sqlite_file}") as catalog, pytest.raises(SqlRefused):
        catalog._select("SELECT * FROM orders")


# --- construction ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("url", "message"),
    [
        # The dev venv has no Snowflake driver (tests/stack/snowflake_stack.py has its own).
        ("snowflake://user:pw@account/db", r"^Snowflake support is not installed: pip install"),
        ("mysql://user@host/db", "dialect 'mysql' is not supported"),
        ("not a url", "not a SQLAlchemy URL"),
    ],
)
def test_unsupported_urls_are_configuration_errors(url: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message) as caught:
        Catalog(url)
    assert "pw@" not in str(caught.value)


def test_settings_without_url_are_a_configuration_error() -> None:
    with pytest.raises(ConfigError, match="PIPEBOT_WAREHOUSE__URL"):
        Catalog.from_settings(WarehouseSettings())


def test_row_cap_bounds_relations_not_columns(
    sqlite_file: Path, caplog: pytest.LogCaptureFixture
) -> None:
    with Catalog(f"sqlite:///{sqlite_file}", row_cap=2) as catalog:
        tables = catalog.tables()
    # Two relations, each with all of its columns (the cap counts relations).
    assert [t.name for t in tables] == ["big_orders", "customers"]
    assert [len(t.columns) for t in tables] == [2, 3]
    assert "more than 2 relations" in caplog.text
    caplog.clear()
    with Catalog(f"sqlite:///{sqlite_file}", row_cap=3) as catalog:
        assert len(catalog.tables()) == 3
    assert "more than" not in caplog.text

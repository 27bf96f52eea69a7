"""The agent's warehouse tools over real catalogs (SQLite and DuckDB files, PostgreSQL)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from bot.tools import StaticToolset, Tool, ToolStatus
from integrations.warehouse.catalog import Catalog
from integrations.warehouse.toolset import warehouse_toolset
from tests.integrations.warehouse.support import PgWarehouse


def tool(toolset: StaticToolset, name: str) -> Tool[Any]:
    return {t.name: t for t in toolset.tools()}[name]


@pytest.fixture
def duck(duckdb_file: Path) -> Iterator[StaticToolset]:
    with Catalog(f"duckdb:///{duckdb_file}") as catalog:
        yield warehouse_toolset(catalog)


def test_tools_are_described_and_typed(duck: StaticToolset) -> None:
    assert duck.system == "warehouse"
    assert [t.name for t in duck.tools()] == ["list_schemas", "list_tables", "describe_table"]
    for each in duck.tools():
        assert len(each.description) > 80, each.name  # the tools.md section, not a stub
        schema = each.input_schema()
        assert schema["additionalProperties"] is False
        assert not {"sql", "query", "statement"} & set(schema.get("properties", {}))
    assert set(tool(duck, "list_tables").input_schema()["properties"]) == {
        "schema",
        "pattern",
        "limit",
    }
    assert tool(duck, "describe_table").input_schema()["required"] == ["schema", "table"]


def test_list_schemas(duck: StaticToolset) -> None:
    result = tool(duck, "list_schemas").call({})
    assert result.status is ToolStatus.SUCCESS
    assert result.data == {"schemas": ["main", "mart", "raw"]}
    assert result.invocation.startswith("list_schemas() on duckdb catalog at ")
    assert result.duration_ms > 0


def test_list_tables_with_and_without_pattern(duck: StaticToolset) -> None:
    listing = tool(duck, "list_tables").call({"schema": "mart"})
    assert listing.status is ToolStatus.SUCCESS
    assert listing.data["matched"] == 2
    assert listing.data["tables"] == [
        {"name": "big_orders", "kind": "view", "columns": 1},
        {"name": "orders", "kind": "table", "rows": 120, "columns": 5},
    ]
    assert listing.data["last_altered_means"] == "not recorded by DuckDB"
    globbed = tool(duck, "list_tables").call({"schema": "mart", "pattern": "BIG_*"})
    assert [t["name"] for t in globbed.data["tables"]] == ["big_orders"]
    substring = tool(duck, "list_tables").call({"schema": "mart", "pattern": "order"})
    assert substring.data["matched"] == 2
    assert "pattern='order'" in substring.invocation


def test_list_tables_limit_says_what_was_left_out(duck: StaticToolset) -> None:
    result = tool(duck, "list_tables").call({"schema": "mart", "limit": 1})
    assert [t["name"] for t in result.data["tables"]] == ["big_orders"]
    assert result.data["omitted"] == 1
    assert "pattern" in result.data["hint"]


def test_no_match_says_what_was_searched(duck: StaticToolset) -> None:
    result = tool(duck, "list_tables").call({"schema": "mart", "pattern": "stg_*"})
    assert result.status is ToolStatus.NO_DATA
    assert result.data["searched"] == "2 tables and views of schema mart for names matching 'stg_*'"
    unknown = tool(duck, "list_tables").call({"schema": "marts"})
    assert unknown.status is ToolStatus.NO_DATA
    assert unknown.data["suggestions"] == ["mart"]


def test_describe_table(duck: StaticToolset) -> None:
    result = tool(duck, "describe_table").call({"schema": "mart", "table": "orders"})
    assert result.status is ToolStatus.SUCCESS
    assert result.data["table"] == "mart.orders"
    assert result.data["rows"] == 120
    assert result.data["column_count"] == 5
    assert result.data["comment"] == "orders"
    assert result.data["columns"][:2] == [
        {"name": "id", "type": "INTEGER", "nullable": False, "position": 1},
        {
            "name": "amount",
            "type": "DECIMAL(12,2)",
            "nullable": False,
            "position": 2,
            "comment": "in EUR",
        },
    ]
    json.loads(result.as_text())  # what the model sees is JSON


def test_describe_unknown_table_offers_close_names(duck: StaticToolset) -> None:
    result = tool(duck, "describe_table").call({"schema": "mart", "table": "ordrs"})
    assert result.status is ToolStatus.NO_DATA
    assert result.data["suggestions"][0] == "mart.orders"
    assert result.data["searched"].startswith("mart.ordrs at ")


@pytest.mark.parametrize(
    "params",
    [
        {},  # schema is required
        {"schema": ""},
        {"schema": "mart", "sql": "DROP TABLE mart.orders"},  # no way to pass SQL
        {"schema": "mart", "limit": 0},
        {"schema": "x" * 200},
    ],
)
def test_invalid_parameters_are_an_error_result(
    duck: StaticToolset, params: dict[str, Any]
) -> None:
    result = tool(duck, "list_tables").call(params)
    assert result.status is ToolStatus.ERROR
    assert result.error is not None
    assert result.error.startswith("invalid parameters: ")


def test_connector_failure_becomes_an_error_result(tmp_path: Path) -> None:
    with Catalog(f"duckdb:///{tmp_path / 'missing.duckdb'}") as catalog:
        toolset = warehouse_toolset(catalog)
        result = tool(toolset, "list_schemas").call({})
        check = toolset.check()
    assert result.status is ToolStatus.ERROR
    assert result.error == f"DuckDB file {tmp_path / 'missing.duckdb'} does not exist"
    assert not check.ok
    assert check.detail == result.error


def test_postgres_tools_and_check(pg_warehouse: PgWarehouse) -> None:
    with Catalog(pg_warehouse.url, [pg_warehouse.schema]) as catalog:
        toolset = warehouse_toolset(catalog)
        check = toolset.check()
        # The test login is a superuser, which doctor must fail (test_privileges.py).
        assert not check.ok
        assert check.detail.startswith("the login can write")
        listing = tool(toolset, "list_tables").call({"schema": pg_warehouse.schema})
        described = tool(toolset, "describe_table").call(
            {"schema": pg_warehouse.schema, "table": "order_totals"}
        )
        outside = tool(toolset, "list_tables").call({"schema": pg_warehouse.staging})
    kinds = {t["name"]: t["kind"] for t in listing.data["tables"]}
    assert kinds["order_totals"] == "materialized view"
    assert kinds["events"] == "partitioned table"
    assert described.data["kind"] == "materialized view"
    assert [c["name"] for c in described.data["columns"]] == ["customer_id", "total"]
    assert "auto-analyze" in listing.data["last_altered_means"]
    assert outside.status is ToolStatus.NO_DATA
    assert "not one of the configured schemas" in outside.data["reason"]
    assert listing.invocation.endswith("on postgresql catalog at 127.0.0.1:5432/test")


def test_row_cap_is_reported_to_the_model(sqlite_file: Path) -> None:
    with Catalog(f"sqlite:///{sqlite_file}", row_cap=2) as catalog:
        result = tool(warehouse_toolset(catalog), "list_tables").call({"schema": "main"})
    assert [t["name"] for t in result.data["tables"]] == ["big_orders", "customers"]
    assert "at least 2 relations (the row cap)" in result.data["note"]

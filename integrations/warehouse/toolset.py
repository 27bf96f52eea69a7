"""The warehouse tools the agent may call: typed parameters in, trimmed metadata out.

The model names a schema, a table or a name pattern — parameters, never SQL. Every tool returns
a `bot.tools.ToolResult`; "nothing found" is ``no_data`` with what was searched and close
names, and a connector failure becomes ``error`` with the connector's reason (`Tool.call`)::

    toolset = warehouse_toolset(Catalog.from_settings(settings.warehouse))
    [tool.name for tool in toolset.tools()]  # ['list_schemas', 'list_tables', 'describe_table']
"""

from __future__ import annotations

import fnmatch
from collections.abc import Callable
from functools import cache
from typing import Any, Protocol, TypeVar

from pydantic import BaseModel, ConfigDict, Field

from bot.errors import NotFound
from bot.facts import Table
from bot.ports import WarehouseCatalog
from bot.tools import Check, StaticToolset, Tool, ToolResult, ToolStatus, load_descriptions

MAX_TABLES = 500  # rows a list_tables answer may carry to the model
MAX_COLUMNS = 300  # columns a describe_table answer may carry
P = TypeVar("P", bound=BaseModel)


class DescribedCatalog(WarehouseCatalog, Protocol):
    """What the toolset needs beyond the core's port: where it reads, its cap, its check."""

    where: str  # credential-free, e.g. "db.internal:5432/analytics"
    row_cap: int

    @property
    def last_altered_means(self) -> str: ...

    def check(self) -> Check: ...


class _Params(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True, str_strip_whitespace=True)


class ListSchemasParams(_Params):
    pass


class ListTablesParams(_Params):
    # "schema" is the natural name for the model; on a BaseModel it would shadow a method.
    schema_: str = Field(
        alias="schema",
        min_length=1,
        max_length=128,
        description="Schema to list, e.g. 'analytics'",
    )
    pattern: str | None = Field(
        None,
        max_length=128,
        description="Case-insensitive shell-style pattern on the table name, e.g. 'stg_*' or "
        "'*orders*'; without wildcards, matches names containing it",
    )
    limit: int = Field(100, ge=1, le=MAX_TABLES, description="Most tables to return")


class DescribeTableParams(_Params):
    schema_: str = Field(
        alias="schema", min_length=1, max_length=128, description="Schema of the table"
    )
    table: str = Field(
        min_length=1, max_length=128, description="Table or view name, exactly as listed"
    )


def warehouse_toolset(catalog: DescribedCatalog) -> StaticToolset:
    """The three read-only warehouse tools over `catalog`, with its `check` for doctor."""
    system = catalog.system

    def invocation(tool: str, **params: Any) -> str:
        shown = ", ".join(f"{k}={v!r}" for k, v in params.items() if v is not None)
        return f"{tool}({shown}) on {catalog.dialect} catalog at {catalog.where}"

    def list_schemas(params: ListSchemasParams) -> ToolResult:
        call = invocation("list_schemas")
        schemas = catalog.schemas()
        if not schemas:
            return ToolResult(
                status=ToolStatus.NO_DATA,
                invocation=call,
                system=system,
                data={"searched": f"schemas the role may use at {catalog.where}", "schemas": []},
            )
        return ToolResult(
            status=ToolStatus.SUCCESS, invocation=call, system=system, data={"schemas": schemas}
        )

    def list_tables(params: ListTablesParams) -> ToolResult:
        call = invocation("list_tables", schema=params.schema_, pattern=params.pattern)
        try:
            tables = catalog.tables(params.schema_)
        except NotFound as exc:
            return _not_found(call, system, f"schema {params.schema_} at {catalog.where}", exc)
        matched = [t for t in tables if _matches(t.name, params.pattern)]
        capped = len(tables) >= catalog.row_cap
        if not matched:
            searched = f"{len(tables)} tables and views of schema {params.schema_}"
            if params.pattern:
                searched += f" for names matching {params.pattern!r}"
            return ToolResult(
                status=ToolStatus.NO_DATA,
                invocation=call,
                system=system,
                data={"searched": searched, "where": catalog.where, "tables": []},
            )
        shown = matched[: params.limit]
        data: dict[str, Any] = {
            "schema": params.schema_,
            "matched": len(matched),
            "tables": [_summary(t) for t in shown],
            "last_altered_means": catalog.last_altered_means,
        }
        if len(shown) < len(matched):
            data["omitted"] = len(matched) - len(shown)
            data["hint"] = "narrow the list with a pattern"
        if capped:
            data["note"] = (
                f"the schema has at least {catalog.row_cap} relations (the row cap); "
                "only the first ones by name were searched"
            )
        return ToolResult(status=ToolStatus.SUCCESS, invocation=call, system=system, data=data)

    def describe_table(params: DescribeTableParams) -> ToolResult:
        call = invocation("describe_table", schema=params.schema_, table=params.table)
        try:
            table = catalog.table(params.schema_, params.table)
        except NotFound as exc:
            searched = f"{params.schema_}.{params.table} at {catalog.where}"
            return _not_found(call, system, searched, exc)
        return ToolResult(
            status=ToolStatus.SUCCESS,
            invocation=call,
            system=system,
            data=_details(table, catalog.last_altered_means),
        )

    tools = (
        described_tool("list_schemas", ListSchemasParams, list_schemas, system),
        described_tool("list_tables", ListTablesParams, list_tables, system),
        described_tool("describe_table", DescribeTableParams, describe_table, system),
    )
    return StaticToolset(system=system, tool_list=tools, checker=catalog.check)


def described_tool(
    name: str, params: type[P], run: Callable[[P], ToolResult], system: str
) -> Tool[P]:
    """The warehouse tool `name`, described by its ``## name`` section of tools.md."""
    return Tool(name=name, description=_descriptions()[name], params=params, run=run, system=system)


@cache
def _descriptions() -> dict[str, str]:
    return load_descriptions("integrations.warehouse", "tools.md")


def _not_found(call: str, system: str, searched: str, exc: NotFound) -> ToolResult:
    return ToolResult(
        status=ToolStatus.NO_DATA,
        invocation=call,
        system=system,
        data={"searched": searched, "reason": exc.reason, "suggestions": list(exc.suggestions)},
    )


def _matches(name: str, pattern: str | None) -> bool:
    if not pattern:
        return True
    if any(ch in pattern for ch in "*?["):
        return fnmatch.fnmatchcase(name.lower(), pattern.lower())
    return pattern.lower() in name.lower()


def _summary(table: Table) -> dict[str, Any]:
    return drop_none(
        {
            "name": table.name,
            "kind": table.kind,
            "rows": table.row_count,
            "size_bytes": table.size_bytes,
            "last_altered": table.last_altered.isoformat() if table.last_altered else None,
            "columns": len(table.columns),
        }
    )


def _details(table: Table, last_altered_means: str) -> dict[str, Any]:
    columns = [
        drop_none(
            {
                "name": c.name,
                "type": c.data_type,
                "nullable": c.nullable,
                "position": c.position,
                "comment": c.comment,
            }
        )
        for c in table.columns[:MAX_COLUMNS]
    ]
    data = drop_none(
        {
            "table": f"{table.schema}.{table.name}",
            "database": table.database or None,
            "kind": table.kind,
            "comment": table.comment,
            "rows": table.row_count,
            "size_bytes": table.size_bytes,
            "last_altered": table.last_altered.isoformat() if table.last_altered else None,
            "last_altered_means": last_altered_means if table.last_altered else None,
            "column_count": len(table.columns),
            "columns": columns,
        }
    )
    if len(table.columns) > MAX_COLUMNS:
        data["columns_omitted"] = len(table.columns) - MAX_COLUMNS
    return data


def drop_none(values: dict[str, Any]) -> dict[str, Any]:
    """`values` without the keys whose value is None (unknown figures are left out)."""
    return {k: v for k, v in values.items() if v is not None}

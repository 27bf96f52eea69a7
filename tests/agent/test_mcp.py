"""The MCP server, in memory with the real MCP client: tools listed read-only, calls answered."""

from __future__ import annotations

import json
from typing import Any

import anyio
from mcp import Client

from bot.redaction import Redactor
from bot.store import Store
from handlers.mcp import build_server
from tests.agent.support import RUN_ID, airflow_toolset, failed_world

SECRET = "hunter2-the-password"


def _run(server: Any, action: Any) -> Any:
    async def main() -> Any:
        async with Client(server) as client:
            return await action(client)

    return anyio.run(main)


def test_tools_are_listed_with_read_only_annotations() -> None:
    toolset = airflow_toolset(failed_world())
    server = build_server([toolset])

    async def list_tools(client: Client) -> Any:
        return await client.list_tools()

    listed = _run(server, list_tools)
    assert [t.name for t in listed.tools] == [t.name for t in toolset.tools()]
    for served, tool in zip(listed.tools, toolset.tools(), strict=True):
        assert served.description == tool.description
        assert served.input_schema == tool.input_schema()
        annotations = served.annotations.model_dump(by_alias=True, exclude_none=True)
        assert annotations == {
            "readOnlyHint": True,
            "destructiveHint": False,
            "idempotentHint": True,
            "openWorldHint": True,
        }


def test_a_call_returns_the_redacted_result_and_is_audited(sqlite_store: Store) -> None:
    world = failed_world(log=f"password={SECRET}\nKeyError: 'amount'")
    server = build_server(
        [airflow_toolset(world)], redactor=Redactor.build([SECRET]), audit=sqlite_store.audit
    )
    arguments = {
        "dag_id": "orders_daily",
        "run_id": RUN_ID,
        "task_id": "transform",
        "try_number": 2,
    }

    async def call(client: Client) -> Any:
        return await client.call_tool("get_task_log", arguments)

    result = _run(server, call)
    assert result.is_error is False
    data = json.loads(result.content[0].text)
    assert data["lines"][-1] == "KeyError: 'amount'"
    assert SECRET not in result.content[0].text
    assert world.calls == ["log transform 2"]
    assert sqlite_store.audit.tool_calls()[-1].endswith("/logs/2")


def test_failures_and_bad_arguments_are_error_results() -> None:
    server = build_server([airflow_toolset(failed_world())])

    async def calls(client: Client) -> Any:
        missing = await client.call_tool("list_dag_runs", {"dag_id": "nope"})
        invalid = await client.call_tool("list_dag_runs", {"limit": 5})
        return missing, invalid

    missing, invalid = _run(server, calls)
    assert missing.is_error is True
    assert "DAG 'nope' not found" in missing.content[0].text
    assert invalid.is_error is True
    assert "dag_id" in invalid.content[0].text


def test_pipebot_mcp_speaks_mcp_on_stdio(tmp_path: Any) -> None:
    """The CLI command end to end: a subprocess whose stdout carries only the protocol."""
    import os
    import sys
    from pathlib import Path

    from mcp import StdioServerParameters

    pipebot = Path(sys.executable).with_name("pipebot")
    params = StdioServerParameters(
        command=str(pipebot),
        args=["mcp"],
        env={
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            "PIPEBOT_DATABASE_URL": f"sqlite:///{tmp_path}/mcp.db",
            "PIPEBOT_LOG_LEVEL": "DEBUG",
        },
        cwd=str(tmp_path),
    )

    async def list_tools(client: Client) -> Any:
        return await client.list_tools()

    listed = _run(params, list_tools)
    assert listed.tools == []  # nothing configured, and the server still answers


def test_aliased_parameters_keep_their_wire_names() -> None:
    """A field `schema_` published as "schema" (it would shadow a BaseModel method)."""
    from pydantic import BaseModel, ConfigDict, Field

    from bot.tools import Check, StaticToolset, Tool, ToolResult, ToolStatus

    class Params(BaseModel):
        model_config = ConfigDict(extra="forbid", populate_by_name=True)
        schema_: str = Field(alias="schema")
        table: str
        limit: int = 10

    seen: list[Params] = []

    def describe(p: Params) -> ToolResult:
        seen.append(p)
        return ToolResult(
            status=ToolStatus.SUCCESS,
            invocation=f"describe {p.schema_}.{p.table}",
            system="warehouse",
            data={"columns": ["id"]},
        )

    toolset = StaticToolset(
        system="warehouse",
        tool_list=(
            Tool(
                name="describe_table",
                description="d",
                params=Params,
                run=describe,
                system="warehouse",
            ),
        ),
        checker=lambda: Check(system="warehouse", ok=True, detail=""),
    )

    async def call(client: Client) -> Any:
        listed = await client.list_tools()
        result = await client.call_tool("describe_table", {"schema": "staging", "table": "orders"})
        return listed, result

    listed, result = _run(build_server([toolset]), call)
    assert set(listed.tools[0].input_schema["properties"]) == {"schema", "table", "limit"}
    assert result.is_error is False
    assert seen == [Params.model_validate({"schema": "staging", "table": "orders"})]


def test_the_demo_toolsets_over_mcp() -> None:
    from integrations.demo import demo_sources

    sources = demo_sources()
    server = build_server(sources.toolsets)

    async def use(client: Client) -> Any:
        listed = await client.list_tools()
        dags = await client.call_tool("list_dags", {})
        return listed, dags

    listed, dags = _run(server, use)
    names = {t.name for t in listed.tools}
    assert {"list_dags", "get_task_log", "dbt_lineage"} <= names
    assert all(t.annotations.read_only_hint for t in listed.tools)
    assert dags.is_error is False
    assert "orders_daily" in dags.content[0].text

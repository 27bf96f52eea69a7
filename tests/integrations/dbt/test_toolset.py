"""The agent's dbt tools over the real build (local and through the fake dbt Cloud)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import pytest

from bot.tools import StaticToolset, Tool, ToolResult, ToolStatus, load_descriptions
from integrations.dbt.cloud import CloudProject
from integrations.dbt.project import ArtifactsProject
from integrations.dbt.toolset import dbt_toolset
from tests.fakes.dbt_cloud import DAILY_JOB, FakeDbtCloud
from tests.integrations.dbt.conftest import client_for

FIXTURES = Path(__file__).parent / "fixtures"
LOCAL_TOOLS = ["dbt_find_node", "dbt_lineage", "dbt_last_run", "dbt_source_freshness", "dbt_tests"]


def tools_of(toolset: StaticToolset) -> dict[str, Tool[Any]]:
    return {tool.name: tool for tool in toolset.tools()}


def call(toolset: StaticToolset, tool: str, **params: Any) -> ToolResult:
    result = tools_of(toolset)[tool].call(params)
    json.dumps(result.data)  # every result must be JSON as it is
    return result


@pytest.fixture
def legacy_toolset(tmp_path: Path) -> StaticToolset:
    shutil.copytree(FIXTURES / "legacy", tmp_path / "target")
    return dbt_toolset(ArtifactsProject(tmp_path / "target"))


# --- contract ------------------------------------------------------------------------------------


def test_every_tool_is_described_and_typed(legacy_toolset: StaticToolset) -> None:
    descriptions = load_descriptions("integrations.dbt", "tools.md")
    assert list(tools_of(legacy_toolset)) == LOCAL_TOOLS
    for tool in legacy_toolset.tools():
        assert tool.description == descriptions[tool.name]
        assert len(tool.description) > 80
        schema = tool.input_schema()
        assert schema["type"] == "object"
        assert schema.get("additionalProperties") is False
    assert legacy_toolset.system == "dbt"
    assert legacy_toolset.check().ok


@pytest.mark.parametrize(
    ("name", "params", "problem"),
    [
        ("dbt_find_node", {}, "name: Field required"),
        ("dbt_find_node", {"name": ""}, "name: String should have at least 1 character"),
        ("dbt_lineage", {"name": "orders", "depth": 0}, "depth: Input should be greater"),
        ("dbt_lineage", {"name": "orders", "direction": "sideways"}, "direction: Input should be"),
        ("dbt_last_run", {"status": "exploded"}, "status: Input should be"),
        ("dbt_last_run", {"limit": 1000}, "limit: Input should be less than or equal to 200"),
        ("dbt_source_freshness", {"sql": "select 1"}, "sql: Extra inputs are not permitted"),
        ("dbt_tests", {"name": "orders", "url": "http://x"}, "url: Extra inputs"),
    ],
)
def test_invalid_parameters_are_errors_not_exceptions(
    legacy_toolset: StaticToolset, name: str, params: dict[str, Any], problem: str
) -> None:
    result = tools_of(legacy_toolset)[name].call(params)
    assert result.status is ToolStatus.ERROR
    assert result.error is not None
    assert result.error.startswith("invalid parameters: ")
    assert problem in result.error
    assert result.invocation.startswith(f"{name}(")


# --- on hand-made legacy artifacts ----------------------------------------------------------


def test_unknown_name_is_no_data_with_suggestions(legacy_toolset: StaticToolset) -> None:
    for tool in ("dbt_find_node", "dbt_lineage", "dbt_tests"):
        result = call(legacy_toolset, tool, name="order_report")
        assert result.status is ToolStatus.NO_DATA
        assert "named 'order_report' in dbt artifacts in" in result.data["searched"]
        assert result.data["suggestions"][0] == "orders_report"


def test_no_tests_is_no_data(legacy_toolset: StaticToolset) -> None:
    result = call(legacy_toolset, "dbt_tests", name="raw_orders")
    assert result.status is ToolStatus.NO_DATA
    assert result.data["searched"] == "tests that read this node"


def test_status_filters_with_nothing_found_are_no_data(legacy_toolset: StaticToolset) -> None:
    result = call(legacy_toolset, "dbt_last_run", status="skipped")
    assert result.status is ToolStatus.NO_DATA
    assert result.data["searched"] == "4 results for status skipped"
    assert result.data["counts"] == {"error": 1, "exploded": 1, "success": 1, "warn": 1}
    fresh = call(legacy_toolset, "dbt_source_freshness", status="pass")
    assert fresh.status is ToolStatus.NO_DATA
    assert fresh.data["searched"].startswith("sources.json in dbt artifacts in")


def test_missing_run_results_and_sources_are_no_data(tmp_path: Path) -> None:
    shutil.copy(FIXTURES / "legacy" / "manifest.json", tmp_path / "manifest.json")
    toolset = dbt_toolset(ArtifactsProject(tmp_path))
    run = call(toolset, "dbt_last_run")
    assert run.status is ToolStatus.NO_DATA
    assert run.data == {"searched": f"run_results.json in dbt artifacts in {tmp_path}", "found": 0}
    fresh = call(toolset, "dbt_source_freshness")
    assert fresh.status is ToolStatus.NO_DATA


def test_broken_target_is_an_error_result(tmp_path: Path) -> None:
    toolset = dbt_toolset(ArtifactsProject(tmp_path))
    result = call(toolset, "dbt_find_node", name="orders")
    assert result.status is ToolStatus.ERROR
    assert result.error is not None
    assert "no manifest.json in" in result.error
    assert not toolset.check().ok


# --- on the real build ----------------------------------------------------------------------


@pytest.fixture
def built_toolset(built_project: ArtifactsProject) -> StaticToolset:
    return dbt_toolset(built_project)


@pytest.mark.integration
def test_find_node(built_toolset: StaticToolset, built_project: ArtifactsProject) -> None:
    result = call(built_toolset, "dbt_find_node", name="fct_orders")
    assert result.status is ToolStatus.SUCCESS
    assert result.invocation == (
        f"dbt artifacts in {built_project.target_dir}: node 'fct_orders' "
        "(manifest.json, catalog.json)"
    )
    data = result.data
    assert data["owners"] == ["@dana", "finance-data@example.com"]
    assert data["contract_enforced"] is True
    assert data["access"] == "public"
    assert data["columns"][0] == {
        "name": "order_id",
        "data_type": "integer",
        "description": "Primary key of the order.",
        "tests": ["unique_fct_orders_order_id", "not_null_fct_orders_order_id"],
    }
    assert "raw_code" not in json.dumps(data)


@pytest.mark.integration
def test_lineage_directions(built_toolset: StaticToolset) -> None:
    down = call(built_toolset, "dbt_lineage", name="raw.orders", direction="downstream")
    assert down.status is ToolStatus.SUCCESS
    assert [n["name"] for n in down.data["children"]] == ["stg_orders"]
    assert len(down.data["downstream"]) == 6  # models; the semantic layer apart:
    assert [n["resource_type"] for n in down.data["semantic_layer"]] == [
        "semantic_model",
        "metric",
        "metric",
        "metric",
        "saved_query",
    ]
    assert down.data["exposures"][0] == {
        "unique_id": "exposure.shop.revenue_dashboard",
        "name": "revenue_dashboard",
        "resource_type": "exposure",
        "owners": ["dana@example.com"],
        "exposure_type": "dashboard",
        "url": "https://bi.example.com/dashboards/revenue",
    }
    assert [e["name"] for e in down.data["exposures"]] == ["revenue_dashboard", "status_dashboard"]
    assert "upstream" not in down.data
    up = call(built_toolset, "dbt_lineage", name="orders_daily", direction="upstream", depth=1)
    assert [n["name"] for n in up.data["upstream"]] == ["fct_orders"]
    assert "downstream" not in up.data
    assert up.data["tests"] == {"count": 3, "not_passing": ["not_null_orders_daily_revenue"]}


@pytest.mark.integration
def test_last_run_problems_first(built_toolset: StaticToolset) -> None:
    result = call(built_toolset, "dbt_last_run", status="problems")
    assert result.status is ToolStatus.SUCCESS
    assert result.data["command"] == "build"
    assert result.data["counts"]["fail"] == 2  # a data test and a unit test
    assert {r["status"] for r in result.data["results"]} == {"error", "fail", "warn"}
    everything = call(built_toolset, "dbt_last_run", limit=5)
    assert everything.data["results_not_listed"] == 31
    assert everything.data["results"][0]["status"] in ("error", "fail", "warn")
    skipped = call(built_toolset, "dbt_last_run", status="skipped")
    assert len(skipped.data["results"]) == 5


@pytest.mark.integration
def test_source_freshness(built_toolset: StaticToolset) -> None:
    result = call(built_toolset, "dbt_source_freshness")
    assert [(s["source"], s["status"]) for s in result.data["sources"]] == [
        ("raw.customers", "error"),
        ("raw.payments", "warn"),
        ("raw.products", "not computed"),
        ("raw.orders", "pass"),
    ]
    assert result.data["sources"][1]["rule"] == "warn after 6 hours, error after 1 day"
    assert "no loaded_at_field" in result.data["sources"][2]["reason"]
    stale = call(built_toolset, "dbt_source_freshness", status="stale")
    assert len(stale.data["sources"]) == 3  # not computed is not fresh either


@pytest.mark.integration
def test_tests_with_results(built_toolset: StaticToolset) -> None:
    result = call(built_toolset, "dbt_tests", name="orders_daily")
    first = result.data["tests"][0]
    assert first["name"] == "not_null_orders_daily_revenue"
    assert (first["column"], first["test"], first["severity"]) == ("revenue", "not_null", "error")
    assert (first["status"], first["failures"]) == ("fail", 1)
    warned = call(built_toolset, "dbt_tests", name="dim_customers").data["tests"][0]
    assert (warned["test"], warned["severity"], warned["status"]) == (
        "accepted_values",
        "warn",
        "warn",
    )
    skipped = call(built_toolset, "dbt_tests", name="customer_ltv").data["tests"]
    assert {t["status"] for t in skipped} == {"skipped"}


@pytest.mark.integration
def test_cloud_tools(fake_cloud: FakeDbtCloud, built_project: ArtifactsProject) -> None:
    toolset = dbt_toolset(built_project, cloud=client_for(fake_cloud))
    assert list(tools_of(toolset)) == [*LOCAL_TOOLS, "dbt_cloud_runs", "dbt_cloud_run"]
    runs = call(toolset, "dbt_cloud_runs", job_id=DAILY_JOB, status="error", limit=2)
    assert runs.status is ToolStatus.SUCCESS
    assert runs.system == "dbt Cloud"
    assert runs.invocation == (
        "GET /api/v2/accounts/1/runs/?job_definition_id=1001&status=20"
        "&include_related=job%2Ctrigger&order_by=-finished_at&limit=2&offset=0"
    )
    first = runs.data["runs"][0]
    assert (first["run_id"], first["job_name"], first["status"]) == (
        fake_cloud.latest_run_id,
        "Daily shop build",
        "Error",
    )
    none = call(toolset, "dbt_cloud_runs", job_id=4242)
    assert none.status is ToolStatus.NO_DATA
    assert none.data == {"searched": "runs of account 1", "job_id": 4242, "found": 0}
    one = call(toolset, "dbt_cloud_run", run_id=fake_cloud.latest_run_id)
    assert one.status is ToolStatus.SUCCESS
    assert one.data["command"] == "seed + build"
    assert [s["status"] for s in one.data["steps"]][3:] == ["Success", "Error", "Error", "Success"]
    assert any("customer_ltv" in line for line in one.data["failed_step_log_tail"])
    assert {p["status"] for p in one.data["problems"]} == {"error", "fail", "warn"}
    assert "GET /api/v2/accounts/1/runs/" in one.invocation
    missing = call(toolset, "dbt_cloud_run", run_id=1)
    assert missing.status is ToolStatus.ERROR
    assert missing.error is not None
    assert "404" in missing.error
    check = toolset.check()
    assert check.ok
    assert "dbt Cloud: account 'Shop Analytics'" in check.detail


@pytest.mark.integration
def test_toolset_over_cloud_project(fake_cloud: FakeDbtCloud) -> None:
    project = CloudProject(client_for(fake_cloud), DAILY_JOB)
    toolset = dbt_toolset(project)
    assert toolset.system == "dbt Cloud"
    assert "dbt_cloud_run" in tools_of(toolset)
    first = call(toolset, "dbt_lineage", name="fct_orders")
    assert first.invocation.startswith("GET /api/v2/accounts/1/runs/?job_definition_id=1001")
    assert "artifacts/manifest.json" in first.invocation
    again = call(toolset, "dbt_lineage", name="fct_orders")
    assert again.invocation == (
        "dbt Cloud job 1001 (cached artifacts): lineage of 'fct_orders', both, depth all "
        "(manifest.json)"
    )
    assert again.data == first.data
    assert toolset.check().ok


def test_cloud_only_toolset(empty_cloud: FakeDbtCloud) -> None:
    toolset = dbt_toolset(None, cloud=client_for(empty_cloud))
    assert list(tools_of(toolset)) == ["dbt_cloud_runs", "dbt_cloud_run"]
    assert toolset.system == "dbt Cloud"
    assert toolset.check().detail == "account 'Shop Analytics' (id 1) readable with the token"
    runs = call(toolset, "dbt_cloud_runs", status="running")
    assert [r["status"] for r in runs.data["runs"]] == ["Running"]
    with pytest.raises(ValueError, match="needs dbt artifacts, a dbt Cloud client, or both"):
        dbt_toolset(None)

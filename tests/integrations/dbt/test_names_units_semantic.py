"""Unit tests, the semantic layer and names that fit several nodes, on a small hand-written
target/ folder (small_project.py) with and without the manifest's parent/child maps."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from bot.errors import Ambiguous, NotFound
from bot.tools import StaticToolset, ToolStatus
from integrations.dbt.project import ArtifactsProject
from integrations.dbt.toolset import dbt_toolset
from tests.integrations.dbt import small_project
from tests.integrations.dbt.small_project import RAW_ORDERS, UNIT_TEST


@pytest.fixture(params=["maps", "no maps"])
def shop(request: pytest.FixtureRequest, tmp_path: Path) -> ArtifactsProject:
    """The small project, once with dbt's parent/child maps and once rebuilt from depends_on."""
    return ArtifactsProject(small_project.write(tmp_path / "target", maps=request.param == "maps"))


def names(nodes: Any) -> list[str]:
    return [n.name for n in nodes]


# --- unit tests ------------------------------------------------------------------------------


def test_a_unit_test_is_a_node_owned_by_the_model_it_tests(shop: ArtifactsProject) -> None:
    unit = shop.node(UNIT_TEST)
    assert (unit.resource_type, unit.name) == ("unit_test", "revenue_by_status_sums_completed")
    assert unit.tested == "model.shop.revenue_by_status"
    # No owner of its own: the model's group owner.
    assert unit.owners == ("finance-data@example.com",)
    assert shop.node("revenue_by_status_sums_completed").unique_id == UNIT_TEST
    lineage = shop.lineage(UNIT_TEST)
    assert names(lineage.parents) == ["revenue_by_status"]
    assert names(lineage.upstream) == [
        "revenue_by_status",
        "fct_orders",
        "stg_orders",
        "raw.orders",
    ]


def test_unit_tests_are_listed_with_the_data_tests(shop: ArtifactsProject) -> None:
    tested = shop.lineage("revenue_by_status")
    assert [(t.resource_type, t.name) for t in tested.tests] == [
        ("unit_test", "revenue_by_status_sums_completed")
    ]
    assert tested.test_results[UNIT_TEST].status == "fail"
    assert [t.resource_type for t in shop.lineage("fct_orders").tests] == ["test"]
    assert names(shop.nodes("unit_test")) == ["revenue_by_status_sums_completed"]


# --- blast radius and the semantic layer -------------------------------------------------------


def test_downstream_counts_models_and_exposures_not_the_semantic_layer(
    shop: ArtifactsProject,
) -> None:
    lineage = shop.lineage("stg_orders")
    assert names(lineage.children) == ["fct_orders"]
    assert names(lineage.downstream) == ["fct_orders", "revenue_by_status"]
    assert names(lineage.exposures) == ["status_dashboard"]
    assert [(n.resource_type, n.name) for n in lineage.semantic] == [
        ("semantic_model", "orders"),
        ("metric", "revenue"),
        ("metric", "average_order_value"),
        ("saved_query", "daily_revenue"),
    ]
    # Depth limits the listed models; exposures and the semantic layer stay complete.
    near = shop.lineage("stg_orders", depth=1)
    assert names(near.downstream) == ["fct_orders"]
    assert len(near.semantic) == 4
    assert names(near.exposures) == ["status_dashboard"]


def test_lineage_of_a_metric_shows_what_it_is_built_on_and_what_uses_it(
    shop: ArtifactsProject,
) -> None:
    metric = shop.lineage("revenue")
    assert (metric.node.resource_type, metric.node.metric_type) == ("metric", "simple")
    assert metric.node.description == "Sum of order amounts in EUR."
    assert names(metric.parents) == ["orders"]
    assert names(metric.upstream) == ["orders", "fct_orders", "stg_orders", "raw.orders"]
    assert names(metric.semantic) == ["average_order_value", "daily_revenue"]
    assert metric.downstream == ()
    semantic_model = shop.lineage("semantic_model.shop.orders")
    assert semantic_model.node.relation == '"shop"."marts"."fct_orders"'
    assert names(semantic_model.parents) == ["fct_orders"]
    assert names(shop.lineage("daily_revenue").parents) == ["revenue"]
    assert names(shop.nodes("metric")) == ["average_order_value", "revenue"]


# --- names that fit several nodes ---------------------------------------------------------------


def test_a_seed_and_a_source_over_one_table_are_both_named(shop: ArtifactsProject) -> None:
    with pytest.raises(Ambiguous) as caught:
        shop.lineage("raw_orders")
    found = caught.value
    assert [(c.kind, c.name, c.ref, c.detail) for c in found.candidates] == [
        ("seed", "raw_orders", "seed.shop.raw_orders", RAW_ORDERS),
        ("source", "raw.orders", "raw.orders", RAW_ORDERS),
    ]
    assert "both over the table" in found.reason
    assert found.suggestions == ("seed.shop.raw_orders", "raw.orders")
    # Each exact name means one node.
    assert shop.node("seed.shop.raw_orders").resource_type == "seed"
    assert names(shop.lineage("raw.orders").children) == ["stg_orders"]
    assert shop.node("source.shop.raw.orders").name == "raw.orders"


def test_a_model_named_like_a_source_table_is_ambiguous(shop: ArtifactsProject) -> None:
    with pytest.raises(Ambiguous) as caught:
        shop.node("payments")
    assert [c.ref for c in caught.value.candidates] == ["model.shop.payments", "raw.payments"]
    assert isinstance(caught.value, NotFound)  # code that knows only NotFound still copes
    assert shop.node("raw.payments").resource_type == "source"


def test_a_name_picks_the_table_and_mentions_the_semantic_model(shop: ArtifactsProject) -> None:
    # "orders" is the source table raw.orders and the semantic model built (further down) on it.
    lineage = shop.lineage("orders")
    assert lineage.node.unique_id == "source.shop.raw.orders"
    assert [n.unique_id for n in lineage.also] == ["semantic_model.shop.orders"]
    assert shop.lineage("source.shop.raw.orders").also == ()


def test_the_projects_own_model_beats_a_packages(shop: ArtifactsProject) -> None:
    assert shop.node("fct_orders").unique_id == "model.shop.fct_orders"
    assert shop.lineage("fct_orders").also == ()
    assert shop.node("model.shop_utils.fct_orders").package == "shop_utils"


# --- the agent's tools -------------------------------------------------------------------------


@pytest.fixture
def tools(shop: ArtifactsProject) -> StaticToolset:
    return dbt_toolset(shop)


def call(toolset: StaticToolset, tool_name: str, **params: Any) -> Any:
    tool = next(t for t in toolset.tools() if t.name == tool_name)
    return tool.call(params)


def test_tools_name_the_candidates_of_an_ambiguous_name(tools: StaticToolset) -> None:
    result = call(tools, "dbt_lineage", name="raw_orders")
    assert result.status is ToolStatus.NO_DATA
    assert result.data["found"] == 2
    assert result.data["candidates"] == [
        {"name": "seed.shop.raw_orders", "resource_type": "seed", "relation": RAW_ORDERS},
        {"name": "raw.orders", "resource_type": "source", "relation": RAW_ORDERS},
    ]


def test_tools_list_the_semantic_layer_apart_and_unit_tests(tools: StaticToolset) -> None:
    lineage = call(tools, "dbt_lineage", name="stg_orders", direction="downstream")
    assert [n["name"] for n in lineage.data["downstream"]] == ["fct_orders", "revenue_by_status"]
    assert [n["name"] for n in lineage.data["semantic_layer"]] == [
        "orders",
        "revenue",
        "average_order_value",
        "daily_revenue",
    ]
    metric = call(tools, "dbt_find_node", name="revenue")
    assert (metric.data["resource_type"], metric.data["metric_type"]) == ("metric", "simple")
    tests = call(tools, "dbt_tests", name="revenue_by_status")
    [row] = tests.data["tests"]
    assert (row["test"], row["status"], row["failures"]) == ("unit", "fail", 1)

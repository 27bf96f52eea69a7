"""Unit tests, the semantic layer and a seed and a source over one table, in the real dbt build
of tests/stack/dbt_project (see its README): what `lineage` and `triage dbt` make of them."""

from __future__ import annotations

import json

import pytest

from bot.errors import Ambiguous
from bot.owners import OwnerDirectory
from bot.playbooks import lineage as lineage_playbook
from bot.playbooks.triage import render, triage_dbt
from bot.playbooks.triage.report import TriageReport
from bot.ports import Sources
from bot.rendering import to_json, to_text
from integrations.dbt.project import ArtifactsProject
from tests.playbooks.test_lineage_and_dbt_triage import ask

pytestmark = pytest.mark.integration

RAW_ORDERS = '"shop"."raw"."raw_orders"'
SEMANTIC = [
    ("semantic_model", "orders"),
    ("metric", "order_count"),
    ("metric", "revenue"),
    ("metric", "average_order_value"),
    ("saved_query", "daily_revenue"),
]


def test_seed_and_source_over_the_same_table_are_both_named(
    built_project: ArtifactsProject,
) -> None:
    with pytest.raises(Ambiguous) as caught:
        built_project.lineage("raw_orders")
    assert [(c.kind, c.ref, c.detail) for c in caught.value.candidates] == [
        ("seed", "seed.shop.raw_orders", RAW_ORDERS),
        ("source", "raw.orders", RAW_ORDERS),
    ]
    reply = lineage_playbook.run(ask(Sources(dbt=built_project), "raw_orders"))
    out = to_text(reply)
    assert reply.title == "Which raw_orders?"
    assert "`lineage seed.shop.raw_orders` or `lineage raw.orders`" in out
    assert "Read by     model `stg_orders`" in out


def test_impact_is_models_and_exposures_the_semantic_layer_apart(
    built_project: ArtifactsProject,
) -> None:
    lineage = built_project.lineage("stg_orders")
    assert {n.name for n in lineage.downstream} == {
        "fct_orders",
        "dim_customers",
        "customer_ltv",
        "orders_daily",
        "revenue_by_status",
    }
    assert {n.resource_type for n in lineage.downstream} == {"model"}
    assert [e.name for e in lineage.exposures] == ["revenue_dashboard", "status_dashboard"]
    assert [(n.resource_type, n.name) for n in lineage.semantic] == SEMANTIC


def test_lineage_of_a_metric_and_a_saved_query(built_project: ArtifactsProject) -> None:
    revenue = built_project.lineage("revenue")
    assert (revenue.node.resource_type, revenue.node.metric_type) == ("metric", "simple")
    assert [n.name for n in revenue.parents] == ["orders"]
    assert [n.name for n in revenue.upstream][:2] == ["orders", "fct_orders"]
    assert [n.name for n in revenue.semantic] == ["average_order_value", "daily_revenue"]
    saved = built_project.lineage("daily_revenue")
    assert {n.name for n in saved.parents} == {"revenue", "order_count"}
    assert saved.node.resource_type == "saved_query"


def test_unit_tests_are_listed_with_their_results(built_project: ArtifactsProject) -> None:
    by_status = built_project.lineage("revenue_by_status")
    [unit] = [t for t in by_status.tests if t.resource_type == "unit_test"]
    assert unit.name == "revenue_by_status_sums_completed"
    assert by_status.test_results[unit.unique_id].status == "fail"
    customers = built_project.lineage("dim_customers")
    units = {
        t.name: customers.test_results[t.unique_id].status
        for t in customers.tests
        if t.resource_type == "unit_test"
    }
    assert units == {"dim_customers_counts_orders": "pass"}


def test_triage_of_a_failing_unit_test(built_project: ArtifactsProject) -> None:
    report = triage_dbt(Sources(dbt=built_project))
    assert isinstance(report, TriageReport)
    failures = {f.name: f for f in report.dbt_failures}
    failed = failures["revenue_by_status_sums_completed"]
    assert (failed.resource_type, failed.status) == ("unit_test", "fail")
    # The tested model's owners (its group's), written as every reply writes people.
    assert failed.owners == built_project.node("revenue_by_status").owners
    assert failed.tested == ("revenue_by_status",)
    assert failed.diff == (
        "@@,status   ,order_count,revenue",
        "→ ,completed,2          ,30.00→42.50",
    )
    assert "revenue_by_status" in report.impact_models
    # The dashboard on the skipped model, with its owner (how a person is written is the
    # owners module's business: one mention per person across the reply).
    exposures = {e.name: e.owners for e in report.exposures}
    assert exposures["status_dashboard"]
    # The erroring unit test is a failure of its model too (skipped), with the model's owner.
    errored = failures["stg_products_keeps_prices"]
    assert (errored.status, errored.tested, errored.diff) == ("error", ("stg_products",), ())
    assert errored.owners == built_project.node("stg_products").owners != ()
    reply = render(report, platform="console", owners=OwnerDirectory())
    shown = [to_text(reply), to_json(reply), json.dumps(report.to_dict(), ensure_ascii=False)]
    assert "30.00→42.50" in shown[0]
    for text in shown:
        assert "no model, seed" not in text
        assert "\x1b" not in text and "\\u001b" not in text


def test_triage_writes_each_person_one_way_on_every_line(built_project: ArtifactsProject) -> None:
    # @dana owns the source raw.products (stale sources section); the revenue dashboard names
    # her dana@example.com: the reply shows one person, one spelling.
    report = triage_dbt(Sources(dbt=built_project))
    assert isinstance(report, TriageReport)
    text = to_text(render(report, platform="console", owners=OwnerDirectory()))
    assert "`raw.products` — not computed" in text and "owner @dana" in text
    assert "dashboard `revenue_dashboard` — owner @dana" in text
    assert "dana@example.com" not in text
    assert "sam@example.com" not in text  # the status dashboard's owner is @sam (stg_products)

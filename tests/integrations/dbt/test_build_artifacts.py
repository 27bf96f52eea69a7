"""The real artifacts of a dbt-core + dbt-duckdb build of tests/stack/dbt_project.

The story: raw.orders lost its `amount` for the latest batch (orders_daily's revenue test
fails), payments_sync writes "N/A" amounts (customer_ltv errors, its tests are skipped) and is
late (raw.payments warns), the CRM export stopped (raw.customers errors).
"""

from __future__ import annotations

from datetime import timedelta

import duckdb
import pytest

from integrations.dbt.project import ArtifactsProject
from tests.stack.dbt_stack import DbtBuild

pytestmark = pytest.mark.integration


def test_build_left_every_artifact_and_the_warehouse(dbt_build: DbtBuild) -> None:
    assert [s.command for s in dbt_build.steps] == [
        "dbt seed",
        "dbt build",
        "dbt source freshness",
        "dbt docs generate",
    ]
    assert [s.success for s in dbt_build.steps] == [True, False, False, True]
    assert dbt_build.dbt_version.startswith("1.11.")
    with duckdb.connect(str(dbt_build.duckdb_path), read_only=True) as connection:
        tables = connection.sql(
            "select table_schema || '.' || table_name from information_schema.tables"
        ).fetchall()
    assert {t for (t,) in tables} >= {"marts.fct_orders", "marts.orders_daily", "raw.raw_orders"}
    assert ("marts.customer_ltv",) not in tables  # it errored


def test_check_names_versions(built_project: ArtifactsProject) -> None:
    check = built_project.check()
    assert check.ok, check.detail
    assert check.detail.startswith("manifest v12, run-results v6, sources v3, catalog v1")
    assert check.version.startswith("1.11.")


def test_owners_from_both_meta_places_and_the_group(built_project: ArtifactsProject) -> None:
    # config.meta in the .sql file, top-level meta in YAML, config.meta in YAML, group only.
    assert built_project.node("stg_payments").owners == ("payments-team@example.com",)
    assert built_project.node("stg_orders").owners == ("@dana",)
    assert built_project.node("stg_customers").owners == ("lee@example.com",)
    assert built_project.node("orders_daily").owners == ("finance-data@example.com",)
    assert built_project.node("fct_orders").owners == ("@dana", "finance-data@example.com")
    assert built_project.node("customer_ltv").owners == ("@sam",)
    assert built_project.node("raw.customers").owners == ("@lee", "crm-team@example.com")


def test_model_details_with_catalog_types(built_project: ArtifactsProject) -> None:
    fct = built_project.node("model.shop.fct_orders")
    assert (fct.resource_type, fct.materialized, fct.group) == ("model", "table", "finance")
    assert fct.access == "public"
    assert fct.contract_enforced
    assert fct.path == "models/marts/fct_orders.sql"
    assert fct.relation == '"shop"."marts"."fct_orders"'
    columns = {c.name: c for c in fct.columns}
    assert list(columns) == ["order_id", "customer_id", "order_date", "status", "amount"]
    assert columns["amount"].data_type == "decimal(18,2)"  # declared in YAML (contract)
    assert set(columns["order_id"].tests) == {
        "unique_fct_orders_order_id",
        "not_null_fct_orders_order_id",
    }
    daily = {c.name: c for c in built_project.node("orders_daily").columns}
    # Not declared in YAML: the type comes from catalog.json, as DuckDB reports it.
    assert daily["revenue"].data_type.upper().startswith("DECIMAL")
    assert daily["revenue"].description == "Sum of order amounts that day, in EUR."
    assert built_project.node("stg_orders").materialized == "view"


def test_exposure(built_project: ArtifactsProject) -> None:
    dashboard = built_project.node("revenue_dashboard")
    assert dashboard.resource_type == "exposure"
    assert dashboard.exposure_type == "dashboard"
    assert dashboard.owners == ("dana@example.com",)
    assert dashboard.url == "https://bi.example.com/dashboards/revenue"
    assert [n.name for n in built_project.lineage("revenue_dashboard").parents] == [
        "fct_orders",
        "orders_daily",
    ]


def test_lineage_down_and_up_transitively(built_project: ArtifactsProject) -> None:
    down = built_project.lineage("raw.orders")
    assert [n.name for n in down.children] == ["stg_orders"]
    # Models only: the semantic model, metrics and saved query on fct_orders are listed apart.
    assert {n.name for n in down.downstream} == {
        "stg_orders",
        "fct_orders",
        "dim_customers",
        "customer_ltv",
        "orders_daily",
        "revenue_by_status",
    }
    assert down.downstream[0].name == "stg_orders"  # nearest first
    assert down.downstream[-1].name == "revenue_by_status"
    assert [e.name for e in down.exposures] == ["revenue_dashboard", "status_dashboard"]
    assert len(down.semantic) == 5
    one_hop = built_project.lineage("raw.orders", depth=1)
    assert [n.name for n in one_hop.downstream] == ["stg_orders"]
    # Always complete, whatever the depth:
    assert [e.name for e in one_hop.exposures] == ["revenue_dashboard", "status_dashboard"]
    assert len(one_hop.semantic) == 5
    up = built_project.lineage("orders_daily")
    assert [n.name for n in up.upstream] == ["fct_orders", "stg_orders", "raw.orders"]
    assert [n.name for n in up.parents] == ["fct_orders"]
    assert up.children == ()


def test_tests_and_latest_results(built_project: ArtifactsProject) -> None:
    lineage = built_project.lineage("orders_daily")
    by_name = {t.name: lineage.test_results[t.unique_id] for t in lineage.tests}
    failing = by_name["not_null_orders_daily_revenue"]
    assert failing.status == "fail"
    assert failing.failures == 1
    assert failing.message == "Got 1 result, configured to fail if != 0"
    assert "revenue is null" in failing.compiled_code
    assert by_name["unique_orders_daily_order_date"].status == "pass"
    ltv = built_project.lineage("customer_ltv")
    assert {lineage_result.status for lineage_result in ltv.test_results.values()} == {"skipped"}
    assert len(ltv.test_results) == 2
    warned = built_project.lineage("dim_customers").test_results
    assert [r.status for r in warned.values() if r.status == "warn"] == ["warn"]


def test_last_run(built_project: ArtifactsProject) -> None:
    run = built_project.last_run()
    assert run is not None
    assert run.command == "build"
    assert run.invocation_id
    assert run.generated_at is not None
    # errors: customer_ltv and the unit test of stg_products; failures: a data test and the
    # unit test of revenue_by_status
    assert (run.count("error"), run.count("fail"), run.count("warn")) == (2, 2, 1)
    # customer_ltv's 2 tests, the models whose unit tests did not pass, the exposure on one
    assert run.count("skipped") == 5
    assert run.count("success") == 11  # 4 seeds, 3 views, 4 tables
    errored = next(r for r in run.results if r.unique_id == "model.shop.customer_ltv")
    assert errored.status == "error"
    assert 'Could not convert string "N/A"' in errored.message
    assert {r.unique_id: r.status for r in run.problems} == {
        "model.shop.customer_ltv": "error",
        "unit_test.shop.stg_products.stg_products_keeps_prices": "error",
        "unit_test.shop.revenue_by_status.revenue_by_status_sums_completed": "fail",
        "test.shop.not_null_orders_daily_revenue.456a9495b4": "fail",
        "test.shop.accepted_values_dim_customers_country__GB__US__NL__DE__FR.03097b7690": "warn",
    }


def test_freshness_pass_warn_error_with_owners(
    built_project: ArtifactsProject, dbt_build: DbtBuild
) -> None:
    by_table = {f.table: f for f in built_project.freshness()}
    assert {t: f.status for t, f in by_table.items()} == {
        "orders": "pass",
        "payments": "warn",
        "customers": "error",
        # A rule without loaded_at_field: dbt leaves it out of sources.json; it is still told.
        "products": "not computed",
    }
    products = by_table["products"]
    assert (products.source_name, products.rule) == ("raw", "warn after 1 day")
    assert "no loaded_at_field" in products.reason
    assert not products.computed and not products.stale
    assert by_table["customers"].past_error_limit and by_table["payments"].stale
    payments = by_table["payments"]
    assert payments.source_name == "raw"
    assert payments.rule == "warn after 6 hours, error after 1 day"
    assert payments.owners == ("payments-team@example.com",)
    assert payments.age_s is not None
    assert 8 * 3600 <= payments.age_s < 8 * 3600 + 600
    assert by_table["orders"].owners == ("@dana",)
    assert by_table["customers"].rule == "warn after 12 hours, error after 2 days"
    assert by_table["customers"].max_loaded_at is not None
    assert dbt_build.built_at is not None
    age = dbt_build.built_at - by_table["customers"].max_loaded_at
    assert timedelta(days=3) - timedelta(seconds=5) <= age <= timedelta(days=3, seconds=5)


def test_nodes_by_type(built_project: ArtifactsProject) -> None:
    assert {n.name for n in built_project.nodes("model")} == {
        "stg_orders",
        "stg_payments",
        "stg_customers",
        "fct_orders",
        "dim_customers",
        "orders_daily",
        "customer_ltv",
        "stg_products",
        "revenue_by_status",
        "metricflow_time_spine",
    }
    assert {n.name for n in built_project.nodes("seed")} == {
        "raw_orders",
        "raw_payments",
        "raw_customers",
        "raw_products",
    }
    assert {n.name for n in built_project.nodes("source")} == {
        "raw.orders",
        "raw.payments",
        "raw.customers",
        "raw.products",
    }
    assert len(built_project.nodes("test")) == 16
    assert len(built_project.nodes("exposure")) == 2

"""`lineage` and `triage dbt` on unit tests, the semantic layer and ambiguous names (the small
hand-written target/ of tests/integrations/dbt/small_project.py; the real build's counterparts
are in tests/integrations/dbt/test_build_units_semantic.py)."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import duckdb
import pytest

from bot.commands import Request
from bot.messages import Tone
from bot.owners import OwnerDirectory
from bot.playbooks import lineage
from bot.playbooks.triage import render, triage_dbt
from bot.playbooks.triage.report import TriageReport
from bot.ports import Sources
from bot.rendering import to_json, to_markdown, to_text
from integrations.dbt.project import ArtifactsProject
from integrations.warehouse import Catalog
from tests.agent.support import ProgressLog, inbound
from tests.integrations.dbt import small_project
from tests.integrations.dbt.small_project import UNIT_TEST

NOW = datetime(2026, 11, 25, 7, 0, tzinfo=UTC)


@pytest.fixture
def sources(tmp_path: Path) -> Sources:
    project = ArtifactsProject(small_project.write(tmp_path / "target"))
    return Sources(dbt=project, now=lambda: NOW)


def ask(sources: Sources, *args: str) -> Request:
    return Request(
        message=inbound(" ".join(args)), args=args, sources=sources, progress=ProgressLog()
    )


# --- lineage ---------------------------------------------------------------------------------


def test_lineage_shows_the_relation_as_the_warehouse_has_it(tmp_path: Path) -> None:
    # A real DuckDB file named like the project's database: fct_orders built, stg_orders not.
    database = tmp_path / "shop.duckdb"
    with duckdb.connect(str(database)) as con:
        con.execute("create schema marts")
        con.execute("create schema staging")
        con.execute(
            "create table marts.fct_orders (order_id integer not null, amount decimal(12,2))"
        )
        con.execute("insert into marts.fct_orders values (1, 9.5), (2, 3.25)")
        con.execute("comment on table marts.fct_orders is 'one row per order'")
    with Catalog(f"duckdb:///{database}", ["marts", "staging"]) as catalog:
        project = ArtifactsProject(small_project.write(tmp_path / "target"))
        sources = Sources(dbt=project, warehouse=catalog, now=lambda: NOW)
        built = lineage.run(ask(sources, "fct_orders"))
        (section,) = [s for s in built.sections if s.heading.startswith("In the warehouse")]
        assert section.heading == "In the warehouse (table `marts.fct_orders`)"
        assert section.text == "one row per order"
        assert section.bullets == ("`order_id` INTEGER not null", "`amount` DECIMAL(12,2)")
        assert {f.label: f.value for f in section.fields}["Columns"] == "2"
        assert any(s.endswith("marts.fct_orders (live)") for s in built.sources)

        missing = lineage.run(ask(sources, "stg_orders"))
        assert not [s for s in missing.sections if s.heading.startswith("In the warehouse")]
        assert any(
            "The warehouse has no table or view `staging.stg_orders`" in note
            for note in missing.notes
        ), missing.notes
        assert missing.tone is Tone.INFO  # the dbt answer stands; the gap is a note


def test_lineage_of_an_ambiguous_name_lists_every_candidate(sources: Sources) -> None:
    reply = lineage.run(ask(sources, "raw_orders"))
    out = to_text(reply)
    assert reply.title == "Which raw_orders?"
    assert reply.tone is Tone.WARNING
    assert "`raw_orders` fits 2 dbt nodes, both over the same table" in out
    assert "`lineage seed.shop.raw_orders` or `lineage raw.orders`" in out
    # What each one is and what reads it: the source feeds stg_orders, the seed nothing.
    assert "seed `raw_orders` — `lineage seed.shop.raw_orders`" in out
    assert "source `raw.orders` — `lineage raw.orders`" in out
    assert "model `stg_orders`" in out
    assert "3 models downstream, 1 exposure (`status_dashboard`), 4 in the semantic layer" in out


def test_lineage_of_a_metric(sources: Sources) -> None:
    reply = lineage.run(ask(sources, "revenue"))
    out = to_text(reply)
    assert reply.title == "Lineage of revenue"
    assert "metric (simple)" in out
    assert "Built on" in out and "semantic model `orders`" in out
    assert "Further upstream" in out and "model `fct_orders`" in out
    assert "Used by" in out and "metric `average_order_value`" in out
    assert "saved query `daily_revenue`" in out
    assert "Read by" not in out


def test_lineage_counts_models_and_lists_the_semantic_layer_apart(sources: Sources) -> None:
    reply = lineage.run(ask(sources, "stg_orders"))
    out = to_text(reply)
    assert (
        "1 node upstream, 2 models downstream, 1 exposure, 4 in the semantic layer (metrics, "
        "semantic models, saved queries) in total." in reply.notes
    )
    assert "Metrics and semantic models built on it" in out
    further = next(s for s in reply.sections if s.heading == "Further downstream")
    assert further.bullets == ("model `revenue_by_status` — finance-data@example.com",)
    tests = lineage.run(ask(sources, "revenue_by_status"))
    assert "`revenue_by_status_sums_completed` (unit test) — fail" in to_text(tests)
    assert "Tests (1, 1 failing)" in to_text(tests)


def test_lineage_says_what_else_a_name_fits(sources: Sources) -> None:
    reply = lineage.run(ask(sources, "orders"))
    assert reply.title == "Lineage of raw.orders"
    assert (
        "`orders` also names semantic model `orders` (`lineage semantic_model.shop.orders`)."
        in reply.notes
    )


# --- triage dbt ---------------------------------------------------------------------------------


def test_a_failing_unit_test_is_triaged_with_owners_impact_and_diff(sources: Sources) -> None:
    report = triage_dbt(sources)
    assert isinstance(report, TriageReport)
    [failure] = report.dbt_failures
    assert (failure.unique_id, failure.resource_type, failure.status) == (
        UNIT_TEST,
        "unit_test",
        "fail",
    )
    assert failure.name == "revenue_by_status_sums_completed"
    assert failure.owners == ("finance-data@example.com",)
    assert failure.tested == ("revenue_by_status",)
    assert failure.downstream == 1  # the model itself: dbt build skipped it
    assert failure.diff == (
        "@@,status   ,order_count,revenue",
        "→ ,completed,2          ,30.00→42.50",
    )
    # The tested model is affected, and the dashboard on it, with its owner.
    assert report.impact_models == ("revenue_by_status",)
    [dashboard] = report.exposures
    assert (dashboard.name, len(dashboard.owners)) == ("status_dashboard", 1)
    assert report.owners == ("finance-data@example.com", *dashboard.owners)
    assert report.unavailable == ()
    reply = render(report, platform="console", owners=OwnerDirectory())
    out = to_text(reply)
    assert (
        "unit test `revenue_by_status_sums_completed` of `revenue_by_status` — fail: actual "
        "differs from expected — owner finance-data@example.com — 1 model affected" in out
    )
    assert "→ ,completed,2          ,30.00→42.50" in out
    assert f"dashboard `status_dashboard` — owner {dashboard.owners[0]}" in out
    body = json.dumps(report.to_dict(), ensure_ascii=False)
    for shown in (out, to_markdown(reply), to_json(reply), body):
        assert "no model, seed" not in shown
        assert "\x1b" not in shown and "\\u001b" not in shown


def test_a_result_the_manifest_does_not_know_is_no_source_failure(
    sources: Sources, tmp_path: Path
) -> None:
    results = small_project.run_results()
    results["results"].append(
        {"unique_id": "operation.shop.shop-on-run-end-0", "status": "error", "message": "boom"}
    )
    (tmp_path / "target" / "run_results.json").write_text(json.dumps(results))
    report = triage_dbt(sources)
    assert isinstance(report, TriageReport)
    assert [f.name for f in report.dbt_failures] == [
        "revenue_by_status_sums_completed",
        "shop-on-run-end-0",
    ]
    assert report.unavailable == ()

"""`schema-review` on the real drift scenario (issue 11, item 7): the sample project built with
dbt-core, then `stg_customers` lost `email` and renamed `country` (both selected by
`dim_customers`) and `stg_orders.loaded_at` became varchar, redeployed with `dbt run -s` only —
so the warehouse and run_results.json are newer than catalog.json (`dbt_drift`)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from bot.playbooks import schema_review
from bot.playbooks.schema_review import SchemaReview, TypeChange, Verdict
from bot.ports import Sources
from bot.rendering import to_text
from integrations.dbt import ArtifactsProject
from integrations.warehouse import Catalog
from tests.playbooks.test_digest_and_schema_review import ask
from tests.playbooks.test_schema_review_baseline import schema_review_cli
from tests.stack.dbt_stack import DbtBuild


def sources(build: DbtBuild, *, target: Path | None = None, warehouse: bool = True) -> Sources:
    return Sources(
        dbt=ArtifactsProject(target or build.target_dir),
        warehouse=Catalog(f"duckdb:///{build.duckdb_path}") if warehouse else None,
    )


def review(src: Sources, name: str) -> tuple[SchemaReview, str]:
    result = schema_review.assess(ask(src, name))
    assert isinstance(result, SchemaReview), result
    return result, to_text(schema_review.run(ask(src, name)))


def test_the_drift_is_breaking_and_names_who_selects_what(dbt_drift: DbtBuild) -> None:
    result, text = review(sources(dbt_drift), "stg_customers")
    assert result.verdict is Verdict.BREAKING and result.exit_code == 1
    assert result.drift is not None
    assert sorted(c.name for c in result.drift.missing) == ["country", "email"]
    # `dbt run -s` left no compiled SQL for dim_customers: its raw SQL was read.
    [dim] = [u for u in result.uses if u.reader.name == "dim_customers"]
    assert (sorted(dim.columns), dim.code) == (["country", "email"], "raw")
    assert "`email` — selected by `dim_customers`: its next build fails" in text
    assert "`country` — probably renamed to `country_code` — selected by `dim_customers`" in text


def test_the_retyped_column_without_a_declared_type_is_found(dbt_drift: DbtBuild) -> None:
    result, text = review(sources(dbt_drift), "stg_orders")
    assert result.verdict is Verdict.BREAKING and result.exit_code == 1
    assert result.drift is not None
    assert (
        TypeChange(column="loaded_at", expected="TIMESTAMP", actual="VARCHAR", basis="catalog")
        in result.drift.retyped
    )
    assert "`loaded_at`: catalog.json (the last build) had `TIMESTAMP`" in text


def test_the_old_catalog_alone_gives_no_all_clear(dbt_drift: DbtBuild) -> None:
    times = ArtifactsProject(dbt_drift.target_dir).artifact_times()
    assert times.catalog is not None and times.run_results is not None
    assert times.catalog < times.run_results
    for name in ("stg_customers", "stg_orders", "dim_customers"):
        result, text = review(sources(dbt_drift, warehouse=False), name)
        assert result.verdict is Verdict.CANNOT_REVIEW and result.exit_code == 2, name
        assert "before the last build (`dbt run`" in text and "`dbt docs generate`" in text


def test_a_catalog_from_docs_generate_after_the_build_is_trusted(dbt_build: DbtBuild) -> None:
    # target/ as a dbt Cloud job leaves it (the build's run_results), and as `dbt build && dbt
    # docs generate` leaves it (the docs command's run_results).
    for target in (dbt_build.target_dir, dbt_build.step("dbt docs generate").artifacts_dir):
        result, _ = review(sources(dbt_build, target=target, warehouse=False), "stg_orders")
        assert result.verdict is not Verdict.CANNOT_REVIEW, target
        assert result.columns_from == "catalog"


def gate(build: DbtBuild, tmp_path: Path, *, warehouse: bool) -> Any:
    return schema_review_cli(
        tmp_path,
        build.target_dir,
        build.duckdb_path if warehouse else None,
        "stg_orders",
        "--format",
        "json",
    )


def test_the_ci_gate_on_the_drift(dbt_drift: DbtBuild, tmp_path: Path) -> None:
    assert gate(dbt_drift, tmp_path, warehouse=True).returncode == 1
    assert gate(dbt_drift, tmp_path, warehouse=False).returncode == 2

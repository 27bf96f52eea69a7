"""`schema-review` against the last build (issue 11, item 7), on the real dbt artifacts of the
sample project (the demo's: `dbt build` then `docs generate`) and a copy of the real DuckDB
warehouse that build wrote — changed the way a hurried deploy changes them:

- a type change of a column with no declared ``data_type`` (TIMESTAMP → VARCHAR) is found by
  comparing the warehouse with catalog.json, the columns of the last build;
- a dropped column a model downstream selects is breaking even when it is not declared, and
  the reply says which models select it (their SQL, parsed);
- with only catalog.json, a catalog older than the last build gives no all-clear;
- the CI gate's exit code is 1 on breaking, 2 on "cannot review", never 0 on these.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import duckdb
import pytest

from bot.messages import Reply
from bot.playbooks import schema_review
from bot.playbooks.schema_review import SchemaReview, TypeChange, Verdict
from bot.ports import Sources
from bot.rendering import to_text
from integrations.dbt import ArtifactsProject
from integrations.demo import data_dir, demo_sources, recorded_at
from integrations.warehouse import Catalog
from tests.playbooks.test_digest_and_schema_review import ask


@dataclass(frozen=True)
class Shop:
    target: Path  # a copy of the demo's dbt artifacts
    warehouse: Path  # a copy of the DuckDB file the build wrote

    def sources(self, *, warehouse: bool = True) -> Sources:
        at = recorded_at()
        return Sources(
            dbt=ArtifactsProject(self.target),
            warehouse=Catalog(f"duckdb:///{self.warehouse}") if warehouse else None,
            now=lambda: at,
        )

    def sql(self, *statements: str) -> None:
        with duckdb.connect(str(self.warehouse)) as con:
            for statement in statements:
                con.execute(statement)

    def edit(self, artifact: str, change: Callable[[dict[str, Any]], None]) -> None:
        path = self.target / artifact
        body = json.loads(path.read_text())
        change(body)
        path.write_text(json.dumps(body))

    def catalog_time(self) -> datetime:
        body = json.loads((self.target / "catalog.json").read_text())
        return datetime.fromisoformat(body["metadata"]["generated_at"].replace("Z", "+00:00"))


@pytest.fixture
def shop(tmp_path: Path) -> Shop:
    shutil.copytree(data_dir() / "dbt", tmp_path / "target")
    shutil.copy(data_dir() / "warehouse.duckdb", tmp_path / "shop.duckdb")
    return Shop(target=tmp_path / "target", warehouse=tmp_path / "shop.duckdb")


def review(sources: Sources, name: str) -> tuple[SchemaReview, str]:
    result = schema_review.assess(ask(sources, name))
    assert isinstance(result, SchemaReview), result
    return result, to_text(schema_review.run(ask(sources, name)))


def undeclare(model: str, column: str) -> Callable[[dict[str, Any]], None]:
    def change(manifest: dict[str, Any]) -> None:
        del manifest["nodes"][f"model.shop.{model}"]["columns"][column]

    return change


def later_run(which: str, after: timedelta) -> Callable[[dict[str, Any]], None]:
    """run_results.json of a later `dbt <which>`, `after` the catalog was generated."""

    def change(results: dict[str, Any]) -> None:
        catalog_at = datetime.fromisoformat("2026-11-25T20:41:57.230421+00:00")
        results["args"]["which"] = which
        stamp = (catalog_at + after).isoformat().replace("+00:00", "Z")
        results["metadata"]["generated_at"] = stamp

    return change


STG_ORDERS_VIEW = (
    "CREATE OR REPLACE VIEW staging.stg_orders AS SELECT order_id, customer_id, {order_date}, "
    "status, amount, {loaded_at} FROM raw.raw_orders"
)


def retyped_orders(*, order_date: str = "order_date", loaded_at: str = "_loaded_at") -> str:
    return STG_ORDERS_VIEW.format(order_date=order_date, loaded_at=f"{loaded_at} AS loaded_at")


# --- live warehouse, catalog.json as the baseline ------------------------------------------


def test_a_type_change_without_a_declared_type_is_breaking(shop: Shop) -> None:
    shop.sql(retyped_orders(loaded_at="CAST(_loaded_at AS VARCHAR)"))
    node = shop.sources().dbt.node("stg_orders")  # type: ignore[union-attr]
    assert {c.name: c.declared_type for c in node.columns}["loaded_at"] == ""  # undeclared type
    result, text = review(shop.sources(), "stg_orders")
    assert result.verdict is Verdict.BREAKING and result.exit_code == 1
    assert result.drift is not None and result.drift.retyped == (
        TypeChange(column="loaded_at", expected="TIMESTAMP", actual="VARCHAR", basis="catalog"),
    )
    assert "✗ Schema review of stg_orders: breaking — 1 type change" in text
    assert (
        "`loaded_at`: catalog.json (the last build) had `TIMESTAMP`, the relation has `VARCHAR`"
        " — no model downstream selects it"
    ) in text
    assert "Compared with  the declaration and catalog.json of 2026-11-25 20:41 UTC" in text


def test_a_type_change_names_the_models_that_read_the_column(shop: Shop) -> None:
    shop.sql(retyped_orders(order_date="CAST(order_date AS VARCHAR) AS order_date"))
    result, text = review(shop.sources(), "stg_orders")
    assert result.verdict is Verdict.BREAKING
    readers, maybe = result.readers("order_date")
    assert sorted(readers) == ["dim_customers", "fct_orders"] and maybe == []
    assert "`order_date`: catalog.json (the last build) had `DATE`" in text
    assert "— read by `" in text and "`dim_customers`" in text


@pytest.mark.parametrize("sql", ["compiled", "raw"])
def test_a_dropped_undeclared_column_a_model_selects_is_breaking(shop: Shop, sql: str) -> None:
    shop.edit("manifest.json", undeclare("stg_customers", "email"))
    if sql == "raw":
        # As after `dbt run -s stg_customers`: no compiled SQL for the model downstream.
        shop.edit(
            "manifest.json",
            lambda m: m["nodes"]["model.shop.dim_customers"].pop("compiled_code"),
        )
    shop.sql(
        "CREATE OR REPLACE VIEW staging.stg_customers AS "
        "SELECT customer_id, first_name, last_name, country FROM raw.raw_customers"
    )
    result, text = review(shop.sources(), "stg_customers")
    assert result.verdict is Verdict.BREAKING and result.exit_code == 1
    assert result.drift is not None
    assert [c.name for c in result.drift.dropped] == ["email"] and result.drift.missing == ()
    assert result.readers("email") == (["dim_customers"], [])
    assert {u.reader.name: u.code for u in result.uses}["dim_customers"] == sql
    assert "✗ Schema review of stg_customers: breaking — 1 dropped column read downstream" in text
    assert "Dropped since the last build (1) — breaking" in text
    assert "`email` `VARCHAR` — selected by `dim_customers`: its next build fails" in text


def test_a_dropped_undeclared_column_nobody_selects_is_a_follow_up(shop: Shop) -> None:
    shop.edit("manifest.json", undeclare("stg_orders", "loaded_at"))
    shop.sql(
        "CREATE OR REPLACE VIEW staging.stg_orders AS "
        "SELECT order_id, customer_id, order_date, status, amount FROM raw.raw_orders"
    )
    result, text = review(shop.sources(), "stg_orders")
    assert result.verdict is Verdict.FOLLOW_UP and result.exit_code == 0
    assert "Dropped since the last build (1)\n" in text
    assert "`loaded_at` `TIMESTAMP` — no model downstream selects it" in text


def test_a_relation_that_matches_both_is_clean(shop: Shop) -> None:
    result, text = review(shop.sources(), "stg_orders")
    assert result.verdict is Verdict.MATCHES and result.exit_code == 0
    assert text.startswith("✓ Schema review of stg_orders: matches its declaration and the last")


# --- catalog.json alone --------------------------------------------------------------------


def test_a_catalog_older_than_the_last_build_gives_no_all_clear(shop: Shop) -> None:
    shop.edit("run_results.json", later_run("run", timedelta(minutes=5)))
    sources = shop.sources(warehouse=False)
    result, text = review(sources, "stg_orders")
    assert result.verdict is Verdict.CANNOT_REVIEW and result.exit_code == 2
    assert text.startswith(
        "! Cannot review `stg_orders`: catalog.json is older than the last build"
    )
    assert "catalog.json, generated 2026-11-25 20:41 UTC, 55s ago" in text
    assert "5m 00s before the last build (`dbt run`, " in text
    assert "Run `dbt docs generate` after the build" in text
    assert "PIPEBOT_WAREHOUSE__URL" in text


def test_a_catalog_newer_than_the_build_is_reviewed_and_says_how_old_it_is(shop: Shop) -> None:
    result, text = review(shop.sources(warehouse=False), "stg_orders")
    assert result.verdict is Verdict.MATCHES and result.columns_from == "catalog"
    assert "generated 2026-11-25 20:41 UTC, 55s ago" in text


def test_results_of_a_command_that_builds_nothing_do_not_make_the_catalog_stale(
    shop: Shop,
) -> None:
    # `dbt build && dbt docs generate`: run_results.json is the docs command's, written after
    # the manifest and (here) after the catalog; it built nothing.
    shop.edit("run_results.json", later_run("generate", timedelta(seconds=2)))
    result, _ = review(shop.sources(warehouse=False), "stg_orders")
    assert result.verdict is Verdict.MATCHES


def test_without_build_results_a_newer_manifest_makes_the_catalog_stale(shop: Shop) -> None:
    (shop.target / "run_results.json").unlink()

    def later(manifest: dict[str, Any]) -> None:
        manifest["metadata"]["generated_at"] = "2026-11-25T21:00:00Z"

    shop.edit("manifest.json", later)
    result, text = review(shop.sources(warehouse=False), "stg_orders")
    assert result.verdict is Verdict.CANNOT_REVIEW
    assert "before manifest.json" in text and "`dbt docs generate`" in text


def test_a_schema_the_warehouse_connector_does_not_read_falls_back_to_the_catalog(
    shop: Shop,
) -> None:
    sources = replace(
        shop.sources(), warehouse=Catalog(f"duckdb:///{shop.warehouse}", schemas=("marts",))
    )
    result, text = review(sources, "stg_orders")
    assert result.columns_from == "catalog" and result.verdict is Verdict.MATCHES
    assert "schema staging is not one of the configured schemas" in text


def test_a_relation_gone_from_the_warehouse_cannot_pass(shop: Shop) -> None:
    shop.sql("DROP VIEW staging.stg_orders")
    result, text = review(shop.sources(), "stg_orders")
    assert result.verdict is Verdict.CANNOT_REVIEW and result.exit_code == 2
    assert "The warehouse has no table or view staging.stg_orders." in text
    assert "still lists it: it was dropped or renamed since" in text


# --- not built -----------------------------------------------------------------------------


def test_an_unbuilt_model_says_why_and_suggests_no_other_table() -> None:
    reply = schema_review.run(ask(demo_sources(), "customer_ltv"))
    assert isinstance(reply, Reply)
    assert reply.title == "Cannot review `customer_ltv`: its columns in the warehouse are unknown"
    # Before: "…; did you mean marts.dim_customers?" — an unrelated model.
    assert "did you mean" not in reply.text and "dim_customers" not in reply.text
    assert "The warehouse has no table or view marts.customer_ltv." in reply.text
    assert "Its last `dbt build` ended in error (Conversion Error: Could not convert" in reply.text


# --- the CI gate ---------------------------------------------------------------------------


def schema_review_cli(
    tmp_path: Path, artifacts: Path, warehouse: Path | None, *args: str
) -> subprocess.CompletedProcess[str]:
    """``pipebot schema-review ARGS`` as a CI step runs it: a clean environment, the artifacts
    folder and, when given, the DuckDB warehouse."""
    env = {
        "PATH": "/usr/bin:/bin",
        "HOME": str(tmp_path),
        "PIPEBOT_DBT__ARTIFACTS_DIR": str(artifacts),
    }
    if warehouse is not None:
        env["PIPEBOT_WAREHOUSE__URL"] = f"duckdb:///{warehouse}"
    return subprocess.run(
        [sys.executable, "-m", "bot", "schema-review", *args],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=tmp_path,
        env=env,
        check=False,
    )


def gate(shop: Shop, model: str, tmp_path: Path, *, warehouse: bool) -> Any:
    return schema_review_cli(tmp_path, shop.target, shop.warehouse if warehouse else None, model)


def test_the_ci_gate_exits_1_on_breaking_and_2_when_it_cannot_review(
    shop: Shop, tmp_path: Path
) -> None:
    shop.sql(retyped_orders(loaded_at="CAST(_loaded_at AS VARCHAR)"))
    breaking = gate(shop, "stg_orders", tmp_path, warehouse=True)
    assert breaking.returncode == 1, breaking.stderr
    assert "breaking — 1 type change" in breaking.stdout
    shop.edit("run_results.json", later_run("run", timedelta(minutes=5)))
    stale = gate(shop, "stg_orders", tmp_path, warehouse=False)
    assert stale.returncode == 2, stale.stderr
    assert "catalog.json is older than the last build" in stale.stdout

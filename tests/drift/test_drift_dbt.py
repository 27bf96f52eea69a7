"""Drift a dbt build explains is not reported (issue 15, part 8): the sample project built with
real dbt-core, snapshotted; then a hurried `dbt run -s stg_customers stg_orders` changes two
staging views (`tests.stack.dbt_stack.drift`) while someone alters a seed's table and creates a
scratch table by hand. The next snapshot explains the first two by the dbt run and reports
only the hand-made changes."""

from __future__ import annotations

import shutil
from pathlib import Path

import duckdb

from bot.drift import ChangeKind, DriftJob, DriftWatch
from bot.playbooks import drift as playbook
from bot.ports import Sources
from bot.rendering import to_text
from bot.store import Store
from integrations.dbt import ArtifactsProject
from integrations.warehouse import Catalog
from tests.stack.dbt_stack import DbtBuild, drift


def test_changes_of_a_dbt_run_are_explained_and_hand_made_ones_are_not(
    dbt_build: DbtBuild, sqlite_store: Store, tmp_path: Path
) -> None:
    before = tmp_path / "before.duckdb"
    shutil.copy2(dbt_build.duckdb_path, before)
    first = DriftWatch(sqlite_store, Sources(warehouse=Catalog(f"duckdb:///{before}")))
    assert first.check("day-1").base_id is None

    after = drift(dbt_build, tmp_path / "after")  # dbt run -s stg_customers stg_orders
    with duckdb.connect(str(after.duckdb_path)) as connection:
        connection.execute("ALTER TABLE raw.raw_customers ADD COLUMN loyalty VARCHAR")
        connection.execute("CREATE TABLE marts.scratch (x INTEGER)")
    sources = Sources(
        warehouse=Catalog(f"duckdb:///{after.duckdb_path}"),
        dbt=ArtifactsProject(after.target_dir),
    )
    report = DriftWatch(sqlite_store, sources).check("day-2")

    explained = {(c.kind, c.relation, c.column) for c in report.explained}
    assert explained == {
        (ChangeKind.COLUMN_DROPPED, "stg_customers", "email"),
        (ChangeKind.COLUMN_DROPPED, "stg_customers", "country"),
        (ChangeKind.COLUMN_ADDED, "stg_customers", "country_code"),
        (ChangeKind.COLUMN_RETYPED, "stg_orders", "loaded_at"),
    }
    assert {c.dbt_node for c in report.explained} == {
        "model.shop.stg_customers",
        "model.shop.stg_orders",
    }
    unexpected = {(c.kind, c.schema, c.relation, c.column) for c in report.unexpected}
    assert unexpected == {
        (ChangeKind.COLUMN_ADDED, "raw", "raw_customers", "loyalty"),
        (ChangeKind.RELATION_ADDED, "marts", "scratch", ""),
    }
    # The seed's table is dbt's, but its last build is older than the first snapshot.
    (seed,) = [c for c in report.unexpected if c.relation == "raw_customers"]
    assert seed.dbt_node == "seed.shop.raw_customers" and not seed.explained
    assert report.dbt.startswith("dbt run ")

    again = DriftWatch(sqlite_store, sources)
    post = playbook.scheduled(DriftJob(snapshot="day-2"), again)
    assert post is not None and post[0] == f"drift:{report.base_id}:{report.snapshot_id}"
    text = to_text(post[1])
    assert "Warehouse drift: 2 unexpected changes" in text
    assert "`raw.raw_customers.loyalty` added (VARCHAR) — dbt seed `raw_customers`" in text
    assert "`marts.scratch` (table) added" in text
    assert "4 further changes came with dbt builds" in text
    assert "stg_customers" not in text.split("Note")[0]

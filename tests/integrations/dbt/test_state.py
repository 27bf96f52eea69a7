"""`integrations.dbt.state`: whole dbt states from a real build's folder and from dbt Cloud runs
(the fake dbt Cloud, through the real client)."""

from __future__ import annotations

from pathlib import Path

import pytest

from bot.errors import NotFound, SourceError
from bot.facts import StateRef
from bot.ports import Sources
from bot.settings import Settings
from integrations.dbt.artifacts import ArtifactError
from integrations.dbt.state import StateLoader, read_state
from tests.fakes.dbt_cloud import DAILY_JOB, FakeDbtCloud
from tests.integrations.dbt.conftest import client_for
from tests.stack.dbt_stack import DbtBuild


def test_a_folder_reads_into_a_state(dbt_build: DbtBuild) -> None:
    state = StateLoader().folder(dbt_build.target_dir)
    assert (state.project, state.adapter, state.dialect) == ("shop", "duckdb", "duckdb")
    assert (
        state.catalog_at is not None and state.label == f"dbt artifacts in {dbt_build.target_dir}"
    )
    fct = state.nodes["model.shop.fct_orders"]
    assert (fct.owners, fct.contract_enforced, fct.access, fct.materialized) == (
        ("@dana", "finance-data@example.com"),
        True,
        "public",
        "table",
    )
    assert fct.sql_kind == "compiled" and '"shop"."staging"."stg_orders"' in fct.sql
    order_id = fct.column("order_id")
    assert order_id is not None
    assert (order_id.position, order_id.data_type, order_id.declared_type) == (
        1,
        "INTEGER",
        "integer",
    )
    assert order_id.constraints == ("not_null",) and set(order_id.tests) == {"unique", "not_null"}
    assert order_id.not_null
    source = state.nodes["source.shop.raw.customers"]
    assert source.name == "raw.customers" and source.owners == ("@lee", "crm-team@example.com")
    assert [c.name for c in source.columns][:2] == ["customer_id", "first_name"]  # catalog order
    revenue = state.exposures["exposure.shop.revenue_dashboard"]
    assert revenue.parents == ("model.shop.fct_orders", "model.shop.orders_daily")
    singular = state.tests["test.shop.assert_fct_orders_amount_not_negative"]
    assert singular.kind == "singular" and "where amount < 0" in singular.sql


def test_a_project_folder_is_read_through_its_target(dbt_build: DbtBuild) -> None:
    state = StateLoader().folder(dbt_build.project_dir)
    assert "model.shop.fct_orders" in state.nodes


def test_chat_reads_folders_only_inside_its_roots(dbt_build: DbtBuild, tmp_path: Path) -> None:
    inside = StateLoader(roots=[dbt_build.project_dir])
    assert inside.state(StateRef(kind="dir", value=str(dbt_build.target_dir))).nodes
    with pytest.raises(SourceError, match=r"is outside the folders chat may read \("):
        inside.state(StateRef(kind="dir", value=str(tmp_path)))
    with pytest.raises(SourceError, match="folders can be compared from the command line"):
        StateLoader(roots=()).state(StateRef(kind="dir", value=str(dbt_build.target_dir)))


def test_what_is_not_a_state_says_so(tmp_path: Path) -> None:
    loader = StateLoader()
    with pytest.raises(NotFound, match=f"no folder {tmp_path / 'x'}: give a dbt target/ folder"):
        loader.folder(tmp_path / "x")
    with pytest.raises(NotFound, match=r"no manifest\.json in"):
        loader.folder(tmp_path)
    (tmp_path / "manifest.json").write_text("{not json")
    with pytest.raises(SourceError, match="cannot be read"):
        loader.folder(tmp_path)
    with pytest.raises(ArtifactError, match="not a manifest"):
        read_state(
            b'{"metadata": {"dbt_schema_version": '
            b'"https://schemas.getdbt.com/dbt/run-results/v6.json"}}',
            label="x",
        )


def test_production_and_runs_from_dbt_cloud(dbt_build: DbtBuild) -> None:
    with FakeDbtCloud(build=dbt_build) as fake:
        loader = StateLoader(cloud=client_for(fake), production_job=DAILY_JOB)
        production = loader.state(StateRef(kind="production"))
        assert production.run_id == fake.latest_run_id
        assert production.label == (
            f"production: dbt Cloud run {fake.latest_run_id} (job 'Daily shop build')"
        )
        assert production.catalog_at is not None  # from the docs generate step
        assert production.nodes.keys() == StateLoader().folder(dbt_build.target_dir).nodes.keys()
        fake.clear()
        # A finished run cannot change: it is read once.
        assert loader.state(StateRef(kind="run", value=str(fake.latest_run_id))) is production
        assert not [p for p in fake.paths() if "/artifacts/" in p]
        assert fake.writes == []


def test_production_needs_the_deploy_job(dbt_build: DbtBuild) -> None:
    with (
        FakeDbtCloud(build=dbt_build) as fake,
        pytest.raises(SourceError, match="set PIPEBOT_DBT_CLOUD__JOB_ID"),
    ):
        StateLoader(cloud=client_for(fake)).production()


def test_composed_states_read_folders_for_chat_only_near_the_artifacts(
    dbt_build: DbtBuild, tmp_path: Path
) -> None:
    from bot.compose import build_sources, build_states

    settings = Settings(dbt={"artifacts_dir": dbt_build.target_dir})
    sources: Sources = build_sources(settings)
    assert sources.dbt_states is not None
    assert sources.dbt_states.state(StateRef(kind="dir", value=str(dbt_build.target_dir))).nodes
    with pytest.raises(SourceError, match="outside the folders chat may read"):
        sources.dbt_states.state(StateRef(kind="dir", value=str(tmp_path)))
    anywhere = build_states(settings, anywhere=True)
    with pytest.raises(NotFound):
        anywhere.state(StateRef(kind="dir", value=str(tmp_path / "missing")))

"""Lenient reading of dbt artifacts from older versions and broken files (hand-made fixtures)."""

from __future__ import annotations

import os
import shutil
import threading
from datetime import UTC, datetime
from pathlib import Path

import pytest

from bot.errors import NotFound, SourceUnavailable
from bot.settings import DbtSettings
from integrations.dbt.artifacts import (
    FreshnessRule,
    Time,
    freshness_rule,
    normalize_owners,
    parse_time,
    read_manifest,
    read_run_results,
)
from integrations.dbt.project import ArtifactsProject
from integrations.errors import UpstreamError

FIXTURES = Path(__file__).parent / "fixtures"


@pytest.fixture
def legacy(tmp_path: Path) -> ArtifactsProject:
    target = tmp_path / "target"
    shutil.copytree(FIXTURES / "legacy", target)
    return ArtifactsProject(target)


# --- owners, rules, times --------------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("@dana", ("@dana",)),
        ("  Dana@Example.com ", ("dana@example.com",)),
        ("@dana, lee@example.com; @sam", ("@dana", "lee@example.com", "@sam")),
        ("Bo Berg <BO@Example.COM>", ("bo@example.com",)),
        ("mailto:Shop-Team@Example.com", ("shop-team@example.com",)),
        (["@a", ["@b", "@a"]], ("@a", "@b")),
        ({"name": "Finance", "email": "fin@example.com"}, ("fin@example.com",)),
        ({"name": "Finance", "email": ["a@x.io", "b@x.io"]}, ("a@x.io", "b@x.io")),
        ({"name": "Sales Analytics"}, ("Sales Analytics",)),
        (None, ()),
        (42, ()),
        ("", ()),
    ],
)
def test_owners_are_normalised(raw: object, expected: tuple[str, ...]) -> None:
    assert normalize_owners(raw) == expected


def test_freshness_rule_text() -> None:
    rule = FreshnessRule(
        warn_after=Time(count=6, period="hour"), error_after=Time(count=1, period="day")
    )
    assert freshness_rule(rule) == "warn after 6 hours, error after 1 day"
    only_warn = FreshnessRule(warn_after=Time(count=30, period="minute"), error_after=Time())
    assert freshness_rule(only_warn) == "warn after 30 minutes"
    filtered = FreshnessRule(error_after=Time(count=2, period="day"), filter="region = 'eu'")
    assert freshness_rule(filtered) == "error after 2 days (where region = 'eu')"
    assert freshness_rule(None) == ""


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2023-09-01T06:00:00Z", datetime(2023, 9, 1, 6, tzinfo=UTC)),
        ("2023-09-01T06:00:00.123456789Z", datetime(2023, 9, 1, 6, 0, 0, 123456, tzinfo=UTC)),
        ("2023-09-01 08:00:00+02:00", datetime(2023, 9, 1, 6, tzinfo=UTC)),
        ("2023-09-01T06:00:00", datetime(2023, 9, 1, 6, tzinfo=UTC)),
        ("yesterday", None),
        (None, None),
    ],
)
def test_times_parse_leniently(text: str | None, expected: datetime | None) -> None:
    assert parse_time(text) == expected


# --- readers -----------------------------------------------------------------------------------


def test_reader_names_the_version_and_ignores_unknown_fields() -> None:
    loaded = read_manifest((FIXTURES / "legacy" / "manifest.json").read_bytes())
    assert (loaded.kind, loaded.version, loaded.dropped) == ("manifest", 10, 0)
    assert loaded.supported
    assert loaded.value.parent_map is None
    assert loaded.value.nodes is not None
    assert "model.legacy.orders" in loaded.value.nodes


def test_an_unreadable_entry_is_dropped_and_counted() -> None:
    loaded = read_manifest((FIXTURES / "broken" / "manifest.json").read_bytes())
    assert loaded.version == 11
    assert loaded.dropped == 1
    assert loaded.value.nodes is not None
    assert set(loaded.value.nodes) == {
        "model.broken.good",
        "model.broken.base",
        "function.broken.to_cents",
    }


def test_not_json_is_a_readable_error(tmp_path: Path) -> None:
    (tmp_path / "manifest.json").write_text('{"metadata": {"dbt_schema_ver')
    project = ArtifactsProject(tmp_path)
    with pytest.raises(UpstreamError, match=r"manifest\.json .*cannot be read \(not valid JSON"):
        project.node("anything")
    check = project.check()
    assert not check.ok
    assert "manifest.json" in check.detail


def test_missing_manifest_says_what_to_do(tmp_path: Path) -> None:
    project = ArtifactsProject(tmp_path)
    with pytest.raises(SourceUnavailable, match=r"no manifest\.json in .*dbt build"):
        project.nodes()
    assert not project.check().ok


def test_run_results_v4_keep_unknown_statuses_and_compiled_sql() -> None:
    loaded = read_run_results((FIXTURES / "legacy" / "run_results.json").read_bytes())
    assert (loaded.kind, loaded.version) == ("run-results", 4)
    assert [r.status for r in loaded.value.results or ()] == [
        "success",
        "error",
        "warn",
        "exploded",
    ]


# --- the legacy project through ArtifactsProject ------------------------------------------------


def test_legacy_owners_from_every_place(legacy: ArtifactsProject) -> None:
    # meta.owners list (with a "Name <EMAIL>") plus the group owner, which has only a name.
    # (A bare "orders" also names the source shop.orders: ambiguous, so the exact id.)
    orders = legacy.node("model.legacy.orders")
    assert orders.owners == ("@ana", "bo@example.com", "Sales Analytics")
    assert legacy.node("orders_report").owners == ("report-team@example.com",)
    assert legacy.node("shop.orders").owners == ("shop-team@example.com",)
    assert legacy.node("weekly_review").owners == ("ana@example.com",)
    # A test with no owner of its own belongs to the owner of what it tests.
    assert legacy.node("not_null_orders_id").owners == orders.owners
    assert legacy.node("assert_report_positive").owners == ("@qa",)


def test_legacy_node_details(legacy: ArtifactsProject) -> None:
    orders = legacy.node("model.legacy.orders")
    assert orders.group == "sales"
    assert orders.materialized == "table"
    assert orders.access == "protected"
    assert orders.tags == ("nightly",)
    assert orders.relation == "ANALYTICS.PUBLIC.ORDERS"
    # Catalog order and types; the declared lower-case name and description win.
    assert [(c.name, c.data_type, c.description) for c in orders.columns] == [
        ("id", "NUMBER(38,0)", "Order id."),
        ("AMOUNT", "NUMBER(18,2)", ""),
    ]
    assert orders.columns[0].tests == ("not_null_orders_id",)
    assert legacy.node("orders_report").tags == ("weekly",)
    source = legacy.node("shop.orders")
    assert source.freshness_rule == "warn after 2 hours"
    assert source.description == "The shop database."
    exposure = legacy.node("weekly_review")
    assert (exposure.exposure_type, exposure.url) == (
        "notebook",
        "https://notebooks.example.com/weekly",
    )


def test_versioned_model_name_means_the_newest(legacy: ArtifactsProject) -> None:
    assert legacy.node("dim_customers").unique_id == "model.legacy.dim_customers.v2"
    assert legacy.node("dim_customers.v1").unique_id == "model.legacy.dim_customers.v1"


def test_lineage_maps_rebuilt_from_depends_on(legacy: ArtifactsProject) -> None:
    lineage = legacy.lineage("raw_orders")
    assert [n.name for n in lineage.children] == ["orders"]
    assert [n.name for n in lineage.downstream] == ["orders", "orders_report"]
    assert [n.name for n in lineage.exposures] == ["weekly_review"]
    upstream = legacy.lineage("orders_report").upstream
    assert [n.unique_id for n in upstream] == [
        "model.legacy.orders",
        "seed.legacy.raw_orders",
        "source.legacy.shop.orders",
    ]
    assert [t.name for t in legacy.lineage("model.legacy.orders").tests] == ["not_null_orders_id"]


def test_parent_map_only_is_inverted_and_unknown_types_listed(tmp_path: Path) -> None:
    shutil.copy(FIXTURES / "broken" / "manifest.json", tmp_path / "manifest.json")
    project = ArtifactsProject(tmp_path)
    # The unreadable node still shows in the graph, described by its unique id alone.
    assert [n.name for n in project.lineage("base").children] == ["good", "mangled"]
    assert project.node("to_cents").resource_type == "function"
    assert [n.name for n in project.nodes("function")] == ["to_cents"]
    check = project.check()
    assert check.ok
    assert "1 unreadable entries skipped in manifest v11" in check.detail


def test_legacy_run_results(legacy: ArtifactsProject) -> None:
    run = legacy.last_run()
    assert run is not None
    assert (run.command, run.elapsed_s) == ("run", 7.25)
    assert run.invocation_id == "11111111-2222-3333-4444-555555555555"
    statuses = {r.unique_id: r for r in run.results}
    failed = statuses["model.legacy.orders_report"]
    assert failed.status == "error"
    assert "invalid identifier 'AMOUNT'" in failed.message
    assert failed.compiled_code == "select amount from orders"
    ok = statuses["model.legacy.orders"]
    assert ok.compiled_code == ""  # green nodes do not carry their SQL
    assert ok.completed_at == datetime(2023, 9, 1, 6, 1, 5, 500000, tzinfo=UTC)
    assert statuses["test.legacy.assert_report_positive"].status == "exploded"
    lineage = legacy.lineage("model.legacy.orders")
    assert lineage.test_results["test.legacy.not_null_orders_id.3f1a2b"].failures == 2


def test_legacy_freshness_accepts_fail_and_runtime_errors(legacy: ArtifactsProject) -> None:
    by_table = {f.table: f for f in legacy.freshness()}
    orders = by_table["orders"]
    assert orders.status == "fail"
    assert orders.source_name == "shop"
    assert orders.rule == "warn after 2 hours"
    assert orders.owners == ("shop-team@example.com",)
    assert orders.max_loaded_at == datetime(2023, 9, 1, 3, tzinfo=UTC)
    assert orders.age_s == 11700.0
    # Not in the manifest: named from its unique id, error kept verbatim.
    customers = by_table["customers"]
    assert (customers.source_name, customers.status) == ("shop", "runtime error")
    assert 'relation "shop.customers" does not exist' in customers.error


def test_as_of_is_the_newest_artifact(legacy: ArtifactsProject) -> None:
    assert legacy.as_of() == datetime(2023, 9, 1, 6, 20, tzinfo=UTC)


def test_unknown_name_suggests_close_ones(legacy: ArtifactsProject) -> None:
    with pytest.raises(NotFound) as caught:
        legacy.node("order_report")
    assert caught.value.system == "dbt"
    assert "order_report" in caught.value.reason
    assert "orders_report" in caught.value.suggestions


def test_check_reports_versions_and_outdated_files(legacy: ArtifactsProject) -> None:
    check = legacy.check()
    assert check.ok
    assert check.version == "1.6.9"
    assert "manifest v10, run-results v4, sources v2, catalog v1" in check.detail
    assert "generated 2023-09-01 06:20 UTC" in check.detail


# --- reloading ---------------------------------------------------------------------------------


def _touch_newer(path: Path) -> None:
    stat = path.stat()
    os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns + 2_000_000_000))


def test_files_reload_only_when_they_change(legacy: ArtifactsProject) -> None:
    first = legacy.view()
    assert legacy.view() is first  # nothing changed: same parsed view
    run_results = legacy.target_dir / "run_results.json"
    run_results.write_text(run_results.read_text().replace('"which": "run"', '"which": "test"'))
    _touch_newer(run_results)
    second = legacy.view()
    assert second is not first
    assert second.index is first.index  # the manifest was not parsed again
    assert legacy.last_run() is not None
    assert legacy.last_run().command == "test"  # type: ignore[union-attr]
    (legacy.target_dir / "sources.json").unlink()
    assert legacy.freshness() == []


def test_a_half_written_file_keeps_the_last_good_one(legacy: ArtifactsProject) -> None:
    before = legacy.last_run()
    run_results = legacy.target_dir / "run_results.json"
    run_results.write_text('{"metadata": ')
    _touch_newer(run_results)
    assert legacy.last_run() == before
    assert not legacy.check().ok
    shutil.copy(FIXTURES / "legacy" / "run_results.json", run_results)
    _touch_newer(run_results)
    assert legacy.check().ok


def test_concurrent_readers_see_whole_views(legacy: ArtifactsProject) -> None:
    errors: list[BaseException] = []
    names: list[str] = []

    def read() -> None:
        try:
            for _ in range(50):
                names.append(legacy.lineage("model.legacy.orders").node.name)
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=read) for _ in range(8)]
    for thread in threads:
        thread.start()
    manifest = legacy.target_dir / "manifest.json"
    for _ in range(5):
        _touch_newer(manifest)
    for thread in threads:
        thread.join()
    assert errors == []
    assert set(names) == {"orders"}
    assert len(names) == 400


def test_from_settings(tmp_path: Path) -> None:
    project = ArtifactsProject.from_settings(DbtSettings(artifacts_dir=tmp_path))
    assert project.target_dir == tmp_path
    assert project.system == "dbt"
    assert project.where() == f"dbt artifacts in {tmp_path}"
    with pytest.raises(ValueError, match="ARTIFACTS_DIR"):
        ArtifactsProject.from_settings(DbtSettings())

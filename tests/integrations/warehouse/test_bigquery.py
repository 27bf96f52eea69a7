"""`BigQueryCatalog` through the real google-cloud-bigquery client against the local REST fake
(tests/fakes/bigquery_api.py): the same facts as PostgreSQL for the same tables, paging,
errors, the toolset, and the URL forms."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import pytest
from pydantic import SecretStr
from sqlalchemy.engine import Engine

from bot import metrics
from bot.errors import ConfigError, NotFound, SourceAuthError
from bot.settings import WarehouseSettings
from bot.tools import ToolStatus
from integrations.errors import UpstreamAuthError, UpstreamNotFound
from integrations.warehouse import Catalog, open_catalog, warehouse_toolset
from integrations.warehouse.bigquery import BigQueryCatalog, data_type
from tests.fakes.bigquery_api import FakeBigQuery, field
from tests.integrations.warehouse import rest_shop
from tests.integrations.warehouse.support import search_path_schema

PROJECT = "pipebot-test"


@pytest.fixture
def fake() -> Iterator[FakeBigQuery]:
    with FakeBigQuery(PROJECT) as server:
        rest_shop.build_bigquery(server, "shop")
        server.add_table("staging", "stg_orders", [field("id", "INTEGER")], num_rows=0)
        yield server


def open_bq(fake: FakeBigQuery, dataset: str = "", **kwargs: Any) -> BigQueryCatalog:
    path = f"/{dataset}" if dataset else ""
    return BigQueryCatalog.from_url(f"bigquery://{PROJECT}{path}?api_endpoint={fake.url}", **kwargs)


@pytest.fixture
def catalog(fake: FakeBigQuery) -> Iterator[BigQueryCatalog]:
    with open_bq(fake, "shop") as opened:
        yield opened


def test_same_facts_as_postgres_for_the_same_tables(
    catalog: BigQueryCatalog, pg_url: str, pg_engine: Engine
) -> None:
    schema = search_path_schema(pg_url)
    rest_shop.build_postgres(pg_engine, schema)
    with Catalog(pg_url, [schema]) as postgres:
        expected = {t.name: t for t in postgres.tables(schema)}
    actual = {t.name: t for t in catalog.tables("shop")}
    assert sorted(actual) == sorted(expected) == ["big_orders", "customers", "orders"]
    for name, pg in expected.items():
        bq = actual[name]
        assert (bq.database, bq.schema) == (PROJECT, "shop")
        assert bq.kind == pg.kind, name
        assert bq.row_count == pg.row_count, name  # PostgreSQL's estimate is exact after ANALYZE
        assert [c.name for c in bq.columns] == [c.name for c in pg.columns], name
        assert [c.nullable for c in bq.columns] == [c.nullable for c in pg.columns], name
        assert [c.position for c in bq.columns] == [c.position for c in pg.columns], name
        for pg_column, bq_column in zip(pg.columns, bq.columns, strict=True):
            assert rest_shop.same_type(pg_column.data_type, bq_column.data_type), (
                name,
                pg_column,
                bq_column,
            )
        # What each knows differently: BigQuery records the last change and logical bytes.
        assert bq.last_altered == datetime(2026, 1, 1, tzinfo=UTC)
    assert actual["big_orders"].row_count is None and actual["big_orders"].size_bytes is None
    assert actual["orders"].size_bytes == 250 * 64


def test_schemas_are_datasets_scoped_by_the_url(
    fake: FakeBigQuery, catalog: BigQueryCatalog
) -> None:
    assert catalog.schemas() == ["shop"]
    with open_bq(fake) as everything:
        assert everything.schemas() == ["shop", "staging"]
        assert [t.qualified_name for t in everything.tables()] == [
            "shop.big_orders",
            "shop.customers",
            "shop.orders",
            "staging.stg_orders",
        ]


def test_types_are_standard_sql() -> None:
    assert data_type(field("a", "INTEGER")) == "INT64"
    assert data_type(field("a", "FLOAT")) == "FLOAT64"
    assert data_type(field("a", "BOOLEAN")) == "BOOL"
    assert data_type(field("a", "STRING", "REPEATED")) == "ARRAY<STRING>"
    assert data_type(field("a", "BIGNUMERIC", precision=40)) == "BIGNUMERIC(40)"
    nested = field("addr", "RECORD", fields=[field("city", "STRING"), field("zip", "INTEGER")])
    assert data_type(nested) == "STRUCT<city STRING, zip INT64>"


def test_paging_reads_every_page_with_bounded_tables_get(fake: FakeBigQuery) -> None:
    fake.max_page = 7  # the client asks for 1,000; a server may give fewer
    for i in range(30):
        fake.add_table(
            "wide", f"t{i:02d}", [field(f"c{j}", "STRING") for j in range(20)], num_rows=i
        )
    with open_bq(fake, "wide") as catalog:
        before = fake.served
        tables = catalog.tables()
        assert [t.name for t in tables] == [f"t{i:02d}" for i in range(30)]
        assert [t.row_count for t in tables] == list(range(30))
        assert all(len(t.columns) == 20 for t in tables)
        calls = fake.requests[-(fake.served - before) :]
    lists = [p for _m, p in calls if p.endswith("/datasets/wide/tables")]
    gets = [p for _m, p in calls if "/tables/" in p]
    assert len(lists) == 5  # ceil(30 / 7)
    assert len(gets) == 30


def test_row_cap_bounds_the_tables_described(fake: FakeBigQuery) -> None:
    for i in range(12):
        fake.add_table("wide", f"t{i:02d}", [field("id", "INTEGER")])
    with open_bq(fake, "wide", row_cap=5) as catalog:
        before = fake.served
        assert [t.name for t in catalog.tables()] == [f"t{i:02d}" for i in range(5)]
        gets = [p for _m, p in fake.requests[before:] if "/tables/" in p]
    assert len(gets) == 6  # the cap plus one, to know it was cut


def test_unknown_table_suggests_close_names(catalog: BigQueryCatalog) -> None:
    with pytest.raises(UpstreamNotFound) as caught:
        catalog.table("shop", "ordrs")
    assert caught.value.reason.startswith("no table or view shop.ordrs in BigQuery project")
    assert "shop.orders" in caught.value.suggestions


def test_unknown_dataset_is_a_schema_not_found(fake: FakeBigQuery) -> None:
    with open_bq(fake) as catalog, pytest.raises(NotFound) as caught:
        catalog.table("shopp", "orders")
    assert caught.value.reason.startswith("no schema shopp in BigQuery project")
    assert list(caught.value.suggestions) == ["shop"]


def test_unconfigured_dataset_is_refused_without_a_call(
    fake: FakeBigQuery, catalog: BigQueryCatalog
) -> None:
    before = fake.served
    with pytest.raises(NotFound, match="not one of the configured schemas"):
        catalog.table("staging", "stg_orders")
    assert fake.served == before


def test_permission_denied_names_the_role_to_grant(fake: FakeBigQuery) -> None:
    fake.deny("shop")
    with open_bq(fake) as catalog, pytest.raises(UpstreamAuthError) as caught:
        catalog.tables("shop")
    assert caught.value.status == 403
    assert "Access Denied: Dataset pipebot-test:shop" in caught.value.reason
    assert "roles/bigquery.metadataViewer" in caught.value.reason
    check = open_bq(fake).check()
    assert not check.ok and "metadataViewer" in check.detail


def test_rejected_credentials_fail_the_check(fake: FakeBigQuery) -> None:
    fake.refuse_all()
    with open_bq(fake, "shop") as catalog:
        # google-auth answers a 401 by refreshing the token; anonymous ones cannot refresh.
        with pytest.raises(SourceAuthError, match="refused the credentials"):
            catalog.schemas()
        check = catalog.check()
    assert not check.ok
    assert check.target == f"BigQuery project {PROJECT}"


def test_check_reads_the_catalog(catalog: BigQueryCatalog) -> None:
    check = catalog.check()
    assert check.ok, check.detail
    assert check.detail == "read the catalog of 1 dataset(s) (shop): 3 tables and views"
    assert check.version.startswith("BigQuery API v2 (google-cloud-bigquery 3.")


def test_check_names_a_missing_configured_dataset(fake: FakeBigQuery) -> None:
    with open_bq(fake, "shp") as catalog:
        check = catalog.check()
    assert not check.ok
    assert check.detail == "dataset shp not found or not visible (did you mean shop?)"


def test_unreachable_endpoint_is_unavailable_within_the_timeout() -> None:
    catalog = BigQueryCatalog.from_url(
        "bigquery://p/d?api_endpoint=http://127.0.0.1:9", statement_timeout=0.5
    )
    check = catalog.check()
    assert not check.ok
    assert (
        "BigQuery" in check.detail and "STATEMENT_TIMEOUT" in check.detail
    ) or "reach" in check.detail


def test_calls_are_counted_in_the_connector_metrics(catalog: BigQueryCatalog) -> None:
    gets = metrics.CONNECTOR_REQUESTS.labels("warehouse", "tables.get")
    before = gets._value.get()
    catalog.tables("shop")
    assert gets._value.get() == before + 3


def test_toolset_over_bigquery(catalog: BigQueryCatalog) -> None:
    tools = {t.name: t for t in warehouse_toolset(catalog).tools()}
    assert tools["list_schemas"].call({}).data == {"schemas": ["shop"]}
    listing = tools["list_tables"].call({"schema": "shop", "pattern": "*orders"})
    assert listing.status is ToolStatus.SUCCESS
    assert listing.data["tables"][1] == {
        "name": "orders",
        "kind": "table",
        "rows": 250,
        "size_bytes": 16000,
        "last_altered": "2026-01-01T00:00:00+00:00",
        "columns": 4,
    }
    assert "lastModifiedTime" in listing.data["last_altered_means"]
    described = tools["describe_table"].call({"schema": "shop", "table": "customers"})
    assert described.data["columns"][2] == {
        "name": "tier",
        "type": "STRING(16)",
        "nullable": True,
        "position": 3,
    }
    missing = tools["describe_table"].call({"schema": "shop", "table": "ordrs"})
    assert missing.status is ToolStatus.NO_DATA
    assert missing.data["suggestions"][0] == "shop.orders"
    assert "on bigquery catalog at BigQuery project" in missing.invocation


def test_open_catalog_routes_by_scheme(fake: FakeBigQuery, pg_url: str) -> None:
    url = f"bigquery://{PROJECT}/shop?api_endpoint={fake.url}&location=EU"
    opened = open_catalog(WarehouseSettings(url=SecretStr(url), schemas=["staging"]))
    assert isinstance(opened, BigQueryCatalog)
    assert opened.configured == ("shop", "staging")
    assert opened.location == "EU" and opened.where == f"BigQuery project {PROJECT} (EU)"
    assert isinstance(open_catalog(WarehouseSettings(url=SecretStr(pg_url))), Catalog)


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("bigquery:///d", "names no project"),
        ("bigquery://p/a/b", "at most one dataset"),
        ("bigquery://u:secret@p/d", "carries no user or password"),
        ("bigquery://p/d?locaton=US", "unknown option 'locaton'"),
        ("bigquery://p/d?credentials_path=/nonexistent/key.json", "does not exist"),
        ("bigquery://p/d?credentials_base64=bm90IGpzb24=", "not a service-account key"),
    ],
)
def test_bad_urls_are_config_errors(url: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message) as caught:
        BigQueryCatalog.from_url(url)
    assert "secret" not in str(caught.value)


def test_missing_extra_is_one_line(monkeypatch: pytest.MonkeyPatch) -> None:
    # As if google-cloud-bigquery were not installed: importing it raises ImportError.
    monkeypatch.setitem(sys.modules, "google.cloud.bigquery", None)
    with pytest.raises(ConfigError) as caught:
        open_catalog(WarehouseSettings(url=SecretStr("bigquery://p/d")))
    assert str(caught.value) == (
        "BigQuery support is not installed: pip install 'pipebot[bigquery]'"
    )

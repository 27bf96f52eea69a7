"""`DatabricksCatalog` through the real databricks-sdk `WorkspaceClient` against the local Unity
Catalog REST fake (tests/fakes/databricks_api.py): the same facts as PostgreSQL for the same
tables, paging with empty pages, errors, the toolset, and the URL forms."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
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
from integrations.warehouse.databricks import DatabricksCatalog
from tests.fakes.databricks_api import FakeDatabricks, column
from tests.integrations.warehouse import rest_shop
from tests.integrations.warehouse.support import search_path_schema
from tests.integrations.warehouse.test_privileges import doctor

TOKEN = "dapi-test-0123456789"


@pytest.fixture
def fake() -> Iterator[FakeDatabricks]:
    with FakeDatabricks(token=TOKEN, empty_pages=True) as server:
        rest_shop.build_databricks(server, "main", "shop")
        server.add_table("main", "staging", "stg_orders", [column("id", "int")])
        yield server


def open_dbx(
    fake: FakeDatabricks, schema: str = "", token: str = TOKEN, **kwargs: Any
) -> DatabricksCatalog:
    query = "catalog=main&http_path=/sql/1.0/warehouses/abc" + (
        f"&schema={schema}" if schema else ""
    )
    return DatabricksCatalog.from_url(
        f"databricks://token:{token}@127.0.0.1:{fake.port}?{query}", **kwargs
    )


@pytest.fixture
def catalog(fake: FakeDatabricks) -> Iterator[DatabricksCatalog]:
    with open_dbx(fake, "shop") as opened:
        yield opened


def test_same_facts_as_postgres_for_the_same_tables(
    catalog: DatabricksCatalog, pg_url: str, pg_engine: Engine
) -> None:
    schema = search_path_schema(pg_url)
    rest_shop.build_postgres(pg_engine, schema)
    with Catalog(pg_url, [schema]) as postgres:
        expected = {t.name: t for t in postgres.tables(schema)}
    actual = {t.name: t for t in catalog.tables("shop")}
    assert sorted(actual) == sorted(expected) == ["big_orders", "customers", "orders"]
    for name, pg in expected.items():
        dbx = actual[name]
        assert (dbx.database, dbx.schema) == ("main", "shop")
        assert dbx.kind == pg.kind, name
        assert [c.name for c in dbx.columns] == [c.name for c in pg.columns], name
        assert [c.nullable for c in dbx.columns] == [c.nullable for c in pg.columns], name
        assert [c.position for c in dbx.columns] == [c.position for c in pg.columns], name
        assert dbx.comment == pg.comment, name
        assert [c.comment for c in dbx.columns] == [c.comment for c in pg.columns], name
        for pg_column, dbx_column in zip(pg.columns, dbx.columns, strict=True):
            assert rest_shop.same_type(pg_column.data_type, dbx_column.data_type), (
                name,
                pg_column,
                dbx_column,
            )
        # Unity Catalog's REST API knows no row counts or sizes: unknown, not guessed.
        assert dbx.row_count is None and dbx.size_bytes is None
        assert dbx.last_altered == datetime(2026, 1, 1, tzinfo=UTC)
    assert "not to its data" in catalog.last_altered_means


def test_schemas_leave_out_information_schema(
    fake: FakeDatabricks, catalog: DatabricksCatalog
) -> None:
    assert catalog.schemas() == ["shop"]
    with open_dbx(fake) as everything:
        assert everything.schemas() == ["shop", "staging"]
        assert len(everything.tables()) == 4


def test_paging_reads_past_empty_pages_list_only(fake: FakeDatabricks) -> None:
    fake.default_page = 7
    for i in range(30):
        fake.add_table("main", "wide", f"t{i:02d}", [column(f"c{j}", "string") for j in range(20)])
    with open_dbx(fake, "wide") as catalog:
        before = fake.served
        tables = catalog.tables()
        calls = fake.requests[before:]
    assert [t.name for t in tables] == [f"t{i:02d}" for i in range(30)]
    assert all(len(t.columns) == 20 for t in tables)
    assert [t.columns[19].position for t in tables[:1]] == [20]
    listed = [p for _m, p in calls if p == "/api/2.1/unity-catalog/tables"]
    assert len(listed) == 10  # 5 pages of tables, each after an empty one
    assert not [p for _m, p in calls if p.startswith("/api/2.1/unity-catalog/tables/")]


def test_row_cap_stops_reading_pages(fake: FakeDatabricks) -> None:
    fake.default_page = 5
    fake.empty_pages = False
    for i in range(40):
        fake.add_table("main", "wide", f"t{i:02d}", [column("id", "int")])
    with open_dbx(fake, "wide", row_cap=8) as catalog:
        before = fake.served
        assert [t.name for t in catalog.tables()] == [f"t{i:02d}" for i in range(8)]
        listed = [p for _m, p in fake.requests[before:] if p == "/api/2.1/unity-catalog/tables"]
    assert len(listed) == 2  # 9 tables (the cap plus one) are on the first two pages


def test_unknown_table_suggests_close_names(catalog: DatabricksCatalog) -> None:
    with pytest.raises(UpstreamNotFound) as caught:
        catalog.table("shop", "ordrs")
    assert caught.value.reason.startswith("no table or view shop.ordrs in Databricks 127.0.0.1:")
    assert caught.value.suggestions[0] == "shop.orders"


def test_one_table_is_one_get(fake: FakeDatabricks, catalog: DatabricksCatalog) -> None:
    before = fake.served
    table = catalog.table("shop", "customers")
    assert [c.data_type for c in table.columns] == ["bigint", "string", "varchar(16)"]
    assert fake.requests[before:] == [("GET", "/api/2.1/unity-catalog/tables/main.shop.customers")]


def test_unknown_schema_is_a_schema_not_found(fake: FakeDatabricks) -> None:
    with open_dbx(fake) as catalog, pytest.raises(NotFound) as caught:
        catalog.table("shopp", "orders")
    assert caught.value.reason.startswith("no schema shopp in Databricks")
    assert list(caught.value.suggestions) == ["shop"]


def test_unknown_catalog_fails_the_check(fake: FakeDatabricks) -> None:
    catalog = DatabricksCatalog.from_url(
        f"databricks://token:{TOKEN}@127.0.0.1:{fake.port}?catalog=mian"
    )
    check = catalog.check()
    assert not check.ok
    assert "Catalog 'mian' does not exist." in check.detail


def test_permission_denied_names_the_grants(fake: FakeDatabricks) -> None:
    fake.deny("main", "shop")
    with open_dbx(fake) as catalog, pytest.raises(UpstreamAuthError) as caught:
        catalog.tables("shop")
    assert caught.value.status == 403
    assert "User does not have USE SCHEMA on Schema 'main.shop'." in caught.value.reason
    assert "USE CATALOG, USE SCHEMA and BROWSE" in caught.value.reason


def test_wrong_token_fails_without_showing_it(fake: FakeDatabricks) -> None:
    with open_dbx(fake, "shop", token="dapi-wrong-secret") as catalog:
        with pytest.raises(SourceAuthError) as caught:
            catalog.schemas()
        check = catalog.check()
    assert "rejected the credentials" in caught.value.reason
    assert "dapi-wrong-secret" not in caught.value.reason and "Config:" not in caught.value.reason
    assert not check.ok and "dapi-wrong-secret" not in check.detail


def test_check_reads_the_catalog(catalog: DatabricksCatalog) -> None:
    check = catalog.check()
    assert check.ok, check.detail
    assert check.detail == "read the catalog of 1 schema(s) (shop): 3 tables and views"
    assert check.version.startswith("Unity Catalog REST 2.1 (databricks-sdk 0.")


def test_unreachable_host_is_unavailable_within_the_timeout() -> None:
    catalog = DatabricksCatalog.from_url(
        f"databricks://token:{TOKEN}@127.0.0.1:9?catalog=main", statement_timeout=1
    )
    check = catalog.check()
    assert not check.ok
    assert "Databricks" in check.detail and TOKEN not in check.detail


def test_calls_are_counted_in_the_connector_metrics(catalog: DatabricksCatalog) -> None:
    listed = metrics.CONNECTOR_REQUESTS.labels("warehouse", "tables.list")
    before = listed._value.get()
    catalog.tables("shop")
    assert listed._value.get() == before + 1


def test_toolset_over_databricks(catalog: DatabricksCatalog) -> None:
    tools = {t.name: t for t in warehouse_toolset(catalog).tools()}
    assert tools["list_schemas"].call({}).data == {"schemas": ["shop"]}
    listing = tools["list_tables"].call({"schema": "shop"})
    assert listing.status is ToolStatus.SUCCESS
    assert listing.data["tables"][0] == {
        "name": "big_orders",
        "kind": "view",
        "last_altered": "2026-01-01T00:00:00+00:00",
        "columns": 2,
    }
    described = tools["describe_table"].call({"schema": "shop", "table": "orders"})
    assert described.data["columns"][2] == {
        "name": "amount",
        "type": "decimal(12,2)",
        "nullable": False,
        "position": 3,
    }
    customers = tools["describe_table"].call({"schema": "shop", "table": "customers"})
    assert customers.data["comment"] == "one row per customer"
    assert customers.data["columns"][1]["comment"] == "PII"
    missing = tools["describe_table"].call({"schema": "shop", "table": "ordrs"})
    assert missing.status is ToolStatus.NO_DATA


def test_open_catalog_routes_by_scheme(fake: FakeDatabricks) -> None:
    url = f"databricks://token:{TOKEN}@127.0.0.1:{fake.port}?catalog=main&schema=shop"
    opened = open_catalog(WarehouseSettings(url=SecretStr(url)))
    assert isinstance(opened, DatabricksCatalog)
    assert opened.configured == ("shop",)
    assert TOKEN not in repr(opened) and TOKEN not in opened.where


def test_service_principal_url_uses_oauth_m2m() -> None:
    # Only the set-up: the OAuth token exchange needs a workspace's OIDC endpoints.
    with pytest.raises(ConfigError) as caught:
        DatabricksCatalog.from_url("databricks://client-id@adb-1.azuredatabricks.net?catalog=main")
    assert "CLIENT_ID:CLIENT_SECRET" in str(caught.value)


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("databricks://token:x@host.example", "names no catalog"),
        ("databricks://token@host.example?catalog=c", "no token"),
        ("databricks://token:x@host.example?catalog=c&catlog=d", "unknown option 'catlog'"),
        ("databricks://?catalog=c", "no workspace host"),
    ],
)
def test_bad_urls_are_config_errors(url: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        DatabricksCatalog.from_url(url)


def test_missing_extra_is_one_line(monkeypatch: pytest.MonkeyPatch) -> None:
    # As if databricks-sdk were not installed: importing it raises ImportError.
    monkeypatch.setitem(sys.modules, "databricks.sdk", None)
    with pytest.raises(ConfigError) as caught:
        open_catalog(WarehouseSettings(url=SecretStr("databricks://token:x@h.example?catalog=c")))
    assert str(caught.value) == (
        "Databricks support is not installed: pip install 'pipebot[databricks]'"
    )


# --- doctor: the principal's effective permissions -----------------------------------------


def documented_grants(fake: FakeDatabricks) -> None:
    """What deploy/warehouse-databricks-grants.sql grants: USE CATALOG, BROWSE and USE SCHEMA
    on the catalog (so every schema inherits USE SCHEMA)."""
    fake.grant("catalog", "main", "USE_CATALOG", "BROWSE", "USE_SCHEMA")


def test_the_documented_grants_pass_the_check(
    fake: FakeDatabricks, catalog: DatabricksCatalog
) -> None:
    documented_grants(fake)
    check = catalog.check()
    assert check.ok, check.detail
    assert check.detail == "read the catalog of 1 schema(s) (shop): 3 tables and views"
    asked = [path for _method, path in fake.requests if "effective-permissions" in path]
    assert asked == [
        "/api/2.1/unity-catalog/effective-permissions/catalog/main",
        "/api/2.1/unity-catalog/effective-permissions/schema/main.shop",
    ]


def test_privileges_beyond_the_documented_ones_fail_the_check(
    fake: FakeDatabricks, catalog: DatabricksCatalog
) -> None:
    documented_grants(fake)
    fake.grant("catalog", "main", "MODIFY")
    fake.grant("schema", "main.shop", "SELECT", "CREATE_TABLE")
    check = catalog.check()
    assert not check.ok
    who = fake.principal
    # MODIFY, granted on the catalog, is named once although every schema inherits it.
    assert check.detail == (
        "the login has grants beyond the documented read-only role — "
        f"{who} has MODIFY on catalog main (granted on catalog main), which can change data or "
        f"objects: REVOKE MODIFY ON CATALOG main FROM `{who}`; "
        f"{who} has SELECT on schema main.shop (granted on schema main.shop), which reads data: "
        f"REVOKE SELECT ON SCHEMA main.shop FROM `{who}`; "
        f"{who} has CREATE TABLE on schema main.shop (granted on schema main.shop), which can "
        f"change data or objects: REVOKE CREATE TABLE ON SCHEMA main.shop FROM `{who}`"
    )


def test_unreadable_effective_permissions_are_said_not_guessed(
    fake: FakeDatabricks, catalog: DatabricksCatalog
) -> None:
    fake.deny_grants()
    check = catalog.check()
    assert check.ok, check.detail
    assert check.detail.endswith(
        "; grants not checked: the login may not read its effective permissions on catalog main"
    )


def test_pipebot_doctor_exits_1_naming_what_to_revoke_and_0_for_the_documented_grants(
    fake: FakeDatabricks, tmp_path: Path
) -> None:
    documented_grants(fake)
    fake.warehouses.add("wh1")  # the SQL warehouse doctor's usage check reads spend on
    url = f"databricks://token:{TOKEN}@127.0.0.1:{fake.port}?catalog=main&warehouse_id=wh1"
    passed = doctor(tmp_path, url, "shop")
    assert passed.returncode == 0, passed.stdout + passed.stderr
    line = next(line for line in passed.stdout.splitlines() if "catalog of" in line)
    assert "✓" in line and "3 tables and views" in line
    fake.grant("schema", "main.shop", "MODIFY")
    failed = doctor(tmp_path, url, "shop")
    assert failed.returncode == 1, failed.stdout + failed.stderr
    line = next(line for line in failed.stdout.splitlines() if "beyond the documented" in line)
    assert "✗" in line and f"REVOKE MODIFY ON SCHEMA main.shop FROM `{fake.principal}`" in line
    assert TOKEN not in failed.stdout + failed.stderr

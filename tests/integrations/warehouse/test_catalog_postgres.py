"""`Catalog` on the real PostgreSQL 15 of this machine."""

from __future__ import annotations

import re
import socket
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.engine import Engine, make_url
from sqlalchemy.exc import DBAPIError

from bot.errors import NotFound, SourceAuthError, SourceUnavailable
from bot.facts import Table
from bot.ports import WarehouseCatalog
from integrations.errors import SqlRefused
from integrations.warehouse.catalog import Catalog
from tests.integrations.warehouse.support import PgWarehouse, unique_name

ROLE_SQL = Path(__file__).resolve().parents[3] / "deploy" / "warehouse-readonly-role.sql"


@pytest.fixture
def catalog(pg_warehouse: PgWarehouse) -> Iterator[Catalog]:
    with Catalog(pg_warehouse.url, [pg_warehouse.schema]) as opened:
        yield opened


def by_name(tables: list[Table]) -> dict[str, Table]:
    return {t.name: t for t in tables}


def test_implements_the_core_port(catalog: Catalog) -> None:
    port: WarehouseCatalog = catalog
    assert port.system == "warehouse"
    assert port.dialect == "postgresql"


def test_schemas_without_configuration_are_all_usable_non_system_ones(
    pg_warehouse: PgWarehouse,
) -> None:
    with Catalog(pg_warehouse.url) as catalog:
        schemas = catalog.schemas()
    assert pg_warehouse.schema in schemas
    assert pg_warehouse.staging in schemas
    assert not {"pg_catalog", "information_schema", "pg_toast"} & set(schemas)
    assert not [s for s in schemas if s.startswith("pg_temp")]


def test_configured_schemas_scope_the_catalog(pg_warehouse: PgWarehouse) -> None:
    with Catalog(pg_warehouse.url, [pg_warehouse.staging]) as catalog:
        assert catalog.schemas() == [pg_warehouse.staging]
        assert sorted(t.name for t in catalog.tables()) == ["stg_customers", "stg_orders"]
        with pytest.raises(NotFound, match="not one of the configured schemas") as caught:
            catalog.tables(pg_warehouse.schema)
    assert caught.value.suggestions == (pg_warehouse.staging,)


def test_tables_kinds_rows_and_sizes(catalog: Catalog, pg_warehouse: PgWarehouse) -> None:
    tables = by_name(catalog.tables(pg_warehouse.schema))
    assert sorted(tables) == ["big_orders", "customers", "events", "order_totals", "orders"]
    assert "events_2026" not in tables  # partitions are represented by their parent
    assert tables["customers"].kind == "table"
    assert tables["big_orders"].kind == "view"
    assert tables["order_totals"].kind == "materialized view"
    assert tables["events"].kind == "partitioned table"
    assert tables["customers"].row_count == 40
    assert tables["orders"].row_count == 250
    assert tables["order_totals"].row_count == 40
    assert tables["big_orders"].row_count is None
    assert tables["big_orders"].size_bytes is None
    # Analyzed: heap + TOAST + primary-key index pages, in 8 kB blocks.
    size = tables["orders"].size_bytes
    assert size is not None
    assert size >= 2 * 8192
    assert size % 8192 == 0
    assert {t.database for t in tables.values()} == {"test"}
    assert {t.schema for t in tables.values()} == {pg_warehouse.schema}


def test_columns_types_nullability_and_ordinals(
    catalog: Catalog, pg_warehouse: PgWarehouse
) -> None:
    orders = catalog.table(pg_warehouse.schema, "orders")
    shape = [(c.name, c.data_type, c.nullable, c.position) for c in orders.columns]
    assert shape == [
        ("id", "bigint", False, 1),
        ("customer_id", "bigint", False, 2),
        # position 3 was the dropped "status" column
        ("amount", "numeric(12,2)", False, 4),
        ("payload", "jsonb", True, 5),
        ("tags", "text[]", True, 6),
    ]
    customers = catalog.table(pg_warehouse.schema, "customers")
    assert [(c.name, c.data_type) for c in customers.columns] == [
        ("id", "bigint"),
        ("email", "text"),
        ("created_at", "timestamp with time zone"),
        ("tier", "character varying(16)"),
    ]
    # COMMENT ON, from pg_description: the table's, and by position the columns' (None: none).
    assert customers.comment == "one row per customer"
    assert [c.comment for c in customers.columns] == [None, "PII: never select it", None, None]
    assert orders.comment is None and {c.comment for c in orders.columns} == {None}
    view = catalog.table(pg_warehouse.schema, "big_orders")
    assert [(c.name, c.data_type) for c in view.columns] == [
        ("id", "bigint"),
        ("amount", "numeric(12,2)"),
    ]


def test_unknown_table_suggests_close_names(catalog: Catalog, pg_warehouse: PgWarehouse) -> None:
    with pytest.raises(NotFound) as caught:
        catalog.table(pg_warehouse.schema, "order")
    schema = pg_warehouse.schema
    assert f"{schema}.orders" in caught.value.suggestions
    assert f"did you mean {schema}.orders" in caught.value.reason
    with pytest.raises(NotFound) as by_case:
        catalog.table(pg_warehouse.schema, "Orders")
    assert by_case.value.suggestions[0] == f"{schema}.orders"


def test_unknown_schema_suggests_close_names(pg_warehouse: PgWarehouse) -> None:
    with Catalog(pg_warehouse.url) as catalog, pytest.raises(NotFound) as caught:
        catalog.tables(pg_warehouse.schema + "_stagin")
    assert pg_warehouse.staging in caught.value.suggestions


def test_check_reads_the_configured_schemas(pg_warehouse: PgWarehouse, reader_role: str) -> None:
    # As the role deploy/ makes: doctor fails a login that can write (test_privileges.py).
    url = make_url(pg_warehouse.url).set(username=reader_role, password="change-me")
    with Catalog(url.render_as_string(hide_password=False), [pg_warehouse.schema]) as catalog:
        check = catalog.check()
    assert check.ok, check.detail
    assert "1 schema(s)" in check.detail
    assert "5 tables and views" in check.detail
    assert check.target == "127.0.0.1:5432/test"
    assert check.version.startswith("PostgreSQL 15")


def test_check_names_a_missing_configured_schema(pg_warehouse: PgWarehouse) -> None:
    with Catalog(pg_warehouse.url, [pg_warehouse.schema, "no_such_schema"]) as catalog:
        check = catalog.check()
    assert not check.ok
    assert check.detail == "schema no_such_schema not found"


def test_every_transaction_is_read_only_with_a_local_timeout(pg_warehouse: PgWarehouse) -> None:
    with Catalog(pg_warehouse.url, statement_timeout=2.5) as catalog:
        with catalog._connect() as connection:
            assert connection.execute(text("SHOW transaction_read_only")).scalar() == "on"
            assert connection.execute(text("SHOW statement_timeout")).scalar() == "2500ms"
        # Transaction-local: the pooled connection itself keeps the server default.
        raw = catalog._engine.raw_connection()
        try:
            cursor = raw.cursor()
            cursor.execute("SHOW statement_timeout")
            assert cursor.fetchone() == ("0",)
            raw.rollback()
        finally:
            raw.close()


def test_the_database_refuses_writes_on_the_catalogs_connections(
    catalog: Catalog, pg_warehouse: PgWarehouse, pg_engine: Engine
) -> None:
    schema = pg_warehouse.schema
    attempts = [
        f"INSERT INTO \"{schema}\".customers (id, email) VALUES (999, 'x@example.com')",
        f'UPDATE "{schema}".orders SET amount = 0',
        f'CREATE TABLE "{schema}".intruder (id int)',
        f'REFRESH MATERIALIZED VIEW "{schema}".order_totals',
    ]
    for statement in attempts:
        # The way the catalog connects…
        with catalog._connect() as connection, pytest.raises(DBAPIError) as caught:
            connection.execute(text(statement))
        assert getattr(caught.value.orig, "sqlstate", None) == "25006", statement
        # …and any other connection taken from its engine.
        with catalog._engine.connect() as connection:
            with pytest.raises(DBAPIError) as caught:
                connection.execute(text(statement))
            connection.rollback()
        assert getattr(caught.value.orig, "sqlstate", None) == "25006", statement
    with pg_engine.connect() as connection:
        count = connection.execute(text(f'SELECT count(*) FROM "{schema}".customers')).scalar()
        intruder = connection.execute(text(f"SELECT to_regclass('{schema}.intruder')")).scalar()
    assert count == 40
    assert intruder is None


def test_statement_timeout_fires_on_a_slow_catalog_query(pg_warehouse: PgWarehouse) -> None:
    # A guarded, catalog-only statement that is slow: a triple self-join of pg_attribute.
    slow = (
        "SELECT count(*) AS n FROM pg_catalog.pg_attribute AS a, pg_catalog.pg_attribute AS b, "
        "pg_catalog.pg_attribute AS c"
    )
    with Catalog(pg_warehouse.url, statement_timeout=0.3) as catalog:
        started = time.perf_counter()
        with pytest.raises(SourceUnavailable) as caught:
            catalog._select(slow)
        elapsed = time.perf_counter() - started
        # The connection is usable afterwards: the timeout ended only that statement.
        assert pg_warehouse.schema in catalog.schemas()
    assert caught.value.reason == (
        "statement timed out after 0.3 s (PIPEBOT_WAREHOUSE__STATEMENT_TIMEOUT)"
    )
    assert elapsed < 5


def test_writes_are_refused_before_they_reach_the_database(catalog: Catalog) -> None:
    with pytest.raises(SqlRefused, match="DELETE"):
        catalog._select("DELETE FROM pg_catalog.pg_class")
    with pytest.raises(SqlRefused, match="terminates another session"):
        catalog._select("SELECT pg_terminate_backend(1)")


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def test_connection_refused_is_readable_and_secret_free() -> None:
    port = free_port()
    catalog = Catalog(f"postgresql+psycopg://reader:s3cr3t-Pa55@127.0.0.1:{port}/test")
    try:
        with pytest.raises(SourceUnavailable) as caught:
            catalog.schemas()
        check = catalog.check()
    finally:
        catalog.close()
    expected = f"cannot connect to 127.0.0.1:{port}/test (connection refused)"
    assert caught.value.reason == expected
    assert check.detail == expected
    assert not check.ok
    for shown in (str(caught.value), check.detail, check.target, repr(catalog)):
        assert "s3cr3t" not in shown


def test_unknown_role_is_an_auth_error(pg_warehouse: PgWarehouse) -> None:
    url = make_url(pg_warehouse.url).set(username="no_such_role", password="hunter2-secret")
    catalog = Catalog(url.render_as_string(hide_password=False))
    try:
        with pytest.raises(SourceAuthError) as caught:
            catalog.schemas()
    finally:
        catalog.close()
    assert caught.value.reason.startswith("authentication failed at 127.0.0.1:5432/test")
    assert "no_such_role" in caught.value.reason
    assert "hunter2" not in str(caught.value)


def role_statements(role: str, schema: str) -> list[str]:
    """deploy/warehouse-readonly-role.sql with the placeholders filled in."""
    sql = "\n".join(
        line for line in ROLE_SQL.read_text().splitlines() if not line.lstrip().startswith("--")
    )
    sql = re.sub(r"\bpipebot_reader\b", role, sql)
    sql = sql.replace("ON DATABASE warehouse", "ON DATABASE test")
    sql = re.sub(r"ON SCHEMA analytics\b", f'ON SCHEMA "{schema}"', sql)
    return [s.strip() for s in sql.split(";") if s.strip()]


@pytest.fixture
def reader_role(pg_warehouse: PgWarehouse, pg_engine: Engine) -> Iterator[str]:
    role = unique_name("pipebot_reader")
    statements = role_statements(role, pg_warehouse.schema)
    assert any(s.startswith("GRANT USAGE ON SCHEMA") for s in statements)
    assert not any("SELECT" in s.upper() for s in statements)
    with pg_engine.begin() as connection:
        for statement in statements:
            connection.execute(text(statement))
    yield role
    with pg_engine.begin() as connection:
        connection.execute(text(f'DROP OWNED BY "{role}"'))
        connection.execute(text(f'DROP ROLE "{role}"'))


def test_read_only_role_reads_the_catalog_but_no_data(
    pg_warehouse: PgWarehouse, reader_role: str
) -> None:
    url = make_url(pg_warehouse.url).set(username=reader_role, password="change-me")
    rendered = url.render_as_string(hide_password=False)
    with Catalog(rendered, [pg_warehouse.schema]) as catalog:
        assert catalog.check().ok
        orders = catalog.table(pg_warehouse.schema, "orders")
        assert [c.name for c in orders.columns] == [
            "id",
            "customer_id",
            "amount",
            "payload",
            "tags",
        ]
        assert orders.row_count == 250
    # The role has USAGE only: the data itself stays out of reach.
    engine = create_engine(rendered)
    try:
        with engine.connect() as connection, pytest.raises(DBAPIError) as caught:
            connection.execute(text(f'SELECT email FROM "{pg_warehouse.schema}".customers'))
        assert getattr(caught.value.orig, "sqlstate", None) == "42501"
    finally:
        engine.dispose()
    # A schema without USAGE is named as such, not silently listed from pg_class.
    with Catalog(rendered) as catalog:
        assert pg_warehouse.staging not in catalog.schemas()
        with pytest.raises(SourceAuthError) as denied:
            catalog.tables(pg_warehouse.staging)
    assert denied.value.reason == (
        f"permission denied for schema {pg_warehouse.staging} (the role lacks USAGE)"
    )


def test_the_role_file_keeps_transactions_read_only(
    pg_warehouse: PgWarehouse, reader_role: str
) -> None:
    url = make_url(pg_warehouse.url).set(username=reader_role, password="change-me")
    engine = create_engine(url)
    try:
        with engine.connect() as connection:
            assert connection.execute(text("SHOW default_transaction_read_only")).scalar() == "on"
    finally:
        engine.dispose()

"""Redshift's catalog SQL, through sqlalchemy-redshift's psycopg2 dialect, against the real
PostgreSQL with ``svv_tables`` / ``svv_columns`` / ``svv_table_info`` shim views (the columns
Redshift documents) in a schema first on the search_path — compared with what the PostgreSQL
catalog says about the same tables. What PostgreSQL cannot emulate is recorded below."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from typing import Any

import pytest
from sqlalchemy import text
from sqlalchemy.engine import Engine, make_url

from bot.errors import ConfigError
from integrations.warehouse.catalog import Catalog
from integrations.warehouse.sql import REDSHIFT, SEARCH_PATH
from tests.integrations.warehouse.support import search_path_schema, unique_name
from tests.stack.airflow_stack import REPO_ROOT

# Documented columns only (docs.aws.amazon.com/redshift/latest/dg/r_SVV_TABLES.html,
# r_SVV_COLUMNS.html, r_SVV_TABLE_INFO.html): size in 1 MB blocks, tbl_rows numeric(38,0),
# and no row at all for an empty table.
SHIMS = [
    """CREATE VIEW svv_tables AS
       SELECT table_catalog, table_schema, table_name, table_type,
              obj_description(CAST(quote_ident(table_schema) || '.' || quote_ident(table_name)
                                   AS regclass), 'pg_class') AS remarks
       FROM information_schema.tables""",
    """CREATE VIEW svv_columns AS
       SELECT table_catalog, table_schema, table_name, column_name, ordinal_position,
              column_default, is_nullable, data_type, character_maximum_length,
              numeric_precision, numeric_scale,
              col_description(CAST(quote_ident(table_schema) || '.' || quote_ident(table_name)
                                   AS regclass), ordinal_position) AS remarks
       FROM information_schema.columns""",
    """CREATE VIEW svv_table_info AS
       SELECT current_database() AS database, n.nspname AS schema, c.oid AS table_id,
              c.relname AS "table",
              CAST(ceil(pg_total_relation_size(c.oid) / 1048576.0) AS bigint) AS size,
              CAST(c.reltuples AS numeric(38, 0)) AS tbl_rows
       FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
       WHERE c.relkind = 'r' AND c.reltuples > 0""",
]


def pg_session(shims: str) -> tuple[str, ...]:
    """What PostgreSQL understands of REDSHIFT.session: its query_group is Redshift-only
    (PostgreSQL: 'unrecognized configuration parameter "query_group"'), statement_timeout is
    shared, and the pinned search path names the shim schema after pg_catalog — where Redshift
    keeps svv_* and PostgreSQL cannot (creating in pg_catalog is refused)."""
    return tuple(
        f'{s}, "{shims}"' if s == SEARCH_PATH else s
        for s in REDSHIFT.session
        if "query_group" not in s
    )


@dataclasses.dataclass(frozen=True)
class Shimmed:
    postgres_url: str  # search_path = the shim schema
    redshift_url: str
    mart: str
    shims: str  # the schema of the svv_* shim views


@pytest.fixture
def shimmed(pg_url: str, pg_engine: Engine) -> Iterator[Shimmed]:
    shims = search_path_schema(pg_url)
    mart = unique_name("rs_mart")
    statements = [
        *(f'SET search_path TO "{shims}"; {s}' for s in SHIMS),
        f'CREATE SCHEMA "{mart}"',
        f"""CREATE TABLE "{mart}".customers (
              id bigint NOT NULL, email varchar(200) NOT NULL, created_at timestamp,
              tier varchar(16))""",
        f"""CREATE TABLE "{mart}".orders (
              id bigint NOT NULL, customer_id bigint NOT NULL, amount numeric(12, 2) NOT NULL,
              note text)""",
        f'CREATE TABLE "{mart}".refunds (id bigint)',
        f"COMMENT ON TABLE \"{mart}\".customers IS 'one row per customer'",
        f"COMMENT ON COLUMN \"{mart}\".customers.email IS 'PII'",
        f"""CREATE VIEW "{mart}".big_orders AS
            SELECT id, amount FROM "{mart}".orders WHERE amount > 100""",
        f"""INSERT INTO "{mart}".customers
            SELECT g, 'c' || g || '@example.com', now(), 'gold' FROM generate_series(1, 40) g""",
        f"""INSERT INTO "{mart}".orders
            SELECT g, 1 + g % 40, g, 'ok' FROM generate_series(1, 250) g""",
        f'ANALYZE "{mart}".customers, "{mart}".orders, "{mart}".refunds',
    ]
    with pg_engine.begin() as connection:
        for statement in statements:
            connection.execute(text(statement))
    url = make_url(pg_url)
    redshift_url = url.set(drivername="redshift+psycopg2").update_query_dict({"sslmode": "disable"})
    yield Shimmed(
        postgres_url=pg_url,
        redshift_url=redshift_url.render_as_string(hide_password=False),
        mart=mart,
        shims=shims,
    )
    with pg_engine.begin() as connection:
        connection.execute(text(f'DROP SCHEMA IF EXISTS "{mart}" CASCADE'))


def redshift(shimmed: Shimmed, url: str | None = None, **options: Any) -> Catalog:
    sql = dataclasses.replace(REDSHIFT, session=pg_session(shimmed.shims))
    return Catalog(url or shimmed.redshift_url, [shimmed.mart], sql=sql, **options)


def facts(catalog: Catalog, schema: str) -> dict[str, Any]:
    return {
        t.name: (t.kind, t.row_count, t.last_altered, [tuple(c) for c in t.columns], t.comment)
        for t in catalog.tables(schema)
    }


def test_same_facts_as_postgres_for_the_same_tables(shimmed: Shimmed) -> None:
    with redshift(shimmed) as rs, Catalog(shimmed.postgres_url, [shimmed.mart]) as pg:
        assert rs.dialect == "redshift"
        assert rs.schemas() == pg.schemas() == [shimmed.mart]
        on_redshift = facts(rs, shimmed.mart)
        on_postgres = facts(pg, shimmed.mart)
        assert sorted(on_redshift) == ["big_orders", "customers", "orders", "refunds"]
        # Redshift keeps no change time; svv_table_info has no row for an empty table: both
        # unknown (None), never 0 or a guess.
        assert on_postgres["refunds"][1] == 0
        assert on_redshift["refunds"][:3] == ("table", None, None)
        for name in ("big_orders", "customers", "orders"):
            assert on_redshift[name] == on_postgres[name], name
        assert on_redshift["orders"][3] == [
            ("id", "bigint", False, 1, None),
            ("customer_id", "bigint", False, 2, None),
            ("amount", "numeric(12,2)", False, 3, None),
            ("note", "text", True, 4, None),
        ]
        # svv_tables.remarks and svv_columns.remarks are the comments (equal to PostgreSQL's).
        assert on_redshift["customers"][4] == "one row per customer"
        assert on_redshift["customers"][3][1][4] == "PII"
        orders = rs.table(shimmed.mart, "orders")
        assert orders.row_count == 250
        assert orders.size_bytes is not None and orders.size_bytes % 1048576 == 0
        assert orders.last_altered is None
        assert rs.last_altered_means == "not recorded in Redshift's catalog views"
        assert rs.table(shimmed.mart, "big_orders").size_bytes is None


def test_check_and_not_found(shimmed: Shimmed) -> None:
    with redshift(shimmed) as rs:
        check = rs.check()
        assert check.ok, check.detail
        assert "4 tables and views" in check.detail
        assert check.version.startswith("Redshift ")
        with pytest.raises(Exception, match=r"did you mean .*\.orders"):
            rs.table(shimmed.mart, "ordrs")


def test_session_is_read_only_with_the_timeout_set(shimmed: Shimmed) -> None:
    with redshift(shimmed, statement_timeout=7.5) as rs:
        rs.schemas()
        # The engine's own connection, as the catalog gets it from the pool.
        with rs._engine.connect() as connection:
            assert connection.exec_driver_sql("SHOW statement_timeout").scalar() == "7500ms"
            assert connection.exec_driver_sql("SHOW transaction_read_only").scalar() == "on"


def test_redshift_session_statements() -> None:
    # Recorded from the Redshift docs (r_query_group.html, r_statement_timeout.html,
    # r_search_path.html), 2026-12-03: session-level SETs; the timeout is in milliseconds.
    assert REDSHIFT.session == (
        "SET query_group TO 'pipebot'",
        "SET statement_timeout TO {timeout_ms}",
        "SET search_path TO pg_catalog",
    )


def test_a_login_search_path_cannot_hijack_the_catalog_views(
    shimmed: Shimmed, pg_engine: Engine
) -> None:
    """A schema put in front by the login's own search path (here the URL's options; on
    Redshift an ``ALTER USER … SET search_path``) with a look-alike svv_tables is not read:
    the session pins the path to the system catalog (and, on PostgreSQL only, the shims)."""
    evil = unique_name("rs_evil")
    with pg_engine.begin() as connection:
        connection.execute(text(f'CREATE SCHEMA "{evil}"'))
        connection.execute(
            text(
                f"""CREATE VIEW "{evil}".svv_tables AS
                    SELECT CAST('x' AS text) AS table_catalog,
                           CAST('{shimmed.mart}' AS text) AS table_schema,
                           CAST('planted' AS text) AS table_name,
                           CAST('BASE TABLE' AS text) AS table_type,
                           CAST(NULL AS text) AS remarks"""
            )
        )
    try:
        url = make_url(shimmed.redshift_url).update_query_dict(
            {"options": f"-csearch_path={evil},{shimmed.shims}"}
        )
        with redshift(shimmed, url.render_as_string(hide_password=False)) as rs:
            names = [t.name for t in rs.tables(shimmed.mart)]
            with rs._engine.connect() as connection:
                path = connection.exec_driver_sql("SHOW search_path").scalar()
        assert "planted" not in names and "orders" in names
        assert path == f"pg_catalog, {shimmed.shims}"
    finally:
        with pg_engine.begin() as connection:
            connection.execute(text(f'DROP SCHEMA "{evil}" CASCADE'))


def test_missing_driver_is_one_line() -> None:
    # sqlalchemy-redshift is in the dev venv, redshift_connector is not.
    with pytest.raises(ConfigError) as caught:
        Catalog("redshift+redshift_connector://u:secret@example.invalid:5439/dev")
    assert str(caught.value) == (
        "Redshift support is not installed: pip install 'pipebot[redshift]'"
    )


def test_role_file_grants_structure_only() -> None:
    # Redshift is not available to the tests: the file is checked for what it must (not) grant.
    sql = (REPO_ROOT / "deploy" / "warehouse-redshift-role.sql").read_text()
    statements = [
        " ".join(line for line in s.split("\n") if not line.strip().startswith("--")).strip()
        for s in sql.split(";")
    ]
    grants = sorted(s for s in statements if s.upper().startswith("GRANT"))
    assert grants == [
        "GRANT SELECT ON svv_table_info TO pipebot_reader",
        "GRANT USAGE ON SCHEMA analytics TO pipebot_reader",
    ]
    assert "SET statement_timeout TO" in sql and "SET query_group TO 'pipebot'" in sql

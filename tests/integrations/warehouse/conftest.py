"""Real warehouses for the catalog tests: PostgreSQL (the machine's server), DuckDB and SQLite
files built by the fixtures. Nothing here is mocked."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from pathlib import Path

import duckdb
import pytest
from sqlalchemy import text
from sqlalchemy.engine import Engine

from tests.integrations.warehouse.support import PgWarehouse, search_path_schema


@pytest.fixture
def pg_warehouse(pg_url: str, pg_engine: Engine) -> Iterator[PgWarehouse]:
    schema = search_path_schema(pg_url)
    staging = f"{schema}_staging"
    statements = [
        f"""CREATE TABLE "{schema}".customers (
              id bigint PRIMARY KEY,
              email text NOT NULL,
              created_at timestamptz DEFAULT now(),
              tier varchar(16))""",
        f"""COMMENT ON TABLE "{schema}".customers IS 'one row per customer'""",
        f"""COMMENT ON COLUMN "{schema}".customers.email IS 'PII: never select it'""",
        f"""CREATE TABLE "{schema}".orders (
              id bigint PRIMARY KEY,
              customer_id bigint NOT NULL REFERENCES "{schema}".customers (id),
              status text,
              amount numeric(12, 2) NOT NULL,
              payload jsonb,
              tags text[])""",
        f"""INSERT INTO "{schema}".customers
            SELECT g, 'c' || g || '@example.com', now(), 'gold' FROM generate_series(1, 40) g""",
        f"""INSERT INTO "{schema}".orders
            SELECT g, 1 + g % 40, 'ok', g, '{{}}', ARRAY['a'] FROM generate_series(1, 250) g""",
        # A dropped column must vanish and leave a gap in the ordinals.
        f"""ALTER TABLE "{schema}".orders DROP COLUMN status""",
        f"""CREATE VIEW "{schema}".big_orders AS
            SELECT id, amount FROM "{schema}".orders WHERE amount > 100""",
        f"""CREATE MATERIALIZED VIEW "{schema}".order_totals AS
            SELECT customer_id, sum(amount) AS total FROM "{schema}".orders GROUP BY 1""",
        f"""CREATE TABLE "{schema}".events (id int NOT NULL, at date NOT NULL)
            PARTITION BY RANGE (at)""",
        f"""CREATE TABLE "{schema}".events_2026 PARTITION OF "{schema}".events
            FOR VALUES FROM ('2026-01-01') TO ('2027-01-01')""",
        f'ANALYZE "{schema}".customers, "{schema}".orders, "{schema}".order_totals',
        f'CREATE SCHEMA "{staging}"',
        f'CREATE TABLE "{staging}".stg_orders (id int, amount numeric)',
        f'CREATE TABLE "{staging}".stg_customers (id int, email text)',
    ]
    with pg_engine.begin() as connection:
        for statement in statements:
            connection.execute(text(statement))
    yield PgWarehouse(url=pg_url, schema=schema, staging=staging)
    with pg_engine.begin() as connection:
        connection.execute(text(f'DROP SCHEMA IF EXISTS "{staging}" CASCADE'))


@pytest.fixture
def duckdb_file(tmp_path: Path) -> Path:
    path = tmp_path / "lake.duckdb"
    connection = duckdb.connect(str(path))
    try:
        connection.execute("CREATE SCHEMA mart")
        connection.execute("CREATE SCHEMA raw")
        connection.execute(
            """CREATE TABLE mart.orders (
                 id INTEGER NOT NULL,
                 amount DECIMAL(12, 2) NOT NULL,
                 placed_at TIMESTAMP,
                 tags VARCHAR[],
                 address STRUCT(city VARCHAR, zip VARCHAR))"""
        )
        connection.execute(
            "INSERT INTO mart.orders SELECT i, i, now(), ['a'], {'city': 'x', 'zip': 'y'} "
            "FROM range(120) t(i)"
        )
        connection.execute("CREATE VIEW mart.big_orders AS SELECT id FROM mart.orders")
        connection.execute("CREATE TABLE raw.events (payload JSON, received_at TIMESTAMPTZ)")
        connection.execute("CREATE TABLE main.seed (k VARCHAR PRIMARY KEY, v DOUBLE)")
        connection.execute("COMMENT ON TABLE mart.orders IS 'orders'")
        connection.execute("COMMENT ON COLUMN mart.orders.amount IS 'in EUR'")
    finally:
        connection.close()
    return path


@pytest.fixture
def sqlite_file(tmp_path: Path) -> Path:
    path = tmp_path / "app.sqlite"
    connection = sqlite3.connect(path)
    try:
        connection.executescript(
            """
            CREATE TABLE customers (
              id INTEGER PRIMARY KEY AUTOINCREMENT,
              email TEXT NOT NULL,
              tier VARCHAR(16)
            );
            CREATE TABLE orders (
              id INTEGER PRIMARY KEY,
              customer_id INTEGER NOT NULL REFERENCES customers (id),
              amount NUMERIC(12, 2) NOT NULL,
              note TEXT
            );
            CREATE INDEX orders_customer ON orders (customer_id);
            CREATE VIEW big_orders AS SELECT id, amount FROM orders WHERE amount > 100;
            INSERT INTO customers (email, tier) VALUES ('a@example.com', 'gold');
            INSERT INTO orders VALUES (1, 1, 250, 'x');
            """
        )
        connection.commit()
    finally:
        connection.close()
    return path

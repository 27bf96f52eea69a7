"""A warehouse schema of our own on the machine's real PostgreSQL, for the drift tests: tables
made and altered with plain DDL, as someone outside dbt would."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

from sqlalchemy import text
from sqlalchemy.engine import Engine

from tests.conftest import PG_URL


@dataclass(frozen=True)
class PgSchema:
    name: str
    engine: Engine
    url: str = PG_URL

    def ddl(self, *statements: str) -> None:
        """Run DDL in the schema (``{s}`` stands for its quoted name)."""
        with self.engine.begin() as connection:
            for statement in statements:
                connection.execute(text(statement.format(s=f'"{self.name}"')))


@contextmanager
def pg_schema(engine: Engine) -> Iterator[PgSchema]:
    """A fresh ``drift_test_…`` schema with two tables and a view, dropped afterwards."""
    schema = PgSchema(name=f"drift_test_{uuid.uuid4().hex[:10]}", engine=engine)
    schema.ddl(
        "CREATE SCHEMA {s}",
        "CREATE TABLE {s}.orders (id bigint NOT NULL, amount numeric(12, 2), email text)",
        "CREATE TABLE {s}.customers (id bigint NOT NULL, name text)",
        "CREATE VIEW {s}.big_orders AS SELECT id, amount FROM {s}.orders WHERE amount > 100",
    )
    try:
        yield schema
    finally:
        schema.ddl("DROP SCHEMA IF EXISTS {s} CASCADE")

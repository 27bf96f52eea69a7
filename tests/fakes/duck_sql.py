"""`DuckViews`: what the warehouse fakes answer SQL with — the statement, as the client sent it,
translated by sqlglot from the warehouse's dialect to DuckDB and run over tables of rows the
test put there (BigQuery's INFORMATION_SCHEMA.JOBS, Databricks' system tables).

This checks a statement's *logic* — its filters, grouping, ordering, parameters and limit —
on data the test controls, and its result's shape; it is not the warehouse's engine (their
functions and type rules differ in corners). Tables are named by the last part of the relation
the statement reads, e.g. ``jobs``, ``usage``, ``history``::

    views = DuckViews({"jobs": "job_id VARCHAR, creation_time TIMESTAMPTZ, …"})
    views.insert("jobs", [{"job_id": "j1", "creation_time": …}])
    columns, rows = views.run(sql, "bigquery", {"since": …})
"""

from __future__ import annotations

import threading
from collections.abc import Mapping, Sequence
from typing import Any

import duckdb
import sqlglot
from sqlglot import exp


class SqlError(Exception):
    """The statement does not parse, reads an unknown relation, or fails in DuckDB."""


class DuckViews:
    def __init__(self, tables: Mapping[str, str]) -> None:
        self._connection = duckdb.connect()
        self._connection.execute("SET TimeZone = 'UTC'")
        self._lock = threading.Lock()
        self._columns: dict[str, list[str]] = {}
        for name, columns in tables.items():
            self._connection.execute(f"CREATE TABLE {name} ({columns})")
            described = self._connection.execute(f"DESCRIBE {name}").fetchall()
            self._columns[name] = [row[0] for row in described]

    def insert(self, table: str, rows: Sequence[Mapping[str, Any]]) -> None:
        columns = self._columns[table]
        marks = ", ".join("?" for _ in columns)
        with self._lock:
            for row in rows:
                self._connection.execute(
                    f"INSERT INTO {table} VALUES ({marks})", [row.get(c) for c in columns]
                )

    def run(
        self, sql: str, dialect: str, params: Mapping[str, Any]
    ) -> tuple[list[tuple[str, Any]], list[tuple[Any, ...]]]:
        """(columns as (name, DuckDB type), rows) of `sql` written in `dialect`."""
        try:
            tree = sqlglot.parse_one(sql, read=dialect)
        except sqlglot.errors.ParseError as exc:
            raise SqlError(f"Syntax error: {str(exc).splitlines()[0]}") from None
        for table in list(tree.find_all(exp.Table)):
            name = table.name.split(".")[-1].lower()
            if name not in self._columns:
                raise SqlError(f"Not found: Table {table.sql(dialect)}")
            replacement = exp.to_table(name)
            if table.alias:
                replacement = exp.alias_(replacement, table.alias, table=True)
            table.replace(replacement)
        translated = tree.sql("duckdb")
        used = {p.name for p in tree.find_all(exp.Placeholder)} | {
            p.name for p in tree.find_all(exp.Parameter)
        }
        bound = {k: v for k, v in params.items() if k in used or f"${k}" in translated}
        with self._lock:
            try:
                cursor = self._connection.execute(translated, bound)
                description = cursor.description or []
                rows = cursor.fetchall()
            except duckdb.Error as exc:
                raise SqlError(f"{type(exc).__name__}: {str(exc).splitlines()[0]}") from None
        return [(d[0], d[1]) for d in description], rows

    def close(self) -> None:
        self._connection.close()

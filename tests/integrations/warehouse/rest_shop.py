"""One small schema built three ways — in the real PostgreSQL test database, in the BigQuery
fake and in the Databricks fake — so the REST catalogs' `Table` facts can be compared with
PostgreSQL's field by field (tests/integrations/warehouse/test_bigquery.py, test_databricks.py).

Each column: (name, PostgreSQL type, BigQuery REST field, Databricks type_text, nullable).
Comments (PostgreSQL COMMENT ON, BigQuery description, Databricks comment) are in `COMMENTS`.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import text
from sqlalchemy.engine import Engine

from tests.fakes.bigquery_api import FakeBigQuery, field
from tests.fakes.databricks_api import FakeDatabricks, column

# (table, column or None for the table itself) → comment, the same on every warehouse.
COMMENTS = {("customers", None): "one row per customer", ("customers", "email"): "PII"}
COLUMNS: dict[str, list[tuple[str, str, dict[str, Any], str, bool]]] = {
    "customers": [
        ("id", "bigint", field("id", "INTEGER", "REQUIRED"), "bigint", False),
        (
            "email",
            "text",
            field("email", "STRING", "REQUIRED", description=COMMENTS["customers", "email"]),
            "string",
            False,
        ),
        ("tier", "varchar(16)", field("tier", "STRING", maxLength=16), "varchar(16)", True),
    ],
    "orders": [
        ("id", "bigint", field("id", "INTEGER", "REQUIRED"), "bigint", False),
        ("customer_id", "bigint", field("customer_id", "INTEGER", "REQUIRED"), "bigint", False),
        (
            "amount",
            "numeric(12, 2)",
            field("amount", "NUMERIC", "REQUIRED", precision=12, scale=2),
            "decimal(12,2)",
            False,
        ),
        ("note", "text", field("note", "STRING"), "string", True),
    ],
}
VIEW = "big_orders"  # SELECT id, amount FROM orders: a view's columns are nullable everywhere
ROWS = {"customers": 40, "orders": 250}
MODIFIED_MS = 1_767_225_600_000  # 2026-01-01T00:00:00Z

# The same type written by each warehouse, for comparing columns across them.
SAME_TYPE = {
    "bigint": {"INT64", "bigint"},
    "text": {"STRING", "string"},
    "character varying(16)": {"STRING(16)", "varchar(16)"},
    "numeric(12,2)": {"NUMERIC(12, 2)", "decimal(12,2)"},
}


def build_postgres(engine: Engine, schema: str) -> None:
    statements = []
    for table, columns in COLUMNS.items():
        body = ", ".join(
            f"{name} {pg_type}{'' if nullable else ' NOT NULL'}"
            for name, pg_type, _bq, _dbx, nullable in columns
        )
        statements.append(f'CREATE TABLE "{schema}".{table} ({body})')
    statements += [
        f"""INSERT INTO "{schema}".customers
            SELECT g, 'c' || g || '@example.com', 'gold' FROM generate_series(1, 40) g""",
        f"""INSERT INTO "{schema}".orders
            SELECT g, 1 + g % 40, g, NULL FROM generate_series(1, 250) g""",
        f'CREATE VIEW "{schema}".{VIEW} AS SELECT id, amount FROM "{schema}".orders',
        *(
            f"COMMENT ON {'COLUMN' if column else 'TABLE'} "
            f"\"{schema}\".{table}{'.' + column if column else ''} IS '{comment}'"
            for (table, column), comment in COMMENTS.items()
        ),
        f'ANALYZE "{schema}".customers, "{schema}".orders',
    ]
    with engine.begin() as connection:
        for statement in statements:
            connection.execute(text(statement))


def build_bigquery(fake: FakeBigQuery, dataset: str) -> None:
    for table, columns in COLUMNS.items():
        fake.add_table(
            dataset,
            table,
            [bq for _n, _pg, bq, _dbx, _null in columns],
            num_rows=ROWS[table],
            num_bytes=ROWS[table] * 64,
            modified_ms=MODIFIED_MS,
            description=COMMENTS.get((table, None)),
        )
    fake.add_table(
        dataset,
        VIEW,
        [field("id", "INTEGER"), field("amount", "NUMERIC", precision=12, scale=2)],
        type_="VIEW",
        modified_ms=MODIFIED_MS,
    )


def build_databricks(fake: FakeDatabricks, catalog: str, schema: str) -> None:
    for table, columns in COLUMNS.items():
        fake.add_table(
            catalog,
            schema,
            table,
            [
                column(name, dbx, nullable=null, comment=COMMENTS.get((table, name)))
                for name, _pg, _bq, dbx, null in columns
            ],
            updated_at=MODIFIED_MS,
            comment=COMMENTS.get((table, None)),
        )
    fake.add_table(
        catalog,
        schema,
        VIEW,
        [column("id", "bigint"), column("amount", "decimal(12,2)")],
        table_type="VIEW",
        updated_at=MODIFIED_MS,
    )


def same_type(pg_type: str, other: str) -> bool:
    return other in SAME_TYPE.get(pg_type.replace(", ", ","), set())

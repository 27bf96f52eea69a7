"""The catalog SQL of every dialect, parsed by sqlglot in that dialect and passed through the
guard — including Snowflake, BigQuery and Redshift, which this machine cannot run."""

from __future__ import annotations

import pytest
import sqlglot
from sqlglot import exp

from integrations.warehouse.guard import SqlGuard
from integrations.warehouse.sql import (
    CATALOG_SQL,
    COLUMN_COLUMNS,
    RELATION_COLUMNS,
    SCHEMA_COLUMNS,
    STATS_COLUMNS,
    CatalogSql,
    bigquery,
)

# What each dialect's statements must read, by statement (lower-cased relation paths).
EXPECTED_RELATIONS = {
    "postgres": {
        "schemas": {"pg_catalog.pg_namespace"},
        "relations": {
            "pg_catalog.pg_class",
            "pg_catalog.pg_namespace",
            "pg_catalog.pg_attribute",
            "pg_catalog.pg_index",
            "pg_catalog.pg_description",
        },
    },
    "duckdb": {
        "schemas": {"duckdb_schemas()"},
        "relations": {"duckdb_tables()", "duckdb_views()", "duckdb_columns()"},
    },
    "sqlite": {"schemas": set(), "relations": {"sqlite_master", "pragma_table_info()"}},
    "snowflake": {
        "schemas": {"information_schema.schemata"},
        "relations": {"information_schema.tables", "information_schema.columns"},
    },
    "bigquery": {
        "schemas": {"region-us.information_schema.schemata"},
        "relations": {
            "region-us.information_schema.tables",
            "region-us.information_schema.columns",
            "region-us.information_schema.table_storage",
        },
    },
    "redshift": {
        "schemas": {"pg_catalog.pg_namespace"},
        "relations": {"svv_tables"},
        "columns": {"svv_columns"},
        "stats": {"svv_table_info"},
    },
}

# Source columns that carry the facts the Table type needs, per dialect.
EXPECTED_SOURCES = {
    # Live tuples and the last auto-analyze come from pg_stat_get_* functions (tested below).
    "postgres": {"reltuples", "relpages", "attnotnull", "attnum", "description", "objsubid"},
    "duckdb": {"estimated_size", "column_index", "is_nullable", "data_type", "comment"},
    "sqlite": {"notnull", "cid", "type"},
    "snowflake": {
        "row_count",
        "bytes",
        "last_altered",
        "is_nullable",
        "ordinal_position",
        "comment",
    },
    "bigquery": {"total_rows", "total_logical_bytes", "storage_last_modified_time"},
    "redshift": {"tbl_rows", "size", "is_nullable", "ordinal_position", "remarks"},
}

OUTPUTS = {
    "schemas": SCHEMA_COLUMNS,
    "relations": RELATION_COLUMNS,
    "columns": COLUMN_COLUMNS,
    "stats": STATS_COLUMNS,
}


def statements(sql: CatalogSql) -> dict[str, str]:
    found = {"schemas": sql.schemas, "relations": sql.relations}
    if sql.columns is not None:
        found["columns"] = sql.columns
    if sql.stats is not None:
        found["stats"] = sql.stats
    return found


CASES = [
    (dialect, name, text)
    for dialect, sql in CATALOG_SQL.items()
    for name, text in statements(sql).items()
]


@pytest.mark.parametrize(("dialect", "name", "sql"), CASES, ids=[f"{d}-{n}" for d, n, _ in CASES])
def test_statement_parses_passes_the_guard_and_selects_the_contract(
    dialect: str, name: str, sql: str
) -> None:
    tree = sqlglot.parse_one(sql, read=dialect)
    assert isinstance(tree, exp.Select)
    assert tuple(e.alias_or_name for e in tree.expressions) == OUTPUTS[name]

    guarded = SqlGuard(dialect, row_cap=1000).check(sql)
    assert {r.lower() for r in guarded.relations} == EXPECTED_RELATIONS[dialect][name]
    if name != "schemas":
        # Filters are bound parameters: schema list and optional exact name, never text.
        assert set(guarded.parameters) == {"schemas", "name"}
    assert guarded.sql.endswith("LIMIT 1000")


@pytest.mark.parametrize("dialect", sorted(CATALOG_SQL))
def test_statements_read_the_facts_the_table_type_needs(dialect: str) -> None:
    read = set()
    for sql in statements(CATALOG_SQL[dialect]).values():
        read |= {c.name.lower() for c in sqlglot.parse_one(sql, read=dialect).find_all(exp.Column)}
    assert EXPECTED_SOURCES[dialect] <= read


@pytest.mark.parametrize("dialect", sorted(CATALOG_SQL))
def test_relations_are_one_row_per_relation(dialect: str) -> None:
    tree = sqlglot.parse_one(CATALOG_SQL[dialect].relations, read=dialect)
    order = [o.this.sql(dialect).lower() for o in tree.args["order"].expressions]
    # Schema (SQLite has one), then relation name: a stable order under the row cap.
    assert 1 <= len(order) <= 2
    assert order[-1].endswith("name")
    group = tree.args.get("group")
    if CATALOG_SQL[dialect].columns is None:
        # Columns are aggregated per relation: either the query groups by (at least) schema
        # and name, or the aggregates live in a LATERAL subquery run once per relation.
        if group is None:
            (lateral,) = tree.find_all(exp.Lateral)
            assert len(list(lateral.find_all(exp.ArrayAgg))) == 4  # comments: pg_description
        else:
            grouped = {g.sql(dialect).lower() for g in group.expressions}
            assert set(order) <= grouped


def test_only_redshift_needs_separate_column_and_stats_statements() -> None:
    separate = {d for d, sql in CATALOG_SQL.items() if sql.columns or sql.stats}
    assert separate == {"redshift"}


def test_bigquery_region_is_validated_before_it_is_written_in() -> None:
    assert "`region-europe-west3`.INFORMATION_SCHEMA.TABLES" in bigquery("europe-west3").relations
    for bad in ("us`; DROP TABLE x; --", "US EAST", "", "a" * 60):
        with pytest.raises(ValueError, match="not a BigQuery region"):
            bigquery(bad)


def test_every_dialect_states_what_last_altered_means() -> None:
    for sql in CATALOG_SQL.values():
        assert sql.last_altered_means


def test_postgres_statistics_come_from_per_relation_functions() -> None:
    from integrations.warehouse.sql import POSTGRES

    assert "pg_stat_get_live_tuples(c.oid)" in POSTGRES.relations
    assert "pg_stat_get_last_autoanalyze_time(c.oid)" in POSTGRES.relations


def test_every_statement_file_is_used_and_plain_sql() -> None:
    from integrations.warehouse.sql import QUERIES

    used = {text.strip() for sql in CATALOG_SQL.values() for text in statements(sql).values()} | {
        bigquery("us").schemas.strip(),
        bigquery("us").relations.strip(),
    }
    from integrations.warehouse.usage import STATEMENTS

    files = sorted(QUERIES.glob("*/*.sql"))
    catalog = [path for path in files if not path.name.startswith("usage_")]
    assert len(catalog) == 14
    for path in catalog:
        body = path.read_text().strip()
        assert body.replace("{views}", "`region-us`.INFORMATION_SCHEMA") in used, path
    # Usage statements are loaded by name: every file is one a reader loads, and back.
    usage = {(path.parent.name, path.stem) for path in files if path.name.startswith("usage_")}
    declared = {
        (dialect, f"usage_{name}") for dialect, names in STATEMENTS.items() for name in names
    }
    assert usage == declared

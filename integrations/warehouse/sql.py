"""The catalog SQL, one set per dialect. Every statement here passes `SqlGuard` unchanged.

Each dialect answers with a few bulk statements, never one per table:

``schemas``
    one row per schema: ``schema_name``, ``usable`` (the role may look inside it).
``relations``
    one row per table/view with ``schema_name``, ``table_name``, ``kind``, ``row_count``,
    ``size_bytes``, ``last_altered`` and its columns as four parallel arrays, aligned element by
    element: ``column_names``, ``column_types``, ``column_nullable``, ``column_ordinals``
    (positions travel along, so an array need not be sorted by the database). One row per
    relation keeps the row cap meaningful ("at most N tables") — a row per column would let a
    schema of 250 twenty-column tables exhaust a cap of 5,000 — and plain arrays are the
    cheapest shape to ship and decode (measured against JSON objects on PostgreSQL).
``columns`` and ``stats``
    only for dialects whose catalog cannot do that in one statement (Redshift refuses ``LISTAGG``
    on leader-node catalog views and cannot join them with its compute-node statistics views):
    one row per column (``schema_name``, ``table_name``, ``name``, ``type``, ``nullable``,
    ``ordinal``) and one row per table (``schema_name``, ``table_name``, ``row_count``,
    ``size_bytes``, ``last_altered``).

Parameters (bound by SQLAlchemy, never formatted into the text): ``:schemas`` — a list, bound
as an expanding ``IN`` — and ``:name``, an exact relation name or ``NULL`` for all.

What "last_altered" means differs per dialect and is stated in `CatalogSql.last_altered_means`.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass

SCHEMA_COLUMNS = ("schema_name", "usable")
RELATION_COLUMNS = (
    "schema_name",
    "table_name",
    "kind",
    "row_count",
    "size_bytes",
    "last_altered",
    "column_names",
    "column_types",
    "column_nullable",
    "column_ordinals",
)
COLUMN_COLUMNS = ("schema_name", "table_name", "name", "type", "nullable", "ordinal")
STATS_COLUMNS = ("schema_name", "table_name", "row_count", "size_bytes", "last_altered")


@dataclass(frozen=True, kw_only=True)
class CatalogSql:
    dialect: str  # sqlglot dialect name
    schemas: str
    relations: str
    columns: str | None = None  # separate per-column statement (see module docstring)
    stats: str | None = None  # separate per-table statistics statement
    last_altered_means: str = ""


# Everything comes from pg_class and the statistics views, without touching a table:
# - rows and size are the planner's figures from the last VACUUM/ANALYZE (reltuples, relpages of
#   the table, its TOAST table and its indexes × the 8 kB block size every mainstream build
#   uses), falling back to the live-tuple counter for rows, and to NULL for size, before the
#   first one. pg_total_relation_size would be exact but takes an AccessShareLock per table and
#   stats its files: behind a dbt run swapping relations (ACCESS EXCLUSIVE until commit) the
#   listing would hang until the statement timeout, and on 5,000 tables it doubles the time.
# - PostgreSQL keeps no modification time. Auto-analyze runs only after enough rows changed, so
#   its time is a lower bound of the last change (auto-vacuum is not: anti-wraparound runs also
#   touch tables nobody changed, which would make a stale table look fresh).
# - Partitions are left out: their parent stands for them.
# The statistics come from the pg_stat_get_* functions the pg_stat_user_tables view is made of,
# called for the listed relations only (the view computes them for every table of the database).
# Speed (5,000 tables × 20 columns): columns are aggregated per table in a LATERAL subquery —
# one index scan of pg_attribute each, already in attnum order — rather than by a GROUP BY over
# the 100,000-row join, whose sort of wide rows spilled to disk and took 3-4× longer. The
# arrays are not ORDER BY'd inside the aggregate (four small sorts per table): positions travel
# along and the connector sorts in the rare case the scan did not deliver them in order.
POSTGRES = CatalogSql(
    dialect="postgres",
    schemas="""
SELECT n.nspname AS schema_name,
       has_schema_privilege(n.oid, 'USAGE') AS usable
FROM pg_catalog.pg_namespace AS n
WHERE n.nspname <> 'information_schema'
  AND n.nspname NOT LIKE 'pg\\_%'
ORDER BY n.nspname
""",
    relations="""
SELECT n.nspname AS schema_name,
       c.relname AS table_name,
       CASE c.relkind
         WHEN 'r' THEN 'table'
         WHEN 'p' THEN 'partitioned table'
         WHEN 'v' THEN 'view'
         WHEN 'm' THEN 'materialized view'
         WHEN 'f' THEN 'foreign table'
       END AS kind,
       CASE
         WHEN c.relkind IN ('v', 'f', 'p') THEN NULL
         WHEN c.reltuples >= 0 THEN CAST(c.reltuples AS BIGINT)
         ELSE pg_catalog.pg_stat_get_live_tuples(c.oid)
       END AS row_count,
       CASE
         WHEN c.relkind IN ('r', 'm') AND c.reltuples >= 0
         THEN CAST(c.relpages + COALESCE(t.relpages, 0) + COALESCE(x.pages, 0) AS BIGINT) * 8192
       END AS size_bytes,
       pg_catalog.pg_stat_get_last_autoanalyze_time(c.oid) AS last_altered,
       cols.column_names,
       cols.column_types,
       cols.column_nullable,
       cols.column_ordinals
FROM pg_catalog.pg_class AS c
JOIN pg_catalog.pg_namespace AS n ON n.oid = c.relnamespace
LEFT JOIN pg_catalog.pg_class AS t ON t.oid = c.reltoastrelid
LEFT JOIN (
  SELECT i.indrelid, SUM(ic.relpages) AS pages
  FROM pg_catalog.pg_index AS i
  JOIN pg_catalog.pg_class AS ic ON ic.oid = i.indexrelid
  GROUP BY i.indrelid
) AS x ON x.indrelid = c.oid
LEFT JOIN LATERAL (
  SELECT array_agg(CAST(a.attname AS TEXT)) AS column_names,
         array_agg(pg_catalog.format_type(a.atttypid, a.atttypmod)) AS column_types,
         array_agg(NOT a.attnotnull) AS column_nullable,
         array_agg(CAST(a.attnum AS INT)) AS column_ordinals
  FROM pg_catalog.pg_attribute AS a
  WHERE a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped
) AS cols ON TRUE
WHERE c.relkind IN ('r', 'p', 'v', 'm', 'f')
  AND NOT c.relispartition
  AND n.nspname IN :schemas
  AND (CAST(:name AS TEXT) IS NULL OR c.relname = CAST(:name AS TEXT))
ORDER BY n.nspname, c.relname
""",
    last_altered_means=(
        "time of the last auto-analyze (PostgreSQL records no modification time; auto-analyze "
        "runs after enough rows changed, so the table changed at least until then)"
    ),
)

# duckdb_tables().estimated_size is DuckDB's row estimate; DuckDB keeps no per-table byte size
# or modification time in its catalog.
DUCKDB = CatalogSql(
    dialect="duckdb",
    schemas="""
SELECT schema_name, TRUE AS usable
FROM duckdb_schemas()
WHERE database_name = current_database()
  AND schema_name NOT IN ('information_schema', 'pg_catalog')
ORDER BY schema_name
""",
    relations="""
SELECT r.schema_name,
       r.table_name,
       r.kind,
       r.row_count,
       CAST(NULL AS BIGINT) AS size_bytes,
       CAST(NULL AS TIMESTAMP) AS last_altered,
       list(c.column_name ORDER BY c.column_index) AS column_names,
       list(c.data_type ORDER BY c.column_index) AS column_types,
       list(c.is_nullable ORDER BY c.column_index) AS column_nullable,
       list(c.column_index ORDER BY c.column_index) AS column_ordinals
FROM (
  SELECT database_name, schema_name, table_name, 'table' AS kind, estimated_size AS row_count
  FROM duckdb_tables()
  WHERE NOT internal AND NOT temporary
  UNION ALL
  SELECT database_name, schema_name, view_name, 'view', NULL
  FROM duckdb_views()
  WHERE NOT internal AND NOT temporary
) AS r
LEFT JOIN duckdb_columns() AS c
  ON c.database_name = r.database_name
 AND c.schema_name = r.schema_name
 AND c.table_name = r.table_name
WHERE r.database_name = current_database()
  AND r.schema_name IN :schemas
  AND (CAST(:name AS VARCHAR) IS NULL OR r.table_name = CAST(:name AS VARCHAR))
GROUP BY r.schema_name, r.table_name, r.kind, r.row_count
ORDER BY r.schema_name, r.table_name
""",
    last_altered_means="not recorded by DuckDB",
)

# The connection opens one database file, so its only schema is "main" (temp is per-connection
# and empty for us). sqlite_master joined with the pragma_table_info() table-valued function
# describes every table and view in ONE statement. SQLite has no arrays: each aggregate is a
# JSON array, and all four see the group's rows in the same order (positions travel along).
SQLITE = CatalogSql(
    dialect="sqlite",
    schemas="SELECT 'main' AS schema_name, 1 AS usable",
    relations="""
SELECT 'main' AS schema_name,
       m.name AS table_name,
       m.type AS kind,
       NULL AS row_count,
       NULL AS size_bytes,
       NULL AS last_altered,
       json_group_array(p.name) AS column_names,
       json_group_array(p.type) AS column_types,
       json_group_array(p."notnull" = 0) AS column_nullable,
       json_group_array(p.cid + 1) AS column_ordinals
FROM sqlite_master AS m
LEFT JOIN pragma_table_info(m.name) AS p
WHERE m.type IN ('table', 'view')
  AND m.name NOT LIKE 'sqlite\\_%' ESCAPE '\\'
  AND 'main' IN :schemas
  AND (:name IS NULL OR m.name = :name)
GROUP BY m.name, m.type
ORDER BY m.name
""",
    last_altered_means="not recorded by SQLite",
)

SNOWFLAKE = CatalogSql(
    dialect="snowflake",
    schemas="""
SELECT schema_name, TRUE AS usable
FROM information_schema.schemata
WHERE schema_name <> 'INFORMATION_SCHEMA'
ORDER BY schema_name
""",
    relations="""
SELECT t.table_schema AS schema_name,
       t.table_name,
       CASE t.table_type
         WHEN 'BASE TABLE' THEN 'table'
         WHEN 'VIEW' THEN 'view'
         WHEN 'MATERIALIZED VIEW' THEN 'materialized view'
         WHEN 'EXTERNAL TABLE' THEN 'external table'
         ELSE LOWER(t.table_type)
       END AS kind,
       t.row_count,
       t.bytes AS size_bytes,
       t.last_altered,
       ARRAY_AGG(c.column_name) WITHIN GROUP (ORDER BY c.ordinal_position) AS column_names,
       ARRAY_AGG(c.data_type) WITHIN GROUP (ORDER BY c.ordinal_position) AS column_types,
       ARRAY_AGG(c.is_nullable = 'YES') WITHIN GROUP (ORDER BY c.ordinal_position)
         AS column_nullable,
       ARRAY_AGG(c.ordinal_position) WITHIN GROUP (ORDER BY c.ordinal_position)
         AS column_ordinals
FROM information_schema.tables AS t
LEFT JOIN information_schema.columns AS c
  ON c.table_schema = t.table_schema AND c.table_name = t.table_name
WHERE t.table_schema IN :schemas
  AND (:name IS NULL OR t.table_name = :name)
GROUP BY t.table_schema, t.table_name, t.table_type, t.row_count, t.bytes, t.last_altered
ORDER BY t.table_schema, t.table_name
""",
    last_altered_means="INFORMATION_SCHEMA.TABLES.LAST_ALTERED (DML, DDL or background changes)",
)

_BIGQUERY_REGION = re.compile(r"[a-z][a-z0-9-]{1,40}\Z")


def bigquery(region: str = "us") -> CatalogSql:
    """BigQuery's region-qualified views (every dataset of the project in one statement).

    TABLE_STORAGE exists only per region, so the region is part of the text; it is checked
    against BigQuery's region naming before it is written in.
    """
    region = region.lower()
    if not _BIGQUERY_REGION.match(region):
        raise ValueError(f"not a BigQuery region name: {region!r}")
    views = f"`region-{region}`.INFORMATION_SCHEMA"
    return CatalogSql(
        dialect="bigquery",
        schemas=f"""
SELECT schema_name, TRUE AS usable
FROM {views}.SCHEMATA
ORDER BY schema_name
""",
        relations=f"""
SELECT t.table_schema AS schema_name,
       t.table_name,
       CASE t.table_type
         WHEN 'BASE TABLE' THEN 'table'
         WHEN 'VIEW' THEN 'view'
         WHEN 'MATERIALIZED VIEW' THEN 'materialized view'
         WHEN 'EXTERNAL' THEN 'external table'
         ELSE LOWER(t.table_type)
       END AS kind,
       s.total_rows AS row_count,
       s.total_logical_bytes AS size_bytes,
       s.storage_last_modified_time AS last_altered,
       ARRAY_AGG(c.column_name IGNORE NULLS ORDER BY c.ordinal_position) AS column_names,
       ARRAY_AGG(c.data_type IGNORE NULLS ORDER BY c.ordinal_position) AS column_types,
       ARRAY_AGG(c.is_nullable = 'YES' IGNORE NULLS ORDER BY c.ordinal_position)
         AS column_nullable,
       ARRAY_AGG(c.ordinal_position IGNORE NULLS ORDER BY c.ordinal_position)
         AS column_ordinals
FROM {views}.TABLES AS t
LEFT JOIN {views}.TABLE_STORAGE AS s
  ON s.table_schema = t.table_schema AND s.table_name = t.table_name
LEFT JOIN {views}.COLUMNS AS c
  ON c.table_schema = t.table_schema AND c.table_name = t.table_name
WHERE t.table_schema IN :schemas
  AND (:name IS NULL OR t.table_name = :name)
GROUP BY t.table_schema, t.table_name, t.table_type, s.total_rows, s.total_logical_bytes,
         s.storage_last_modified_time
ORDER BY t.table_schema, t.table_name
""",
        last_altered_means="TABLE_STORAGE.STORAGE_LAST_MODIFIED_TIME",
    )


# Redshift: svv_tables lists every relation (views too) from the leader node; svv_table_info
# has statistics for non-empty tables only (size in 1 MB blocks) from the compute nodes. The two
# cannot be joined, and LISTAGG is refused on leader-node views, hence three statements.
REDSHIFT = CatalogSql(
    dialect="redshift",
    schemas="""
SELECT n.nspname AS schema_name,
       has_schema_privilege(n.nspname, 'USAGE') AS usable
FROM pg_catalog.pg_namespace AS n
WHERE n.nspname <> 'information_schema'
  AND n.nspname NOT LIKE 'pg\\_%'
ORDER BY n.nspname
""",
    relations="""
SELECT t.table_schema AS schema_name,
       t.table_name,
       CASE t.table_type
         WHEN 'BASE TABLE' THEN 'table'
         WHEN 'VIEW' THEN 'view'
         WHEN 'EXTERNAL TABLE' THEN 'external table'
         ELSE LOWER(t.table_type)
       END AS kind,
       NULL AS row_count,
       NULL AS size_bytes,
       NULL AS last_altered,
       NULL AS column_names,
       NULL AS column_types,
       NULL AS column_nullable,
       NULL AS column_ordinals
FROM svv_tables AS t
WHERE t.table_schema IN :schemas
  AND (:name IS NULL OR t.table_name = :name)
ORDER BY t.table_schema, t.table_name
""",
    columns="""
SELECT c.table_schema AS schema_name,
       c.table_name,
       c.column_name AS name,
       c.data_type AS type,
       c.is_nullable = 'YES' AS nullable,
       c.ordinal_position AS ordinal
FROM svv_columns AS c
WHERE c.table_schema IN :schemas
  AND (:name IS NULL OR c.table_name = :name)
ORDER BY c.table_schema, c.table_name, c.ordinal_position
""",
    stats="""
SELECT i."schema" AS schema_name,
       i."table" AS table_name,
       i.tbl_rows AS row_count,
       i."size" * 1048576 AS size_bytes,
       NULL AS last_altered
FROM svv_table_info AS i
WHERE i."schema" IN :schemas
  AND (:name IS NULL OR i."table" = :name)
ORDER BY i."schema", i."table"
""",
    last_altered_means="not recorded in Redshift's catalog views",
)

CATALOG_SQL: Mapping[str, CatalogSql] = {
    "postgres": POSTGRES,
    "duckdb": DUCKDB,
    "sqlite": SQLITE,
    "snowflake": SNOWFLAKE,
    "bigquery": bigquery(),
    "redshift": REDSHIFT,
}

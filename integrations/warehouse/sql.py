"""The catalog SQL, one set per dialect, each statement in its own file under ``queries/``.
Every statement passes `SqlGuard` unchanged.

Each dialect answers with a few bulk statements, never one per table:

``schemas``
    one row per schema: ``schema_name``, ``usable`` (the role may look inside it).
``relations``
    one row per table/view with ``schema_name``, ``table_name``, ``kind``, ``row_count``,
    ``size_bytes``, ``last_altered`` and its columns as four parallel arrays, aligned element by
    element: ``column_names``, ``column_types``, ``column_nullable``, ``column_ordinals``
    (positions travel along, so an array need not be sorted by the database); ``comment``, the
    relation's comment, and ``column_comments``: a fifth aligned array (``''`` or NULL for a
    column without one), or — where comments live in a catalog of their own, PostgreSQL's
    ``pg_description`` — a JSON object from column position to comment, NULL when no column has
    one (a per-column lookup would double the statement's time on 100,000 columns). One row per
    relation keeps the row cap meaningful ("at most N tables") — a row per column would let a
    schema of 250 twenty-column tables exhaust a cap of 5,000 — and plain arrays are the
    cheapest shape to ship and decode (measured against JSON objects on PostgreSQL).
``columns`` and ``stats``
    only for dialects whose catalog cannot do that in one statement (Redshift refuses ``LISTAGG``
    on leader-node catalog views and cannot join them with its compute-node statistics views):
    one row per column (``schema_name``, ``table_name``, ``name``, ``type``, ``nullable``,
    ``ordinal``, ``comment``) and one row per table (``schema_name``, ``table_name``, ``row_count``,
    ``size_bytes``, ``last_altered``).

Parameters (bound by SQLAlchemy, never formatted into the text): ``:schemas`` — a list, bound
as an expanding ``IN`` — and ``:name``, an exact relation name or ``NULL`` for all.

What "last_altered" means differs per dialect and is stated in `CatalogSql.last_altered_means`.

``session`` holds statements run once per new connection (Redshift's query group and statement
timeout; ``{timeout_ms}`` is filled in from the configured timeout). Snowflake sets its tag and
timeout as session parameters of the login instead (`Catalog`), PostgreSQL per transaction.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

# One file per statement: queries/<sqlglot dialect>/<statement>.sql, plain SQL that a person
# can run in the warehouse's own console; why each is written the way it is stays here.
QUERIES = Path(__file__).resolve().parent / "queries"


def _load(dialect: str, statement: str) -> str:
    return (QUERIES / dialect / f"{statement}.sql").read_text(encoding="utf-8")


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
    "comment",
    "column_comments",
)
COLUMN_COLUMNS = ("schema_name", "table_name", "name", "type", "nullable", "ordinal", "comment")
STATS_COLUMNS = ("schema_name", "table_name", "row_count", "size_bytes", "last_altered")
# How pipebot's statements are labelled in the warehouse's query history.
QUERY_TAG = "pipebot"
# Redshift's pinned search path (see REDSHIFT).
SEARCH_PATH = "SET search_path TO pg_catalog"


@dataclass(frozen=True, kw_only=True)
class CatalogSql:
    dialect: str  # sqlglot dialect name
    schemas: str
    relations: str
    columns: str | None = None  # separate per-column statement (see module docstring)
    stats: str | None = None  # separate per-table statistics statement
    last_altered_means: str = ""
    session: tuple[str, ...] = ()  # run on every new connection, before any catalog statement


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
# - Comments (COMMENT ON) come from pg_description: the relation's and its columns' (a JSON object
#   position → text, NULL for the many tables without any) in two index lookups per relation.
# Speed (5,000 tables × 20 columns): columns are aggregated per table in a LATERAL subquery —
# one index scan of pg_attribute each, already in attnum order — rather than by a GROUP BY over
# the 100,000-row join, whose sort of wide rows spilled to disk and took 3-4× longer. The
# arrays are not ORDER BY'd inside the aggregate (four small sorts per table): positions travel
# along and the connector sorts in the rare case the scan did not deliver them in order.
POSTGRES = CatalogSql(
    dialect="postgres",
    schemas=_load("postgres", "schemas"),
    relations=_load("postgres", "relations"),
    last_altered_means=(
        "time of the last auto-analyze (PostgreSQL records no modification time; auto-analyze "
        "runs after enough rows changed, so the table changed at least until then)"
    ),
)

# duckdb_tables().estimated_size is DuckDB's row estimate; DuckDB keeps no per-table byte size
# or modification time in its catalog.
DUCKDB = CatalogSql(
    dialect="duckdb",
    schemas=_load("duckdb", "schemas"),
    relations=_load("duckdb", "relations"),
    last_altered_means="not recorded by DuckDB",
)

# The connection opens one database file, so its only schema is "main" (temp is per-connection
# and empty for us). sqlite_master joined with the pragma_table_info() table-valued function
# describes every table and view in ONE statement. SQLite has no arrays: each aggregate is a
# JSON array, and all four see the group's rows in the same order (positions travel along).
SQLITE = CatalogSql(
    dialect="sqlite",
    schemas=_load("sqlite", "schemas"),
    relations=_load("sqlite", "relations"),
    last_altered_means="not recorded by SQLite",
)

# Snowflake's INFORMATION_SCHEMA lists only what the role may access, so every listed schema is
# usable; ARRAY_AGG arrives as JSON text and the connector decodes it. Views have no ROW_COUNT
# or BYTES (NULL): unknown, not zero. ARRAY_AGG drops NULLs, so a column without a comment is
# aggregated as '' (and a relation without columns, met once by the LEFT JOIN, as nothing).
SNOWFLAKE = CatalogSql(
    dialect="snowflake",
    schemas=_load("snowflake", "schemas"),
    relations=_load("snowflake", "relations"),
    last_altered_means="INFORMATION_SCHEMA.TABLES.LAST_ALTERED (DML, DDL or background changes)",
)

_BIGQUERY_REGION = re.compile(r"[a-z][a-z0-9-]{1,40}\Z")


def bigquery(region: str = "us") -> CatalogSql:
    """BigQuery's region-qualified views (every dataset of the project in one statement).

    Not what pipebot reads the catalog with (`BigQueryCatalog` uses the free REST API, which
    also has the table and column descriptions; here they would need TABLE_OPTIONS and
    COLUMN_FIELD_PATHS, so ``comment`` and ``column_comments`` are NULL: unknown).

    TABLE_STORAGE exists only per region, so the region is part of the text; it is checked
    against BigQuery's region naming before it is written in.
    """
    region = region.lower()
    if not _BIGQUERY_REGION.match(region):
        raise ValueError(f"not a BigQuery region name: {region!r}")
    views = f"`region-{region}`.INFORMATION_SCHEMA"
    return CatalogSql(
        dialect="bigquery",
        schemas=_load("bigquery", "schemas").replace("{views}", views),
        relations=_load("bigquery", "relations").replace("{views}", views),
        last_altered_means="TABLE_STORAGE.STORAGE_LAST_MODIFIED_TIME",
    )


# Redshift: svv_tables lists every relation (views too) from the leader node; svv_table_info
# has statistics for non-empty tables only (size in 1 MB blocks) from the compute nodes. The two
# cannot be joined, and LISTAGG is refused on leader-node views, hence three statements.
REDSHIFT = CatalogSql(
    dialect="redshift",
    schemas=_load("redshift", "schemas"),
    relations=_load("redshift", "relations"),
    columns=_load("redshift", "columns"),
    stats=_load("redshift", "stats"),
    last_altered_means="not recorded in Redshift's catalog views",
    # Per session: Redshift has no SET LOCAL. query_group labels the statements in
    # SYS_QUERY_HISTORY / STL_QUERY (query_label); statement_timeout is in milliseconds. The
    # statements name svv_* unqualified (so tests can shim them): the search path is pinned to
    # the system catalog, where Redshift keeps them, so a user's or a user default's search
    # path (ALTER USER … SET search_path) cannot put a schema with its own svv_tables, or its
    # own functions and operators, in front.
    session=(
        f"SET query_group TO '{QUERY_TAG}'",
        "SET statement_timeout TO {timeout_ms}",
        SEARCH_PATH,
    ),
)

CATALOG_SQL: Mapping[str, CatalogSql] = {
    "postgres": POSTGRES,
    "duckdb": DUCKDB,
    "sqlite": SQLITE,
    "snowflake": SNOWFLAKE,
    "bigquery": bigquery(),
    "redshift": REDSHIFT,
}

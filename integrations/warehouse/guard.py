"""The SQL guard: one SELECT over a dialect's catalog, or nothing.

Every statement the warehouse connector sends passes `SqlGuard.check` first. The guard parses it
with sqlglot in the warehouse's dialect and refuses, with `SqlRefused` naming the reason:

- anything but a single ``SELECT`` (``WITH … SELECT`` and ``UNION``/``INTERSECT``/``EXCEPT`` of
  selects included): DDL, DML, ``COPY``, ``CALL``, ``SET``, ``PRAGMA``, ``ATTACH``, ``EXPORT`` …,
  also when nested in a CTE (PostgreSQL's ``WITH d AS (DELETE … RETURNING *) SELECT …``);
- a second statement or a ``;`` at all, and comments (they are how ``SELECT 1; --`` and
  ``/* */;DROP`` tricks hide the rest of a line from a reader);
- ``SELECT … INTO`` and locking clauses (``FOR UPDATE`` / ``FOR SHARE``);
- a relation outside the dialect's catalog (`CatalogPolicy`): ``information_schema``,
  ``pg_catalog``, ``duckdb_*()`` table functions, ``sqlite_master`` with ``pragma_table_info()``,
  Snowflake/BigQuery ``INFORMATION_SCHEMA``, Redshift ``svv_*`` views — minus catalog relations
  that hold data rather than metadata (password hashes, statistics samples, other sessions' query
  text, stored secrets);
- any function not on the allow-list: functions sqlglot models must be one of `SAFE_FUNCTIONS`
  (aggregates, window, string, date, math, JSON and array built-ins, whatever the dialect calls
  them), others must be listed in the dialect's policy as pure built-ins; functions known to have
  side effects or to read outside the database (``pg_terminate_backend``, ``set_config``,
  ``lo_import``, ``dblink``, ``pg_read_file``, ``read_csv``, ``glob``, …) are named as such;
- a type outside the system catalog, in ``CAST(… AS t)``, ``…::t`` or anywhere else (sqlglot
  reads an unknown or schema-qualified type as user-defined): a cast to a user's type runs that
  type's input or cast function, which can do anything — write rows through ``dblink`` included;
- ``OPERATOR(schema.op)`` outside ``pg_catalog``: a user's operator runs a user's function;
- text sqlglot cannot parse.

A statement that passes gets a row cap: a ``LIMIT`` is added when missing and lowered when larger
than the cap. The statement that runs is the *checked tree* rendered back to SQL, not the input
text, so what was inspected is exactly what executes::

    guard = SqlGuard("postgresql", row_cap=500)
    guarded = guard.check("SELECT relname FROM pg_catalog.pg_class")
    guarded.sql  # 'SELECT relname FROM pg_catalog.pg_class LIMIT 500'

Named parameters (``:name``) are kept as ``:name`` for SQLAlchemy's ``text()`` to bind.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

import sqlglot
from sqlglot import Token, TokenType, exp
from sqlglot.dialects.dialect import Dialect
from sqlglot.errors import ParseError, TokenError

from integrations.errors import SqlRefused

SYSTEM = "warehouse"
# Accepted statements remembered per guard (the catalog has a handful).
ACCEPTED_CACHE = 256
MAX_SQL_CHARS = 20_000

# SQLAlchemy backend names and sqlglot names both work; sqlglot's are what the parser wants.
SQLGLOT_DIALECTS: Mapping[str, str] = {
    "postgresql": "postgres",
    "postgres": "postgres",
    "duckdb": "duckdb",
    "sqlite": "sqlite",
    "snowflake": "snowflake",
    "bigquery": "bigquery",
    "redshift": "redshift",
}


@dataclass(frozen=True, kw_only=True)
class CatalogPolicy:
    """What counts as "the catalog" in one dialect. Names are written in lower case.

    `schemas` maps a catalog schema to the relations allowed in it (``None``: all but `denied`).
    `bare_relations` may be named without a schema (SQLite has no schema for ``sqlite_master``;
    Redshift documents its ``svv_*`` views unqualified). `functions` lists the functions sqlglot
    does not model that are pure catalog reads; functions sqlglot models (``COUNT``, ``CAST``,
    ``ARRAY_AGG`` …) are allowed unless listed in `denied`.
    """

    schemas: Mapping[str, frozenset[str] | None] = field(default_factory=dict)
    bare_relations: frozenset[str] = frozenset()
    # SQLite's "schema" is the attached database name, so main.sqlite_master is the same catalog.
    bare_relations_any_schema: bool = False
    table_functions: frozenset[str] = frozenset()
    functions: frozenset[str] = frozenset()
    # A qualified function name must use one of these schemas (public.format_type could be a
    # user's function with side effects shadowing the built-in).
    function_schemas: frozenset[str] = frozenset()
    denied: Mapping[str, str] = field(default_factory=dict)


_PG_SIDE_EFFECTS: Mapping[str, str] = {
    "pg_terminate_backend": "terminates another session",
    "pg_cancel_backend": "cancels another session's query",
    "pg_reload_conf": "reloads the server configuration",
    "pg_rotate_logfile": "rotates the server log",
    "pg_switch_wal": "forces a WAL switch",
    "pg_create_restore_point": "writes a WAL record",
    "pg_promote": "promotes a standby",
    "pg_logical_emit_message": "writes a WAL record",
    "pg_notify": "sends a notification",
    "pg_advisory_lock": "takes a lock",
    "pg_advisory_xact_lock": "takes a lock",
    "pg_try_advisory_lock": "takes a lock",
    "pg_advisory_lock_shared": "takes a lock",
    "set_config": "changes a setting",
    "current_setting": "can read secrets in custom settings (e.g. app.jwt_secret)",
    "nextval": "advances a sequence",
    "setval": "changes a sequence",
    "txid_current": "assigns a transaction id",
    "pg_current_xact_id": "assigns a transaction id",
    "lo_import": "reads a server file into the database",
    "lo_export": "writes a server file",
    "lo_create": "creates a large object",
    "lo_unlink": "deletes a large object",
    "lo_from_bytea": "creates a large object",
    "lo_put": "writes a large object",
    "lo_get": "reads large-object data",
    "dblink": "runs SQL on another server",
    "dblink_exec": "runs SQL on another server",
    "dblink_connect": "opens a connection to another server",
    "pg_read_file": "reads a server file",
    "pg_read_binary_file": "reads a server file",
    "pg_ls_dir": "lists a server directory",
    "pg_stat_file": "inspects a server file",
    "pg_file_write": "writes a server file",
    "pg_sleep": "holds the connection without reading the catalog",
    "pg_sleep_for": "holds the connection without reading the catalog",
    "pg_sleep_until": "holds the connection without reading the catalog",
    "query_to_xml": "runs the SQL text it is given",
    "query_to_xml_and_xmlschema": "runs the SQL text it is given",
    "cursor_to_xml": "reads from a cursor",
    "table_to_xml": "reads table data",
    "table_to_xml_and_xmlschema": "reads table data",
    "schema_to_xml": "reads table data",
    "database_to_xml": "reads table data",
}

_PG_DATA_RELATIONS: Mapping[str, str] = {
    "pg_authid": "holds password hashes",
    "pg_shadow": "holds password hashes",
    "pg_user_mapping": "holds credentials of foreign servers",
    "pg_user_mappings": "holds credentials of foreign servers",
    "user_mapping_options": "holds credentials of foreign servers",
    "pg_statistic": "holds samples of table data",
    "pg_stats": "holds samples of table data",
    "pg_statistic_ext_data": "holds samples of table data",
    "pg_stats_ext": "holds samples of table data",
    "pg_stats_ext_exprs": "holds samples of table data",
    "pg_largeobject": "holds large-object data",
    "pg_stat_activity": "shows other sessions' query text",
    "pg_file_settings": "shows server configuration files",
    "pg_settings": "can hold secrets in custom settings (e.g. app.jwt_secret)",
    "pg_db_role_setting": "can hold secrets in per-role or per-database settings",
    "pg_hba_file_rules": "shows server authentication rules",
    "pg_ident_file_mappings": "shows server authentication rules",
}

_DUCKDB_FILE_READERS: Mapping[str, str] = dict.fromkeys(
    (
        "read_csv",
        "read_csv_auto",
        "read_parquet",
        "parquet_scan",
        "parquet_metadata",
        "parquet_schema",
        "read_json",
        "read_json_auto",
        "read_json_objects",
        "read_ndjson",
        "read_ndjson_auto",
        "read_text",
        "read_blob",
        "sniff_csv",
        "iceberg_scan",
        "delta_scan",
        "sqlite_scan",
        "postgres_scan",
        "mysql_scan",
    ),
    "reads files or URLs (httpfs) outside the database",
) | {
    "glob": "lists files outside the database",
    "query": "runs the SQL text it is given",
    "query_table": "reads a table named by a string",
    "getenv": "reads the process environment",
    "duckdb_secrets": "holds stored credentials",
    "duckdb_settings": "can hold credentials (s3_secret_access_key …)",
    "which_secret": "reveals stored credentials",
}

_SQLITE_SIDE_EFFECTS: Mapping[str, str] = {
    "load_extension": "loads native code",
    "readfile": "reads a file",
    "writefile": "writes a file",
    "edit": "starts an editor",
    "fts3_tokenizer": "registers native code",
}

_PG_FUNCTIONS = frozenset(
    {
        "format_type",
        "pg_total_relation_size",
        "pg_relation_size",
        "pg_table_size",
        "pg_indexes_size",
        "has_schema_privilege",
        "has_table_privilege",
        "pg_stat_get_live_tuples",
        "pg_stat_get_last_autoanalyze_time",
        "obj_description",
        "col_description",
        "pg_get_userbyid",
        "pg_get_viewdef",
        "current_database",
        "current_schema",
        "json_build_object",
        "json_build_array",
        "jsonb_build_object",
        "jsonb_build_array",
        "to_regclass",
        "quote_ident",
        "version",
        # privileges of the login itself (integrations.warehouse.privileges)
        "has_database_privilege",
        "has_function_privilege",
        "has_column_privilege",
        "has_sequence_privilege",
        "pg_has_role",
        "has_foreign_data_wrapper_privilege",
        "has_server_privilege",
        # more of the catalog's own accessors
        "pg_get_expr",
        "pg_get_constraintdef",
        "pg_get_indexdef",
        "pg_table_is_visible",
        "pg_size_pretty",
        "pg_stat_get_dead_tuples",
        "pg_stat_get_last_analyze_time",
        "pg_stat_get_last_vacuum_time",
        "pg_stat_get_last_autovacuum_time",
        # pure built-ins sqlglot does not model
        "age",
        "date_part",
        "octet_length",
        "char_length",
        "json_agg",
        "jsonb_agg",
        "json_object_agg",
        "jsonb_object_agg",
        "regexp_matches",
        "array_length",
    }
)

_DUCKDB_CATALOG = frozenset(
    {
        "duckdb_databases",
        "duckdb_schemas",
        "duckdb_tables",
        "duckdb_views",
        "duckdb_columns",
        "duckdb_constraints",
        "duckdb_indexes",
        "duckdb_sequences",
        "duckdb_types",
        "duckdb_dependencies",
        "pragma_table_info",
    }
)

_SQLITE_CATALOG = frozenset(
    {
        "pragma_table_info",
        "pragma_table_xinfo",
        "pragma_table_list",
        "pragma_index_list",
        "pragma_index_info",
        "pragma_foreign_key_list",
        "pragma_database_list",
    }
)

_REDSHIFT_CATALOG = frozenset(
    {
        "svv_tables",
        "svv_table_info",
        "svv_columns",
        "svv_all_tables",
        "svv_all_columns",
        "svv_all_schemas",
        "svv_external_tables",
        "svv_external_columns",
        "svv_external_schemas",
        "pg_table_def",
        "pg_namespace",
        "pg_class",
        "pg_attribute",
        "pg_type",
        "pg_description",
        "pg_views",
        "pg_tables",
    }
)

_BIGQUERY_METADATA = frozenset(
    {
        "schemata",
        "schemata_options",
        "tables",
        "table_options",
        "table_storage",
        "columns",
        "column_field_paths",
        "views",
        "materialized_views",
        "partitions",
    }
)

POLICIES: Mapping[str, CatalogPolicy] = {
    "postgres": CatalogPolicy(
        schemas={"information_schema": None, "pg_catalog": None},
        functions=_PG_FUNCTIONS,
        function_schemas=frozenset({"pg_catalog"}),
        denied={**_PG_SIDE_EFFECTS, **_PG_DATA_RELATIONS},
    ),
    "duckdb": CatalogPolicy(
        schemas={"information_schema": None, "pg_catalog": None},
        table_functions=_DUCKDB_CATALOG,
        functions=frozenset(
            {
                "current_database",
                "current_schema",
                "list",
                "struct_pack",
                "epoch",
                "epoch_ms",
                "strftime",
                "len",
                "now",
            }
        ),
        denied=_DUCKDB_FILE_READERS,
    ),
    "sqlite": CatalogPolicy(
        bare_relations=frozenset(
            {"sqlite_master", "sqlite_schema", "sqlite_temp_master", "sqlite_temp_schema"}
        ),
        bare_relations_any_schema=True,
        table_functions=_SQLITE_CATALOG,
        functions=frozenset(
            {
                "json_array",
                "json_group_object",
                "sqlite_version",
                "julianday",
                "datetime",
                "date",
                "time",
                "strftime",
                "printf",
                "instr",
                "substr",
                "total",
            }
        ),
        denied=_SQLITE_SIDE_EFFECTS,
    ),
    "snowflake": CatalogPolicy(
        schemas={"information_schema": None},
        functions=frozenset(
            {
                "object_construct",
                "object_construct_keep_null",
                "listagg",
                "iff",
                "nvl",
                "zeroifnull",
                "to_varchar",
                "try_to_number",
                "to_timestamp_ltz",
                "to_timestamp_ntz",
                "sysdate",
                "div0",
                "array_size",
            }
        ),
        # INFORMATION_SCHEMA's table functions (QUERY_HISTORY() …) are not in table_functions,
        # so other sessions' query text stays out of reach.
    ),
    "bigquery": CatalogPolicy(
        # JOBS*, SESSIONS* … hold query text and results metadata of other users: not listed.
        schemas={"information_schema": _BIGQUERY_METADATA},
        functions=frozenset(
            {
                "format_timestamp",
                "timestamp_millis",
                "timestamp_seconds",
                "to_json_string",
                "json_value",
                "ifnull",
            }
        ),
    ),
    "redshift": CatalogPolicy(
        # STL/SVL/SYS views in pg_catalog hold query text (stl_querytext, sys_query_history …),
        # so pg_catalog is limited to metadata relations rather than open like on PostgreSQL.
        schemas={"information_schema": None, "pg_catalog": _REDSHIFT_CATALOG},
        bare_relations=_REDSHIFT_CATALOG,
        functions=frozenset(
            {
                "format_type",
                "has_schema_privilege",
                "has_table_privilege",
                "has_database_privilege",
                "pg_get_late_binding_view_cols",
                "getdate",
                "sysdate",
                "nvl",
                "charindex",
                "listagg",
            }
        ),
        function_schemas=frozenset({"pg_catalog"}),
        denied={
            "pg_user_info": "holds password hashes",
            "pg_shadow": "holds password hashes",
            "stl_querytext": "holds query text",
            "svl_statementtext": "holds query text",
            "sys_query_history": "holds query text",
        },
    ),
}

# Statement and clause types that never belong in a catalog read. getattr: sqlglot renames or
# adds classes between versions, and a missing class must not break the guard.
_FORBIDDEN_NODES: tuple[type[exp.Expr], ...] = tuple(
    cls
    for cls in (
        getattr(exp, name, None)
        for name in (
            "DML",
            "DDL",
            "Insert",
            "Update",
            "Delete",
            "Merge",
            "Copy",
            "Create",
            "Drop",
            "Alter",
            "AlterColumn",
            "TruncateTable",
            "Grant",
            "Revoke",
            "Command",
            "Set",
            "Pragma",
            "Attach",
            "Detach",
            "Export",
            "Install",
            "Use",
            "Transaction",
            "Commit",
            "Rollback",
            "Analyze",
            "Describe",
            "Show",
            "Comment",
            "Summarize",
            "Cache",
            "Uncache",
            "Refresh",
            "LoadData",
            "Kill",
            "Into",
            "Lock",
        )
    )
    if isinstance(cls, type)
)

# Functions sqlglot models that reach outside the database or change state.
_FORBIDDEN_FUNCTIONS: Mapping[str, str] = {
    "ReadCSV": "reads files or URLs outside the database",
    "ReadParquet": "reads files or URLs outside the database",
    "NextValueFor": "advances a sequence",
    "ToFile": "reads a staged file",
}

# The functions sqlglot models that may be called: pure built-ins, by sqlglot class name (one
# class covers a function's spellings across dialects, e.g. DATE_TRUNC/TIMESTAMP_TRUNC). Anything
# else sqlglot models is refused, so a new sqlglot class is refused until someone vouches for it.
SAFE_FUNCTIONS: frozenset[str] = frozenset(
    {
        # syntax that sqlglot models as functions
        "And", "Or", "Xor", "Cast", "TryCast", "Case", "If", "Coalesce", "Nullif", "Nvl2",
        "Exists", "Extract", "Array", "Struct", "Collate", "Unnest", "Explode", "Posexplode",
        "Flatten",
        # aggregates
        "Count", "CountIf", "Sum", "Avg", "Min", "Max", "ArrayAgg", "ArrayConcatAgg",
        "ArrayUniqueAgg", "GroupConcat", "JSONArrayAgg", "JSONObjectAgg", "JSONBObjectAgg",
        "ObjectAgg", "AnyValue", "ApproxDistinct", "ApproxQuantile", "LogicalAnd", "LogicalOr",
        "Median", "Mode", "PercentileCont", "PercentileDisc", "Quantile", "Stddev", "StddevPop",
        "StddevSamp", "Variance", "VariancePop", "Corr", "CovarPop", "CovarSamp", "ArgMax",
        "ArgMin", "First", "Last", "BitwiseAndAgg", "BitwiseOrAgg", "Grouping",
        # window
        "RowNumber", "Rank", "DenseRank", "PercentRank", "CumeDist", "Ntile", "Lag", "Lead",
        "FirstValue", "LastValue", "NthValue",
        # text
        "Lower", "Upper", "Length", "ByteLength", "BitLength", "Substring", "SubstringIndex",
        "Trim", "Concat", "ConcatWs", "Replace", "Translate", "StrPosition", "Left", "Right",
        "Pad", "Initcap", "Reverse", "Repeat", "Split", "SplitPart", "StartsWith", "EndsWith",
        "Contains", "RegexpLike", "RegexpILike", "RegexpExtract", "RegexpExtractAll",
        "RegexpReplace", "RegexpSplit", "RegexpCount", "RegexpSubstr", "Ascii", "Chr", "Format",
        "MD5", "SHA", "SHA2", "Levenshtein", "Hex", "Unhex", "ToChar", "ToBase64", "FromBase64",
        "Normalize", "Unicode", "ArrayToString", "StringToArray", "Stuff", "String",
        # dates and times
        "CurrentDate", "CurrentTime", "CurrentTimestamp", "CurrentTimestampLTZ",
        "CurrentDatetime", "Localtime", "Localtimestamp", "Systimestamp", "UtcDate", "UtcTime",
        "UtcTimestamp", "Date", "Datetime", "Timestamp", "Time", "DateAdd", "DateSub",
        "DateDiff", "DateTrunc", "DatetimeAdd", "DatetimeSub", "DatetimeDiff", "DatetimeTrunc",
        "TimestampAdd", "TimestampSub", "TimestampDiff", "TimestampTrunc", "TimeAdd", "TimeSub",
        "TimeDiff", "TimeTrunc", "TsOrDsAdd", "TsOrDsDiff", "TsOrDsToDate", "TsOrDsToTimestamp",
        "TsOrDsToDatetime", "TsOrDsToTime", "TsOrDsToDateStr", "StrToDate", "StrToTime",
        "StrToUnix", "TimeToStr", "TimeStrToTime", "TimeStrToDate", "TimeStrToUnix",
        "TimeToTimeStr", "TimeToUnix", "UnixToTime", "UnixToStr", "UnixToTimeStr",
        "UnixSeconds", "UnixMillis", "UnixMicros", "UnixDate", "DateFromParts",
        "TimestampFromParts", "LastDay", "AddMonths", "MonthsBetween", "Year", "Quarter",
        "Month", "Week", "WeekOfYear", "Day", "DayOfMonth", "DayOfWeek", "DayOfWeekIso",
        "DayOfYear", "Hour", "Minute", "Second", "Dayname", "Monthname", "ConvertTimezone",
        "MakeInterval", "JustifyDays", "JustifyHours", "JustifyInterval", "DateBin",
        "DateStrToDate", "DateToDateStr",
        # numbers
        "Abs", "Round", "Ceil", "Floor", "Trunc", "Sign", "Sqrt", "Cbrt", "Pow", "Exp", "Ln",
        "Log", "Greatest", "Least", "Pi", "Degrees", "Radians", "SafeDivide", "SafeAdd",
        "SafeSubtract", "SafeMultiply", "WidthBucket", "ToNumber", "ToDouble", "ToBoolean",
        "Typeof", "IsNan", "IsInf",
        # JSON, arrays, structs
        "JSONExtract", "JSONExtractScalar", "JSONExtractArray", "JSONBExtract",
        "JSONBExtractScalar", "JSONBContains", "JSONObject", "JSONArray", "JSONFormat",
        "JSONKeys", "JSONType", "ParseJSON", "CheckJson", "ArraySize", "ArrayContains",
        "ArrayContainsAll", "ArrayOverlaps", "ArrayConcat", "ArraySlice", "ArrayDistinct",
        "ArrayPosition", "ArraySort", "ArrayFirst", "ArrayLast", "ArrayMax", "ArrayMin",
        "ArrayAppend", "ArrayPrepend", "ArrayFilter", "Transform", "StructExtract", "MapKeys",
        "ToArray",
        # who and where
        "CurrentUser", "SessionUser", "CurrentRole", "CurrentSchema", "CurrentSchemas",
        "CurrentDatabase", "CurrentCatalog", "CurrentAccount", "CurrentWarehouse",
        "CurrentRegion", "CurrentVersion", "CurrentSecondaryRoles",
    }
)  # fmt: skip

# OPERATOR(schema.op) may name only the system catalog's operators.
_OPERATOR_SCHEMAS = frozenset({"pg_catalog"})

_WHAT: Mapping[str, str] = {
    "Insert": "INSERT writes rows",
    "Update": "UPDATE writes rows",
    "Delete": "DELETE removes rows",
    "Merge": "MERGE writes rows",
    "Copy": "COPY moves data in or out",
    "Create": "CREATE changes the schema",
    "Drop": "DROP removes objects",
    "Alter": "ALTER changes the schema",
    "TruncateTable": "TRUNCATE removes rows",
    "Grant": "GRANT changes privileges",
    "Revoke": "REVOKE changes privileges",
    "Set": "SET changes settings",
    "Pragma": "PRAGMA can change the database",
    "Attach": "ATTACH opens another database",
    "Into": "SELECT … INTO creates a table",
    "Lock": "FOR UPDATE / FOR SHARE takes row locks",
    "Command": "this statement is not a SELECT",
}

_PARAMETER_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*\Z")
_FIRST_TOKENS = frozenset({TokenType.SELECT, TokenType.WITH, TokenType.L_PAREN})


@dataclass(frozen=True, kw_only=True)
class GuardedSql:
    """A statement that passed the guard, ready to bind and run."""

    sql: str  # the checked tree rendered in the dialect, row cap applied, ``:name`` parameters
    dialect: str  # sqlglot dialect name
    limit: int
    relations: tuple[str, ...]  # catalog relations and table functions it reads, for audit
    parameters: tuple[str, ...]  # names of the ``:name`` parameters it expects


class SqlGuard:
    """Checks SQL against one dialect's `CatalogPolicy` and caps the rows it may return."""

    def __init__(self, dialect: str, *, row_cap: int, policy: CatalogPolicy | None = None) -> None:
        """`policy` replaces the dialect's catalog policy (the usage views of
        `integrations.warehouse.usage` are read through their own)."""
        name = SQLGLOT_DIALECTS.get(dialect.lower())
        if name is None and policy is not None and dialect.lower() == "databricks":
            name = "databricks"  # only its usage views are read with SQL (no catalog policy)
        if name is None:
            known = ", ".join(sorted(set(SQLGLOT_DIALECTS) - {"postgres"}))
            raise ValueError(f"no SQL guard policy for dialect {dialect!r} (known: {known})")
        if row_cap < 1:
            raise ValueError("row_cap must be at least 1")
        self.dialect = name
        self.row_cap = row_cap
        self.policy = policy or POLICIES[name]
        self._dialect = Dialect.get_or_raise(name)
        self._schemas = {self._norm(s): rels for s, rels in self.policy.schemas.items()}
        self._bare = {self._norm(r) for r in self.policy.bare_relations}
        self._table_functions = {f.lower() for f in self.policy.table_functions}
        self._functions = {f.lower() for f in self.policy.functions} | self._table_functions
        self._function_schemas = {self._norm(s) for s in self.policy.function_schemas}
        self._denied = {self._norm(k): v for k, v in self.policy.denied.items()} | {
            k.lower(): v for k, v in self.policy.denied.items()
        }
        self._accepted: dict[tuple[str, int], GuardedSql] = {}
        self._lock = threading.Lock()

    def check(self, sql: str, *, row_cap: int | None = None) -> GuardedSql:
        """Return the statement to run, or raise `SqlRefused` saying why not.

        Accepted statements are remembered: the catalog runs the same few statements over
        and over, and parsing one costs more than a small catalog query (refusals are not
        cached, so a bad statement is always examined and explained).
        """
        cap = self.row_cap if row_cap is None else row_cap
        if cap < 1:
            raise ValueError("row_cap must be at least 1")
        if isinstance(sql, str):
            with self._lock:
                known = self._accepted.get((sql, cap))
            if known is not None:
                return known
        guarded = self._examine(sql, cap)
        with self._lock:
            if len(self._accepted) >= ACCEPTED_CACHE:
                self._accepted.clear()
            self._accepted[(sql, cap)] = guarded
        return guarded

    def _examine(self, sql: str, cap: int) -> GuardedSql:
        if not isinstance(sql, str) or not sql.strip():
            raise self._refuse("empty statement")
        if len(sql) > MAX_SQL_CHARS:
            raise self._refuse(f"statement longer than {MAX_SQL_CHARS:,} characters")
        self._check_tokens(sql)
        root = self._parse(sql)
        relations = self._check_tree(root)
        self._apply_cap(root, cap)
        parameters = self._bind_names(root)
        return GuardedSql(
            sql=root.sql(dialect=self.dialect),
            dialect=self.dialect,
            limit=self._limit_of(root) or cap,
            relations=tuple(dict.fromkeys(relations)),
            parameters=tuple(dict.fromkeys(parameters)),
        )

    # --- lexical checks ----------------------------------------------------------------

    def _check_tokens(self, sql: str) -> None:
        try:
            tokens: list[Token] = self._dialect.tokenize(sql)
        except (TokenError, ValueError) as exc:
            raise self._refuse(
                f"cannot tokenize as {self.dialect} SQL: {_first_line(exc)}"
            ) from None
        if not tokens:
            raise self._refuse("empty statement")
        for token in tokens:
            if token.comments:
                raise self._refuse(
                    "comments are not allowed (they can hide the rest of a statement)"
                )
            if token.token_type is TokenType.SEMICOLON:
                raise self._refuse("only one statement is allowed, without ';'")
        first = tokens[0]
        if first.token_type not in _FIRST_TOKENS:
            raise self._refuse(f"only SELECT statements are allowed, not {first.text.upper()}")

    # --- parse and structure -----------------------------------------------------------

    def _parse(self, sql: str) -> exp.Query:
        try:
            statements = sqlglot.parse(sql, read=self.dialect)
        except (ParseError, TokenError) as exc:
            raise self._refuse(f"cannot parse as {self.dialect} SQL: {_first_line(exc)}") from None
        found = [s for s in statements if s is not None]
        if len(found) != 1:
            raise self._refuse("only one statement is allowed")
        root: exp.Expr = found[0]
        inner = root
        while isinstance(inner, exp.Subquery):
            inner = inner.this
        if not isinstance(inner, (exp.Select, exp.SetOperation)):
            kind = type(inner).__name__
            raise self._refuse(f"only SELECT statements are allowed, not {_WHAT.get(kind, kind)}")
        # The outermost node is what gets checked, capped and rendered: unwrapping the
        # parentheses would drop their ORDER BY / LIMIT (and, with them, a WITH's scope).
        if not isinstance(root, exp.Query):
            raise self._refuse("only SELECT statements are allowed")
        return root

    def _check_tree(self, root: exp.Query) -> list[str]:
        relations: list[str] = []
        for node in root.walk():
            if isinstance(node, _FORBIDDEN_NODES):
                kind = type(node).__name__
                raise self._refuse(_WHAT.get(kind, f"{kind} is not a read"))
            if isinstance(node, exp.Select) and node.args.get("locks"):
                raise self._refuse(_WHAT["Lock"])
            if isinstance(node, exp.Select) and not node.expressions:
                raise self._refuse("SELECT names no columns")
            if isinstance(node, exp.Placeholder) and not _PARAMETER_NAME.match(node.name):
                raise self._refuse("only named parameters (:name) are allowed")
            if isinstance(node, exp.Parameter):
                raise self._refuse("only named parameters (:name) are allowed")
            if isinstance(node, exp.Func):
                self._check_function(node)
            if isinstance(node, exp.DataType):
                self._check_type(node)
            if isinstance(node, exp.Operator):
                self._check_operator(node)
            if isinstance(node, exp.Table):
                relations.append(self._check_table(node))
        return [r for r in relations if r]

    def _check_function(self, func: exp.Func) -> None:
        kind = type(func).__name__
        if kind in _FORBIDDEN_FUNCTIONS:
            name = func.sql_name().lower() if not isinstance(func, exp.Anonymous) else func.name
            raise self._refuse(f"function {name}() {_FORBIDDEN_FUNCTIONS[kind]}")
        parent = func.parent
        if isinstance(parent, exp.Dot) and parent.expression is func:
            qualifier = self._norm_node(parent.this)
            if qualifier not in self._function_schemas:
                raise self._refuse(
                    f"function {parent.this.sql(self.dialect)}.{_func_name(func)}() is outside "
                    "the catalog; only built-in catalog functions may be called"
                )
        if not isinstance(func, exp.Anonymous | exp.AnonymousAggFunc):
            if kind not in SAFE_FUNCTIONS:
                raise self._refuse(
                    f"function {self._shown_name(func)}() is not on the allow-list of "
                    "built-in functions"
                )
            return
        name = func.name.lower()
        if name in self._denied:
            raise self._refuse(f"function {name}() {self._denied[name]}")
        if name not in self._functions:
            raise self._refuse(f"function {name}() is not an allowed catalog function")

    def _check_type(self, node: exp.DataType) -> None:
        # sqlglot knows the system types of every dialect; anything else — public.sometype, a
        # domain, an enum, an unknown bare name — is a user's type, whose input and cast
        # functions are a user's code.
        if node.this is exp.DataType.Type.USERDEFINED:
            shown = str(node.args.get("kind") or node.sql(self.dialect))
            raise self._refuse(
                f"type {shown} is outside the system catalog (a cast to a user-defined type "
                "runs a user-defined function)"
            )

    def _check_operator(self, node: exp.Operator) -> None:
        operator = str(node.args.get("operator") or "")
        schema, _, _ = operator.rpartition(".")
        if self._norm(schema.strip()) not in _OPERATOR_SCHEMAS:
            raise self._refuse(
                f"OPERATOR({operator}) is outside the system catalog (a user-defined operator "
                "runs a user-defined function)"
            )

    def _shown_name(self, func: exp.Func) -> str:
        # The name as the dialect spells it (DATE_TRUNC, not sqlglot's TimestampTrunc).
        match = re.match(r"[A-Za-z_][\w$]*", func.sql(self.dialect))
        return match.group(0).lower() if match else _func_name(func)

    def _check_table(self, table: exp.Table) -> str:
        if isinstance(table.this, exp.Func):
            name = _func_name(table.this).lower()
            if name in self._denied:
                raise self._refuse(f"{name}() {self._denied[name]}")
            if name not in self._table_functions:
                raise self._refuse(f"table function {name}() is not a catalog table function")
            return f"{name}()"
        parts = self._parts(table)
        if not parts:
            raise self._refuse("cannot tell which relation a FROM clause reads")
        shown = ".".join(parts)
        name = parts[-1]
        if len(parts) == 1 and name in _visible_ctes(table, self._norm):
            return ""
        if name in self._denied:
            raise self._refuse(f"{shown} {self._denied[name]}")
        if name in self._bare and (len(parts) == 1 or self.policy.bare_relations_any_schema):
            return shown
        if len(parts) == 1:
            if self.dialect == "postgres" and name.startswith("pg_"):
                # pg_catalog is searched first only by default; a search_path that lists it
                # later lets a user's public.pg_class shadow the catalog, so insist on the schema.
                raise self._refuse(f"{shown} must be schema-qualified: pg_catalog.{shown}")
            raise self._refuse(f"{shown} is not a catalog relation{self._hint_schemas()}")
        allowed = self._schemas.get(parts[-2], ...)
        if allowed is ...:
            raise self._refuse(f"{shown} is outside the catalog{self._hint_schemas()}")
        if allowed is not None and name not in {self._norm(r) for r in allowed}:
            raise self._refuse(f"{shown} is not a catalog metadata relation")
        return shown

    def _parts(self, table: exp.Table) -> list[str]:
        parts: list[str] = []
        for key in ("catalog", "db", "this"):
            ident = table.args.get(key)
            if ident is None:
                continue
            if not isinstance(ident, exp.Identifier):
                raise self._refuse(f"unsupported relation reference {table.sql(self.dialect)}")
            # BigQuery keeps `proj.ds.INFORMATION_SCHEMA.TABLES` as one quoted identifier.
            texts = ident.name.split(".") if self.dialect == "bigquery" else [ident.name]
            parts.extend(self._norm(t, quoted=ident.quoted) for t in texts)
        return parts

    # --- row cap and parameters --------------------------------------------------------

    def _apply_cap(self, root: exp.Query, cap: int) -> None:
        current = root.args.get("limit")
        if current is not None:
            count = current.args.get("count") if isinstance(current, exp.Fetch) else None
            value = count if isinstance(current, exp.Fetch) else current.args.get("expression")
            if not (isinstance(value, exp.Literal) and value.is_int):
                raise self._refuse("LIMIT must be a plain number")
            if int(value.name) <= cap:
                return
        root.set("limit", exp.Limit(expression=exp.Literal.number(cap)))

    def _limit_of(self, root: exp.Query) -> int | None:
        current = root.args.get("limit")
        if isinstance(current, exp.Limit):
            value = current.args.get("expression")
        elif isinstance(current, exp.Fetch):
            value = current.args.get("count")
        else:
            return None
        return int(value.name) if isinstance(value, exp.Literal) and value.is_int else None

    @staticmethod
    def _bind_names(root: exp.Query) -> list[str]:
        # Each dialect renders placeholders its own way (%(x)s, $x, @x); SQLAlchemy's text()
        # wants :x whatever the driver, so render them verbatim.
        names: list[str] = []
        for placeholder in list(root.find_all(exp.Placeholder)):
            names.append(placeholder.name)
            placeholder.replace(exp.var(f":{placeholder.name}"))
        return names

    # --- helpers -----------------------------------------------------------------------

    def _norm(self, name: str, *, quoted: bool = False) -> str:
        # The dialect's own rule: PostgreSQL folds unquoted names to lower case and keeps quoted
        # ones, Snowflake folds to upper case, DuckDB/SQLite/BigQuery ignore case. So
        # "PG_CATALOG" (quoted) on PostgreSQL is a user schema, not the catalog.
        ident = exp.to_identifier(name, quoted=quoted)
        return str(self._dialect.normalize_identifier(ident).name)

    def _norm_node(self, node: exp.Expr) -> str:
        if isinstance(node, (exp.Identifier, exp.Column, exp.Var)):
            ident = node if isinstance(node, exp.Identifier) else node.this
            if isinstance(ident, exp.Identifier):
                return self._norm(ident.name, quoted=bool(ident.quoted))
            return self._norm(node.name)
        return node.sql(self.dialect)

    def _hint_schemas(self) -> str:
        names = sorted(self.policy.schemas) + sorted(self.policy.bare_relations)
        names += [f"{f}()" for f in sorted(self.policy.table_functions)][:4]
        return f" (allowed: {', '.join(names)})" if names else ""

    def _refuse(self, reason: str) -> SqlRefused:
        return SqlRefused(SYSTEM, f"SQL refused: {reason}")


def _func_name(func: exp.Expr) -> str:
    if isinstance(func, exp.Anonymous):
        return str(func.name)
    if isinstance(func, exp.Func):
        return func.sql_name().lower()
    return func.sql()


def _visible_ctes(table: exp.Table, norm: Callable[[str], str]) -> set[str]:
    """CTE names that `table` may refer to, following SQL's scoping.

    A CTE is visible in its query's body and in *later* CTEs of the same WITH (all of them under
    RECURSIVE). Anything else with that name is a real relation, so it must not be let through
    as "just a CTE" — ``WITH a AS (SELECT * FROM b), b AS (…)`` reads the table ``b``.
    """
    visible: set[str] = set()
    child: exp.Expr = table
    parent = table.parent
    while parent is not None:
        if isinstance(parent, exp.With):
            ctes = list(parent.expressions)
            index = next((i for i, cte in enumerate(ctes) if cte is child), len(ctes))
            shown = ctes if parent.args.get("recursive") else ctes[:index]
            visible.update(norm(cte.alias) for cte in shown)
        elif isinstance(parent, exp.Query) and child is not parent.args.get("with_"):
            with_ = parent.args.get("with_")
            if isinstance(with_, exp.With):
                visible.update(norm(cte.alias) for cte in with_.expressions)
        child, parent = parent, parent.parent
    return visible


def _first_line(exc: Exception) -> str:
    text = str(exc).strip().splitlines()
    return text[0][:200] if text else exc.__class__.__name__

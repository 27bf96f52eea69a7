"""The SQL guard: examples per rule, then properties checked with hypothesis."""

from __future__ import annotations

import re

import pytest
import sqlglot
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bot.errors import ReadOnlyViolation
from integrations.errors import SqlRefused
from integrations.warehouse.guard import SqlGuard

DIALECTS = ("postgresql", "duckdb", "sqlite", "snowflake", "bigquery", "redshift")

# A catalog read every dialect's policy accepts.
CATALOG_READ = {
    "postgresql": "SELECT relname FROM pg_catalog.pg_class",
    "duckdb": "SELECT table_name FROM duckdb_tables()",
    "sqlite": "SELECT name FROM sqlite_master",
    "snowflake": "SELECT table_name FROM information_schema.tables",
    "bigquery": "SELECT table_name FROM `region-us`.INFORMATION_SCHEMA.TABLES",
    "redshift": "SELECT table_name FROM svv_tables",
}


def refused(dialect: str, sql: str) -> str:
    with pytest.raises(SqlRefused) as caught:
        SqlGuard(dialect, row_cap=100).check(sql)
    return caught.value.reason


# --- accepted --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("dialect", "sql"),
    [
        ("postgresql", "SELECT relname FROM pg_catalog.pg_class"),
        ("postgresql", "select table_name from INFORMATION_SCHEMA.tables where table_schema = 'x'"),
        (
            "postgresql",
            "WITH t AS (SELECT oid, relname FROM pg_catalog.pg_class) "
            "SELECT t.relname, n.nspname FROM t JOIN pg_catalog.pg_namespace n ON true",
        ),
        (
            "postgresql",
            "SELECT relname FROM pg_catalog.pg_class UNION ALL "
            "SELECT table_name FROM information_schema.views",
        ),
        (
            "postgresql",
            "SELECT pg_catalog.format_type(a.atttypid, a.atttypmod) "
            "FROM pg_catalog.pg_attribute AS a",
        ),
        ("postgresql", "(SELECT 1)"),
        ("duckdb", "SELECT * FROM duckdb_columns() c JOIN duckdb_tables() t USING (table_name)"),
        ("duckdb", "SELECT * FROM information_schema.columns"),
        ("sqlite", "SELECT m.name, p.name FROM sqlite_master m JOIN pragma_table_info(m.name) p"),
        ("sqlite", "SELECT name FROM main.sqlite_master"),
        ("snowflake", "SELECT * FROM analytics.INFORMATION_SCHEMA.COLUMNS"),
        ("bigquery", "SELECT * FROM `proj.ds.INFORMATION_SCHEMA.COLUMNS`"),
        ("bigquery", "SELECT * FROM ds.INFORMATION_SCHEMA.TABLE_STORAGE"),
        ("redshift", "SELECT * FROM svv_table_info JOIN pg_catalog.pg_class ON true"),
    ],
)
def test_catalog_reads_are_accepted(dialect: str, sql: str) -> None:
    guarded = SqlGuard(dialect, row_cap=100).check(sql)
    assert guarded.sql.endswith("LIMIT 100")
    # What runs passes the guard again and reads the same relations.
    again = SqlGuard(dialect, row_cap=100).check(guarded.sql)
    assert again.relations == guarded.relations


def test_relations_read_are_reported_without_ctes() -> None:
    guarded = SqlGuard("postgresql", row_cap=5).check(
        "WITH t AS (SELECT oid FROM pg_catalog.pg_class) SELECT * FROM t "
        "JOIN information_schema.tables ON true"
    )
    assert set(guarded.relations) == {"pg_catalog.pg_class", "information_schema.tables"}


# --- row cap ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("sql", "expected"),
    [
        ("SELECT relname FROM pg_catalog.pg_class", "LIMIT 50"),
        ("SELECT relname FROM pg_catalog.pg_class LIMIT 10", "LIMIT 10"),
        ("SELECT relname FROM pg_catalog.pg_class LIMIT 5000", "LIMIT 50"),
        ("SELECT relname FROM pg_catalog.pg_class LIMIT 10 OFFSET 20", "LIMIT 10 OFFSET 20"),
        ("SELECT relname FROM pg_catalog.pg_class FETCH FIRST 7 ROWS ONLY", "FETCH FIRST 7"),
        ("SELECT relname FROM pg_catalog.pg_class FETCH FIRST 700 ROWS ONLY", "LIMIT 50"),
        ("(SELECT relname FROM pg_catalog.pg_class) ORDER BY 1 LIMIT 900", ") ORDER BY 1 LIMIT 50"),
        (
            "SELECT relname FROM pg_catalog.pg_class UNION SELECT nspname "
            "FROM pg_catalog.pg_namespace LIMIT 900",
            "pg_namespace LIMIT 50",
        ),
    ],
)
def test_row_cap_is_added_or_lowered(sql: str, expected: str) -> None:
    guarded = SqlGuard("postgresql", row_cap=50).check(sql)
    assert expected in guarded.sql
    assert guarded.limit <= 50


def test_parenthesised_query_keeps_its_with_scope() -> None:
    # Were the parentheses unwrapped, "secret" would be read from a real table.
    guarded = SqlGuard("postgresql", row_cap=5).check(
        "WITH secret AS (SELECT 1 AS x) (SELECT x FROM secret)"
    )
    assert guarded.sql.startswith("WITH secret AS (SELECT 1 AS x)")


def test_row_cap_can_be_set_per_statement() -> None:
    guard = SqlGuard("postgresql", row_cap=50)
    assert guard.check("SELECT 1", row_cap=3).sql == "SELECT 1 LIMIT 3"
    assert guard.check("SELECT 1").limit == 50


def test_named_parameters_are_kept_for_sqlalchemy() -> None:
    guarded = SqlGuard("postgresql", row_cap=5).check(
        "SELECT relname FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n "
        "ON n.oid = c.relnamespace WHERE n.nspname IN :schemas AND c.relname = :name"
    )
    assert "IN :schemas" in guarded.sql
    assert "= :name" in guarded.sql
    assert guarded.parameters == ("schemas", "name")


# --- refused, one rule at a time -------------------------------------------------------------


@pytest.mark.parametrize(
    ("sql", "reason"),
    [
        ("INSERT INTO pg_catalog.pg_class VALUES (1)", "only SELECT statements are allowed"),
        ("UPDATE pg_catalog.pg_class SET relname = 'x'", "not UPDATE"),
        ("DELETE FROM pg_catalog.pg_class", "not DELETE"),
        ("MERGE INTO t USING s ON true WHEN MATCHED THEN DELETE", "not MERGE"),
        ("CREATE TABLE t (id int)", "not CREATE"),
        ("DROP TABLE pg_catalog.pg_class", "not DROP"),
        ("ALTER TABLE t ADD COLUMN x int", "not ALTER"),
        ("TRUNCATE t", "not TRUNCATE"),
        ("GRANT SELECT ON t TO public", "not GRANT"),
        ("COPY t TO '/tmp/out.csv'", "not COPY"),
        ("CALL do_things()", "not CALL"),
        ("SET statement_timeout = 0", "not SET"),
        ("VACUUM FULL", "not VACUUM"),
        ("DO $$ BEGIN PERFORM 1; END $$", "not DO"),
        ("EXPLAIN ANALYZE DELETE FROM t", "not EXPLAIN"),
        ("SELECT 1; DROP TABLE t", "only one statement"),
        ("SELECT 1;", "only one statement"),
        ("SELECT 1; -- ", "comments are not allowed"),
        ("SELECT 1 /* */;DROP TABLE t", "comments are not allowed"),
        ("SELECT 1 -- harmless?", "comments are not allowed"),
        ("SELECT * INTO copy_of_class FROM pg_catalog.pg_class", "SELECT … INTO"),
        ("SELECT * FROM pg_catalog.pg_class FOR UPDATE", "FOR UPDATE"),
        ("SELECT * FROM pg_catalog.pg_class FOR SHARE", "FOR UPDATE / FOR SHARE"),
        ("WITH d AS (DELETE FROM t RETURNING *) SELECT * FROM d", "DELETE removes rows"),
        ("WITH d AS (INSERT INTO t VALUES (1) RETURNING *) SELECT * FROM d", "INSERT"),
        ("SELECT pg_terminate_backend(42)", "terminates another session"),
        ("SELECT pg_cancel_backend(42)", "cancels another session"),
        ("SELECT lo_import('/etc/passwd')", "reads a server file"),
        ("SELECT set_config('statement_timeout', '0', false)", "changes a setting"),
        ("SELECT * FROM dblink('host=evil', 'SELECT 1') AS t(x int)", "another server"),
        ("SELECT pg_read_file('/etc/passwd')", "reads a server file"),
        ("SELECT nextval('orders_id_seq')", "advances a sequence"),
        ("SELECT query_to_xml('DELETE FROM t', true, true, '')", "runs the SQL text"),
        ("SELECT pg_sleep(10)", "holds the connection"),
        ("SELECT my_function()", "not an allowed catalog function"),
        ("SELECT public.format_type(1, 2)", "outside the catalog"),
        ("SELECT * FROM public.customers", "public.customers is outside the catalog"),
        ("SELECT * FROM customers", "customers is not a catalog relation"),
        ("SELECT * FROM pg_class", "must be schema-qualified: pg_catalog.pg_class"),
        ('SELECT * FROM "PG_CATALOG".pg_class', "outside the catalog"),
        ("SELECT * FROM pg_catalog.pg_authid", "password hashes"),
        ("SELECT * FROM pg_catalog.pg_stats", "samples of table data"),
        ("SELECT * FROM pg_catalog.pg_settings", "secrets"),
        ("SELECT * FROM pg_catalog.pg_stat_activity", "query text"),
        ("SELECT * FROM information_schema.user_mapping_options", "credentials"),
        ("WITH a AS (SELECT * FROM b), b AS (SELECT 1) SELECT * FROM a", "b is not a catalog"),
        ("SELECT * FROM (WITH s AS (SELECT 1) SELECT * FROM s) AS x, s", "s is not a catalog"),
        ("SELECT relname FROM pg_catalog.pg_class LIMIT :n", "LIMIT must be a plain number"),
        ("SELECT $1", "named parameters"),
        ("SELECT ?", "named parameters"),
        ("SELECT FROM WHERE", "cannot parse"),
        ("SELECT 'unterminated", "cannot"),
        ("", "empty statement"),
        ("   \n\t", "empty statement"),
        ("SELECT " + "1 + " * 6000 + "1", "longer than"),
        ("LISTEN channel", "not LISTEN"),
        ("SELECT ", "SELECT names no columns"),
    ],
)
def test_postgres_refusals(sql: str, reason: str) -> None:
    assert reason in refused("postgresql", sql)


@pytest.mark.parametrize(
    ("dialect", "sql", "reason"),
    [
        ("duckdb", "SELECT * FROM read_csv('/etc/passwd')", "reads files or URLs"),
        ("duckdb", "SELECT * FROM read_parquet('s3://bucket/x.parquet')", "reads files or URLs"),
        ("duckdb", "SELECT * FROM read_json_auto('https://evil/x.json')", "httpfs"),
        ("duckdb", "SELECT * FROM glob('/home/*')", "lists files"),
        ("duckdb", "SELECT * FROM 'data.csv'", "not a catalog relation"),
        ("duckdb", "SELECT * FROM duckdb_secrets()", "credentials"),
        ("duckdb", "SELECT * FROM duckdb_settings()", "credentials"),
        ("duckdb", "SELECT getenv('AWS_SECRET_ACCESS_KEY')", "environment"),
        ("duckdb", "SELECT * FROM query('DROP TABLE t')", "runs the SQL text"),
        ("duckdb", "ATTACH 'other.db' AS o", "not ATTACH"),
        ("duckdb", "INSTALL httpfs", "not INSTALL"),
        ("duckdb", "LOAD httpfs", "not LOAD"),
        ("duckdb", "EXPORT DATABASE '/tmp/out'", "not EXPORT"),
        ("duckdb", "PRAGMA enable_profiling", "not PRAGMA"),
        ("sqlite", "PRAGMA writable_schema = ON", "not PRAGMA"),
        ("sqlite", "PRAGMA table_info(orders)", "not PRAGMA"),
        ("sqlite", "ATTACH DATABASE '/tmp/x.db' AS x", "not ATTACH"),
        ("sqlite", "SELECT load_extension('/tmp/evil.so')", "loads native code"),
        ("sqlite", "SELECT readfile('/etc/passwd')", "reads a file"),
        ("sqlite", "SELECT * FROM orders", "not a catalog relation"),
        ("snowflake", "SELECT * FROM analytics.public.orders", "outside the catalog"),
        ("snowflake", 'SELECT * FROM "information_schema".tables', "outside the catalog"),
        (
            "snowflake",
            "SELECT * FROM TABLE(information_schema.query_history())",
            "query_history() is outside the catalog",
        ),
        ("bigquery", "SELECT * FROM `region-us`.INFORMATION_SCHEMA.JOBS", "not a catalog meta"),
        ("bigquery", "SELECT * FROM ds.orders", "outside the catalog"),
        ("redshift", "SELECT * FROM stl_querytext", "query text"),
        ("redshift", "SELECT * FROM pg_catalog.stl_query", "not a catalog metadata relation"),
        ("redshift", "UNLOAD ('SELECT 1') TO 's3://bucket/x'", "not UNLOAD"),
    ],
)
def test_other_dialect_refusals(dialect: str, sql: str, reason: str) -> None:
    assert reason in refused(dialect, sql)


def test_refusal_is_a_read_only_violation_for_the_core() -> None:
    with pytest.raises(ReadOnlyViolation) as caught:
        SqlGuard("duckdb", row_cap=1).check("DELETE FROM t")
    assert caught.value.system == "warehouse"
    assert caught.value.reason.startswith("SQL refused: ")


def test_unknown_dialect_and_bad_cap_are_programming_errors() -> None:
    with pytest.raises(ValueError, match="no SQL guard policy"):
        SqlGuard("oracle", row_cap=10)
    with pytest.raises(ValueError, match="row_cap"):
        SqlGuard("sqlite", row_cap=0)


# --- properties ------------------------------------------------------------------------------

WRITE_TEMPLATES = (
    "INSERT INTO {t} VALUES (1)",
    "INSERT INTO {t} SELECT * FROM {t}",
    "UPDATE {t} SET x = 1",
    "DELETE FROM {t}",
    "MERGE INTO {t} USING {t} AS s ON true WHEN MATCHED THEN DELETE",
    "CREATE TABLE {t} (x int)",
    "CREATE VIEW {t} AS SELECT 1",
    "CREATE INDEX i ON {t} (x)",
    "DROP TABLE {t}",
    "DROP SCHEMA {t} CASCADE",
    "ALTER TABLE {t} ADD COLUMN y int",
    "TRUNCATE {t}",
    "TRUNCATE TABLE {t}",
    "GRANT ALL ON {t} TO public",
    "REVOKE ALL ON {t} FROM public",
    "COPY {t} TO '/tmp/out'",
    "COPY {t} FROM '/tmp/in'",
    "CALL {t}()",
    "SET x = 1",
    "SET SESSION x = 1",
    "PRAGMA writable_schema = 1",
    "ATTACH '/tmp/x' AS {t}",
    "DETACH {t}",
    "EXPORT DATABASE '/tmp/x'",
    "VACUUM {t}",
    "ANALYZE {t}",
    "REINDEX TABLE {t}",
    "CLUSTER {t}",
    "COMMENT ON TABLE {t} IS 'x'",
    "LOCK TABLE {t}",
    "REFRESH MATERIALIZED VIEW {t}",
    "BEGIN",
    "COMMIT",
    "DISCARD ALL",
    "RESET ALL",
    "SELECT * INTO {t} FROM pg_catalog.pg_class",
    "SELECT * FROM pg_catalog.pg_class FOR UPDATE",
    "WITH x AS (DELETE FROM {t} RETURNING *) SELECT * FROM x",
    "WITH x AS (UPDATE {t} SET a = 1 RETURNING *) SELECT * FROM x",
)

identifiers = st.from_regex(r"[a-z_][a-z0-9_]{0,12}", fullmatch=True)
whitespace = st.text(alphabet=" \t\n\r", min_size=1, max_size=3)


@st.composite
def case_and_space(draw: st.DrawFn, sql: str) -> str:
    """`sql` with each letter's case flipped at random and each space widened."""
    flips = draw(st.lists(st.booleans(), min_size=len(sql), max_size=len(sql)))
    cased = "".join(c.swapcase() if f else c for c, f in zip(sql, flips, strict=True))
    parts = cased.split(" ")
    gaps = draw(st.lists(whitespace, min_size=len(parts) - 1, max_size=len(parts) - 1))
    return "".join(p + g for p, g in zip(parts, [*gaps, ""], strict=True))


@st.composite
def writes(draw: st.DrawFn) -> str:
    template = draw(st.sampled_from(WRITE_TEMPLATES))
    return draw(case_and_space(template.format(t=draw(identifiers))))


# No example database: runs stay reproducible from the seed and leave no files in the repo.
PROPERTY = settings(
    max_examples=100,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.too_slow],
)


@PROPERTY
@given(sql=writes(), dialect=st.sampled_from(DIALECTS))
def test_writes_are_always_refused(sql: str, dialect: str) -> None:
    with pytest.raises(SqlRefused):
        SqlGuard(dialect, row_cap=10).check(sql)


@PROPERTY
@given(
    dialect=st.sampled_from(DIALECTS),
    second=st.one_of(writes(), st.sampled_from(list(CATALOG_READ.values()))),
    separator=st.sampled_from([";", " ;", ";\n", "\n;\n", ";;"]),
    trailer=st.sampled_from(["", " --", " -- x", " /* */", "\n"]),
)
def test_stacked_statements_are_always_refused(
    dialect: str, second: str, separator: str, trailer: str
) -> None:
    sql = CATALOG_READ[dialect] + separator + second + trailer
    with pytest.raises(SqlRefused):
        SqlGuard(dialect, row_cap=10).check(sql)


@PROPERTY
@given(
    dialect=st.sampled_from(DIALECTS),
    comment=st.one_of(
        st.builds(lambda s: f"--{s}\n", st.text(alphabet="abc ;DROP", max_size=12)),
        st.builds(lambda s: f"/*{s}*/", st.text(alphabet="abc ;DROP", max_size=12)),
    ),
    data=st.data(),
)
def test_comments_anywhere_are_refused(dialect: str, comment: str, data: st.DataObject) -> None:
    sql = CATALOG_READ[dialect]
    gaps = [m.start() for m in re.finditer(" ", sql)] + [len(sql)]
    at = data.draw(st.sampled_from(gaps))
    with pytest.raises(SqlRefused, match="comments are not allowed"):
        SqlGuard(dialect, row_cap=10).check(sql[:at] + " " + comment + " " + sql[at:])


# Relations each dialect's policy treats as catalog, with columns that exist in them.
CATALOG_RELATIONS = {
    "postgresql": [
        ("pg_catalog.pg_class", ["relname", "relkind", "reltuples", "oid"]),
        ("pg_catalog.pg_namespace", ["nspname", "oid"]),
        ("information_schema.columns", ["table_name", "column_name", "data_type"]),
    ],
    "duckdb": [
        ("duckdb_tables()", ["table_name", "schema_name", "estimated_size"]),
        ("duckdb_columns()", ["column_name", "data_type", "column_index"]),
        ("information_schema.tables", ["table_name", "table_schema"]),
    ],
    "sqlite": [("sqlite_master", ["name", "type", "tbl_name"])],
    "snowflake": [("information_schema.tables", ["table_name", "row_count", "bytes"])],
    "bigquery": [("`region-eu`.INFORMATION_SCHEMA.COLUMNS", ["column_name", "data_type"])],
    "redshift": [("svv_table_info", ["table_id", "tbl_rows", "size"])],
}


@st.composite
def catalog_selects(draw: st.DrawFn) -> tuple[str, str]:
    dialect = draw(st.sampled_from(DIALECTS))
    relation, columns = draw(st.sampled_from(CATALOG_RELATIONS[dialect]))
    chosen = draw(st.lists(st.sampled_from(columns), min_size=1, max_size=3, unique=True))
    sql = f"SELECT {', '.join(f'r.{c}' for c in chosen)} FROM {relation} AS r"
    if draw(st.booleans()):
        literal = draw(st.one_of(st.integers(-1000, 1000).map(str), identifiers.map(repr)))
        operator = draw(st.sampled_from(["=", "<>", "<", ">="]))
        sql += f" WHERE r.{chosen[0]} {operator} {literal}"
    if draw(st.booleans()):
        sql += f" ORDER BY {draw(st.sampled_from(chosen))}"
    if draw(st.booleans()):
        sql += f" LIMIT {draw(st.integers(1, 10_000))}"
    return dialect, draw(case_and_space(sql))


@PROPERTY
@given(case=catalog_selects())
def test_plain_catalog_selects_are_accepted_and_capped(case: tuple[str, str]) -> None:
    dialect, sql = case
    guarded = SqlGuard(dialect, row_cap=500).check(sql)
    assert 1 <= guarded.limit <= 500
    assert guarded.relations
    # The statement that runs is a single SELECT of the same relation, in the same dialect.
    parsed = sqlglot.parse_one(guarded.sql, read=guarded.dialect)
    assert isinstance(parsed, sqlglot.exp.Select)


@PROPERTY
@given(sql=st.text(max_size=200), dialect=st.sampled_from(DIALECTS))
def test_arbitrary_text_is_refused_or_a_capped_select(sql: str, dialect: str) -> None:
    try:
        guarded = SqlGuard(dialect, row_cap=10).check(sql)
    except SqlRefused as refusal:
        reason = refusal.reason
    else:
        reason = ""
    if reason:
        assert reason.startswith("SQL refused: ")
        return
    parsed = sqlglot.parse_one(guarded.sql, read=guarded.dialect)
    assert isinstance(parsed, sqlglot.exp.Select | sqlglot.exp.SetOperation)
    assert guarded.limit <= 10


# --- types, operators and the function allow-list --------------------------------------------


@pytest.mark.parametrize(
    ("dialect", "sql", "reason"),
    [
        ("postgresql", "SELECT CAST(1 AS public.sometype)", "type public.sometype is outside"),
        ("postgresql", "SELECT 1::public.sometype", "type public.sometype is outside"),
        ("postgresql", "SELECT '(1)'::sometype", "type sometype is outside the system catalog"),
        ("postgresql", "SELECT CAST(x AS public.t[]) FROM pg_catalog.pg_class", "public.t"),
        ("postgresql", "SELECT 1 OPERATOR(public.@@@) 2", "OPERATOR(public.@@@) is outside"),
        ("postgresql", "SELECT 1 OPERATOR(@@@) 2", "OPERATOR(@@@) is outside"),
        ("postgresql", "SELECT gen_random_uuid()", "gen_random_uuid() is not on the allow-list"),
        ("postgresql", "SELECT random()", "random() is not on the allow-list"),
        ("postgresql", "SELECT current_setting('app.secret')", "can read secrets"),
        ("duckdb", "SELECT CAST(1 AS mood)", "type mood is outside the system catalog"),
        ("duckdb", "SELECT uuid()", "not on the allow-list"),
        ("snowflake", "SELECT CAST(1 AS analytics.public.t)", "cannot parse"),
        ("snowflake", "SELECT 1::t", "cannot parse"),
        ("snowflake", "SELECT uuid_string()", "uuid_string() is not on the allow-list"),
        ("snowflake", "SELECT SYSTEM$WHITELIST()", "not an allowed catalog function"),
        ("bigquery", "SELECT ML.PREDICT(MODEL m, TABLE t)", "refused"),
        ("redshift", "SELECT CAST(1 AS public.t)", "cannot parse"),
        ("duckdb", "SELECT 1::main.mood", "type main.mood is outside"),
    ],
)
def test_user_types_operators_and_unlisted_functions_are_refused(
    dialect: str, sql: str, reason: str
) -> None:
    assert reason in refused(dialect, sql)


@pytest.mark.parametrize(
    ("dialect", "sql"),
    [
        ("postgresql", "SELECT CAST(c.oid AS BIGINT), c.relname::text FROM pg_catalog.pg_class c"),
        ("postgresql", "SELECT CAST('pg_catalog.pg_class' AS REGCLASS), 1::oid, 'x'::name"),
        ("postgresql", "SELECT 1 OPERATOR(pg_catalog.+) 2"),
        (
            "postgresql",
            "SELECT lower(relname), length(relname), count(*), string_agg(relname, ','), "
            "date_trunc('day', now()), coalesce(NULL, 1), greatest(1, 2), round(1.5), "
            "row_number() OVER (ORDER BY relname), jsonb_agg(relname) "
            "FROM pg_catalog.pg_class GROUP BY relname",
        ),
        (
            "snowflake",
            "SELECT DATEADD(day, -1, CURRENT_TIMESTAMP()), IFF(row_count > 0, 1, 0), "
            "TO_VARCHAR(last_altered), LISTAGG(table_name, ','), SUM(bytes) "
            "FROM information_schema.tables GROUP BY 1, 2, 3",
        ),
        (
            "bigquery",
            "SELECT TIMESTAMP_DIFF(CURRENT_TIMESTAMP(), creation_time, SECOND), COUNTIF(TRUE) "
            "FROM `region-us`.INFORMATION_SCHEMA.TABLES GROUP BY 1",
        ),
        ("duckdb", "SELECT list(table_name), strftime(now(), '%Y') FROM duckdb_tables()"),
        ("sqlite", "SELECT group_concat(name), julianday('now') FROM sqlite_master"),
    ],
)
def test_system_types_operators_and_common_builtins_are_accepted(dialect: str, sql: str) -> None:
    SqlGuard(dialect, row_cap=10).check(sql)


def test_the_allow_list_names_real_sqlglot_functions_and_none_that_write() -> None:
    from sqlglot import exp

    from integrations.warehouse import guard

    for name in guard.SAFE_FUNCTIONS:
        cls = getattr(exp, name, None)
        assert isinstance(cls, type) and issubclass(cls, exp.Func), name
    assert not guard.SAFE_FUNCTIONS & set(guard._FORBIDDEN_FUNCTIONS)


def test_pipebots_own_privilege_check_passes_the_guard() -> None:
    from integrations.warehouse.privileges import POSTGRES_SQL

    guarded = SqlGuard("postgresql", row_cap=1000).check(POSTGRES_SQL)
    assert "pg_catalog.pg_roles" in guarded.relations


@st.composite
def calls(draw: st.DrawFn) -> tuple[str, str]:
    """A function call sqlglot parses, by a random name or a built-in one, in a catalog read."""
    dialect = draw(st.sampled_from(DIALECTS))
    relation, columns = draw(st.sampled_from(CATALOG_RELATIONS[dialect]))
    name = draw(
        st.one_of(
            identifiers,
            st.sampled_from(
                ["lower", "upper", "count", "sum", "abs", "random", "uuid", "md5", "now", "exp"]
            ),
        )
    )
    column = draw(st.sampled_from(columns))
    return dialect, f"SELECT {name}(r.{column}) FROM {relation} AS r"


@PROPERTY
@given(case=calls())
def test_a_call_is_accepted_only_when_its_function_is_allowed(case: tuple[str, str]) -> None:
    from sqlglot import exp

    from integrations.warehouse import guard

    dialect, sql = case
    checker = SqlGuard(dialect, row_cap=10)
    try:
        parsed = sqlglot.parse_one(sql, read=checker.dialect)
    except sqlglot.errors.ParseError:
        return
    funcs = [
        f
        for f in parsed.find_all(exp.Func)
        if not isinstance(f, exp.Table) and f.parent is not None
    ]
    allowed = all(
        (f.name.lower() in checker._functions and f.name.lower() not in checker._denied)
        if isinstance(f, exp.Anonymous | exp.AnonymousAggFunc)
        else type(f).__name__ in guard.SAFE_FUNCTIONS
        for f in funcs
    )
    try:
        checker.check(sql)
    except SqlRefused:
        accepted = False
    else:
        accepted = True
    if accepted:
        assert allowed, sql

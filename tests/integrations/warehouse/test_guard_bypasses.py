"""The guard's bypasses against the real PostgreSQL: nothing a statement does may write.

The fixture builds the trap an attacker with CREATE on a schema could build: a user-defined
type with a cast, an operator, and overloads of built-in names (``lower(integer)``,
``format_type(text)``), each of whose functions writes a row into a canary table through
``dblink`` — a second connection, so the catalog's ``SET TRANSACTION READ ONLY`` does not stop
it. The first test shows the trap works when the guard is skipped; the others send the named
bypasses, then statements hypothesis builds with sqlglot out of the same parts, through
`Catalog._select`, and check the canary is still empty after each.
"""

from __future__ import annotations

from contextlib import suppress
from dataclasses import dataclass

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import text
from sqlalchemy.engine import Engine
from sqlglot import exp

from bot.errors import SourceError
from integrations.errors import SqlRefused
from integrations.warehouse.catalog import Catalog
from tests.integrations.warehouse.support import search_path_schema

# The second connection dblink opens: same server and database, as the superuser (trust auth on
# 127.0.0.1 in the test cluster), so its INSERT is a real write outside the catalog's transaction.
DBLINK_TARGET = "host=127.0.0.1 port=5432 dbname=test user=postgres password=test"


@dataclass(frozen=True)
class Trap:
    url: str
    schema: str
    engine: Engine

    def written(self) -> int:
        with self.engine.connect() as connection:
            return int(
                connection.execute(text(f'SELECT count(*) FROM "{self.schema}".canary')).scalar()
                or 0
            )

    def reset(self) -> None:
        with self.engine.begin() as connection:
            connection.execute(text(f'DELETE FROM "{self.schema}".canary'))


@pytest.fixture
def trap(pg_url: str, pg_engine: Engine) -> Trap:
    schema = search_path_schema(pg_url)
    with pg_engine.begin() as connection:
        available = connection.execute(
            text("SELECT count(*) FROM pg_available_extensions WHERE name = 'dblink'")
        ).scalar()
        assert available, "the test PostgreSQL needs contrib's dblink (postgresql-contrib)"
        installed = connection.execute(
            text(
                "SELECT n.nspname FROM pg_extension e JOIN pg_namespace n "
                "ON n.oid = e.extnamespace WHERE e.extname = 'dblink'"
            )
        ).scalar()
        if installed is None:
            # In the test's own schema, so dropping the schema drops it.
            connection.execute(text(f'CREATE EXTENSION dblink SCHEMA "{schema}"'))
            installed = schema
        q = f'"{schema}"'
        write = (
            f"PERFORM \"{installed}\".dblink_exec('{DBLINK_TARGET}', "
            f"'INSERT INTO {q}.canary VALUES (1)')"
        )
        statements = [
            f"CREATE TABLE {q}.canary (x int)",
            f"CREATE TYPE {q}.sometype AS (x int)",
            f"""CREATE FUNCTION {q}.evil_cast(integer) RETURNS {q}.sometype LANGUAGE plpgsql
                AS $$ BEGIN {write}; RETURN ROW($1); END $$""",
            f"CREATE CAST (integer AS {q}.sometype) WITH FUNCTION {q}.evil_cast(integer)",
            f"""CREATE FUNCTION {q}.evil_op(integer, integer) RETURNS boolean LANGUAGE plpgsql
                AS $$ BEGIN {write}; RETURN true; END $$""",
            f"""CREATE OPERATOR {q}.@@@ (LEFTARG = integer, RIGHTARG = integer,
                FUNCTION = {q}.evil_op)""",
            # Overloads of built-in names: exact matches on the argument types, so with this
            # schema on the search_path they beat pg_catalog's lower(text)/format_type(oid, int).
            f"""CREATE FUNCTION {q}.lower(integer) RETURNS text LANGUAGE plpgsql
                AS $$ BEGIN {write}; RETURN 'x'; END $$""",
            f"""CREATE FUNCTION {q}.format_type(text, text) RETURNS text LANGUAGE plpgsql
                AS $$ BEGIN {write}; RETURN 'x'; END $$""",
            f"""CREATE FUNCTION {q}.evil() RETURNS integer LANGUAGE plpgsql
                AS $$ BEGIN {write}; RETURN 1; END $$""",
        ]
        for statement in statements:
            connection.execute(text(statement))
    # pg_url drops the schema, and with it everything above.
    return Trap(url=pg_url, schema=schema, engine=pg_engine)


def test_the_trap_writes_when_the_guard_is_skipped(trap: Trap) -> None:
    # Even in a read-only transaction: dblink writes over its own connection.
    with trap.engine.connect() as connection:
        connection.exec_driver_sql("SET TRANSACTION READ ONLY")
        connection.exec_driver_sql(f'SET LOCAL search_path = "{trap.schema}"')
        connection.execute(text(f'SELECT CAST(1 AS "{trap.schema}".sometype)'))
        connection.execute(text(f'SELECT 1 OPERATOR("{trap.schema}".@@@) 2'))
        connection.execute(text("SELECT lower(1)"))  # the schema is on the search_path
        connection.rollback()
    assert trap.written() == 3


NAMED_BYPASSES = [
    ("SELECT CAST(1 AS {s}.sometype)", "type {s}.sometype is outside the system catalog"),
    ("SELECT 1::{s}.sometype", "type {s}.sometype is outside the system catalog"),
    ("SELECT CAST(1 AS sometype)", "type sometype is outside the system catalog"),
    ("SELECT (1::{s}.sometype).x", "outside the system catalog"),
    ("SELECT CAST(ARRAY[1] AS {s}.sometype[])", "outside the system catalog"),
    ("SELECT 1 OPERATOR({s}.@@@) 2", "OPERATOR({s}.@@@) is outside the system catalog"),
    ("SELECT {s}.evil()", "is outside the catalog"),
    ("SELECT evil()", "evil() is not an allowed catalog function"),
    ("SELECT {s}.lower(1)", "is outside the catalog"),
    ("SELECT * FROM {s}.canary", "outside the catalog"),
    ("SELECT dblink_exec('x', 'INSERT INTO t VALUES (1)')", "runs SQL on another server"),
    ("SELECT gen_random_uuid()", "not on the allow-list"),
    ("SELECT current_setting('app.jwt_secret')", "can read secrets"),
]


@pytest.mark.parametrize(("template", "reason"), NAMED_BYPASSES)
def test_named_bypasses_are_refused_and_write_nothing(
    trap: Trap, template: str, reason: str
) -> None:
    sql = template.format(s=trap.schema)
    with Catalog(trap.url) as catalog, pytest.raises(SqlRefused) as caught:
        catalog._select(sql)
    assert reason.format(s=trap.schema) in caught.value.reason
    assert trap.written() == 0


@pytest.mark.parametrize(
    "sql",
    [
        # Pass the guard (built-in names, no schema), yet would pick the trap's overloads
        # through the search_path the URL sets: the catalog pins it to pg_catalog.
        "SELECT lower(1) AS x",
        "SELECT format_type('a', 'b') AS x",
        "SELECT relname FROM pg_catalog.pg_class WHERE lower(1) = 'x'",
    ],
)
def test_overloaded_builtin_names_resolve_in_the_system_catalog(trap: Trap, sql: str) -> None:
    with Catalog(trap.url) as catalog, pytest.raises(SourceError) as caught:
        catalog._select(sql)
    # pg_catalog has no lower(integer), and format_type wants an oid: errors, not writes.
    assert "does not exist" in caught.value.reason or "invalid input" in caught.value.reason
    assert trap.written() == 0


# --- properties: statements sqlglot builds from the trap's parts and the catalog's ----------

CATALOG_COLUMNS = ("c.relname", "c.oid", "c.reltuples", "c.relkind", "n.nspname")
TYPES = (
    "INT",
    "TEXT",
    "BIGINT",
    "NAME",
    "REGCLASS",
    "{s}.sometype",
    "sometype",
    "public.sometype",
    '"{s}"."sometype"',
    "{s}.sometype[]",
)
FUNCTIONS = (
    "lower",
    "upper",
    "count",
    "coalesce",
    "length",
    "pg_catalog.format_type",
    "format_type",
    "{s}.lower",
    "{s}.evil",
    "evil",
    "{s}.dblink_exec",
    "dblink_exec",
    "pg_catalog.pg_sleep",
    "has_table_privilege",
)
OPERATORS = ("=", "<>", "+", "OPERATOR({s}.@@@)", "OPERATOR(pg_catalog.=)", "OPERATOR(public.@@@)")


def _parse(sql: str) -> exp.Expr:
    return exp.maybe_parse(sql, dialect="postgres")


@st.composite
def expressions(draw: st.DrawFn, schema: str, depth: int = 0) -> str:
    """One SQL expression: a catalog column, a literal, or (nested) a cast, call or operator."""
    leaf = st.one_of(
        st.sampled_from(CATALOG_COLUMNS),
        st.integers(-5, 5).map(str),
        st.sampled_from(["'a'", "'pg_class'", "NULL"]),
    )
    if depth >= 2 or draw(st.integers(0, 2)) == 0:
        return draw(leaf)
    inner = draw(expressions(schema, depth + 1))
    kind = draw(st.sampled_from(["cast", "colon", "call", "operator"]))
    if kind in ("cast", "colon"):
        target = draw(st.sampled_from(TYPES)).format(s=schema)
        return f"CAST({inner} AS {target})" if kind == "cast" else f"({inner})::{target}"
    if kind == "call":
        name = draw(st.sampled_from(FUNCTIONS)).format(s=schema)
        return f"{name}({inner})"
    operator = draw(st.sampled_from(OPERATORS)).format(s=schema)
    right = draw(expressions(schema, depth + 1))
    return f"({inner} {operator} {right})"


@st.composite
def statements(draw: st.DrawFn, schema: str) -> str:
    """A SELECT over the catalog whose parts sqlglot assembles (and renders) itself."""
    select = exp.select(
        *(_parse(draw(expressions(schema))).as_(f"c{i}") for i in range(draw(st.integers(1, 3))))
    ).from_("pg_catalog.pg_class AS c")
    select = select.join(
        "pg_catalog.pg_namespace AS n", on="n.oid = c.relnamespace", dialect="postgres"
    )
    if draw(st.booleans()):
        select = select.where(_parse(draw(expressions(schema))), dialect="postgres")
    if draw(st.booleans()):
        select = select.limit(draw(st.integers(1, 50)))
    return select.sql(dialect="postgres")


PROPERTY = settings(
    max_examples=150,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)


@PROPERTY
@given(data=st.data())
def test_generated_statements_never_write(trap: Trap, data: st.DataObject) -> None:
    sql = data.draw(statements(trap.schema), label="sql")
    # Refused, or PostgreSQL rejected it (no such function, bad cast …): either is fine.
    with Catalog(trap.url, statement_timeout=5) as catalog, suppress(SqlRefused, SourceError):
        catalog._select(sql)
    assert trap.written() == 0, sql

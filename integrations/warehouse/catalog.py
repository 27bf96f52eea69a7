"""`Catalog`: warehouse metadata — schemas, tables, columns, sizes — read-only, in bulk.

Read-only in layers (ARCHITECTURE §3), each enforced here rather than trusted to the caller:

1. every statement passes `SqlGuard` (one SELECT over catalog relations, allow-listed
   functions, system types and operators only, row cap), and its result stops at
   ``byte_cap`` approximate bytes (cut with a note, `_fetch_capped`);
2. the database refuses writes anyway: PostgreSQL transactions start with
   ``SET TRANSACTION READ ONLY`` (an engine ``begin`` hook, so *any* connection from this
   engine is read-only) and a ``search_path`` of ``pg_catalog`` alone, so no user's function,
   operator or type can win an overload; DuckDB files are opened ``read_only=True`` with
   external access and configuration changes disabled, SQLite files are opened ``mode=ro``
   with ``PRAGMA query_only``, Redshift over psycopg2 opens every transaction
   ``BEGIN READ ONLY`` and every Redshift session pins its ``search_path`` to ``pg_catalog``
   (sql.py); Snowflake has no read-only session, so its role is the barrier
   (deploy/warehouse-snowflake-role.sql);
3. every statement has a deadline: PostgreSQL's transaction-local ``statement_timeout``,
   Redshift's session ``statement_timeout`` and Snowflake's ``STATEMENT_TIMEOUT_IN_SECONDS``
   (set at connect, with the ``pipebot`` query tag), DuckDB's and SQLite's ``interrupt()``
   from a timer;
4. the class has no method that writes;
5. `check` (``pipebot doctor``) fails a login that could write by other paths — superuser,
   write grants, dblink on PostgreSQL; on Snowflake any grant (or secondary role) beyond the
   documented role — naming what to revoke (`integrations.warehouse.privileges`).

A warehouse whose driver extra is not installed is a `ConfigError` of one line
(`missing_extra`): "Snowflake support is not installed: pip install 'pipebot[snowflake]'".

The catalog is read with a couple of bulk statements per call (`integrations.warehouse.sql`),
never one per table: for 5,000 PostgreSQL tables of 20 columns `tables()` is 20-40× faster
than SQLAlchemy's per-table reflection and ~3× faster than ``Inspector.get_multi_columns``
(bench/bench_catalog.py); about half of it is building the 100,000 `Column` values.

Failures become `bot.errors.SourceError` subclasses with messages a person can act on and no
credentials in them::

    catalog = Catalog("postgresql+psycopg://reader@db:5432/analytics", schemas=["mart"])
    catalog.tables("mart")        # [Table(schema='mart', name='orders', columns=(…)), …]
    catalog.table("mart", "ordrs")  # NotFound: … did you mean mart.orders?
"""

from __future__ import annotations

import gc
import json
import logging
import math
import re
import sqlite3
import threading
from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import quote

from sqlalchemy import bindparam, create_engine, event, text
from sqlalchemy.engine import URL, Connection, Engine, make_url
from sqlalchemy.exc import ArgumentError, NoSuchModuleError, SQLAlchemyError

from bot import metrics
from bot.errors import ConfigError, SourceError
from bot.facts import Column, Columns, Table
from bot.settings import WarehouseSettings
from bot.tools import Check
from integrations.errors import (
    ReadOnlyRefused,
    UpstreamAuthError,
    UpstreamError,
    UpstreamNotFound,
    UpstreamUnavailable,
)
from integrations.warehouse import privileges
from integrations.warehouse.guard import SYSTEM, SqlGuard
from integrations.warehouse.names import close_names, no_such_table
from integrations.warehouse.sql import CATALOG_SQL, QUERY_TAG, CatalogSql

# What this connector opens over SQL. BigQuery and Databricks catalogs are read over their REST
# APIs instead (`integrations.warehouse.open_catalog`); their SQL in sql.py is not wired here.
SUPPORTED_DIALECTS = ("postgresql", "duckdb", "sqlite", "snowflake", "redshift")
_SQLGLOT = {
    "postgresql": "postgres",
    "duckdb": "duckdb",
    "sqlite": "sqlite",
    "snowflake": "snowflake",
    "redshift": "redshift",
}
# URL backend → (product name, pipebot extra that installs its driver).
EXTRAS = {
    "snowflake": ("Snowflake", "snowflake"),
    "bigquery": ("BigQuery", "bigquery"),
    "redshift": ("Redshift", "redshift"),
    "databricks": ("Databricks", "databricks"),
}
# Snowflake connection parameters that snowflake-sqlalchemy refuses in the URL query (they move
# the connection or read local files) but pipebot's operator-written URL may carry: they are
# lifted into connect_args. Secrets among them are kept out of error messages.
_SNOWFLAKE_CONNECT_ARGS = (
    "host",
    "port",
    "protocol",
    "private_key_file",
    "private_key_file_pwd",
    "token_file_path",
)
_SECRET_PARAMETERS = ("private_key_file_pwd", "token", "password", "passcode")
# Redshift tables have at most 1,600 columns: the per-column statement's cap never cuts a table.
_REDSHIFT_MAX_COLUMNS = 1600

logger = logging.getLogger(__name__)
# In the connector metrics: this connector's name and its statements.
CONNECTOR = "warehouse"
OPERATIONS = ("schemas", "relations", "privileges")
_URL_CREDENTIALS = re.compile(r"(\w+://[^:/@\s]+):[^@\s]*@")


class Catalog:
    """Read-only catalog of one warehouse: PostgreSQL, Snowflake, Redshift, a DuckDB or SQLite file.

    `schemas` scopes the catalog: when given, only those schemas are listed and described
    (anything else is "not configured"); when empty, every non-system schema the role may use.
    `statement_timeout` (seconds) bounds every statement; `row_cap` bounds the rows of every
    statement — for `tables` that is the number of relations returned.
    """

    system = SYSTEM

    def __init__(
        self,
        url: str,
        schemas: Sequence[str] = (),
        *,
        statement_timeout: float = 10.0,
        row_cap: int = 5000,
        byte_cap: int = 32 * 1024 * 1024,
        sql: CatalogSql | None = None,
    ) -> None:
        """`sql` replaces the dialect's statements (tests run Redshift's against PostgreSQL
        with session statements PostgreSQL understands)."""
        if statement_timeout <= 0:
            raise ConfigError("warehouse statement_timeout must be positive")
        if row_cap < 1:
            raise ConfigError("warehouse row_cap must be at least 1")
        try:
            parsed = make_url(url)
        except ArgumentError:
            raise ConfigError(
                "warehouse URL is not a SQLAlchemy URL, e.g. postgresql+psycopg://reader@host/db"
            ) from None
        backend = parsed.get_backend_name()
        if backend == "postgres":
            backend = "postgresql"
        if backend not in SUPPORTED_DIALECTS and backend in EXTRAS:
            _require_driver(parsed, backend)
            raise ConfigError(
                f"warehouse dialect {backend!r} is read over its REST API, not by this SQL "
                "catalog: open it with integrations.warehouse.open_catalog"
            )
        if backend not in SUPPORTED_DIALECTS:
            raise ConfigError(
                f"warehouse dialect {backend!r} is not supported; pipebot reads the catalogs of "
                f"{', '.join(SUPPORTED_DIALECTS)}"
            )
        self.dialect: str = backend
        self.configured: tuple[str, ...] = tuple(dict.fromkeys(s for s in schemas if s))
        self.statement_timeout = float(statement_timeout)
        self.row_cap = row_cap
        # Approximate bytes one statement may return (see _row_bytes); the rest is cut, noted.
        self.byte_cap = max(1, byte_cap)
        self.last_cut: int | None = None  # the byte cap of the last statement it cut, if any
        self.sql: CatalogSql = sql or CATALOG_SQL[_SQLGLOT[backend]]
        self._guard = SqlGuard(backend, row_cap=row_cap)
        self._secrets = tuple(
            str(v)
            for v in (
                parsed.password,
                *(parsed.query.get(k) for k in _SECRET_PARAMETERS if k != "password"),
            )
            if v and isinstance(v, str)
        )
        self.where: str = _where(parsed, backend)
        self._database = _database_name(parsed, backend)
        self._engine = self._create_engine(parsed)
        metrics.declare_connector(CONNECTOR, OPERATIONS)

    @property
    def last_altered_means(self) -> str:
        """What `Table.last_altered` is on this dialect (they differ; readers need to know)."""
        return self.sql.last_altered_means

    @classmethod
    def from_settings(cls, settings: WarehouseSettings) -> Catalog:
        if settings.url is None:
            raise ConfigError("PIPEBOT_WAREHOUSE__URL is not set")
        return cls(
            settings.url.get_secret_value(),
            settings.schemas,
            statement_timeout=settings.statement_timeout,
            row_cap=settings.row_cap,
            byte_cap=settings.byte_cap,
        )

    def close(self) -> None:
        self._engine.dispose()

    def __enter__(self) -> Catalog:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"Catalog({self.dialect} at {self.where}, schemas={list(self.configured)})"

    # --- the WarehouseCatalog port -----------------------------------------------------

    def schemas(self) -> list[str]:
        """Schemas this catalog describes: the configured ones that exist and may be used,
        else every non-system schema the role has USAGE on."""
        found = self._schema_rows()
        if self.configured:
            return [s for s in self.configured if found.get(s)]
        return [name for name, usable in found.items() if usable]

    def tables(self, schema: str | None = None) -> list[Table]:
        """Every relation of `schema` (or of the configured / all usable schemas), with columns,
        in one catalog statement. At most `row_cap` relations, ordered by schema and name."""
        targets = self._targets(schema)
        if not targets:
            return []
        with _bulk_allocation():
            return self._relations(targets, None)

    def table(self, schema: str, name: str) -> Table:
        """One relation with its columns; `NotFound` with close names as suggestions."""
        targets = self._targets(schema)
        found = self._relations(targets, name)
        if found:
            return found[0]
        names = [t.name for t in self._relations(targets, None)]
        raise no_such_table(schema, name, names, self.where)

    # --- doctor ------------------------------------------------------------------------

    def check(self) -> Check:
        """Reachable, authenticated, the catalog of the configured schemas is readable, and
        the login cannot write (privileges.py)."""
        self.last_cut = None
        try:
            found = self._schema_rows()
        except SourceError as exc:
            return self._check(ok=False, detail=exc.reason)
        problems: list[str] = []
        for name in self.configured:
            if name not in found:
                close = close_names(name, list(found))
                hint = f" (did you mean {', '.join(close)}?)" if close else ""
                problems.append(f"schema {name} not found{hint}")
            elif not found[name]:
                problems.append(f"permission denied for schema {name} (the role lacks USAGE)")
        if problems:
            return self._check(ok=False, detail="; ".join(problems))
        try:
            tables = self.tables()
        except SourceError as exc:
            return self._check(ok=False, detail=exc.reason)
        described = self.configured or tuple(n for n, usable in found.items() if usable)
        try:
            abilities = self._write_abilities(described)
        except SourceError as exc:
            return self._check(
                ok=False, detail=f"cannot check the login's privileges: {exc.reason}"
            )
        if abilities:
            headline = privileges.WRITES if self.dialect == "postgresql" else privileges.BEYOND_ROLE
            return self._check(ok=False, detail=privileges.summary(abilities, headline))
        shown = ", ".join(described[:5]) + (" …" if len(described) > 5 else "")
        capped = " (row cap reached)" if len(tables) >= self.row_cap else ""
        if self.last_cut is not None:
            capped += f" (result cut at {self.last_cut:,} bytes)"
        return self._check(
            ok=True,
            detail=f"read the catalog of {len(described)} schema(s) ({shown or 'none'}): "
            f"{len(tables)} tables and views{capped}",
        )

    def _write_abilities(self, schemas: Sequence[str]) -> list[privileges.WriteAbility]:
        """How the login could write: PostgreSQL's privileges, Snowflake's grants beyond the
        documented role (the file dialects are opened read-only; Redshift's are not checked,
        as its catalog views do not show them to the login: see docs/warehouses.md)."""
        if self.dialect == "snowflake":
            return self._snowflake_abilities()
        if self.dialect != "postgresql":
            return []
        rows = self._select(
            privileges.POSTGRES_SQL,
            privileges.postgres_parameters(schemas),
            operation="privileges",
        )
        return privileges.postgres_abilities(rows)

    def _snowflake_abilities(self) -> list[privileges.WriteAbility]:
        """The session's role and secondary roles, then ``SHOW GRANTS TO ROLE`` it (two
        statements: SHOW takes no expression for the role)."""
        rows = self._select(privileges.SNOWFLAKE_SESSION_SQL, operation="privileges")
        session = rows[0] if rows else {}
        role = str(session.get("role_name") or "")
        if not role:
            raise UpstreamError(
                SYSTEM, "the session has no current role: add role=… to the Snowflake URL"
            )
        grants = self._show(privileges.snowflake_grants_sql(role), operation="privileges")
        return privileges.snowflake_login_abilities(session, grants)

    # --- statements --------------------------------------------------------------------

    def _schema_rows(self) -> dict[str, bool]:
        rows = self._select(self.sql.schemas, operation="schemas")
        return {str(r["schema_name"]): bool(r["usable"]) for r in rows}

    def _targets(self, schema: str | None) -> list[str]:
        found = self._schema_rows()
        if schema is None:
            wanted = list(self.configured) or [n for n, usable in found.items() if usable]
        elif self.configured and schema not in self.configured:
            raise UpstreamNotFound(
                SYSTEM,
                f"schema {schema} is not one of the configured schemas "
                f"({', '.join(self.configured)}; PIPEBOT_WAREHOUSE__SCHEMAS)",
                suggestions=close_names(schema, list(self.configured)) or list(self.configured),
            )
        else:
            wanted = [schema]
        for name in wanted:
            if name not in found:
                suggestions = close_names(name, [n for n, usable in found.items() if usable])
                hint = f"; did you mean {', '.join(suggestions)}?" if suggestions else ""
                raise UpstreamNotFound(
                    SYSTEM, f"no schema {name} in {self.where}{hint}", suggestions=suggestions
                )
            if not found[name]:
                raise UpstreamAuthError(
                    SYSTEM, f"permission denied for schema {name} (the role lacks USAGE)"
                )
        return wanted

    def _relations(self, schemas: list[str], name: str | None) -> list[Table]:
        params: dict[str, Any] = {"schemas": schemas, "name": name}
        # One row more than the cap tells "exactly at the cap" from "cut short".
        rows = self._select(
            self.sql.relations, params, limit=self.row_cap + 1, operation="relations"
        )
        if self.sql.columns is not None or self.sql.stats is not None:
            rows = self._merge(rows[: self.row_cap + 1], params)
        if len(rows) > self.row_cap:
            logger.warning(
                "warehouse catalog of %s at %s has more than %d relations; "
                "listing the first %d by name (PIPEBOT_WAREHOUSE__ROW_CAP)",
                ", ".join(schemas),
                self.where,
                self.row_cap,
                self.row_cap,
            )
        return [self._to_table(row) for row in rows[: self.row_cap]]

    def _merge(self, rows: list[dict[str, Any]], params: dict[str, Any]) -> list[dict[str, Any]]:
        """Relations rows completed from the separate per-column and per-table statements of
        dialects that cannot answer in one (Redshift: see sql.py)."""
        by_key = {(r["schema_name"], r["table_name"]): r for r in rows}
        if self.sql.columns is not None:
            for row in rows:
                for key in (
                    "column_names",
                    "column_types",
                    "column_nullable",
                    "column_ordinals",
                    "column_comments",
                ):
                    row[key] = []
            cap = (self.row_cap + 1) * _REDSHIFT_MAX_COLUMNS
            for c in self._select(self.sql.columns, params, limit=cap, operation="relations"):
                found = by_key.get((c["schema_name"], c["table_name"]))
                if found is not None:
                    found["column_names"].append(c["name"])
                    found["column_types"].append(c["type"])
                    found["column_nullable"].append(c["nullable"])
                    found["column_ordinals"].append(c["ordinal"])
                    found["column_comments"].append(c["comment"])
        if self.sql.stats is not None:
            cap = self.row_cap + 1
            for s in self._select(self.sql.stats, params, limit=cap, operation="relations"):
                found = by_key.get((s["schema_name"], s["table_name"]))
                if found is not None:
                    for key in ("row_count", "size_bytes", "last_altered"):
                        found[key] = s[key]
        return rows

    def _to_table(self, row: Mapping[str, Any]) -> Table:
        return table_from_row(self._database, row)

    def select(
        self,
        sql: str,
        params: Mapping[str, Any],
        *,
        guard: SqlGuard,
        limit: int,
        operation: str,
    ) -> list[dict[str, Any]]:
        """One SELECT that `guard` (another policy than the catalog's) accepts, on this
        catalog's read-only, time-limited, tagged connections — for the usage views
        (`integrations.warehouse.usage`)."""
        return self._select(sql, params, limit=limit, operation=operation, guard=guard)

    def _select(
        self,
        sql: str,
        params: Mapping[str, Any] | None = None,
        *,
        limit: int | None = None,
        operation: str = "query",
        guard: SqlGuard | None = None,
    ) -> list[dict[str, Any]]:
        """Run one guarded catalog SELECT in a read-only transaction with a deadline;
        `operation` names it in the connector metrics; `guard` replaces the catalog's."""
        guarded = (guard or self._guard).check(sql, row_cap=limit)
        values = dict(params or {})
        statement = text(guarded.sql).bindparams(
            *(bindparam(k, expanding=True) for k, v in values.items() if isinstance(v, list))
        )
        with metrics.connector_call(CONNECTOR, operation):
            try:
                with self._connect() as connection, self._deadline(connection):
                    result = connection.execute(statement, values)
                    return self._fetch_capped(result.mappings(), operation)
            except SQLAlchemyError as exc:
                raise self._translate(exc) from exc
            except (sqlite3.Error, OSError) as exc:
                raise self._translate(exc) from exc

    def _show(self, statement: str, *, operation: str) -> list[dict[str, Any]]:
        """Run one of pipebot's own ``SHOW`` statements (Snowflake's grants, which no SELECT
        reads; the guard admits SELECT only) on the same connections: read-only where the
        warehouse has that, with the deadline and the byte cap. Never a caller's text."""
        if not statement.startswith("SHOW GRANTS TO ROLE "):
            raise ReadOnlyRefused(SYSTEM, f"not one of pipebot's SHOW statements: {statement}")
        with metrics.connector_call(CONNECTOR, operation):
            try:
                with self._connect() as connection, self._deadline(connection):
                    # No bind parameters, so the driver does no %-formatting of the text.
                    result = connection.exec_driver_sql(statement)
                    return self._fetch_capped(result.mappings(), operation)
            except SQLAlchemyError as exc:
                raise self._translate(exc) from exc

    def _fetch_capped(self, result: Any, operation: str) -> list[dict[str, Any]]:
        """The rows of `result` up to `byte_cap` approximate bytes; a longer result is cut
        there, logged and remembered in `last_cut`, rather than failed: half a catalog says
        more than an error."""
        kept: list[dict[str, Any]] = []
        total = 0
        # Chunks, not all(): a result far over the cap stops being fetched (and decoded) once
        # the cap is reached, while one fetch per chunk keeps the driver round trips few.
        while chunk := result.fetchmany(_FETCH_CHUNK):
            for row in chunk:
                record = dict(row)
                total += _row_bytes(record)
                if total > self.byte_cap:
                    self.last_cut = self.byte_cap
                    logger.warning(
                        "warehouse %s result at %s cut at %d bytes after %d rows "
                        "(PIPEBOT_WAREHOUSE__BYTE_CAP)",
                        operation,
                        self.where,
                        self.byte_cap,
                        len(kept),
                    )
                    result.close()
                    return kept
                kept.append(record)
        return kept

    @contextmanager
    def _connect(self) -> Iterator[Connection]:
        """A connection inside a transaction this engine made read-only (see `_on_begin`).

        The transaction is always rolled back: nothing it did could be worth keeping.
        """
        try:
            connection = self._engine.connect()
        except SQLAlchemyError as exc:
            raise self._translate(exc) from exc
        with connection:
            transaction = connection.begin()
            try:
                yield connection
            finally:
                if transaction.is_active:
                    transaction.rollback()

    @contextmanager
    def _deadline(self, connection: Connection) -> Iterator[None]:
        if self.dialect in ("postgresql", "snowflake", "redshift"):
            # The server enforces it: statement_timeout set per transaction (PostgreSQL) or per
            # session at connect (Redshift; Snowflake's STATEMENT_TIMEOUT_IN_SECONDS).
            yield
            return
        raw: Any = connection.connection.dbapi_connection
        lock = threading.Lock()
        running = [True]

        def interrupt() -> None:
            # Only while the statement still runs: an interrupt on an idle connection could
            # hit the next statement on some drivers.
            with lock:
                if running[0]:
                    raw.interrupt()

        timer = threading.Timer(self.statement_timeout, interrupt)
        timer.daemon = True
        timer.start()
        try:
            yield
        finally:
            with lock:
                running[0] = False
            timer.cancel()

    # --- engines -----------------------------------------------------------------------

    def _create_engine(self, url: URL) -> Engine:
        try:
            if self.dialect == "postgresql":
                return self._postgres_engine(url)
            if self.dialect == "duckdb":
                return self._duckdb_engine(url)
            if self.dialect == "snowflake":
                return self._snowflake_engine(url)
            if self.dialect == "redshift":
                return self._redshift_engine(url)
            return self._sqlite_engine(url)
        except (NoSuchModuleError, ImportError) as exc:
            if self.dialect in EXTRAS:
                logger.debug("warehouse driver import failed: %s", exc)
                raise missing_extra(self.dialect) from None
            raise ConfigError(
                f"the {self.dialect} driver for the warehouse URL is not installed ({exc})"
            ) from None

    def _snowflake_engine(self, url: URL) -> Engine:
        """Tag and timeout travel as session parameters of the login, so every statement of
        every pooled connection carries them. Snowflake has no read-only session: the role is
        the write barrier (deploy/warehouse-snowflake-role.sql)."""
        connect_args: dict[str, Any] = {
            "session_parameters": {
                "QUERY_TAG": QUERY_TAG,
                "STATEMENT_TIMEOUT_IN_SECONDS": max(1, math.ceil(self.statement_timeout)),
            },
            "login_timeout": max(1, math.ceil(min(self.statement_timeout, 60))),
        }
        lifted: dict[str, Any] = {
            k: url.query[k] for k in _SNOWFLAKE_CONNECT_ARGS if k in url.query
        }
        if "port" in lifted:
            lifted["port"] = int(str(lifted["port"]))
        connect_args.update(lifted)
        url = url.difference_update_query(list(lifted))
        return create_engine(
            url, pool_pre_ping=True, pool_size=2, max_overflow=2, connect_args=connect_args
        )

    def _redshift_engine(self, url: URL) -> Engine:
        if url.drivername == "redshift":
            url = url.set(drivername="redshift+psycopg2")
        timeout_ms = max(1, round(self.statement_timeout * 1000))
        session = tuple(s.format(timeout_ms=timeout_ms) for s in self.sql.session)
        psycopg2 = url.get_driver_name() == "psycopg2"
        connect_args: dict[str, Any] = {}
        if psycopg2:
            connect_args = {
                "connect_timeout": max(1, math.ceil(min(self.statement_timeout, 30))),
                "application_name": "pipebot (read-only catalog)",
            }
        engine = create_engine(
            url, pool_pre_ping=True, pool_size=2, max_overflow=2, connect_args=connect_args
        )

        def _on_connect(dbapi_connection: Any, _record: Any) -> None:
            if psycopg2:
                # psycopg2 then opens every transaction with BEGIN READ ONLY, which Redshift
                # honours (redshift_connector has no such switch: the role is the barrier).
                dbapi_connection.readonly = True
            cursor = dbapi_connection.cursor()
            try:
                for statement in session:
                    cursor.execute(statement)
            finally:
                cursor.close()
            if not getattr(dbapi_connection, "autocommit", True):
                dbapi_connection.commit()

        event.listen(engine, "connect", _on_connect)
        return engine

    def _postgres_engine(self, url: URL) -> Engine:
        if url.drivername in ("postgresql", "postgres"):
            url = url.set(drivername="postgresql+psycopg")
        engine = create_engine(
            url,
            pool_pre_ping=True,
            pool_size=2,
            max_overflow=2,
            connect_args={
                "connect_timeout": max(1, math.ceil(min(self.statement_timeout, 30))),
                "application_name": "pipebot (read-only catalog)",
            },
        )
        timeout_ms = max(1, round(self.statement_timeout * 1000))

        def _on_begin(connection: Connection) -> None:
            # Transaction-local, so a pooled connection (or a pgbouncer in transaction mode)
            # never carries these into someone else's work — and no caller can skip them.
            connection.exec_driver_sql("SET TRANSACTION READ ONLY")
            connection.exec_driver_sql(f"SET LOCAL statement_timeout = {timeout_ms}")
            # Unqualified functions, operators and types resolve in the system catalog only: a
            # user's public.lower(integer) or public.=(name, integer) would otherwise win the
            # overload resolution for lower(1) or relname = 1 and run a user's code (pg_temp
            # last: listed first implicitly, it would let a temporary type shadow a system one).
            connection.exec_driver_sql("SET LOCAL search_path = pg_catalog, pg_temp")

        event.listen(engine, "begin", _on_begin)
        return engine

    def _duckdb_engine(self, url: URL) -> Engine:
        database = url.database or ":memory:"
        config = {
            "enable_external_access": False,  # no files, URLs or extensions beyond the database
            "autoinstall_known_extensions": False,
            "autoload_known_extensions": False,
            "lock_configuration": True,  # and no SET to turn that back on
        }
        connect_args: dict[str, Any] = {"config": config}
        if database != ":memory:":
            connect_args["read_only"] = True
        return create_engine(url, connect_args=connect_args)

    def _sqlite_engine(self, url: URL) -> Engine:
        database = url.database or ""
        if database and database != ":memory:":
            path = quote(str(Path(database).resolve()))
            url = make_url(f"sqlite:///file:{path}?mode=ro&uri=true")
        engine = create_engine(url)

        def _on_connect(dbapi_connection: Any, _record: Any) -> None:
            cursor = dbapi_connection.cursor()
            try:
                cursor.execute("PRAGMA query_only = ON")
            finally:
                cursor.close()

        event.listen(engine, "connect", _on_connect)
        return engine

    # --- errors ------------------------------------------------------------------------

    def _translate(self, exc: BaseException) -> SourceError:
        orig: BaseException = getattr(exc, "orig", None) or exc
        message = self._scrub(_first_line(orig))
        lowered = message.lower()
        # psycopg names it sqlstate, psycopg2 pgcode.
        sqlstate = str(getattr(orig, "sqlstate", "") or getattr(orig, "pgcode", "") or "")
        kind = type(orig).__name__
        errno = getattr(orig, "errno", None) if self.dialect == "snowflake" else None
        if errno is not None:
            translated = self._snowflake_error(int(errno), message)
            if translated is not None:
                return translated
        timed_out = f"statement timed out after {_seconds(self.statement_timeout)}"
        if sqlstate == "57014" or kind == "InterruptException" or lowered == "interrupted":
            return UpstreamUnavailable(
                SYSTEM, f"{timed_out} (PIPEBOT_WAREHOUSE__STATEMENT_TIMEOUT)"
            )
        if (
            self.dialect in ("postgresql", "redshift")
            and (not sqlstate or sqlstate.startswith("08"))
            and kind in ("OperationalError", "InterfaceError")
        ):
            # psycopg reports a refused login as a connection failure without a SQLSTATE;
            # the server's FATAL line says which.
            said = message.split("FATAL:", 1)[1].strip() if "FATAL:" in message else ""
            if said and any(
                hint in said
                for hint in ("authentication failed", "role", "pg_hba.conf", "permission")
            ):
                return UpstreamAuthError(SYSTEM, f"authentication failed at {self.where}: {said}")
            if said and said.startswith("database") and "does not exist" in said:
                return UpstreamNotFound(SYSTEM, f"{said} at {self.where}")
            return UpstreamUnavailable(
                SYSTEM, f"cannot connect to {self.where} ({_connection_reason(said or message)})"
            )
        if self.dialect == "duckdb" and kind in ("IOException", "ConnectionException"):
            if "does not exist" in lowered:
                return UpstreamUnavailable(SYSTEM, f"DuckDB file {self.where} does not exist")
            if "lock" in lowered or "different configuration" in lowered:
                # DuckDB lets one process write a file, and then nobody else may open it.
                return UpstreamUnavailable(
                    SYSTEM, f"cannot open DuckDB file {self.where}: a writer holds it open"
                )
            return UpstreamUnavailable(SYSTEM, f"cannot open DuckDB file {self.where}: {message}")
        if self.dialect == "sqlite" and "unable to open database" in lowered:
            return UpstreamUnavailable(
                SYSTEM, f"cannot open SQLite file {self.where} read-only (missing or unreadable)"
            )
        if sqlstate == "25006" or "read-only" in lowered or "readonly" in lowered:
            return ReadOnlyRefused(SYSTEM, f"the warehouse refused a write: {message}")
        if sqlstate == "42501" or kind == "PermissionException":
            return UpstreamAuthError(SYSTEM, message)
        if sqlstate.startswith("28"):
            return UpstreamAuthError(SYSTEM, f"authentication failed at {self.where}: {message}")
        if sqlstate == "3D000":
            return UpstreamNotFound(SYSTEM, message)
        return UpstreamError(SYSTEM, f"catalog query failed at {self.where}: {message}")

    def _snowflake_error(self, errno: int, message: str) -> SourceError | None:
        # Error numbers: snowflake.connector.errorcode and docs.snowflake.com error messages.
        if errno == 604:  # "Statement reached its statement or warehouse timeout"
            return UpstreamUnavailable(
                SYSTEM,
                f"statement timed out after {_seconds(self.statement_timeout)} "
                "(PIPEBOT_WAREHOUSE__STATEMENT_TIMEOUT)",
            )
        if errno in (250001, 390100, 390144, 390318, 394304):  # login refused, bad key/token
            return UpstreamAuthError(SYSTEM, f"authentication failed at {self.where}: {message}")
        if errno in (250003, 251011, 251012):  # network, login or request timeout
            return UpstreamUnavailable(SYSTEM, f"cannot connect to {self.where} ({message})")
        if errno == 2003:  # "does not exist or not authorized"
            return UpstreamNotFound(SYSTEM, message)
        return None

    def _scrub(self, message: str) -> str:
        message = _URL_CREDENTIALS.sub(r"\1:***@", message)
        for secret in self._secrets:
            message = message.replace(secret, "***")
        return message

    def _check(self, *, ok: bool, detail: str) -> Check:
        return Check(
            system=SYSTEM, ok=ok, detail=detail, target=self.where, version=self._version()
        )

    def _version(self) -> str:
        info = getattr(self._engine.dialect, "server_version_info", None)
        if self.dialect in ("snowflake", "redshift"):
            name = "Snowflake" if self.dialect == "snowflake" else "Redshift"
            return f"{name} {'.'.join(str(p) for p in info)}" if info else name
        if self.dialect == "sqlite":
            return f"SQLite {sqlite3.sqlite_version}"
        if self.dialect == "duckdb":
            import duckdb

            return f"DuckDB {duckdb.__version__}"
        return f"PostgreSQL {'.'.join(str(p) for p in info)}" if info else ""


def missing_extra(backend: str) -> ConfigError:
    """The one line a person sees when a warehouse's driver extra is not installed."""
    name, extra = EXTRAS[backend]
    return ConfigError(f"{name} support is not installed: pip install 'pipebot[{extra}]'")


def _require_driver(url: URL, backend: str) -> None:
    """Raise `missing_extra` unless the URL's SQLAlchemy dialect and its DB-API driver load."""
    try:
        dialect = url.get_dialect()
        dialect.import_dbapi()
    except (NoSuchModuleError, ImportError) as exc:
        logger.debug("warehouse driver import failed: %s", exc)
        raise missing_extra(backend) from None


# --- row mapping ---------------------------------------------------------------------------

_FETCH_CHUNK = 1000


def _row_bytes(row: Mapping[str, Any]) -> int:
    """A row's size for the byte cap, cheaply: characters of text, 8 per other value.

    Exact sizes would cost a serialisation per row; this is close for catalog rows (names,
    types, arrays of them) and never undercounts a long text, which is what the cap is for.
    """
    size = 0
    for value in row.values():
        if value is None:
            continue
        if isinstance(value, str | bytes):
            size += len(value)
        elif isinstance(value, list | tuple):
            try:
                size += sum(map(len, value))  # arrays of names and types
            except TypeError:
                size += 8 * len(value)  # of numbers, booleans (or with NULLs: close enough)
        else:
            size += 8
    return size


def table_from_row(database: str, row: Mapping[str, Any]) -> Table:
    """A `Table` from one relations row (see sql.py for its columns)."""
    return Table(
        database=database,
        schema=str(row["schema_name"]),
        name=str(row["table_name"]),
        kind=str(row["kind"] or "table"),
        columns=_columns(
            row["column_names"],
            row["column_types"],
            row["column_nullable"],
            row["column_ordinals"],
            row.get("column_comments"),
        ),
        row_count=_int(row["row_count"]),
        last_altered=_timestamp(row["last_altered"]),
        size_bytes=_int(row["size_bytes"]),
        comment=row.get("comment") or None,
    )


@contextmanager
def _bulk_allocation() -> Iterator[None]:
    """Pause the cyclic garbage collector while a catalog is fetched and built.

    A catalog of 5,000 tables is 100,000 columns: strings, lists and tuples by the hundred
    thousand, and every 700 allocations the collector would scan the young ones for cycles
    they cannot have — measured as a third of the time. Paused for this call only, and
    restored even on error.
    """
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


def _columns(names: Any, types: Any, nullable: Any, ordinals: Any, comments: Any = None) -> Columns:
    """Columns from the parallel arrays of a relations row (JSON text on SQLite and Snowflake),
    built when first looked at (see `bot.facts.Columns`); `comments` is a fifth array or a
    mapping from position to comment (sql.py)."""
    listed = names if isinstance(names, list) else json.loads(names) if names else []
    # A relation without columns meets the LEFT JOIN once, as NULLs.
    count = len(listed) if None not in listed else sum(1 for n in listed if n is not None)
    return Columns(lambda: _build_columns(listed, types, nullable, ordinals, comments), count)


def _build_columns(
    names: Any, types: Any, nullable: Any, ordinals: Any, comments: Any = None
) -> tuple[Column, ...]:
    arrays = [
        v if isinstance(v, list) else json.loads(v) if isinstance(v, str) else list(v or ())
        for v in (names, types, nullable, ordinals)
    ]
    names, types, nullable, ordinals = arrays
    notes = _comments(comments, ordinals, len(names))
    if None in names:
        # A relation without columns still meets a LEFT JOIN once, as NULLs.
        keep = [i for i, name in enumerate(names) if name is not None]
        names, types, nullable, ordinals = ([a[i] for i in keep] for a in arrays)
        notes = [notes[i] for i in keep]
    if None in types:
        types = ["" if t is None else str(t) for t in types]
    if nullable and not isinstance(nullable[0], bool):
        nullable = [None if v is None else bool(v) for v in nullable]
    rows: Iterable[tuple[Any, Any, Any, Any, Any]] = zip(
        names, types, nullable, ordinals, notes, strict=True
    )
    if None not in ordinals and ordinals != sorted(ordinals):
        rows = sorted(rows, key=lambda row: int(row[3]))
    return tuple(map(Column._make, rows))


def _comments(comments: Any, ordinals: list[Any], count: int) -> list[str | None]:
    """Column comments aligned with the other arrays: from an aligned array (``''`` is none),
    or from a mapping position → comment (PostgreSQL; JSON text on some drivers)."""
    if isinstance(comments, str):
        comments = json.loads(comments)
    if not comments:
        return [None] * count
    if isinstance(comments, Mapping):
        return [comments.get(str(o)) or None for o in ordinals]
    return [c or None for c in comments]


def _int(value: Any) -> int | None:
    if value is None or isinstance(value, bool):
        return None
    try:
        return int(value)
    except (TypeError, ValueError):
        return None


def _timestamp(value: Any) -> datetime | None:
    if value is None:
        return None
    if isinstance(value, str):
        try:
            value = datetime.fromisoformat(value)
        except ValueError:
            return None
    if not isinstance(value, datetime):
        return None
    return value if value.tzinfo else value.replace(tzinfo=UTC)


# --- messages ------------------------------------------------------------------------------


def _where(url: URL, dialect: str) -> str:
    if dialect in ("postgresql", "redshift"):
        host = url.host or "local socket"
        default = ":5432" if dialect == "postgresql" else ":5439"
        port = f":{url.port}" if url.port else ("" if url.host is None else default)
        return f"{host}{port}/{url.database or ''}"
    if dialect == "snowflake":
        # account/database[/schema]; the account is the URL's host part.
        return f"{url.host or ''}/{url.database or ''}".rstrip("/")
    return url.database or ":memory:"


def _database_name(url: URL, dialect: str) -> str:
    if dialect in ("postgresql", "redshift"):
        return url.database or ""
    if dialect == "snowflake":
        return (url.database or "").split("/", 1)[0]
    database = url.database or ""
    return Path(database).stem if database and database != ":memory:" else "memory"


def _first_line(exc: BaseException) -> str:
    lines = [line.strip() for line in str(exc).strip().splitlines() if line.strip()]
    return lines[0][:300] if lines else type(exc).__name__


def _connection_reason(message: str) -> str:
    lowered = message.lower()
    for needle, reason in (
        ("connection refused", "connection refused"),
        ("timeout expired", "connection timed out"),
        ("timed out", "connection timed out"),
        ("could not translate host name", "unknown host"),
        ("name or service not known", "unknown host"),
        ("no such file or directory", "no server socket"),
        ("server closed the connection", "the server closed the connection"),
        ("does not exist", message),
    ):
        if needle in lowered:
            return reason
    return message


def _seconds(value: float) -> str:
    return f"{value:g} s"

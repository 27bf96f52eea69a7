"""The warehouse's spend and query history, read-only: what `bot.ports.WarehouseUsage` needs.

One statement per question per warehouse, in files under ``queries/<dialect>/usage_*.sql``
(bound parameters only, plain SQL a person can run in the warehouse's console):

==========  ========================================  ======================================
warehouse   spend (``usage_spend``)                   queries (``usage_queries`` + helpers)
==========  ========================================  ======================================
Snowflake   ACCOUNT_USAGE.WAREHOUSE_METERING_HISTORY  ACCOUNT_USAGE.QUERY_HISTORY; tables read
            (credits, hourly, up to 3 h behind)       from ACCESS_HISTORY when granted
BigQuery    `region-…`.INFORMATION_SCHEMA.JOBS (bytes  the same view: user, labels, referenced
            billed, slot-ms), through a query job     tables, error
Redshift    none: billing is per node-hour (no view)  SYS_QUERY_HISTORY; tables read and bytes
                                                      scanned from SYS_QUERY_DETAIL
Databricks  system.billing.usage (DBUs), SQL          system.query.history
            Statement Execution API on a warehouse
==========  ========================================  ======================================

Every statement passes a `SqlGuard` with a *usage* policy (`USAGE_POLICIES`): one SELECT over
exactly those views, allow-listed functions, a row cap. The catalog's own policy keeps refusing
them — query history holds other people's query text, which only these statements read, and
only cut short with its literals masked (`query_text`).

A login without the grant gets `UpstreamAuthError` naming the grant (`GRANTS`), never a bare
"does not exist". `UsageReader` is the port's flow every implementation shares (the window, the
statement, its rows as facts, doctor's check); `open_usage` picks the implementation for the
configured warehouse; PostgreSQL, DuckDB and SQLite have none (None).
"""

from __future__ import annotations

import re
from abc import ABC, abstractmethod
from collections.abc import Mapping
from dataclasses import replace
from datetime import UTC, date, datetime, timedelta
from typing import Any, Literal, Protocol

from bot import metrics
from bot.errors import SourceError
from bot.facts import Price, QueryHistory, QueryRecord, Spend, SpendDay
from bot.ports import WarehouseUsage
from bot.settings import WarehouseSettings
from bot.tools import Check
from integrations.errors import UpstreamAuthError
from integrations.warehouse._rest import CONNECTOR
from integrations.warehouse.guard import SYSTEM, CatalogPolicy, SqlGuard
from integrations.warehouse.sql import QUERIES

# The usage statements each warehouse has, as ``queries/<dialect>/usage_<name>.sql``.
STATEMENTS: Mapping[str, tuple[str, ...]] = {
    "snowflake": ("spend", "queries", "tables"),
    "redshift": ("queries", "details", "users"),
    "bigquery": ("spend", "queries"),
    "databricks": ("spend", "queries"),
}
ORDERS = ("slowest", "costliest", "newest")
TEXT_CHARS = 300  # query text kept per record, after masking
MAX_LIMIT = 100  # most queries one call returns
OPERATIONS = ("usage.spend", "usage.queries")


class DescribedUsage(WarehouseUsage, Protocol):
    """The port plus what the tools and `pipebot doctor` need: the configured price and a
    check that the login may read the views."""

    price: Price | None

    def check(self) -> Check: ...


def statement(dialect: str, name: str) -> str:
    """``queries/<dialect>/usage_<name>.sql``."""
    return (QUERIES / dialect / f"usage_{name}.sql").read_text(encoding="utf-8")


# Exactly the views each warehouse's usage statements read (names in lower case).
USAGE_POLICIES: Mapping[str, CatalogPolicy] = {
    "snowflake": CatalogPolicy(
        schemas={
            "account_usage": frozenset(
                {"warehouse_metering_history", "query_history", "access_history"}
            )
        },
    ),
    "bigquery": CatalogPolicy(schemas={"information_schema": frozenset({"jobs"})}),
    "redshift": CatalogPolicy(
        schemas={"pg_catalog": frozenset({"pg_user"})},
        bare_relations=frozenset({"sys_query_history", "sys_query_detail"}),
        function_schemas=frozenset({"pg_catalog"}),
    ),
    "databricks": CatalogPolicy(
        schemas={"billing": frozenset({"usage"}), "query": frozenset({"history"})},
    ),
}

# What to grant when a usage view is refused, per warehouse.
GRANTS: Mapping[str, str] = {
    "snowflake": "grant the role the SNOWFLAKE.USAGE_VIEWER database role: GRANT DATABASE ROLE "
    "SNOWFLAKE.USAGE_VIEWER TO ROLE <role> (deploy/warehouse-snowflake-role.sql)",
    "bigquery": "grant the service account roles/bigquery.resourceViewer (jobs.listAll, to read "
    "INFORMATION_SCHEMA.JOBS) and roles/bigquery.jobUser (jobs.create, to run the query) on "
    "the project (deploy/warehouse-bigquery-role.sh WITH_USAGE=yes)",
    "redshift": "SYS_QUERY_HISTORY is readable by every user (each sees their own queries); "
    "to see everyone's: ALTER USER <user> SYSLOG ACCESS UNRESTRICTED "
    "(deploy/warehouse-redshift-role.sql)",
    "databricks": "grant the principal USE CATALOG on system, USE SCHEMA and SELECT on "
    "system.billing and system.query, and CAN USE on the SQL warehouse "
    "(deploy/warehouse-databricks-grants.sql)",
}

# How far behind each spend view runs (documented latencies; Databricks' is not documented
# and assumed). A window ending later than now - this would undercount its last hours.
SETTLES_HOURS: Mapping[str, int] = {"snowflake": 3, "bigquery": 0, "redshift": 0, "databricks": 6}


def refused(dialect: str, what: str, reason: str) -> UpstreamAuthError:
    """The login may not read `what`: the warehouse's words and the grant to add."""
    return UpstreamAuthError(SYSTEM, f"cannot read {what}: {reason} — {GRANTS[dialect]}")


# --- money -----------------------------------------------------------------------------------

TIB = float(1024**4)
DEFAULT_TIB_PRICE = 6.25  # BigQuery on-demand, US multi-region (cloud.google.com/bigquery/pricing)


def price_for(dialect: str, settings: WarehouseSettings) -> Price | None:
    """The configured price of the warehouse's unit (None: show the unit only)."""
    if dialect == "snowflake" and settings.credit_price is not None:
        return Price(
            amount=settings.credit_price,
            currency=settings.currency,
            per_label="credit",
            origin="PIPEBOT_WAREHOUSE__CREDIT_PRICE",
        )
    if dialect == "bigquery" and settings.tib_price is not None:
        default = settings.tib_price == DEFAULT_TIB_PRICE
        return Price(
            amount=settings.tib_price,
            currency=settings.currency,
            per=TIB,
            per_label="TiB billed",
            origin="the on-demand list price (PIPEBOT_WAREHOUSE__TIB_PRICE default)"
            if default
            else "PIPEBOT_WAREHOUSE__TIB_PRICE",
        )
    if dialect == "databricks" and settings.dbu_price is not None:
        return Price(
            amount=settings.dbu_price,
            currency=settings.currency,
            per_label="DBU",
            origin="PIPEBOT_WAREHOUSE__DBU_PRICE",
        )
    return None


# --- query text ------------------------------------------------------------------------------

# String literals ('…' with '' escapes, $$…$$ and $tag$…$tag$ bodies) and long numbers: where
# e-mail addresses, customer ids, tokens and passwords sit in a statement.
_LITERALS = re.compile(r"'(?:[^']|'')*(?:'|$)|\$(\w*)\$.*?(?:\$\1\$|$)|\b\d{5,}\b", re.S)
_SECRET_WORDS = re.compile(
    r"(?i)\b(password|secret|token|credentials|aws_secret_access_key|private_key)"
    r"\s*[=:]\s*[^\s,)]+"
)
_SPACES = re.compile(r"\s+")


def query_text(raw: Any, *, limit: int = TEXT_CHARS) -> str:
    """A query's text safe to show: literals masked (``'…'``, ``N``), secrets after a secret
    word masked, whitespace collapsed, cut at `limit` characters."""
    if not raw:
        return ""
    text = str(raw)

    def mask(match: re.Match[str]) -> str:
        token = match.group(0)
        return "N" if token[:1].isdigit() else "'…'"

    text = _LITERALS.sub(mask, text)
    text = _SECRET_WORDS.sub(lambda m: f"{m.group(1)} …", text)
    text = _SPACES.sub(" ", text).strip()
    return text if len(text) <= limit else text[: limit - 1].rstrip() + "…"


def error_line(message: Any, code: Any = None) -> str:
    """The error a query failed with on one line — ``000904: SQL compilation error: …`` — its
    literals masked (messages quote data); the error code stays as the warehouse wrote it."""
    text = query_text(message, limit=300)
    code_text = str(code).strip() if code not in (None, "") else ""
    return f"{code_text}: {text}" if code_text and text else code_text or text


# --- values ----------------------------------------------------------------------------------


def number(value: Any) -> float | None:
    if value is None or isinstance(value, bool):
        return None
    try:
        return float(value)
    except (TypeError, ValueError):
        return None


def integer(value: Any) -> int | None:
    found = number(value)
    return None if found is None else int(found)


def seconds(value: Any, per_second: float) -> float | None:
    found = number(value)
    return None if found is None else found / per_second


def utc(value: Any) -> datetime | None:
    if value is None:
        return None
    if isinstance(value, str):
        try:
            value = datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError:
            return None
    if not isinstance(value, datetime):
        return None
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def day(value: Any) -> date:
    """A spend row's day: a DATE as it is, a timestamp's UTC day (a naive one is UTC)."""
    if isinstance(value, datetime):
        return value.astimezone(UTC).date() if value.tzinfo else value.date()
    if isinstance(value, date):
        return value
    return date.fromisoformat(str(value)[:10])


_PER_SECOND = {"ms": 1000.0, "us": 1_000_000.0}


def query_record(
    row: Mapping[str, Any], *, failed: bool, unit: Literal["ms", "us"] = "ms", **fields: Any
) -> QueryRecord:
    """A ``usage_queries`` row as a `QueryRecord`. Every warehouse's statement names its
    columns alike (query_id, user_name, tag, warehouse, status, error_code, error_message,
    started_at, elapsed_/queued_/compute_ in `unit`, bytes_scanned, query_text; a column a
    warehouse lacks reads as None); `fields` are what only this warehouse knows."""
    per_second = _PER_SECOND[unit]
    record = QueryRecord(
        query_id=str(row["query_id"]),
        user=str(row.get("user_name") or ""),
        tag=str(row.get("tag") or ""),
        warehouse=str(row.get("warehouse") or ""),
        status=str(row.get("status") or ""),
        failed=failed,
        error=error_line(row.get("error_message"), row.get("error_code")) if failed else "",
        started_at=utc(row.get("started_at")),
        elapsed_s=seconds(row.get(f"elapsed_{unit}"), per_second),
        queued_s=seconds(row.get(f"queued_{unit}"), per_second),
        compute_s=seconds(row.get(f"compute_{unit}"), per_second),
        bytes_scanned=integer(row.get("bytes_scanned")),
        text=query_text(row.get("query_text")),
    )
    return replace(record, **fields) if fields else record


def check_window(since: datetime, until: datetime, order: str, limit: int) -> None:
    if since.tzinfo is None or until.tzinfo is None:
        raise ValueError("usage windows are aware datetimes (UTC)")
    if until <= since:
        raise ValueError("the window ends before it starts")
    if order not in ORDERS:
        raise ValueError(f"order is one of {', '.join(ORDERS)}, not {order!r}")
    if not 1 <= limit <= MAX_LIMIT:
        raise ValueError(f"limit is 1 to {MAX_LIMIT}")


# --- the readers -----------------------------------------------------------------------------


class UsageReader(ABC):
    """`WarehouseUsage` as every warehouse answers it: check the window, run the warehouse's
    ``spend`` or ``queries`` statement through its usage guard, turn the rows into facts; and
    doctor's `check`. A warehouse runs a named statement (`_rows`), says what its rows mean
    (`_spend_day`, `_records`) and what doctor read (`_probe`); the words describing its
    figures are the attributes below."""

    system = SYSTEM
    where: str
    spend_unit = ""
    spend_source = ""
    queries_source = ""
    cost_means = ""

    def __init__(self, dialect: str, *, price: Price | None, row_cap: int) -> None:
        self.dialect = dialect
        self.settles = timedelta(hours=SETTLES_HOURS[dialect])
        self.price = price
        self.row_cap = row_cap
        self._guard = SqlGuard(dialect, row_cap=row_cap, policy=USAGE_POLICIES[dialect])
        self._sql = {name: statement(dialect, name) for name in STATEMENTS[dialect]}
        metrics.declare_connector(CONNECTOR, OPERATIONS)

    # --- the WarehouseUsage port -------------------------------------------------------

    def spend(self, since: datetime, until: datetime) -> Spend:
        check_window(since, until, "newest", 1)
        rows = self._rows(
            "spend", {"since": since, "until": until}, limit=self.row_cap, operation="usage.spend"
        )
        return Spend(
            unit=self.spend_unit,
            days=tuple(self._spend_day(row) for row in rows),
            source=self.spend_source,
            price=self.price,
        )

    def queries(
        self,
        since: datetime,
        until: datetime,
        *,
        order: str = "slowest",
        limit: int = 10,
        failed_only: bool = False,
        warehouse: str | None = None,
    ) -> QueryHistory:
        check_window(since, until, order, limit)
        params = {
            "since": self._bind_time(since),
            "until": self._bind_time(until),
            "order": order,
            "failed_only": failed_only,
            "warehouse": warehouse,
        }
        rows = self._rows("queries", params, limit=limit, operation="usage.queries")
        records, notes = self._records(rows, since, until)
        return QueryHistory(
            records=tuple(records),
            source=self.queries_source,
            cost_means=self.cost_means,
            notes=tuple(notes),
        )

    def check(self) -> Check:
        """Doctor: the login reads the usage views (`_probe`), else the grant to add."""
        try:
            detail = self._probe()
        except SourceError as exc:
            return Check(system=SYSTEM, ok=False, detail=f"usage: {exc.reason}", target=self.where)
        return Check(system=SYSTEM, ok=True, detail=f"usage: {detail}", target=self.where)

    # --- what a warehouse supplies -----------------------------------------------------

    @abstractmethod
    def _rows(
        self, name: str, params: Mapping[str, Any], *, limit: int, operation: str
    ) -> list[dict[str, Any]]:
        """The rows of statement `name` (``usage_<name>.sql``), keys in lower case."""

    @abstractmethod
    def _spend_day(self, row: Mapping[str, Any]) -> SpendDay: ...

    @abstractmethod
    def _records(
        self, rows: list[dict[str, Any]], since: datetime, until: datetime
    ) -> tuple[list[QueryRecord], list[str]]:
        """The ``queries`` rows as records, and notes on what they leave out."""

    @abstractmethod
    def _probe(self) -> str:
        """Read a little of the usage views; what was read, for doctor."""

    def _bind_time(self, value: datetime) -> datetime:
        return value

    def _newest(self, span: timedelta) -> str:
        """Whether a query started in the last `span` ("a query" / "no query")."""
        now = datetime.now(UTC)
        found = self.queries(now - span, now, order="newest", limit=1)
        return "a query" if found.records else "no query"


# --- which one -------------------------------------------------------------------------------


def open_usage(settings: WarehouseSettings, catalog: Any) -> DescribedUsage | None:
    """The usage reader for the configured warehouse, sharing `catalog`'s connections or API
    client; None when its dialect keeps no usage pipebot reads (PostgreSQL, DuckDB, SQLite) or
    ``PIPEBOT_WAREHOUSE__USAGE`` is off."""
    if not settings.usage:
        return None
    dialect = getattr(catalog, "dialect", "")
    if dialect in ("snowflake", "redshift"):
        from integrations.warehouse.sql_usage import SqlUsage

        return SqlUsage(catalog, price=price_for(dialect, settings))
    if dialect == "bigquery":
        from integrations.warehouse.bigquery_usage import BigQueryUsage

        return BigQueryUsage.for_catalog(catalog, settings)
    if dialect == "databricks":
        from integrations.warehouse.databricks_usage import DatabricksUsage

        return DatabricksUsage.for_catalog(catalog, settings)
    return None

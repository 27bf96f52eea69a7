"""`SqlUsage`: spend and query history of Snowflake and Redshift, over the catalog's own
read-only, time-limited, tagged connections (`Catalog.select`).

Snowflake: ``SNOWFLAKE.ACCOUNT_USAGE`` — WAREHOUSE_METERING_HISTORY (credits per warehouse and
hour, up to 3 h behind), QUERY_HISTORY (up to 45 min behind) and, when the role may read it
(Enterprise Edition, SNOWFLAKE.GOVERNANCE_VIEWER), ACCESS_HISTORY for the tables each query
read. Redshift: SYS_QUERY_HISTORY, SYS_QUERY_DETAIL (tables scanned, bytes) and ``pg_user``
for names — three statements, as Redshift's system views are read one at a time; a provisioned
cluster has no spend view at all, which `spend` says.

    usage = SqlUsage(catalog)
    usage.queries(since, until, order="slowest", limit=5).records
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping
from dataclasses import replace
from datetime import UTC, date, datetime, timedelta
from typing import Any

from bot import metrics
from bot.errors import ConfigError, NotFound, SourceAuthError, SourceError
from bot.facts import Price, QueryHistory, QueryRecord, Spend, SpendDay
from bot.tools import Check
from integrations.warehouse.catalog import CONNECTOR, Catalog
from integrations.warehouse.guard import SYSTEM, SqlGuard
from integrations.warehouse.usage import (
    OPERATIONS,
    SETTLES_HOURS,
    STATEMENTS,
    USAGE_POLICIES,
    check_window,
    error_line,
    integer,
    number,
    query_text,
    refused,
    seconds,
    statement,
    utc,
)

logger = logging.getLogger(__name__)

_VIEWS = {"snowflake": "SNOWFLAKE.ACCOUNT_USAGE.QUERY_HISTORY", "redshift": "SYS_QUERY_HISTORY"}
_SOURCES = {
    "snowflake": "SNOWFLAKE.ACCOUNT_USAGE.QUERY_HISTORY (up to 45 min behind)",
    "redshift": "SYS_QUERY_HISTORY, SYS_QUERY_DETAIL",
}
_COST_MEANS = {
    "snowflake": "estimated credits: execution time × the warehouse size's credits per hour, "
    "plus cloud-services credits (queries running together share a warehouse, so this is an "
    "upper bound per query)",
    "redshift": "execution time (a provisioned cluster costs the same whatever runs)",
}
REDSHIFT_NO_SPEND = (
    "Redshift keeps no spend view: a provisioned cluster bills per node-hour whatever runs "
    "(the bill is in AWS Cost Explorer), so only its slow and failing queries are shown"
)
# Snowflake's statuses of a query that did not complete.
_SNOWFLAKE_FAILED = {"FAIL", "FAILED_WITH_ERROR", "FAILED_WITH_INCIDENT", "INCIDENT"}
_TABLE_DOMAINS = {"table", "view", "materialized view", "external table", "dynamic table"}


class SqlUsage:
    """`bot.ports.WarehouseUsage` for a Snowflake or Redshift `Catalog`."""

    system = SYSTEM

    def __init__(self, catalog: Catalog, *, price: Price | None = None) -> None:
        if catalog.dialect not in _VIEWS:
            raise ConfigError(f"no usage views pipebot reads on {catalog.dialect}")
        self.dialect: str = catalog.dialect
        self.where: str = catalog.where
        self.settles = timedelta(hours=SETTLES_HOURS[self.dialect])
        self.price = price
        self._catalog = catalog
        self._guard = SqlGuard(
            self.dialect, row_cap=catalog.row_cap, policy=USAGE_POLICIES[self.dialect]
        )
        self._sql = {name: statement(self.dialect, name) for name in STATEMENTS[self.dialect]}
        metrics.declare_connector(CONNECTOR, OPERATIONS)

    def __repr__(self) -> str:
        return f"SqlUsage({self.dialect} at {self.where})"

    # --- the WarehouseUsage port -------------------------------------------------------

    def spend(self, since: datetime, until: datetime) -> Spend:
        check_window(since, until, "newest", 1)
        if self.dialect == "redshift":
            return Spend(unit="", unavailable=REDSHIFT_NO_SPEND)
        view = "SNOWFLAKE.ACCOUNT_USAGE.WAREHOUSE_METERING_HISTORY"
        rows = self._select(
            "spend",
            {"since": since, "until": until},
            limit=self._catalog.row_cap,
            what=view,
            operation="usage.spend",
        )
        days = tuple(
            SpendDay(
                day=_day(row["day"]),
                warehouse=str(row["warehouse"] or ""),
                amount=number(row["amount"]) or 0.0,
                parts=(
                    ("compute credits", number(row["compute"]) or 0.0),
                    ("cloud services credits", number(row["cloud_services"]) or 0.0),
                ),
            )
            for row in rows
        )
        return Spend(
            unit="credits",
            days=days,
            source=f"{view} (hourly, up to 3 h behind; credits used, before the daily "
            "cloud-services adjustment)",
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
        rows = self._select(
            "queries", params, limit=limit, what=_VIEWS[self.dialect], operation="usage.queries"
        )
        if self.dialect == "snowflake":
            records = [_snowflake_record(row) for row in rows]
            records, notes = self._snowflake_tables(records, since, until)
        else:
            records, notes = self._redshift_details(rows, since, until)
        return QueryHistory(
            records=tuple(records),
            source=_SOURCES[self.dialect],
            cost_means=_COST_MEANS[self.dialect],
            notes=tuple(notes),
        )

    def check(self) -> Check:
        """One query of the last day (and, on Snowflake, the day's metering): the grants."""
        now = datetime.now(UTC)
        try:
            found = self.queries(now - timedelta(days=1), now, order="newest", limit=1)
            if self.dialect == "snowflake":
                self.spend(now - timedelta(days=1), now)
        except SourceError as exc:
            return Check(system=SYSTEM, ok=False, detail=f"usage: {exc.reason}", target=self.where)
        what = "metering and query history" if self.dialect == "snowflake" else "query history"
        return Check(
            system=SYSTEM,
            ok=True,
            detail=f"usage: read the {what} "
            f"({'a query' if found.records else 'no query'} in the last day)",
            target=self.where,
        )

    # --- Snowflake: tables read --------------------------------------------------------

    def _snowflake_tables(
        self, records: list[QueryRecord], since: datetime, until: datetime
    ) -> tuple[list[QueryRecord], list[str]]:
        """Tables each query read, from ACCESS_HISTORY — Enterprise Edition and a role that
        may read it; without them the records stand and a note says why tables are unknown."""
        if not records:
            return records, []
        try:
            rows = self._select(
                "tables",
                {"since": since, "until": until, "ids": [r.query_id for r in records]},
                limit=len(records),
                what="SNOWFLAKE.ACCOUNT_USAGE.ACCESS_HISTORY",
                operation="usage.queries",
            )
        except SourceAuthError as exc:
            logger.info("no tables read for Snowflake queries: %s", exc.reason)
            return records, [
                "Tables read are unknown: ACCESS_HISTORY needs Enterprise Edition and a role "
                "that may read it (GRANT DATABASE ROLE SNOWFLAKE.GOVERNANCE_VIEWER)."
            ]
        tables = {str(row["query_id"]): _objects(row["objects"]) for row in rows}
        return [replace(r, tables=tables.get(r.query_id, ())) for r in records], []

    # --- Redshift: names, tables, bytes ------------------------------------------------

    def _redshift_details(
        self, rows: list[dict[str, Any]], since: datetime, until: datetime
    ) -> tuple[list[QueryRecord], list[str]]:
        if not rows:
            return [], []
        ids = sorted({int(row["user_id"]) for row in rows if row["user_id"] is not None})
        names: dict[int, str] = {}
        if ids:
            found = self._select(
                "users", {"ids": ids}, limit=len(ids), what="pg_user", operation="usage.queries"
            )
            names = {int(r["user_id"]): str(r["user_name"]).strip() for r in found}
        details = self._select(
            "details",
            {"ids": [int(row["query_id"]) for row in rows]},
            limit=self._catalog.row_cap,
            what="SYS_QUERY_DETAIL",
            operation="usage.queries",
        )
        tables: dict[str, list[str]] = {}
        scanned: dict[str, int] = {}
        for detail in details:
            key = str(detail["query_id"])
            tables.setdefault(key, []).append(str(detail["table_name"]))
            scanned[key] = scanned.get(key, 0) + (integer(detail["bytes_scanned"]) or 0)
        records = [
            _redshift_record(row, names, tuple(tables.get(str(row["query_id"]), ())), scanned)
            for row in rows
        ]
        notes = []
        if len({r.user for r in records}) == 1 and len(records) > 1:
            # A user without SYSLOG ACCESS UNRESTRICTED sees only their own queries.
            notes.append(
                f"Every query listed is {records[0].user}'s: Redshift shows a user only their "
                "own queries unless it has SYSLOG ACCESS UNRESTRICTED."
            )
        return records, notes

    # --- statements --------------------------------------------------------------------

    def _bind_time(self, value: datetime) -> datetime:
        # Redshift's SYS views hold UTC timestamps without a zone: bind the same, so the
        # session's TimeZone cannot shift the window.
        utc_value = value.astimezone(UTC)
        return utc_value.replace(tzinfo=None) if self.dialect == "redshift" else utc_value

    def _select(
        self,
        name: str,
        params: Mapping[str, Any],
        *,
        limit: int,
        what: str,
        operation: str,
    ) -> list[dict[str, Any]]:
        try:
            rows = self._catalog.select(
                self._sql[name], params, guard=self._guard, limit=limit, operation=operation
            )
        except (SourceAuthError, NotFound) as exc:
            # Snowflake says "does not exist or not authorized" for a view the role may not
            # read; both mean the grant is missing, since these views always exist.
            raise refused(self.dialect, what, exc.reason) from exc
        # Snowflake's names arrive lower-cased through SQLAlchemy, not always through others.
        return [{str(k).lower(): v for k, v in row.items()} for row in rows]


def _snowflake_record(row: Mapping[str, Any]) -> QueryRecord:
    status = str(row["status"] or "")
    failed = status.upper() in _SNOWFLAKE_FAILED
    return QueryRecord(
        query_id=str(row["query_id"]),
        user=str(row["user_name"] or ""),
        tag=str(row["tag"] or ""),
        warehouse=str(row["warehouse"] or ""),
        status=status,
        failed=failed,
        error=error_line(row["error_message"], row["error_code"]) if failed else "",
        started_at=utc(row["started_at"]),
        elapsed_s=seconds(row["elapsed_ms"], 1000),
        queued_s=seconds(row["queued_ms"], 1000),
        compute_s=seconds(row["compute_ms"], 1000),
        bytes_scanned=integer(row["bytes_scanned"]),
        credits=number(row["credits"]),
        text=query_text(row["query_text"]),
    )


def _redshift_record(
    row: Mapping[str, Any],
    names: Mapping[int, str],
    tables: tuple[str, ...],
    scanned: Mapping[str, int],
) -> QueryRecord:
    status = str(row["status"] or "")
    user_id = integer(row["user_id"])
    key = str(row["query_id"])
    return QueryRecord(
        query_id=key,
        user=names.get(user_id, f"user id {user_id}") if user_id is not None else "",
        tag=str(row["tag"] or ""),
        warehouse=str(row["warehouse"] or ""),
        status=status,
        failed=status == "failed",
        error=error_line(row["error_message"]) if status == "failed" else "",
        started_at=utc(row["started_at"]),
        elapsed_s=seconds(row["elapsed_us"], 1_000_000),
        queued_s=seconds(row["queued_us"], 1_000_000),
        compute_s=seconds(row["compute_us"], 1_000_000),
        bytes_scanned=scanned.get(key),
        tables=tables,
        text=query_text(row["query_text"]),
    )


def _objects(value: Any) -> tuple[str, ...]:
    """Table names in an ACCESS_HISTORY objects array (JSON text through the connector)."""
    try:
        listed = json.loads(value) if isinstance(value, str) else value
    except ValueError:
        return ()
    names = [
        str(item.get("objectName"))
        for item in listed or ()
        if isinstance(item, dict)
        and item.get("objectName")
        and str(item.get("objectDomain", "table")).lower() in _TABLE_DOMAINS
    ]
    return tuple(dict.fromkeys(names))


def _day(value: Any) -> date:
    if isinstance(value, datetime):
        return value.astimezone(UTC).date() if value.tzinfo else value.date()
    if isinstance(value, date):
        return value
    return date.fromisoformat(str(value)[:10])

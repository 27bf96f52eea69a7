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
from datetime import UTC, datetime, timedelta
from typing import Any

from bot.errors import ConfigError, NotFound, SourceAuthError
from bot.facts import Price, QueryRecord, Spend, SpendDay
from integrations.warehouse.catalog import Catalog
from integrations.warehouse.usage import (
    UsageReader,
    check_window,
    day,
    integer,
    number,
    query_record,
    refused,
)

logger = logging.getLogger(__name__)

# The view each statement reads, named when the login may not read it.
_VIEWS = {
    "snowflake": {
        "spend": "SNOWFLAKE.ACCOUNT_USAGE.WAREHOUSE_METERING_HISTORY",
        "queries": "SNOWFLAKE.ACCOUNT_USAGE.QUERY_HISTORY",
        "tables": "SNOWFLAKE.ACCOUNT_USAGE.ACCESS_HISTORY",
    },
    "redshift": {
        "queries": "SYS_QUERY_HISTORY",
        "details": "SYS_QUERY_DETAIL",
        "users": "pg_user",
    },
}
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


class SqlUsage(UsageReader):
    """`bot.ports.WarehouseUsage` for a Snowflake or Redshift `Catalog`."""

    spend_unit = "credits"
    spend_source = (
        f"{_VIEWS['snowflake']['spend']} (hourly, up to 3 h behind; credits used, before the "
        "daily cloud-services adjustment)"
    )

    def __init__(self, catalog: Catalog, *, price: Price | None = None) -> None:
        if catalog.dialect not in _VIEWS:
            raise ConfigError(f"no usage views pipebot reads on {catalog.dialect}")
        super().__init__(catalog.dialect, price=price, row_cap=catalog.row_cap)
        self.where = catalog.where
        self.queries_source = _SOURCES[self.dialect]
        self.cost_means = _COST_MEANS[self.dialect]
        self._catalog = catalog

    def __repr__(self) -> str:
        return f"SqlUsage({self.dialect} at {self.where})"

    # --- what the rows mean ------------------------------------------------------------

    def spend(self, since: datetime, until: datetime) -> Spend:
        if self.dialect == "redshift":
            check_window(since, until, "newest", 1)
            return Spend(unit="", unavailable=REDSHIFT_NO_SPEND)
        return super().spend(since, until)

    def _spend_day(self, row: Mapping[str, Any]) -> SpendDay:
        return SpendDay(
            day=day(row["day"]),
            warehouse=str(row["warehouse"] or ""),
            amount=number(row["amount"]) or 0.0,
            parts=(
                ("compute credits", number(row["compute"]) or 0.0),
                ("cloud services credits", number(row["cloud_services"]) or 0.0),
            ),
        )

    def _records(
        self, rows: list[dict[str, Any]], since: datetime, until: datetime
    ) -> tuple[list[QueryRecord], list[str]]:
        if self.dialect == "snowflake":
            return self._snowflake_tables([_snowflake_record(row) for row in rows], since, until)
        return self._redshift_details(rows, since, until)

    def _probe(self) -> str:
        """One query of the last day (and, on Snowflake, the day's metering): the grants."""
        found = self._newest(timedelta(days=1))
        if self.dialect == "snowflake":
            now = datetime.now(UTC)
            self.spend(now - timedelta(days=1), now)
        what = "metering and query history" if self.dialect == "snowflake" else "query history"
        return f"read the {what} ({found} in the last day)"

    # --- Snowflake: tables read --------------------------------------------------------

    def _snowflake_tables(
        self, records: list[QueryRecord], since: datetime, until: datetime
    ) -> tuple[list[QueryRecord], list[str]]:
        """Tables each query read, from ACCESS_HISTORY — Enterprise Edition and a role that
        may read it; without them the records stand and a note says why tables are unknown."""
        if not records:
            return records, []
        try:
            rows = self._rows(
                "tables",
                {"since": since, "until": until, "ids": [r.query_id for r in records]},
                limit=len(records),
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
            found = self._rows("users", {"ids": ids}, limit=len(ids), operation="usage.queries")
            names = {int(r["user_id"]): str(r["user_name"]).strip() for r in found}
        details = self._rows(
            "details",
            {"ids": [int(row["query_id"]) for row in rows]},
            limit=self.row_cap,
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

    def _rows(
        self, name: str, params: Mapping[str, Any], *, limit: int, operation: str
    ) -> list[dict[str, Any]]:
        try:
            rows = self._catalog.select(
                self._sql[name], params, guard=self._guard, limit=limit, operation=operation
            )
        except (SourceAuthError, NotFound) as exc:
            # Snowflake says "does not exist or not authorized" for a view the role may not
            # read; both mean the grant is missing, since these views always exist.
            raise refused(self.dialect, _VIEWS[self.dialect][name], exc.reason) from exc
        # Snowflake's names arrive lower-cased through SQLAlchemy, not always through others.
        return [{str(k).lower(): v for k, v in row.items()} for row in rows]


def _snowflake_record(row: Mapping[str, Any]) -> QueryRecord:
    failed = str(row["status"] or "").upper() in _SNOWFLAKE_FAILED
    return query_record(row, failed=failed, credits=number(row["credits"]))


def _redshift_record(
    row: Mapping[str, Any],
    names: Mapping[int, str],
    tables: tuple[str, ...],
    scanned: Mapping[str, int],
) -> QueryRecord:
    user_id = integer(row["user_id"])
    return query_record(
        row,
        failed=str(row["status"] or "") == "failed",
        unit="us",
        user=names.get(user_id, f"user id {user_id}") if user_id is not None else "",
        bytes_scanned=scanned.get(str(row["query_id"])),
        tables=tables,
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

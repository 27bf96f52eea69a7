"""`BigQueryUsage`: a project's spend and query history from ``region-…``.INFORMATION_SCHEMA.JOBS.

JOBS is read with a query job (the only way: it is a view), through the catalog's own
google-cloud-bigquery `Client` with ``jobs.query``: labelled ``app=pipebot``, capped by
``maximumBytesBilled`` (PIPEBOT_WAREHOUSE__USAGE_MAX_BYTES_BILLED; INFORMATION_SCHEMA queries
bill at least 10 MB each and are never cached) and by a job timeout. `check` prices the
statement with a dry run instead — free, and it fails the same way a missing grant would.

Spend is on-demand bytes billed per project and UTC day, with slot-hours beside it (what a
project on reservations pays for); money is bytes × the TiB price, an estimate.
"""

from __future__ import annotations

import logging
import math
import re
from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, date, datetime, timedelta
from typing import TYPE_CHECKING, Any, TypeVar

from bot import metrics
from bot.errors import ConfigError, SourceError
from bot.facts import Price, QueryHistory, QueryRecord, Spend, SpendDay
from bot.settings import WarehouseSettings
from bot.tools import Check
from integrations.errors import UpstreamError
from integrations.warehouse.bigquery import LABELS, BigQueryCatalog
from integrations.warehouse.bigquery import _translate as translate_error
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
    price_for,
    query_text,
    refused,
    seconds,
    statement,
    utc,
)

if TYPE_CHECKING:
    from google.cloud.bigquery import Client

logger = logging.getLogger(__name__)

CONNECTOR = "warehouse"
_REGION = re.compile(r"[a-z][a-z0-9-]{1,40}\Z")
_SLOT_MS_PER_HOUR = 3_600_000.0
T = TypeVar("T")


class BigQueryUsage:
    """`bot.ports.WarehouseUsage` for one BigQuery project (its region's JOBS view)."""

    system = SYSTEM
    dialect = "bigquery"

    def __init__(
        self,
        client: Client,
        project: str,
        *,
        location: str | None = None,
        price: Price | None = None,
        max_bytes_billed: int = 1024**3,
        statement_timeout: float = 10.0,
        row_cap: int = 5000,
    ) -> None:
        region = (location or "US").lower()
        if not _REGION.match(region):
            raise ConfigError(f"not a BigQuery location: {location!r} (e.g. US, EU, europe-west1)")
        self.project = project
        self.where = f"BigQuery project {project} (region-{region})"
        self.view = f"`region-{region}`.INFORMATION_SCHEMA.JOBS"
        self.settles = timedelta(hours=SETTLES_HOURS["bigquery"])
        self.price = price
        self.max_bytes_billed = max_bytes_billed
        self.statement_timeout = statement_timeout
        self.row_cap = row_cap
        self._client = client
        self._location = location
        self._guard = SqlGuard("bigquery", row_cap=row_cap, policy=USAGE_POLICIES["bigquery"])
        views = f"`region-{region}`.INFORMATION_SCHEMA"
        self._sql = {
            name: statement("bigquery", name).replace("{views}", views)
            for name in STATEMENTS["bigquery"]
        }
        metrics.declare_connector(CONNECTOR, OPERATIONS)

    @classmethod
    def for_catalog(cls, catalog: BigQueryCatalog, settings: WarehouseSettings) -> BigQueryUsage:
        return cls(
            catalog.client,
            catalog.project,
            location=catalog.location,
            price=price_for("bigquery", settings),
            max_bytes_billed=settings.usage_max_bytes_billed,
            statement_timeout=settings.statement_timeout,
            row_cap=settings.row_cap,
        )

    def __repr__(self) -> str:
        return f"BigQueryUsage({self.where})"

    # --- the WarehouseUsage port -------------------------------------------------------

    def spend(self, since: datetime, until: datetime) -> Spend:
        check_window(since, until, "newest", 1)
        rows = self._query(
            "spend",
            {"since": since, "until": until},
            limit=self.row_cap,
            operation="usage.spend",
        )
        days = tuple(
            SpendDay(
                day=_day(row["day"]),
                warehouse=str(row["warehouse"] or ""),
                amount=number(row["bytes_billed"]) or 0.0,
                queries=integer(row["queries"]),
                parts=(("slot-hours", (number(row["slot_ms"]) or 0.0) / _SLOT_MS_PER_HOUR),),
            )
            for row in rows
        )
        return Spend(
            unit="bytes billed",
            days=days,
            source=f"{self.view} (query jobs by creation time; scripts counted through "
            "their child jobs)",
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
        rows = self._query(
            "queries",
            {
                "since": since,
                "until": until,
                "order": order,
                "failed_only": failed_only,
                "warehouse": warehouse,
            },
            limit=limit,
            operation="usage.queries",
        )
        return QueryHistory(
            records=tuple(_record(row) for row in rows),
            source=self.view,
            cost_means="bytes billed (on-demand; zero on reservations, where slot time is "
            "the cost)",
        )

    def check(self) -> Check:
        """A dry run of the query-history statement: free, and refused without the grants."""
        now = datetime.now(UTC)
        try:
            sql, parameters = self._prepare(
                "queries",
                {
                    "since": now - timedelta(days=1),
                    "until": now,
                    "order": "slowest",
                    "failed_only": False,
                    "warehouse": None,
                },
                limit=1,
            )

            def dry_run() -> int:
                from google.cloud import bigquery

                job = self._client.query(
                    sql,
                    job_config=bigquery.QueryJobConfig(
                        dry_run=True,
                        use_query_cache=False,
                        labels=dict(LABELS),
                        query_parameters=parameters,
                    ),
                    location=self._location,
                    timeout=self.statement_timeout,
                )
                return int(job.total_bytes_processed or 0)

            processed = self._call("usage.queries", "price the query-history query", dry_run)
        except SourceError as exc:
            return Check(system=SYSTEM, ok=False, detail=f"usage: {exc.reason}", target=self.where)
        return Check(
            system=SYSTEM,
            ok=True,
            detail=f"usage: a day of query history would process {processed:,} bytes "
            f"(cap {self.max_bytes_billed:,})",
            target=self.where,
        )

    # --- the query job -----------------------------------------------------------------

    def _prepare(
        self, name: str, params: Mapping[str, Any], *, limit: int
    ) -> tuple[str, list[Any]]:
        from google.cloud import bigquery

        guarded = self._guard.check(self._sql[name], row_cap=limit)
        # The guard renders parameters as :name, BigQuery's are @name.
        names = "|".join(re.escape(p) for p in guarded.parameters)
        sql = re.sub(rf":({names})\b", r"@\1", guarded.sql) if names else guarded.sql
        types = {"since": "TIMESTAMP", "until": "TIMESTAMP", "failed_only": "BOOL"}
        parameters = [
            bigquery.ScalarQueryParameter(p, types.get(p, "STRING"), params[p])
            for p in guarded.parameters
        ]
        return sql, parameters

    def _query(
        self, name: str, params: Mapping[str, Any], *, limit: int, operation: str
    ) -> list[dict[str, Any]]:
        from google.cloud import bigquery

        sql, parameters = self._prepare(name, params, limit=limit)
        config = bigquery.QueryJobConfig(
            labels=dict(LABELS),
            maximum_bytes_billed=self.max_bytes_billed,
            query_parameters=parameters,
            use_query_cache=False,
        )
        config.job_timeout_ms = max(1000, math.ceil(self.statement_timeout * 1000))

        def run() -> list[dict[str, Any]]:
            rows = self._client.query_and_wait(
                sql,
                job_config=config,
                location=self._location,
                api_timeout=self.statement_timeout,
                wait_timeout=self.statement_timeout,
                max_results=limit,
            )
            return [dict(row.items()) for row in rows]

        return self._call(operation, f"read {self.view}", run)

    def _call(self, operation: str, doing: str, call: Callable[[], T]) -> T:
        from google.api_core import exceptions as api

        with metrics.connector_call(CONNECTOR, operation):
            try:
                return call()
            except SourceError:
                raise
            except api.GoogleAPICallError as exc:
                raise _translate(exc, doing, self) from exc
            except Exception as exc:
                raise translate_error(exc, doing, self.where) from exc


def _translate(exc: Any, doing: str, usage: BigQueryUsage) -> SourceError:
    reasons = {str(e.get("reason", "")) for e in exc.errors or () if isinstance(e, dict)}
    message = str(getattr(exc, "message", "") or type(exc).__name__).splitlines()[0][:300]
    if "bytesBilledLimitExceeded" in reasons:
        return UpstreamError(
            SYSTEM,
            f"BigQuery would bill more than {usage.max_bytes_billed:,} bytes to {doing} and "
            "ran nothing: ask for a shorter window or raise "
            "PIPEBOT_WAREHOUSE__USAGE_MAX_BYTES_BILLED",
            status=400,
        )
    if exc.code == 403 and not reasons & {"rateLimitExceeded", "quotaExceeded"}:
        return refused("bigquery", usage.view, f"BigQuery refused (403): {message}")
    return translate_error(exc, doing, usage.where)


def _record(row: Mapping[str, Any]) -> QueryRecord:
    failed = bool(row.get("error_code") or row.get("error_message"))
    labels = _pairs(row.get("labels"))
    return QueryRecord(
        query_id=str(row["query_id"]),
        user=str(row.get("user_name") or ""),
        tag=", ".join(f"{k}={v}" for k, v in labels),
        warehouse=str(row.get("warehouse") or ""),
        status=str(row.get("status") or ""),
        failed=failed,
        error=error_line(row.get("error_message"), row.get("error_code")) if failed else "",
        started_at=utc(row.get("started_at")) or utc(row.get("created_at")),
        elapsed_s=seconds(row.get("elapsed_ms"), 1000),
        queued_s=seconds(row.get("queued_ms"), 1000),
        compute_s=seconds(row.get("compute_ms"), 1000),
        bytes_scanned=integer(row.get("bytes_scanned")),
        bytes_billed=integer(row.get("bytes_billed")),
        tables=_tables(row.get("referenced_tables")),
        text=query_text(row.get("query_text")),
    )


def _pairs(labels: Any) -> list[tuple[str, str]]:
    """JOBS labels (REPEATED key/value records) as pairs."""
    found: list[tuple[str, str]] = []
    for label in labels or ():
        if isinstance(label, Mapping) and label.get("key"):
            found.append((str(label["key"]), str(label.get("value") or "")))
    return found


def _tables(references: Sequence[Any] | None) -> tuple[str, ...]:
    names = [
        f"{t.get('project_id')}.{t.get('dataset_id')}.{t.get('table_id')}"
        for t in references or ()
        if isinstance(t, Mapping) and t.get("table_id")
    ]
    return tuple(dict.fromkeys(names))


def _day(value: Any) -> date:
    if isinstance(value, datetime):
        return value.astimezone(UTC).date()
    if isinstance(value, date):
        return value
    return date.fromisoformat(str(value)[:10])

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
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any, TypeVar

from bot.errors import ConfigError, SourceError
from bot.facts import Price, QueryRecord, SpendDay
from bot.settings import WarehouseSettings
from integrations.errors import UpstreamError
from integrations.warehouse._rest import sdk_call
from integrations.warehouse.bigquery import LABELS, BigQueryCatalog
from integrations.warehouse.bigquery import _translate as translate_error
from integrations.warehouse.guard import SYSTEM
from integrations.warehouse.usage import (
    UsageReader,
    day,
    integer,
    number,
    price_for,
    query_record,
    refused,
    utc,
)

if TYPE_CHECKING:
    from google.cloud.bigquery import Client

logger = logging.getLogger(__name__)

_REGION = re.compile(r"[a-z][a-z0-9-]{1,40}\Z")
_SLOT_MS_PER_HOUR = 3_600_000.0
T = TypeVar("T")


class BigQueryUsage(UsageReader):
    """`bot.ports.WarehouseUsage` for one BigQuery project (its region's JOBS view)."""

    spend_unit = "bytes billed"
    cost_means = "bytes billed (on-demand; zero on reservations, where slot time is the cost)"

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
        super().__init__("bigquery", price=price, row_cap=row_cap)
        self.project = project
        self.where = f"BigQuery project {project} (region-{region})"
        self.view = f"`region-{region}`.INFORMATION_SCHEMA.JOBS"
        self.spend_source = (
            f"{self.view} (query jobs by creation time; scripts counted through their child jobs)"
        )
        self.queries_source = self.view
        self.max_bytes_billed = max_bytes_billed
        self.statement_timeout = statement_timeout
        self._client = client
        self._location = location
        views = f"`region-{region}`.INFORMATION_SCHEMA"
        self._sql = {name: sql.replace("{views}", views) for name, sql in self._sql.items()}

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

    # --- what the rows mean ------------------------------------------------------------

    def _spend_day(self, row: Mapping[str, Any]) -> SpendDay:
        return SpendDay(
            day=day(row["day"]),
            warehouse=str(row["warehouse"] or ""),
            amount=number(row["bytes_billed"]) or 0.0,
            queries=integer(row["queries"]),
            parts=(("slot-hours", (number(row["slot_ms"]) or 0.0) / _SLOT_MS_PER_HOUR),),
        )

    def _records(
        self, rows: list[dict[str, Any]], since: datetime, until: datetime
    ) -> tuple[list[QueryRecord], list[str]]:
        return [_record(row) for row in rows], []

    def _probe(self) -> str:
        """A dry run of the query-history statement: free, and refused without the grants."""
        now = datetime.now(UTC)
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
        return (
            f"a day of query history would process {processed:,} bytes "
            f"(cap {self.max_bytes_billed:,})"
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

    def _rows(
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

    def _call(self, operation: str, doing: str, run: Callable[[], T]) -> T:
        return sdk_call(operation, run, lambda exc: _translate(exc, doing, self))


def _translate(exc: Exception, doing: str, usage: BigQueryUsage) -> SourceError:
    from google.api_core import exceptions as api

    if not isinstance(exc, api.GoogleAPICallError):
        return translate_error(exc, doing, usage.where)
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
    labels = _pairs(row.get("labels"))
    return query_record(
        row,
        failed=bool(row.get("error_code") or row.get("error_message")),
        tag=", ".join(f"{k}={v}" for k, v in labels),
        started_at=utc(row.get("started_at")) or utc(row.get("created_at")),
        bytes_billed=integer(row.get("bytes_billed")),
        tables=_tables(row.get("referenced_tables")),
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

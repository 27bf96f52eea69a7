"""`DatabricksUsage`: DBUs from ``system.billing.usage`` and queries from ``system.query.history``.

Both are system tables, read with SQL through the SQL Statement Execution API
(``POST /api/2.0/sql/statements``, databricks-sdk's ``statement_execution``) on the SQL warehouse
the URL names (``warehouse_id=`` or ``http_path=/sql/1.0/warehouses/ID``): named parameters
only, the result inline as JSON arrays, tagged ``app=pipebot``, and cancelled by Databricks
when it runs past the statement timeout (``on_wait_timeout=CANCEL``).

Spend is DBUs per day and per SQL warehouse, job or cluster (else the product) across the
account's workspaces; system.billing.usage is refreshed through the day, so the last hours are
left out of a window (`settles`, an assumption: the delay is not documented). Money is DBUs ×
PIPEBOT_WAREHOUSE__DBU_PRICE, an estimate (prices differ per SKU).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from datetime import UTC, date, datetime, timedelta
from typing import TYPE_CHECKING, Any, TypeVar

from bot import metrics
from bot.errors import SourceError
from bot.facts import Price, QueryHistory, QueryRecord, Spend, SpendDay
from bot.settings import WarehouseSettings
from bot.tools import Check
from integrations.errors import UpstreamError, UpstreamUnavailable
from integrations.warehouse.databricks import DatabricksCatalog
from integrations.warehouse.databricks import _translate as translate_error
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
    from databricks.sdk import WorkspaceClient

logger = logging.getLogger(__name__)

CONNECTOR = "warehouse"
NO_WAREHOUSE = (
    "Databricks spend and query history are read with SQL on a SQL warehouse: add "
    "warehouse_id=<id> (or http_path=/sql/1.0/warehouses/<id>) to PIPEBOT_WAREHOUSE__URL"
)
# What Databricks says when the principal may not read a system table (or it is not enabled).
_REFUSALS = (
    "INSUFFICIENT_PERMISSIONS",
    "PERMISSION_DENIED",
    "TABLE_OR_VIEW_NOT_FOUND",
    "SCHEMA_NOT_FOUND",
    "does not have",
)
_INTEGERS = {"LONG", "INT", "SHORT", "BYTE", "BIGINT", "INTEGER", "SMALLINT", "TINYINT"}
_NUMBERS = {"DOUBLE", "FLOAT", "DECIMAL"}
T = TypeVar("T")


class DatabricksUsage:
    """`bot.ports.WarehouseUsage` for a Databricks account's system tables."""

    system = SYSTEM
    dialect = "databricks"

    def __init__(
        self,
        client: WorkspaceClient,
        warehouse_id: str | None,
        *,
        where: str,
        price: Price | None = None,
        statement_timeout: float = 10.0,
        row_cap: int = 5000,
    ) -> None:
        self.where = where
        self.warehouse_id = warehouse_id
        self.settles = timedelta(hours=SETTLES_HOURS["databricks"])
        self.price = price
        self.statement_timeout = statement_timeout
        self.row_cap = row_cap
        self._client = client
        self._guard = SqlGuard("databricks", row_cap=row_cap, policy=USAGE_POLICIES["databricks"])
        self._sql = {name: statement("databricks", name) for name in STATEMENTS["databricks"]}
        metrics.declare_connector(CONNECTOR, OPERATIONS)

    @classmethod
    def for_catalog(
        cls, catalog: DatabricksCatalog, settings: WarehouseSettings
    ) -> DatabricksUsage:
        return cls(
            catalog.client,
            catalog.warehouse_id,
            where=catalog.where
            + (f", SQL warehouse {catalog.warehouse_id}" if catalog.warehouse_id else ""),
            price=price_for("databricks", settings),
            statement_timeout=settings.statement_timeout,
            row_cap=settings.row_cap,
        )

    def __repr__(self) -> str:
        return f"DatabricksUsage({self.where})"

    # --- the WarehouseUsage port -------------------------------------------------------

    def spend(self, since: datetime, until: datetime) -> Spend:
        check_window(since, until, "newest", 1)
        rows = self._execute(
            "spend", {"since": since, "until": until}, limit=self.row_cap, what="usage.spend"
        )
        days = tuple(
            SpendDay(
                day=_day(row["day"]),
                warehouse=str(row["warehouse"] or ""),
                amount=number(row["amount"]) or 0.0,
            )
            for row in rows
        )
        return Spend(
            unit="DBUs",
            days=days,
            source="system.billing.usage (all workspaces of the account; refreshed through "
            "the day)",
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
        rows = self._execute(
            "queries",
            {
                "since": since,
                "until": until,
                "order": order,
                "failed_only": failed_only,
                "warehouse": warehouse,
            },
            limit=limit,
            what="usage.queries",
        )
        return QueryHistory(
            records=tuple(_record(row) for row in rows),
            source="system.query.history (SQL warehouses and serverless; about an hour behind)",
            cost_means="task time: the compute the statement's tasks used",
            notes=("Tables read are not in system.query.history.",) if rows else (),
        )

    def check(self) -> Check:
        """One query-history row of the last hour: the warehouse, the grants, the tables."""
        now = datetime.now(UTC)
        try:
            found = self.queries(now - timedelta(hours=1), now, order="newest", limit=1)
        except SourceError as exc:
            return Check(system=SYSTEM, ok=False, detail=f"usage: {exc.reason}", target=self.where)
        return Check(
            system=SYSTEM,
            ok=True,
            detail="usage: read system.query.history "
            f"({'a query' if found.records else 'no query'} in the last hour)",
            target=self.where,
        )

    # --- the statement -----------------------------------------------------------------

    def _execute(
        self, name: str, params: Mapping[str, Any], *, limit: int, what: str
    ) -> list[dict[str, Any]]:
        from databricks.sdk.service.sql import (
            Disposition,
            ExecuteStatementRequestOnWaitTimeout,
            Format,
            QueryTag,
            StatementParameterListItem,
            StatementState,
        )

        if not self.warehouse_id:
            raise UpstreamError(SYSTEM, NO_WAREHOUSE)
        warehouse_id = self.warehouse_id
        guarded = self._guard.check(self._sql[name], row_cap=limit)
        parameters = [
            _parameter(p, params[p], StatementParameterListItem) for p in guarded.parameters
        ]
        view = "system.billing.usage" if name == "spend" else "system.query.history"
        # Databricks waits 5 to 50 s for a result, then cancels the statement (asked below).
        wait = min(50, max(5, round(self.statement_timeout)))

        def run() -> list[dict[str, Any]]:
            response = self._client.statement_execution.execute_statement(
                statement=guarded.sql,
                warehouse_id=warehouse_id,
                parameters=parameters,
                wait_timeout=f"{wait}s",
                on_wait_timeout=ExecuteStatementRequestOnWaitTimeout.CANCEL,
                disposition=Disposition.INLINE,
                format=Format.JSON_ARRAY,
                row_limit=limit,
                query_tags=[QueryTag(key="app", value="pipebot")],
            )
            state = response.status.state if response.status else None
            if state is not StatementState.SUCCEEDED:
                error = response.status.error if response.status else None
                message = (error.message if error else "") or str(state)
                raise self._failed(view, state, message.splitlines()[0][:300], wait)
            columns = [
                (c.name or "", (c.type_name.value if c.type_name else "STRING"))
                for c in (
                    response.manifest.schema.columns
                    if response.manifest and response.manifest.schema
                    else None
                )
                or ()
            ]
            data = list(response.result.data_array or []) if response.result else []
            chunk = response.result.next_chunk_index if response.result else None
            while chunk is not None and response.statement_id:
                more = self._client.statement_execution.get_statement_result_chunk_n(
                    response.statement_id, chunk
                )
                data.extend(more.data_array or [])
                chunk = more.next_chunk_index
            return [
                {
                    name.lower(): _value(value, kind)
                    for (name, kind), value in zip(columns, row, strict=False)
                }
                for row in data
            ]

        return self._call(what, f"read {view}", run)

    def _failed(self, view: str, state: Any, message: str, wait: int) -> SourceError:
        if state is not None and state.value in ("CANCELED", "PENDING", "RUNNING"):
            return UpstreamUnavailable(
                SYSTEM,
                f"Databricks did not finish reading {view} within {wait} s and cancelled it "
                "(PIPEBOT_WAREHOUSE__STATEMENT_TIMEOUT; a stopped SQL warehouse takes a while "
                "to start)",
            )
        if any(word.lower() in message.lower() for word in _REFUSALS):
            return refused("databricks", view, message)
        return UpstreamError(SYSTEM, f"Databricks could not read {view}: {message}")

    def _call(self, operation: str, doing: str, call: Callable[[], T]) -> T:
        from databricks.sdk import errors

        with metrics.connector_call(CONNECTOR, operation):
            try:
                return call()
            except SourceError:
                raise
            except errors.PermissionDenied as exc:
                raise refused(
                    "databricks", f"the SQL warehouse {self.warehouse_id}", str(exc)[:300]
                ) from exc
            except Exception as exc:
                raise translate_error(exc, doing, self.where) from exc


def _parameter(name: str, value: Any, item: Any) -> Any:
    """A named parameter as the API takes it: a string value and its SQL type (no value:
    NULL)."""
    if isinstance(value, bool):
        return item(name=name, type="BOOLEAN", value="true" if value else "false")
    if isinstance(value, datetime):
        stamp = value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
        return item(name=name, type="TIMESTAMP", value=stamp)
    return item(name=name, type="STRING", value=None if value is None else str(value))


def _value(value: Any, kind: str) -> Any:
    """One JSON_ARRAY cell (a string or null) as the column's type says."""
    if value is None:
        return None
    kind = kind.upper()
    if kind in _INTEGERS:
        return integer(value)
    if kind in _NUMBERS:
        return number(value)
    if kind == "BOOLEAN":
        return str(value).lower() == "true"
    if kind == "TIMESTAMP":
        return utc(value)
    if kind == "DATE":
        return date.fromisoformat(str(value)[:10])
    return value


def _record(row: Mapping[str, Any]) -> QueryRecord:
    status = str(row.get("status") or "")
    failed = status == "FAILED"
    return QueryRecord(
        query_id=str(row["query_id"]),
        user=str(row.get("user_name") or ""),
        tag=str(row.get("tag") or ""),
        warehouse=str(row.get("warehouse") or ""),
        status=status,
        failed=failed,
        error=error_line(row.get("error_message")) if failed else "",
        started_at=utc(row.get("started_at")),
        elapsed_s=seconds(row.get("elapsed_ms"), 1000),
        queued_s=seconds(row.get("queued_ms"), 1000),
        compute_s=seconds(row.get("compute_ms"), 1000),
        bytes_scanned=integer(row.get("bytes_scanned")),
        text=query_text(row.get("query_text")),
    )


def _day(value: Any) -> date:
    if isinstance(value, datetime):
        return value.astimezone(UTC).date()
    if isinstance(value, date):
        return value
    return date.fromisoformat(str(value)[:10])

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
from collections.abc import Mapping
from datetime import UTC, date, datetime, timedelta
from typing import TYPE_CHECKING, Any

from bot.errors import SourceError
from bot.facts import Price, QueryRecord, SpendDay
from bot.settings import WarehouseSettings
from integrations.errors import UpstreamError, UpstreamUnavailable
from integrations.warehouse._rest import sdk_call
from integrations.warehouse.databricks import DatabricksCatalog
from integrations.warehouse.databricks import _translate as translate_error
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
    from databricks.sdk import WorkspaceClient

logger = logging.getLogger(__name__)

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
_VIEWS = {"spend": "system.billing.usage", "queries": "system.query.history"}


class DatabricksUsage(UsageReader):
    """`bot.ports.WarehouseUsage` for a Databricks account's system tables."""

    spend_unit = "DBUs"
    spend_source = "system.billing.usage (all workspaces of the account; refreshed through the day)"
    queries_source = "system.query.history (SQL warehouses and serverless; about an hour behind)"
    cost_means = "task time: the compute the statement's tasks used"

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
        super().__init__("databricks", price=price, row_cap=row_cap)
        self.where = where
        self.warehouse_id = warehouse_id
        self.statement_timeout = statement_timeout
        self._client = client

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

    # --- what the rows mean ------------------------------------------------------------

    def _spend_day(self, row: Mapping[str, Any]) -> SpendDay:
        return SpendDay(
            day=day(row["day"]),
            warehouse=str(row["warehouse"] or ""),
            amount=number(row["amount"]) or 0.0,
        )

    def _records(
        self, rows: list[dict[str, Any]], since: datetime, until: datetime
    ) -> tuple[list[QueryRecord], list[str]]:
        notes = ["Tables read are not in system.query.history."] if rows else []
        return [_record(row) for row in rows], notes

    def _probe(self) -> str:
        """One query-history row of the last hour: the warehouse, the grants, the tables."""
        return f"read system.query.history ({self._newest(timedelta(hours=1))} in the last hour)"

    # --- the statement -----------------------------------------------------------------

    def _rows(
        self, name: str, params: Mapping[str, Any], *, limit: int, operation: str
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
        view = _VIEWS[name]
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

        return sdk_call(operation, run, lambda exc: self._translate(exc, f"read {view}"))

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

    def _translate(self, exc: Exception, doing: str) -> SourceError:
        from databricks.sdk import errors

        if isinstance(exc, errors.PermissionDenied):
            return refused("databricks", f"the SQL warehouse {self.warehouse_id}", str(exc)[:300])
        return translate_error(exc, doing, self.where)


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
    return query_record(row, failed=str(row.get("status") or "") == "FAILED")

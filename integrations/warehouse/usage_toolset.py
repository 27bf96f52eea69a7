"""The agent's tools over the warehouse's spend and query history: `warehouse_spend` and
`warehouse_queries` (descriptions in tools.md).

The model names a window, an order and a warehouse — parameters, never SQL. Figures are the
usage views' own (`integrations.warehouse.usage`); money only with a configured price and
always marked as an estimate::

    toolset = usage_toolset(usage)
    toolset.tools()[0].call({"days": 2, "until": "2026-11-24"})  # yesterday and the day before
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict
from datetime import UTC, date, datetime, time, timedelta
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from bot.facts import Price, QueryRecord, Spend
from bot.tools import StaticToolset, ToolResult, ToolStatus
from integrations.warehouse.toolset import described_tool, drop_none
from integrations.warehouse.usage import DescribedUsage

MAX_QUERIES = 50


class _Params(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)


class SpendParams(_Params):
    days: int = Field(7, ge=1, le=31, description="Days to read, ending at `until` (1 = one day)")
    until: date | None = Field(
        None,
        description="Last UTC day to include, e.g. yesterday's date to compare it with the days "
        "before; default: up to now (less the view's delay)",
    )
    warehouse: str | None = Field(
        None,
        max_length=256,
        description="Only this warehouse (as listed by a previous call), else all",
    )


class QueriesParams(_Params):
    order: Literal["costliest", "slowest", "failed", "newest"] = Field(
        "costliest",
        description="costliest (the warehouse's cost measure, see cost_means), slowest "
        "(elapsed time), failed (only failed queries, newest first) or newest",
    )
    hours: int = Field(24, ge=1, le=744, description="Hours to look back from `until`")
    until: datetime | date | None = Field(
        None,
        description="End of the window (UTC): a date means its midnight (so '2026-11-25' with "
        "hours=24 is all of 2026-11-24), or a time like '2026-11-24T18:00:00Z'; default: now",
    )
    warehouse: str | None = Field(None, max_length=256, description="Only this warehouse")
    limit: int = Field(10, ge=1, le=MAX_QUERIES, description="Most queries to return")


def usage_toolset(
    usage: DescribedUsage, *, now: Callable[[], datetime] = lambda: datetime.now(UTC)
) -> StaticToolset:
    """`warehouse_spend` and `warehouse_queries` over `usage`, with its check for doctor."""
    system = usage.system

    def invocation(tool: str, source: str, **params: Any) -> str:
        shown = ", ".join(f"{k}={v!r}" for k, v in params.items() if v is not None)
        return f"{tool}({shown}) on {usage.dialect} usage at {usage.where}: {source}"

    def answer(call: str, status: ToolStatus, **data: Any) -> ToolResult:
        return ToolResult(status=status, invocation=call, system=system, data=data)

    def warehouse_spend(params: SpendParams) -> ToolResult:
        if params.until is not None:
            until = datetime.combine(params.until + timedelta(days=1), time(), tzinfo=UTC)
        else:
            until = now().astimezone(UTC)
            if usage.settles:
                until = (until - usage.settles).replace(minute=0, second=0, microsecond=0)
        window = timedelta(days=params.days)
        since = until - window
        spend = usage.spend(since, until)
        previous = usage.spend(since - window, since)
        call = invocation(
            "warehouse_spend",
            spend.source or "no spend view",
            days=params.days,
            until=params.until.isoformat() if params.until else None,
            warehouse=params.warehouse,
        )
        if spend.unavailable:
            return answer(
                call,
                ToolStatus.NO_DATA,
                searched=f"spend at {usage.where}",
                reason=spend.unavailable,
            )
        data = _spend_data(spend, previous, params.warehouse)
        data["window"] = {"since": since.isoformat(), "until": until.isoformat()}
        data["previous_window"] = {
            "since": (since - window).isoformat(),
            "until": since.isoformat(),
        }
        if not data["by_day"] and not data["previous_total"]:
            return answer(
                call,
                ToolStatus.NO_DATA,
                searched=f"spend of {params.warehouse or 'every warehouse'} from "
                f"{(since - window).isoformat()} to {until.isoformat()} at {usage.where}",
                warehouses_seen=sorted({*spend.by_warehouse(), *previous.by_warehouse()}),
            )
        return answer(call, ToolStatus.SUCCESS, **data)

    def warehouse_queries(params: QueriesParams) -> ToolResult:
        if params.until is None:
            until = now().astimezone(UTC)
        elif isinstance(params.until, datetime):
            until = params.until if params.until.tzinfo else params.until.replace(tzinfo=UTC)
        else:
            until = datetime.combine(params.until, time(), tzinfo=UTC)
        since = until - timedelta(hours=params.hours)
        failed = params.order == "failed"
        history = usage.queries(
            since,
            until,
            order="newest" if failed else params.order,
            limit=params.limit,
            failed_only=failed,
            warehouse=params.warehouse,
        )
        call = invocation(
            "warehouse_queries",
            history.source,
            order=params.order,
            since=since.isoformat(),
            until=until.isoformat(),
            warehouse=params.warehouse,
            limit=params.limit,
        )
        if not history.records:
            what = "failed queries" if failed else "queries"
            return answer(
                call,
                ToolStatus.NO_DATA,
                searched=f"{what} started from {since.isoformat()} to {until.isoformat()}"
                + (f" on {params.warehouse}" if params.warehouse else "")
                + f" at {usage.where}",
                notes=list(history.notes),
            )
        price = getattr(usage, "price", None)
        data: dict[str, Any] = {
            "order": params.order,
            "cost_means": history.cost_means,
            "window": {"since": since.isoformat(), "until": until.isoformat()},
            "queries": [_record(r, price) for r in history.records],
        }
        if history.notes:
            data["notes"] = list(history.notes)
        if len(history.records) == params.limit:
            data["note"] = f"the first {params.limit} only: raise limit or narrow the window"
        return answer(call, ToolStatus.SUCCESS, **data)

    tools = (
        described_tool("warehouse_spend", SpendParams, warehouse_spend, system),
        described_tool("warehouse_queries", QueriesParams, warehouse_queries, system),
    )
    return StaticToolset(system=system, tool_list=tools, checker=usage.check)


def _spend_data(spend: Spend, previous: Spend, warehouse: str | None) -> dict[str, Any]:
    def keep(name: str) -> bool:
        return warehouse is None or name == warehouse

    days = [d for d in spend.days if keep(d.warehouse)]
    now = {w: a for w, a in spend.by_warehouse().items() if keep(w)}
    before = {w: a for w, a in previous.by_warehouse().items() if keep(w)}
    total, previous_total = sum(now.values()), sum(before.values())
    by_warehouse = [
        drop_none(
            {
                "warehouse": name,
                "amount": _round(now.get(name, 0.0)),
                "previous": _round(before.get(name, 0.0)),
                "change_pct": _pct(now.get(name, 0.0), before.get(name, 0.0)),
                "money_estimate": _money(spend.price, now.get(name, 0.0)),
            }
        )
        for name in sorted({*now, *before}, key=lambda w: -now.get(w, 0.0))
    ]
    data: dict[str, Any] = {
        "unit": spend.unit,
        "source": spend.source,
        "total": _round(total),
        "previous_total": _round(previous_total),
        "change_pct": _pct(total, previous_total),
        "by_warehouse": by_warehouse,
        "by_day": [
            drop_none(
                {
                    "day": d.day.isoformat(),
                    "warehouse": d.warehouse,
                    "amount": _round(d.amount),
                    "queries": d.queries,
                    **{name: _round(value) for name, value in d.parts},
                }
            )
            for d in days
        ],
    }
    if spend.price is not None:
        data["price"] = {
            "amount": spend.price.amount,
            "currency": spend.price.currency,
            "per": spend.price.per_label,
            "origin": spend.price.origin,
            "note": "money is an estimate: contract discounts and adjustments are not included",
        }
        data["total_money_estimate"] = _money(spend.price, total)
    return data


def _record(record: QueryRecord, price: Price | None) -> dict[str, Any]:
    data = {k: v for k, v in asdict(record).items() if v not in (None, "", (), False)}
    if record.started_at is not None:
        data["started_at"] = record.started_at.isoformat()
    for key in ("elapsed_s", "queued_s", "compute_s", "credits"):
        if key in data:
            data[key] = _round(data[key])
    if "tables" in data:
        data["tables"] = list(record.tables)
    if record.failed:
        data["failed"] = True
    if price is not None and record.bytes_billed is not None and price.per_label == "TiB billed":
        data["money_estimate"] = _money(price, record.bytes_billed)
    elif price is not None and record.credits is not None and price.per_label == "credit":
        data["money_estimate"] = _money(price, record.credits)
    return data


def _money(price: Price | None, units: float) -> str | None:
    return None if price is None else f"{price.currency} {price.cost(units):,.2f}"


def _pct(now: float, before: float) -> float | None:
    return None if before <= 0 else round((now - before) / before * 100, 1)


def _round(value: float) -> float:
    return round(value, 4) if abs(value) < 100 else round(value, 2)

"""`RecordedUsage`: a warehouse's spend and query history as in-memory data behind the real
`WarehouseUsage` port — hourly metering rows and query records, filtered, grouped and ordered
the way the usage statements do — for playbook tests that are about the playbook, not SQL
(the statements themselves run against fakesnow, PostgreSQL and the REST fakes in
tests/integrations/warehouse/test_usage_*.py)."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta

from bot.errors import SourceError
from bot.facts import Price, QueryHistory, QueryRecord, Spend, SpendDay
from bot.tools import Check


@dataclass
class RecordedUsage:
    hours: list[tuple[datetime, str, float]] = field(default_factory=list)
    records: list[QueryRecord] = field(default_factory=list)
    unit: str = "credits"
    price: Price | None = None
    settles: timedelta = timedelta(hours=3)
    unavailable: str = ""
    refuse: SourceError | None = None  # raised by every call, as a missing grant would
    system: str = "warehouse"
    dialect: str = "snowflake"
    where: str = "Snowflake acme/ANALYTICS"
    calls: list[tuple[str, datetime, datetime]] = field(default_factory=list)

    def spend(self, since: datetime, until: datetime) -> Spend:
        self.calls.append(("spend", since, until))
        if self.refuse is not None:
            raise self.refuse
        if self.unavailable:
            return Spend(unit="", unavailable=self.unavailable)
        totals: dict[tuple[object, str], float] = {}
        for hour, warehouse, amount in self.hours:
            if since <= hour < until:
                key = (hour.date(), warehouse)
                totals[key] = totals.get(key, 0.0) + amount
        days = tuple(
            SpendDay(day=day, warehouse=warehouse, amount=amount)  # type: ignore[arg-type]
            for (day, warehouse), amount in sorted(totals.items(), key=str)
        )
        return Spend(unit=self.unit, days=days, source="RECORDED.METERING", price=self.price)

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
        self.calls.append((f"queries:{order}", since, until))
        if self.refuse is not None:
            raise self.refuse
        found = [
            r
            for r in self.records
            if r.started_at is not None
            and since <= r.started_at < until
            and (r.failed or not failed_only)
            and warehouse in (None, r.warehouse)
        ]
        if order == "slowest":
            found.sort(key=lambda r: -(r.elapsed_s or 0))
        elif order == "costliest":
            found.sort(key=lambda r: -(r.credits or 0))
        else:
            found.sort(key=lambda r: r.started_at or since, reverse=True)
        return QueryHistory(
            records=tuple(found[:limit]),
            source="RECORDED.QUERY_HISTORY",
            cost_means="estimated credits",
        )

    def check(self) -> Check:
        return Check(system=self.system, ok=True, detail="recorded")

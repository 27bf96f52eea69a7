"""`costs [window]`: what the warehouse spent and which queries drove it.

Over a window (default 24 h, e.g. `costs 7d`): spend per warehouse — credits, bytes billed or
DBUs, in the warehouse's own unit, with money beside it when a price is configured (always an
estimate) — against the previous window of the same length, the warehouses that moved most,
spend per day, the slowest and the costliest queries (user, tag, tables read) and the failing
ones. Every figure comes from the warehouse's usage views (`bot.ports.WarehouseUsage`).

Usage views lag (Snowflake's metering up to 3 h): the window ends when the view is complete
(`WarehouseUsage.settles`, on the hour), so the newest hours never look like a drop.

`assess` returns a `CostReport` (the facts); `render` makes the reply from it. The reply is an
error (exit 1 from the shell) when spend rose by `JUMP` or more, or when usage could not be read.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from bot import phrases
from bot.commands import Request
from bot.facts import Price, QueryHistory, QueryRecord, Spend
from bot.fanout import gather
from bot.health.report import SpendLine
from bot.messages import Field, Reply, Section, Tone
from bot.playbooks.incidents import parse_duration
from bot.playbooks.replies import source_missing
from bot.ports import Sources, WarehouseUsage, no_usage

USAGE = "costs [window, e.g. 24h or 7d]"
DEFAULT_WINDOW = timedelta(hours=24)
MAX_WINDOW = timedelta(days=31)
TIMEOUT_S = 60.0
LISTED = 5  # queries per list
WAREHOUSES = 10  # warehouses listed by spend
MOVERS = 3
JUMP = 0.5  # spend up by this much on the previous window: a finding (an error reply)
RISE = 0.2  # up by this much: a warning
TEXT = 160  # characters of query text in a line


@dataclass(frozen=True, kw_only=True)
class Change:
    """One warehouse's spend in the window against the previous one."""

    warehouse: str
    now: float
    before: float

    @property
    def delta(self) -> float:
        return self.now - self.before

    @property
    def ratio(self) -> float | None:
        """(now − before) / before; None when there was nothing before."""
        return None if self.before <= 0 else self.delta / self.before


@dataclass(frozen=True, kw_only=True)
class CostReport:
    """The facts of one `costs` answer. A read that failed is None, with its reason in
    `errors` (what → reason)."""

    where: str
    window: timedelta
    since: datetime
    until: datetime
    settles: timedelta
    spend: Spend | None
    previous: Spend | None
    slowest: QueryHistory | None
    costliest: QueryHistory | None
    failing: QueryHistory | None
    errors: tuple[tuple[str, str], ...] = ()

    @property
    def metered(self) -> bool:
        """The warehouse has a spend view (Redshift has none)."""
        return self.spend is None or not self.spend.unavailable

    @property
    def total(self) -> Change | None:
        if self.spend is None or self.previous is None or not self.metered:
            return None
        return Change(warehouse="", now=self.spend.total, before=self.previous.total)

    def changes(self) -> list[Change]:
        """Every warehouse of either window, most spent now first."""
        if self.spend is None or self.previous is None:
            return []
        now, before = self.spend.by_warehouse(), self.previous.by_warehouse()
        found = [
            Change(warehouse=w, now=now.get(w, 0.0), before=before.get(w, 0.0))
            for w in dict.fromkeys([*now, *before])
        ]
        return sorted(found, key=lambda c: (-c.now, -c.before, c.warehouse))

    def movers(self) -> list[Change]:
        """The warehouses whose spend changed most, either way."""
        moved = [c for c in self.changes() if c.delta]
        return sorted(moved, key=lambda c: (-abs(c.delta), c.warehouse))[:MOVERS]

    @property
    def tone(self) -> Tone:
        total = self.total
        ratio = total.ratio if total is not None else None
        if self.errors or (ratio is not None and ratio >= JUMP):
            return Tone.ERROR
        failing = self.failing.records if self.failing is not None else ()
        if failing or (ratio is not None and ratio >= RISE):
            return Tone.WARNING
        return Tone.SUCCESS


def run(request: Request) -> Reply:
    result = assess(request)
    return result if isinstance(result, Reply) else render(result, label=request.sources.label)


def parse_window(text: str) -> timedelta | None:
    """``24h``, ``7d``, ``90m``, ``2w`` → the window; None when it is not one (or > 31 days)."""
    parsed = parse_duration(text)
    if parsed is None or not timedelta(0) < parsed <= MAX_WINDOW:
        return None
    return parsed


def window_of(usage: WarehouseUsage, now: datetime, window: timedelta) -> tuple[datetime, datetime]:
    """(since, until): a window ending when the usage views are complete — now, or `settles`
    before now on the hour."""
    until = now.astimezone(UTC)
    if usage.settles > timedelta(0):
        until = (until - usage.settles).replace(minute=0, second=0, microsecond=0)
    return until - window, until


def assess(request: Request) -> CostReport | Reply:
    """The facts, or the reply saying why there are none (no warehouse, no usage views, a
    window that is not one)."""
    sources = request.sources
    window = DEFAULT_WINDOW
    if request.args:
        parsed = parse_window(request.args[0])
        if parsed is None or len(request.args) > 1:
            return Reply(
                title="Invalid window",
                tone=Tone.WARNING,
                text=f"`{' '.join(request.args)}` is not a window. Usage: `{USAGE}` (minutes "
                "`m`, hours `h`, days `d` or weeks `w`, up to 31 days).",
            )
        window = parsed
    if sources.warehouse is None:
        return source_missing("warehouse")
    usage = sources.usage
    if usage is None:
        return Reply(
            title="No spend or query history for this warehouse",
            tone=Tone.WARNING,
            text=_sentence(no_usage(sources.warehouse.dialect))
            + " See docs/warehouses.md, “Spend and slow queries”.",
        )
    since, until = window_of(usage, sources.now(), window)
    request.progress(f"Warehouse: reading spend and query history of the last {_span(window)}")
    calls: dict[str, tuple[str, Callable[[], Any]]] = {
        "spend": (usage.system, lambda: usage.spend(since, until)),
        "previous": (usage.system, lambda: usage.spend(since - window, since)),
        "slowest": (usage.system, lambda: usage.queries(since, until, limit=LISTED)),
        "costliest": (
            usage.system,
            lambda: usage.queries(since, until, order="costliest", limit=LISTED),
        ),
        "failing": (
            usage.system,
            lambda: usage.queries(since, until, order="newest", limit=LISTED, failed_only=True),
        ),
    }
    out = gather(calls, timeout=TIMEOUT_S)
    errors = tuple((name, o.error) for name, o in out.items() if not o.ok)
    return CostReport(
        where=usage.where,
        window=window,
        since=since,
        until=until,
        settles=usage.settles,
        spend=out["spend"].value,
        previous=out["previous"].value,
        slowest=out["slowest"].value,
        costliest=out["costliest"].value,
        failing=out["failing"].value,
        errors=errors,
    )


def render(report: CostReport, *, label: str = "") -> Reply:
    scope = f"last {_span(report.window)}"
    spend = report.spend
    sections: list[Section] = []
    notes: list[str] = []
    sources: list[str] = []
    if report.errors and all(value is None for value in _reads(report)):
        reasons = list(dict.fromkeys(reason for _, reason in report.errors))
        return Reply(
            title="Could not read the warehouse's spend and query history",
            tone=Tone.ERROR,
            text=phrases.UNREACHABLE.format(system="warehouse", reason="; ".join(reasons)),
            sources=(report.where,),
        )
    total = report.total
    if spend is not None and spend.unavailable:
        title = f"Warehouse queries, {scope}"
        sections.append(Section(heading="Spend", text=spend.unavailable + "."))
    elif spend is not None and total is not None:
        against = f"the previous {_span(report.window)}"
        title = f"Warehouse spend, {scope}: {amount(spend.total, spend)} — " + change_text(
            total, against
        )
        sections.extend(_spend_sections(report, spend))
        sources.append(spend.source)
        notes.extend(_price_notes(spend))
    else:
        title = f"Warehouse spend, {scope}: unknown"
    for name, heading, history, empty in (
        ("slowest", "Slowest queries", report.slowest, "No queries in the window."),
        ("costliest", "Costliest queries", report.costliest, "No queries in the window."),
        ("failing", "Failing queries", report.failing, "No query failed in the window."),
    ):
        if history is None:
            continue
        text = empty if not history.records else ""
        if name == "costliest" and history.cost_means and history.records:
            text = f"By {history.cost_means}."
        sections.append(
            Section(
                heading=heading,
                text=text,
                bullets=tuple(
                    query_line(r, spend.price if spend else None) for r in history.records
                ),
            )
        )
        if history.source and history.source not in sources:
            sources.append(history.source)
        notes.extend(n for n in history.notes if n not in notes)
    for name, reason in report.errors:
        sections.append(Section(heading=f"Could not read: {_READS[name]}", text=reason))
    if report.settles:
        notes.append(
            f"The window ends {phrases.timestamp(report.until)}: the usage views run up to "
            f"{_span(report.settles)} behind, so later hours would look like a drop."
        )
    if label:
        notes.append(label)
    return Reply(
        title=title,
        tone=report.tone,
        text=f"{phrases.timestamp(report.since)} to {phrases.timestamp(report.until)}, against "
        f"the {_span(report.window)} before; {report.where}.",
        sections=tuple(sections),
        sources=tuple(f"warehouse: {s}" for s in sources),
        notes=tuple(notes),
    )


def _spend_sections(report: CostReport, spend: Spend) -> list[Section]:
    changes = report.changes()
    sections = [
        Section(
            heading="By warehouse",
            bullets=tuple(
                f"`{c.warehouse or '—'}` {amount(c.now, spend)} — {_ratio(c)}"
                + (f" (was {amount(c.before, spend, money=False)})" if c.before else "")
                for c in changes[:WAREHOUSES]
            )
            + ((phrases.more(WAREHOUSES, len(changes)),) if len(changes) > WAREHOUSES else ()),
        )
    ]
    movers = report.movers()
    if len(changes) > 1 and movers:
        sections.append(
            Section(
                heading="Top movers",
                bullets=tuple(
                    f"`{c.warehouse or '—'}` {'+' if c.delta > 0 else '−'}"
                    f"{amount(abs(c.delta), spend)} — {_ratio(c)}"
                    for c in movers
                ),
            )
        )
    days = sorted({d.day for d in spend.days})
    # A day or less straddles midnight: two part-days would read as a trend.
    if len(days) > 1 and report.window >= timedelta(days=2):
        lines = []
        for day in days:
            rows = sorted((d for d in spend.days if d.day == day), key=lambda d: -d.amount)
            parts = ", ".join(
                f"{d.warehouse} {amount(d.amount, spend, money=False)}" for d in rows[:3]
            )
            more = f" +{len(rows) - 3} more" if len(rows) > 3 else ""
            total = sum(d.amount for d in rows)
            lines.append(f"{day.isoformat()} — {amount(total, spend)}: {parts}{more}")
        sections.append(Section(heading="By day (UTC)", bullets=tuple(lines)))
    extra = _parts(spend)
    if extra:
        sections.append(Section(fields=tuple(Field(k, v) for k, v in extra)))
    return sections


def spend_line(sources: Sources, window: timedelta) -> Callable[[], SpendLine | None] | None:
    """The digest's cost line (`bot.playbooks.digest.spend_hook`): a call reading
    ``412.50 credits (+38% vs the previous 24 hours)``, or None when the warehouse has no usage
    views; the call gives None where they keep no spend (Redshift) and raises `SourceError`
    when they cannot be read."""
    usage = sources.usage
    if usage is None:
        return None

    def read() -> SpendLine | None:
        since, until = window_of(usage, sources.now(), window)
        spend = usage.spend(since, until)
        if spend.unavailable:
            return None
        previous = usage.spend(since - window, since)
        change = Change(warehouse="", now=spend.total, before=previous.total)
        against = f"the previous {_span(window)}"
        versus = f"none in {against}" if change.ratio is None else f"{_ratio(change)} vs {against}"
        return SpendLine(
            text=f"{amount(spend.total, spend)} ({versus})",
            total=spend.total,
            unit=spend.unit,
            previous_total=previous.total,
        )

    return read


# --- text --------------------------------------------------------------------------------


_READS = {
    "spend": "spend in the window",
    "previous": "spend in the previous window",
    "slowest": "slowest queries",
    "costliest": "costliest queries",
    "failing": "failing queries",
}


def _reads(report: CostReport) -> tuple[object | None, ...]:
    return (report.spend, report.previous, report.slowest, report.costliest, report.failing)


def amount(value: float, spend: Spend, *, money: bool = True) -> str:
    """``412.50 credits (≈ USD 1,237.50)``, ``1.2 TiB billed (≈ USD 7.50)``, ``18.40 DBUs``."""
    billed = spend.unit == "bytes billed"
    text = f"{size(value)} billed" if billed else f"{value:,.2f} {spend.unit}"
    if money and spend.price is not None:
        text += f" (≈ {cost(spend.price.cost(value), spend.price)})"
    return text


def cost(value: float, price: Price) -> str:
    return f"{price.currency} {value:,.2f}"


def size(value: float | int) -> str:
    """Bytes in binary units: ``812 B``, ``3.4 GiB``, ``1.21 TiB``."""
    number = float(value)
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if abs(number) < 1024 or unit == "TiB":
            return f"{number:,.0f} {unit}" if unit == "B" else f"{number:,.2f} {unit}"
        number /= 1024
    return f"{number:,.2f} PiB"  # pragma: no cover - the loop returns at TiB


def change_text(change: Change, against: str) -> str:
    """``up 38% on the previous 24 hours``, ``down 12% on …``, ``unchanged on …``, ``new``."""
    ratio = change.ratio
    if ratio is None:
        return f"none in {against} either" if change.now == 0 else f"new: none in {against}"
    if abs(ratio) < 0.005:
        return f"unchanged on {against}"
    return f"{'up' if ratio > 0 else 'down'} {abs(ratio):.0%} on {against}"


def _ratio(change: Change) -> str:
    """``+61%``, ``−12%``, ``±0%``, ``new``."""
    ratio = change.ratio
    if ratio is None:
        return "new" if change.now else "±0%"
    if abs(ratio) < 0.005:
        return "±0%"
    return f"{'+' if ratio > 0 else '−'}{abs(ratio):.0%}"


def query_line(record: QueryRecord, price: Price | None = None) -> str:
    """One query: id, figures, who, where, tag, tables, error, and its (masked) text."""
    figures = [phrases.duration(record.elapsed_s)] if record.elapsed_s is not None else []
    if record.queued_s:
        figures.append(f"queued {phrases.duration(record.queued_s)}")
    if record.credits:
        figures.append(f"≈ {record.credits:,.2f} credits")
    if record.bytes_billed is not None:
        billed = f"{size(record.bytes_billed)} billed"
        if price is not None and price.per_label == "TiB billed":
            billed += f" (≈ {cost(price.cost(record.bytes_billed), price)})"
        figures.append(billed)
    elif record.bytes_scanned is not None:
        figures.append(f"{size(record.bytes_scanned)} scanned")
    who = [
        f"by {record.user}" if record.user else "",
        f"on {record.warehouse}" if record.warehouse else "",
    ]
    if record.started_at is not None:
        who.append(f"at {phrases.timestamp(record.started_at)}")
    line = f"`{record.query_id}` {', '.join(figures)} — " + " ".join(w for w in who if w)
    if record.tag:
        line += f", tag `{record.tag}`"
    if record.tables:
        shown = ", ".join(record.tables[:3])
        line += f", read {shown}" + (
            f" +{len(record.tables) - 3} more" if len(record.tables) > 3 else ""
        )
    if record.failed and record.error:
        line += f"; error: {record.error}"
    if record.text:
        text = record.text if len(record.text) <= TEXT else record.text[: TEXT - 1] + "…"
        line += ": `" + text.replace("`", "'") + "`"
    return line


def _parts(spend: Spend) -> list[tuple[str, str]]:
    """The named components summed over the window (compute vs cloud services credits,
    slot-hours)."""
    totals: dict[str, float] = {}
    for day in spend.days:
        for name, value in day.parts:
            totals[name] = totals.get(name, 0.0) + value
    queries = [d.queries for d in spend.days if d.queries is not None]
    found = [(name.capitalize(), f"{value:,.2f}") for name, value in totals.items()]
    if queries:
        found.append(("Queries", f"{sum(queries):,}"))
    return found


def _price_notes(spend: Spend) -> list[str]:
    price = spend.price
    if price is None:
        return [
            f"Spend is shown in {spend.unit}; set a price to see money (docs/configuration.md)."
        ]
    return [
        f"Money is an estimate: {spend.unit} × {price.currency} {price.amount:,.2f} per "
        f"{price.per_label} ({price.origin}); discounts, credits and adjustments are not in "
        "the usage views."
    ]


def _sentence(text: str) -> str:
    return text[:1].upper() + text[1:] + "."


def _span(window: timedelta) -> str:
    """``24 hours``, ``7 days``, ``hour``, ``90 minutes``, ``3 hours``."""
    seconds = int(window.total_seconds())
    if seconds >= 2 * 86400 and seconds % 86400 == 0:
        return phrases.plural(seconds // 86400, "day")
    if seconds % 3600 == 0:
        return "hour" if seconds == 3600 else phrases.plural(seconds // 3600, "hour")
    return phrases.plural(seconds // 60, "minute")

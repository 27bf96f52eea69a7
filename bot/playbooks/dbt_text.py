"""Shared one-line descriptions of dbt facts, so every reply words them the same way."""

from __future__ import annotations

from collections import Counter
from datetime import datetime

from bot import phrases
from bot.facts import DbtResult, DbtRun, SourceFreshness

_ORDER = ("success", "pass", "error", "fail", "runtime error", "warn", "skipped", "no-op", "reused")


def run_counts(dbt_run: DbtRun) -> str:
    """``18 success, 1 error, 1 fail, 2 skipped`` in a stable order."""
    counts = Counter(r.status for r in dbt_run.results)
    ordered = [s for s in _ORDER if s in counts] + sorted(s for s in counts if s not in _ORDER)
    return ", ".join(f"{counts[s]} {s}" for s in ordered) or "no results"


def short_id(unique_id: str) -> str:
    """``model.shop.orders`` → ``orders``; tests keep their generated name."""
    parts = unique_id.split(".")
    if parts[0] == "test" and len(parts) >= 3:
        return parts[2]
    if parts[0] == "source" and len(parts) >= 4:
        return f"{parts[2]}.{parts[3]}"
    return parts[-1] if len(parts) > 1 else unique_id


_ERROR_HEADER = ("Runtime Error in", "Database Error in", "Compilation Error in", "Parsing Error")


def message_gist(message: str) -> str:
    """The informative line of a dbt message: dbt opens errors with a "… Error in model x"
    header and puts the database's own words on the next line."""
    lines = [line.strip() for line in (message or "").splitlines() if line.strip()]
    if len(lines) > 1 and lines[0].startswith(_ERROR_HEADER):
        return lines[1]
    return lines[0] if lines else ""


def result_line(result: DbtResult) -> str:
    kind = result.unique_id.split(".")[0]
    first = message_gist(result.message)
    if len(first) > 200:
        first = first[:199] + "…"
    return f"{kind} `{short_id(result.unique_id)}` — {result.status}" + (
        f": {first}" if first else ""
    )


def freshness_line(item: SourceFreshness, now: datetime) -> str:
    age = (
        phrases.duration(item.age_s) + " ago"
        if item.age_s is not None
        else phrases.ago(item.max_loaded_at, now)
    )
    line = f"`{item.source_name}.{item.table}` — {item.status}"
    if item.error:
        line += f": {item.error}"
    else:
        line += f", last loaded {age}"
    if item.rule:
        line += f" ({item.rule})"
    if item.owners:
        line += " — owner " + ", ".join(item.owners)
    return line

"""Shared one-line descriptions of dbt facts, so every reply words them the same way."""

from __future__ import annotations

import re
from collections import Counter
from datetime import datetime

from bot import phrases
from bot.facts import DbtResult, DbtRun, SourceFreshness
from bot.terminal import strip_escapes

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


# dbt opens an error with "<Kind> Error in <resource> <name> (<path>)" and may add hints of its
# own; the database's words (the cause) follow, often several lines down.
_ERROR_HEADER = re.compile(r"^[A-Z][A-Za-z]*(?: [A-Z][A-Za-z]*)* (?:Error|Exception) in \S")
_GENERIC = re.compile(
    r"^(?:(?:Runtime|Database|Compilation|Parsing|Dependency|Internal|Unit Test) Error"
    r"|An error occurred during execution of unit test\b.*"
    r"|compiled (?:code|SQL) at \S+"
    r"|See the compiled \S+ .*)$",
    re.IGNORECASE,
)
# "Binder Error: …", "Conversion Error: …", "psycopg2.errors.UndefinedColumn: …"
_CAUSE = re.compile(r"^[\w.]*(?:Error|Exception)\b[^:]{0,40}:\s*\S|\berror:\s*\S", re.IGNORECASE)
ERROR_LINES = 40
ERROR_CHARS = 4000


def cause_lines(message: str) -> list[str]:
    """The lines of a dbt message that say what went wrong: terminal escapes, dbt's "… Error
    in model x" header and its generic hints left out (all lines when nothing else is left)."""
    lines = [line.strip() for line in strip_escapes(message or "").splitlines() if line.strip()]
    kept = [line for line in lines if not _ERROR_HEADER.match(line) and not _GENERIC.match(line)]
    return kept or lines


def message_gist(message: str) -> str:
    """The one line that explains a dbt message: the database's own error when there is one
    (``Binder Error: Values list "products" does not have a column named …``), else the first
    line that is not dbt's header or hint."""
    lines = cause_lines(message)
    if not lines:
        return ""
    pick = next((i for i, line in enumerate(lines[:8]) if _CAUSE.search(line)), 0)
    gist = lines[pick]
    # "002003 (42S02): SQL compilation error:" — the cause is on the next line.
    if gist.lower().endswith("error:") and pick + 1 < len(lines):
        gist += " " + lines[pick + 1]
    # "actual differs from expected:" introduces a table that a one-liner cannot show.
    return gist.rstrip(":").rstrip()


def error_text(message: str, *, max_lines: int = ERROR_LINES, max_chars: int = ERROR_CHARS) -> str:
    """A dbt message as it can be shown in full: without terminal escapes, blank edges trimmed,
    cut at `max_lines` / `max_chars` (never before its cause line)."""
    text = strip_escapes(message or "").strip("\n")
    lines = [line.rstrip() for line in text.splitlines()]
    cut = lines[:max_lines]
    cause = next((line for line in cause_lines(text) if _CAUSE.search(line)), "")
    if cause and not any(cause in line for line in cut):
        cut.insert(0, cause)  # cut off by the bound: the one line that must stay
    out = "\n".join(cut)
    if len(out) > max_chars:
        out = out[: max_chars - 1] + "…"
    elif len(cut) < len(lines):
        out += "\n…"
    return out


def result_line(result: DbtResult) -> str:
    kind = result.unique_id.split(".")[0]
    first = message_gist(result.message)
    if len(first) > 200:
        first = first[:199] + "…"
    return f"{kind} `{short_id(result.unique_id)}` — {result.status}" + (
        f": {first}" if first else ""
    )


def freshness_line(item: SourceFreshness, now: datetime) -> str:
    line = f"`{item.source_name}.{item.table}` — "
    if not item.computed:
        why = item.reason or (f"{item.status}: {item.error}" if item.error else item.status)
        line += f"not computed ({why})"
    else:
        age = (
            phrases.duration(item.age_s) + " ago"
            if item.age_s is not None
            else phrases.ago(item.max_loaded_at, now)
        )
        line += f"{item.status}, last loaded {age}"
    if item.rule:
        line += f" ({item.rule})"
    if item.owners:
        line += " — owner " + ", ".join(item.owners)
    return line


def freshness_counts(items: list[SourceFreshness]) -> str:
    """``2 of 4 sources with freshness rules fresh, 1 not computed``."""
    fresh = sum(1 for f in items if f.status == "pass")
    text = f"{fresh} of {phrases.plural(len(items), 'source')} with freshness rules fresh"
    unknown = sum(1 for f in items if not f.computed)
    if unknown:
        text += f", {unknown} not computed"
    return text


# --- where run results come from -----------------------------------------------------------

KEEP_LOCAL = (
    "To keep a build's results, run `dbt docs generate` with `--target-path` set elsewhere (or "
    "copy run_results.json aside first), or point pipebot at the build's artifacts; pipebot "
    "also keeps the results of every build it sees."
)
KEEP_CLOUD = (
    "Point pipebot at the job that builds (PIPEBOT_DBT_CLOUD__JOB_ID); pipebot also keeps the "
    "results of every build it sees."
)


def command_text(command: str) -> str:
    """``build`` → `` `dbt build` ``; a dbt Cloud run's ``seed + build`` → both, joined."""
    parts = [p.strip() for p in command.split("+") if p.strip()]
    return " + ".join(f"`dbt {p}`" for p in parts) or "a dbt command"


def not_a_build(run: DbtRun) -> str:
    """Why results of a command that builds nothing are not shown as results, and what to do."""
    where = "run" if run.cloud_run_id is not None else "results"
    return (
        f"The latest dbt {where} came from {command_text(run.command)}, which builds and tests "
        'nothing (every node it compiled reads as "success"), and pipebot has no earlier '
        "build of this project to show. "
        + (KEEP_CLOUD if run.cloud_run_id is not None else KEEP_LOCAL)
    )


def kept_note(run: DbtRun) -> str:
    """Where kept results come from ("" for results read as they are)."""
    if run.kept_at is None:
        return ""
    return kept_text(
        command=run.command,
        superseded_by=run.superseded_by,
        superseded_at=run.superseded_at,
        generated_at=run.generated_at or run.kept_at,
    )


def kept_text(
    *,
    command: str,
    superseded_by: str,
    superseded_at: datetime | None,
    generated_at: datetime | None,
) -> str:
    """``The latest dbt results are from `dbt docs generate` (…); showing the last `dbt build`
    pipebot saw, 2026-11-25 06:00 UTC.``"""
    if superseded_by:
        latest = f"The latest dbt results are from {command_text(superseded_by)}" + (
            f" ({phrases.timestamp(superseded_at)})" if superseded_at else ""
        )
    else:
        latest = "There are no dbt run results now"
    when = phrases.timestamp(generated_at)
    return f"{latest}; showing the last {command_text(command)} pipebot saw, {when}."


def tests_heading(count: int, failing: int, run: DbtRun | None, *, ran: bool) -> tuple[str, str]:
    """The heading of a node's tests and what to say about where their results come from."""
    if run is not None and not run.executed:
        return f"Tests ({count}): no results", not_a_build(run)
    if not ran:
        where = f" in {command_text(run.command)}" if run is not None else ""
        return f"Tests ({count}): none ran{where}", kept_note(run) if run is not None else ""
    return f"Tests ({count}, {failing} failing)", kept_note(run) if run is not None else ""

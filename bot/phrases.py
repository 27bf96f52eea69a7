"""User-facing wording: fixed phrases and the small formatters every reply uses.

Keeping them here keeps the tone consistent and lets a reviewer read everything pipebot says
to people in one place.
"""

from __future__ import annotations

from datetime import UTC, datetime

NO_AGENT = (
    "Free-form questions need the agent, and no Anthropic API key is configured "
    "(set ANTHROPIC_API_KEY or PIPEBOT_AGENT__API_KEY). Commands still work — try `help`."
)
INTERNAL_ERROR = (
    "Something went wrong on my side while answering (reference {ref}). "
    "The operator can find the details in the logs under that reference."
)
TRIAGE_FAILED = (
    "I could not triage this alert after several tries (reference {ref}); this is the alert "
    "as it came. The operator can find the details in the logs under that reference."
)
NOT_CONFIGURED = "{system} is not configured ({hint})."
UNREACHABLE = "{system} could not be reached: {reason}"

CONFIG_HINTS = {
    "Airflow": "set PIPEBOT_AIRFLOW__BASE_URL and credentials",
    "dbt": "set PIPEBOT_DBT__ARTIFACTS_DIR or the PIPEBOT_DBT_CLOUD__* settings",
    "warehouse": "set PIPEBOT_WAREHOUSE__URL",
}


def not_configured(system: str) -> str:
    return NOT_CONFIGURED.format(system=system, hint=CONFIG_HINTS.get(system, "see the README"))


def ago(then: datetime | None, now: datetime) -> str:
    """``3h 12m ago`` / ``in 5m``; ``never`` for None."""
    if then is None:
        return "never"
    seconds = (now - then).total_seconds()
    text = duration(abs(seconds))
    return f"{text} ago" if seconds >= 0 else f"in {text}"


def duration(seconds: float | None) -> str:
    """``42s``, ``3m 05s``, ``2h 14m``, ``3d 4h``; ``–`` for None."""
    if seconds is None:
        return "–"
    total = round(seconds)
    days, rest = divmod(total, 86_400)
    hours, rest = divmod(rest, 3_600)
    minutes, secs = divmod(rest, 60)
    if days:
        return f"{days}d {hours}h"
    if hours:
        return f"{hours}h {minutes:02d}m"
    if minutes:
        return f"{minutes}m {secs:02d}s"
    if seconds < 10 and seconds != int(seconds):
        return f"{seconds:.1f}s"
    return f"{secs}s"


def timestamp(value: datetime | None) -> str:
    """``2026-11-25 07:14 UTC``; ``–`` for None."""
    if value is None:
        return "–"
    return value.astimezone(UTC).strftime("%Y-%m-%d %H:%M UTC")


def plural(count: int, noun: str, plural_form: str | None = None) -> str:
    word = noun if count == 1 else (plural_form or noun + "s")
    return f"{count:,} {word}"


def ordinal(n: int) -> str:
    suffix = "th" if 10 <= n % 100 <= 20 else {1: "st", 2: "nd", 3: "rd"}.get(n % 10, "th")
    return f"{n}{suffix}"


def more(shown: int, total: int) -> str:
    """``+37 more`` when a list was cut, else empty."""
    return f"+{total - shown:,} more" if total > shown else ""


def size(n_bytes: int | None) -> str:
    """``812 B``, ``3.4 MB``, ``1.2 TB`` (powers of 1,000, as warehouses bill); ``unknown`` for
    None."""
    if n_bytes is None:
        return "unknown"
    value = float(n_bytes)
    for unit in ("B", "kB", "MB", "GB", "TB"):
        if value < 1000 or unit == "TB":
            return f"{value:,.0f} {unit}" if unit == "B" else f"{value:,.1f} {unit}"
        value /= 1000
    raise AssertionError("unreachable")

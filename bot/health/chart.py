"""The digest's chart: the last 14 days as a PNG, readable on a phone.

Two panels over the same days: failed DAG runs per day (a stacked bar, each DAG failing now in
a colour of its own, every other failure in grey) and the median run time per day. Colours are
the Okabe-Ito palette, which stays distinguishable with the common colour-vision deficiencies;
the failing DAGs also get hatching, so the chart reads in greyscale too. 1200 × 1200 pixels with
large type: a chat app shows it about 400 pixels wide on a phone, a third of its size.

matplotlib is imported here, when a chart is drawn, never at start-up (``pipebot --help`` stays
fast; bench/bench_cli_startup.py), and only its object API is used (no pyplot): digests are
drawn in worker threads, and pyplot's global state is not thread-safe.
"""

from __future__ import annotations

import os
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from bot.health.report import AirflowPart, HealthReport

WIDTH_PX = 1200
HEIGHT_PX = 1200
DPI = 200
# Okabe & Ito (2008), "Color Universal Design": vermillion, orange, reddish purple, sky blue.
HIGHLIGHT = ("#D55E00", "#E69F00", "#CC79A7", "#56B4E9")
HATCHES = ("///", "\\\\\\", "xx", "..")
OTHER = "#999999"
LINE = "#0072B2"  # Okabe-Ito blue
# Charts left in the temporary directory are removed after this long.
KEEP_S = 24 * 3600
_NAME_MAX = 28


class ChartUnavailable(Exception):
    """No chart can be drawn (matplotlib missing, nothing to draw); the message says why."""


@dataclass(frozen=True, kw_only=True)
class Chart:
    path: Path
    width: int
    height: int
    alt: str

    def as_dict(self) -> dict[str, object]:
        return {"path": str(self.path), "width": self.width, "height": self.height}


def charts_dir() -> Path:
    """Where charts for chat replies are written (a handler uploads or attaches them)."""
    path = Path(tempfile.gettempdir()) / "pipebot-charts"
    path.mkdir(mode=0o700, exist_ok=True)
    return path


def prune(directory: Path, *, older_than_s: float = KEEP_S) -> None:
    """Remove charts older than `older_than_s`: each digest writes one."""
    cutoff = time.time() - older_than_s
    for item in directory.glob("*.png"):
        try:
            if item.stat().st_mtime < cutoff:
                item.unlink()
        except OSError:
            continue  # another process removed it first


def alt_text(part: AirflowPart) -> str:
    """What the chart shows, in words (Slack's alt text, screen readers)."""
    days = part.days
    failed = sum(d.failed for d in days)
    worst = max(days, key=lambda d: d.failed) if days else None
    text = f"Bar and line chart of the last {len(days)} days: {failed:,} failed DAG runs in all" + (
        f", most on {worst.day:%a %d %b} ({worst.failed:,})" if worst and worst.failed else ""
    )
    highlighted = [name for name, _ in days[-1].failed_by_dag] if days else []
    if highlighted:
        text += "; failing DAGs highlighted: " + ", ".join(highlighted)
    return text + "; lower panel: median run time per day."


def draw(report: HealthReport, path: Path) -> Chart:
    """Draw `report`'s last 14 days to `path` (PNG). Raises `ChartUnavailable` with the reason
    when there is nothing to draw or matplotlib is not installed."""
    part = report.airflow
    if part is None or not part.reached or not part.days:
        raise ChartUnavailable("no DAG runs were read, so there is nothing to chart")
    try:
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure
    except ImportError:
        raise ChartUnavailable(
            "the chart needs matplotlib, which is not installed (pip install matplotlib)"
        ) from None

    days = part.days
    labels = [f"{d.day:%a}\n{d.day.day}" for d in days]
    x = list(range(len(days)))
    highlighted = [name for name, _ in days[-1].failed_by_dag]
    fig = Figure(figsize=(WIDTH_PX / DPI, HEIGHT_PX / DPI), dpi=DPI, layout="constrained")
    FigureCanvasAgg(fig)
    top, bottom = fig.subplots(2, 1, sharex=True, height_ratios=(3, 2))
    fig.suptitle(_title(report), fontsize=11, fontweight="bold")

    base = [0.0] * len(days)
    for index, name in enumerate(highlighted):
        counts = [float(dict(d.failed_by_dag).get(name, 0)) for d in days]
        top.bar(
            x,
            counts,
            bottom=base,
            color=HIGHLIGHT[index % len(HIGHLIGHT)],
            hatch=HATCHES[index % len(HATCHES)],
            edgecolor="white",
            linewidth=0.4,
            label=_short(name),
        )
        base = [b + c for b, c in zip(base, counts, strict=True)]
    others = [d.failed - sum(n for _, n in d.failed_by_dag) for d in days]
    top.bar(x, others, bottom=base, color=OTHER, label="other DAGs" if highlighted else "failed")
    top.set_ylabel("failed runs", fontsize=9)
    top.set_title("Failed DAG runs per day", fontsize=10, loc="left")
    top.yaxis.get_major_locator().set_params(integer=True)
    if highlighted:
        top.legend(
            fontsize=7, loc="upper left", frameon=False, title="failing now", title_fontsize=7
        )

    longest = max((d.median_duration_s or 0.0) for d in days)
    unit, per = ("seconds", 1.0) if longest < 120 else ("minutes", 60.0)
    if longest >= 3 * 3600:
        unit, per = "hours", 3600.0
    values = [d.median_duration_s / per if d.median_duration_s is not None else None for d in days]
    points = [(i, v) for i, v in zip(x, values, strict=True) if v is not None]
    if points:
        bottom.plot(
            [p[0] for p in points],
            [p[1] for p in points],
            color=LINE,
            marker="o",
            markersize=4,
            linewidth=2,
        )
    bottom.set_ylim(bottom=0)
    bottom.set_ylabel(unit, fontsize=9)
    bottom.set_title("Median run time per day", fontsize=10, loc="left")
    bottom.set_xticks(x, labels, fontsize=7)
    for axis in (top, bottom):
        axis.tick_params(axis="y", labelsize=8)
        axis.grid(axis="y", color="#dddddd", linewidth=0.6)
        axis.set_axisbelow(True)
        for side in ("top", "right"):
            axis.spines[side].set_visible(False)
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    fig.savefig(partial, format="png", dpi=DPI, metadata={"Software": "pipebot"})
    partial.replace(path)  # a reader never sees half a file
    return Chart(path=path, width=WIDTH_PX, height=HEIGHT_PX, alt=alt_text(part))


def _title(report: HealthReport) -> str:
    scope = report.filters.describe()
    return f"Last {len(report.airflow.days) if report.airflow else 0} days" + (
        f" — {scope}" if scope else ""
    )


def _short(name: str) -> str:
    return name if len(name) <= _NAME_MAX else name[: _NAME_MAX - 1] + "…"

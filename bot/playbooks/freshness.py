"""`freshness`: dbt source freshness — what is stale, how stale, and who owns it."""

from __future__ import annotations

from bot import phrases
from bot.commands import Request
from bot.facts import SourceFreshness
from bot.fanout import gather
from bot.messages import Reply, Section, Tone
from bot.playbooks.dbt_text import freshness_line
from bot.playbooks.replies import not_found_reply, source_missing

TIMEOUT_S = 20.0
_SEVERITY = {"runtime error": 0, "error": 1, "warn": 2, "pass": 3}


def run(request: Request) -> Reply:
    dbt = request.sources.dbt
    if dbt is None:
        return source_missing("dbt")
    request.progress("dbt: reading source freshness")
    out = gather({"fresh": (dbt.system, dbt.freshness)}, timeout=TIMEOUT_S)["fresh"]
    if not out.ok:
        return not_found_reply(out, what="source freshness")
    results: list[SourceFreshness] = sorted(
        out.value or [], key=lambda f: (_SEVERITY.get(f.status, 0), f.source_name, f.table)
    )
    if not results:
        return Reply(
            title="No freshness results",
            tone=Tone.WARNING,
            text="dbt has no source freshness results. Run `dbt source freshness` in your job "
            "so sources.json is produced.",
            sources=(f"{dbt.system}: sources.json",),
        )
    now = request.sources.now()
    stale = [f for f in results if f.status != "pass"]
    errors = [f for f in stale if f.status in ("error", "runtime error")]
    checked = max((f.snapshotted_at for f in results if f.snapshotted_at), default=None)
    tone = Tone.ERROR if errors else Tone.WARNING if stale else Tone.SUCCESS
    title = (
        f"{phrases.plural(len(stale), 'stale source')} of {len(results)}"
        if stale
        else f"All {len(results)} sources are fresh"
    )
    sections = []
    if stale:
        sections.append(
            Section(heading="Stale", bullets=tuple(freshness_line(f, now) for f in stale))
        )
    fresh = [f for f in results if f.status == "pass"]
    if fresh:
        sections.append(
            Section(heading="Fresh", bullets=tuple(freshness_line(f, now) for f in fresh))
        )
    return Reply(
        title=title,
        tone=tone,
        sections=tuple(sections),
        sources=(f"{dbt.system}: sources.json (dbt source freshness)",),
        notes=(
            f"Checked {phrases.ago(checked, now)} ({phrases.timestamp(checked)})."
            if checked
            else "",
        )
        + ((request.sources.label,) if request.sources.label else ()),
    )

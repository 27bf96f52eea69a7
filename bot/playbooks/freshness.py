"""`freshness`: dbt source freshness — what is stale, how stale, and who owns it.

Every source with a freshness rule is listed: those dbt could not measure (no
`loaded_at_field`, a runtime error, left out of the run) as "not computed", with why.
"""

from __future__ import annotations

from bot import phrases
from bot.commands import Request
from bot.facts import SourceFreshness
from bot.fanout import gather
from bot.messages import Reply, Section, Tone
from bot.playbooks.dbt_text import freshness_counts, freshness_line
from bot.playbooks.replies import not_found_reply, source_missing
from bot.ports import DbtProject

TIMEOUT_S = 20.0
_SEVERITY = {"error": 0, "fail": 0, "warn": 1, "runtime error": 2, "not computed": 2, "pass": 3}


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
        return _no_results(dbt)
    now = request.sources.now()
    overdue = [f for f in results if f.past_error_limit]
    late = [f for f in results if f.stale and not f.past_error_limit]
    not_computed = [f for f in results if not f.computed]
    fresh = [f for f in results if f.status == "pass"]
    checked = max((f.snapshotted_at for f in results if f.snapshotted_at), default=None)
    tone = Tone.ERROR if overdue else Tone.WARNING if late or not_computed else Tone.SUCCESS
    counted = f"{len(results)} with freshness rules"
    parts = []
    if overdue or late:
        parts.append(phrases.plural(len(overdue) + len(late), "stale source"))
    if not_computed:
        parts.append(f"{len(not_computed)} not computed")
    title = (
        f"{' and '.join(parts)} of {counted}"
        if parts
        else f"All {phrases.plural(len(results), 'source')} with freshness rules are fresh"
    )
    sections = []
    stale = overdue + late
    if stale:
        sections.append(
            Section(heading="Stale", bullets=tuple(freshness_line(f, now) for f in stale))
        )
    if not_computed:
        sections.append(
            Section(
                heading="Not computed",
                text="These have a freshness rule but dbt gave no verdict on them.",
                bullets=tuple(freshness_line(f, now) for f in not_computed),
            )
        )
    if fresh:
        sections.append(
            Section(heading="Fresh", bullets=tuple(freshness_line(f, now) for f in fresh))
        )
    return Reply(
        title=title,
        tone=tone,
        text=freshness_counts(results) + ".",
        sections=tuple(sections),
        sources=(f"{dbt.system}: sources.json (dbt source freshness), manifest freshness rules",),
        notes=(
            f"Checked {phrases.ago(checked, now)} ({phrases.timestamp(checked)})."
            if checked
            else "",
        )
        + ((request.sources.label,) if request.sources.label else ()),
    )


def _no_results(dbt: DbtProject) -> Reply:
    """No sources.json: say whether there is anything to check before asking for a run."""
    found = gather({"sources": (dbt.system, lambda: dbt.nodes("source"))}, timeout=TIMEOUT_S)
    listed = found["sources"]
    sources = listed.value if listed.ok and listed.value is not None else None
    if sources is not None and not any(s.freshness_rule for s in sources):
        return Reply(
            title="No freshness rules",
            tone=Tone.INFO,
            text=(
                f"None of the project's {phrases.plural(len(sources), 'source')} has a "
                "freshness rule, so there is nothing to check."
                if sources
                else "The project has no sources, so there is no freshness to check."
            )
            + " Add `freshness:` (`warn_after` / `error_after`) and a `loaded_at_field` to the "
            "sources that should stay fresh.",
            sources=(f"{dbt.system}: manifest sources",),
        )
    if sources is None:
        lead = "dbt has no source freshness results."
    else:
        ruled = sum(1 for s in sources if s.freshness_rule)
        have = "has" if ruled == 1 else "have"
        lead = (
            f"{phrases.plural(ruled, 'source')} {have} freshness rules, but dbt has no "
            "freshness results (no sources.json)."
        )
    return Reply(
        title="No freshness results",
        tone=Tone.WARNING,
        text=lead + " Run `dbt source freshness` in your job so sources.json is produced.",
        sources=(f"{dbt.system}: sources.json, manifest sources",),
    )

"""`drift [schema]`: what changed in the warehouse since the last catalog snapshot, and the
daily post of changes no dbt run explains (`bot.drift`).

The command compares the warehouse as it is now with the newest snapshot and says how old that
snapshot is; the ``drift`` job the clock submits takes the day's snapshot, decides once what
changed since the one before, and returns the post to make (keyed by the snapshot pair).
"""

from __future__ import annotations

from collections.abc import Sequence

from bot import phrases
from bot.commands import Request
from bot.drift import (
    Change,
    ChangeKind,
    DriftJob,
    DriftReport,
    DriftWatch,
    latest,
    since_last,
)
from bot.errors import NotFound, SourceError
from bot.messages import Reply, Section, Tone
from bot.playbooks.replies import source_missing
from bot.store.drift import DriftSnapshots

USAGE = "drift [schema]"
# Bullets per section: a schema rebuilt by hand can change hundreds of columns at once.
MAX_BULLETS = 40


def run(request: Request, snapshots: DriftSnapshots | None) -> Reply:
    result = assess(request, snapshots)
    if isinstance(result, Reply):
        return result
    assert snapshots is not None
    return render(result, last_check=latest(snapshots))


def assess(request: Request, snapshots: DriftSnapshots | None) -> DriftReport | Reply:
    """The warehouse now against the newest snapshot, or the reply saying why not (no store,
    no warehouse, no snapshot yet, a schema not snapshotted, the catalog unreadable)."""
    if snapshots is None:
        return Reply(
            title="Drift checks need the bot's database",
            tone=Tone.WARNING,
            text="This pipebot runs without a store, so it keeps no catalog snapshots.",
        )
    if request.args and request.args[0].lower() == "snapshot":
        return Reply(
            title="Snapshots are taken by the clock",
            tone=Tone.INFO,
            text="`pipebot clock` snapshots the warehouse catalog daily "
            "(PIPEBOT_DRIFT__TIME); an operator takes one now with `pipebot drift snapshot`.",
        )
    if len(request.args) > 1:
        return Reply(title="Too many arguments", tone=Tone.WARNING, text=f"Usage: `{USAGE}`.")
    if request.sources.warehouse is None:
        return source_missing("warehouse")
    schema = request.args[0] if request.args else None
    request.progress("warehouse: reading the catalog")
    try:
        report = since_last(snapshots, request.sources, schema)
    except NotFound as exc:
        hint = (
            " Try " + ", ".join(f"`drift {s}`" for s in exc.suggestions) + "."
            if exc.suggestions
            else ""
        )
        return Reply(title="Schema not snapshotted", tone=Tone.WARNING, text=exc.reason + hint)
    except SourceError as exc:
        return Reply(
            title="Could not read the warehouse catalog",
            tone=Tone.ERROR,
            text=phrases.UNREACHABLE.format(system=exc.system, reason=exc.reason),
        )
    if report is None:
        return Reply(
            title="No catalog snapshot yet",
            tone=Tone.INFO,
            text="`pipebot clock` snapshots the warehouse catalog daily (PIPEBOT_DRIFT__TIME); "
            "an operator takes one now with `pipebot drift snapshot`. Changes are compared "
            "with the newest snapshot.",
        )
    return report


def scheduled(job: DriftJob, watch: DriftWatch, *, final: bool = True) -> tuple[str, Reply] | None:
    """What a ``drift`` job posts, as (its idempotency key, the reply): the day's unexpected
    changes, keyed by the snapshot pair; None for the first snapshot or nothing unexpected.
    Decided once per snapshot; see `DriftWatch.check`."""
    report = watch.check(job.snapshot, final=final)
    if report.base_id is None or report.snapshot_id is None or not report.unexpected:
        return None
    return report.post_key, render(report)


def render(report: DriftReport, *, last_check: DriftReport | None = None) -> Reply:
    """The report as a reply: a scheduled check between two snapshots (what is posted), or
    the warehouse now against the newest snapshot (`drift`), with `last_check` — the last
    daily check — as context."""
    live = report.snapshot_id is None
    unexpected, explained = report.unexpected, report.explained
    schemas = ", ".join(f"`{s}`" for s in report.schemas) or "no schema"
    if report.base_id is None:
        return Reply(
            title="First catalog snapshot",
            tone=Tone.INFO,
            text=f"Snapshot #{report.snapshot_id} ({phrases.timestamp(report.taken_at)}) of "
            f"schemas {schemas}: changes are reported from the next snapshot on.",
            sources=("warehouse catalog",),
            notes=report.notes,
        )
    if live:
        title = (
            f"{phrases.plural(len(unexpected), 'unexpected change')} since the last snapshot"
            if unexpected
            else "No unexpected change since the last snapshot"
        )
        age = (
            f", taken {phrases.ago(report.base_taken_at, report.taken_at)}"
            if report.base_taken_at
            else ""
        )
        lead = (
            f"The warehouse now against snapshot #{report.base_id}{age} "
            f"({phrases.timestamp(report.base_taken_at)}), schemas {schemas}."
        )
    else:
        title = f"Warehouse drift: {phrases.plural(len(unexpected), 'unexpected change')}"
        lead = (
            f"Between snapshot #{report.base_id} ({phrases.timestamp(report.base_taken_at)}) "
            f"and #{report.snapshot_id} ({phrases.timestamp(report.taken_at)}), schemas "
            f"{schemas}: changes no dbt run explains."
        )
    sections: list[Section] = []
    if unexpected:
        sections.append(
            Section(
                heading="Unexpected" if live else "",
                bullets=_bullets(unexpected),
            )
        )
    notes = list(report.notes)
    if explained and live:
        sections.append(Section(heading="Explained by a dbt build", bullets=_bullets(explained)))
    elif explained:
        notes.append(
            f"{phrases.plural(len(explained), 'further change')} came with dbt builds "
            "between the two snapshots."
        )
    if live and last_check is not None and last_check.snapshot_id is not None:
        found = len(last_check.unexpected)
        sections.append(
            Section(
                heading="Last daily check",
                text=f"Snapshot #{last_check.snapshot_id} "
                f"({phrases.timestamp(last_check.taken_at)}) against #{last_check.base_id}: "
                + (
                    f"{phrases.plural(found, 'unexpected change')}."
                    if found
                    else "nothing unexpected."
                ),
            )
        )
    sources = ["warehouse catalog"]
    if report.dbt:
        sources.append(f"dbt: {report.dbt}")
    return Reply(
        title=title,
        tone=Tone.WARNING if unexpected else Tone.SUCCESS,
        text=lead if unexpected or explained else lead + " Nothing changed.",
        sections=tuple(sections),
        sources=tuple(sources),
        notes=tuple(notes),
    )


def _bullets(changes: Sequence[Change]) -> tuple[str, ...]:
    shown = [_line(c) for c in changes[:MAX_BULLETS]]
    more = phrases.more(len(shown), len(changes))
    return (*shown, more) if more else tuple(shown)


def _line(change: Change) -> str:
    where = f"`{change.where}`"
    kind = f" ({change.relation_kind})" if change.relation_kind else ""
    match change.kind:
        case ChangeKind.RELATION_ADDED:
            text = f"{where}{kind} added" + (f" — {change.after}" if change.after else "")
        case ChangeKind.RELATION_DROPPED:
            text = f"{where}{kind} dropped" + (
                f" — it had {change.before}" if change.before else ""
            )
        case ChangeKind.KIND_CHANGED:
            text = f"{where} is now a {change.after} (was a {change.before})"
        case ChangeKind.COLUMN_ADDED:
            text = f"{where} added ({change.after})"
        case ChangeKind.COLUMN_DROPPED:
            text = f"{where} dropped (was {change.before})"
        case ChangeKind.COLUMN_RETYPED:
            text = f"{where} retyped: {change.before} → {change.after}"
        case ChangeKind.NULLABILITY_CHANGED:
            text = f"{where} is now {change.after} (was {change.before})"
        case ChangeKind.SCHEMA_DROPPED:
            text = f"schema {where} is gone (it had {change.before})"
        case _:  # pragma: no cover - every kind is listed above
            text = f"{where}: {change.kind}"
    return text + _dbt_part(change)


def _dbt_part(change: Change) -> str:
    if not change.dbt_node:
        return ""
    kind, _, rest = change.dbt_node.partition(".")
    name = rest.rpartition(".")[2] or change.dbt_node
    node = f"dbt {kind} `{name}`"
    if change.explained:
        return f" — {node}, built {phrases.timestamp(change.built_at)}"
    if change.built_at is None:
        return f" — {node}, not built by the last dbt run"
    return f" — {node}, last built {phrases.timestamp(change.built_at)}, before this change"

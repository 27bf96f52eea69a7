"""`ChangeReview`: the schema review of a change, as data.

Two dbt states (`bot.facts.DbtState`: production's artifacts and a pull request's, two dbt
Cloud runs, a folder against production) go in; a `ChangeReview` comes out — every change
(`bot.review.diff`), who reads it and how bad it is (`bot.review.impact`), personal-looking
columns without a classification (`bot.review.privacy`), and a verdict::

    review = compare(base, target, base_ref=StateRef(kind="production"),
                     target_ref=StateRef(kind="run", value="4242"))
    review.verdict, review.exit_code          # Verdict.BREAKING, 1
    [c.subject for c in review.breaking]      # ['stg_orders.order_date', …]

Every renderer reads this value: `bot.review.reply` (the chat `Reply`, hence Slack, Discord,
text and Markdown), `bot.review.document` (JSON ``pipebot.schema_review/1``) and
`bot.review.github` (the pull-request comment). The CLI exits with `exit_code`:

- **0 safe** — nothing breaking (partial-breaking changes may still be listed: they break only
  readers outside dbt);
- **1 breaking** — at least one change breaks something that reads it, or a promise (contract,
  public access);
- **2 cannot review** — a state could not be loaded, or catalog.json is missing on a side, so
  an all-clear cannot be given (what was found is still listed).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum

from bot.facts import DbtState, StateRef
from bot.owners import unique_owners
from bot.review.change import SEVERITY, Change, Classification
from bot.review.diff import diff
from bot.review.impact import Tracer, assess
from bot.review.privacy import PrivacyFlag
from bot.review.sql import Readings


class Verdict(StrEnum):
    SAFE = "safe"
    BREAKING = "breaking"
    CANNOT_REVIEW = "cannot review"


EXIT_CODES = {Verdict.SAFE: 0, Verdict.BREAKING: 1, Verdict.CANNOT_REVIEW: 2}


@dataclass(frozen=True, slots=True, kw_only=True)
class StateInfo:
    """What the review read of one state."""

    ref: str  # how it was asked for: "the folder …", "dbt Cloud run 4242", "production …"
    label: str  # where it came from
    project: str = ""
    dbt_version: str = ""
    adapter: str = ""
    generated_at: datetime | None = None
    catalog_at: datetime | None = None  # None: it has no catalog.json
    run_id: int | None = None
    url: str = ""
    nodes: int = 0  # models, seeds, snapshots and sources

    @classmethod
    def of(cls, ref: StateRef, state: DbtState) -> StateInfo:
        return cls(
            ref=str(ref),
            label=state.label,
            project=state.project,
            dbt_version=state.dbt_version,
            adapter=state.adapter,
            generated_at=state.generated_at,
            catalog_at=state.catalog_at,
            run_id=state.run_id,
            url=state.url,
            nodes=len(state.nodes),
        )


@dataclass(frozen=True, kw_only=True)
class ChangeReview:
    """The schema review of a change: what differs between two dbt states, what it breaks
    and for whom, and the verdict the exit code comes from."""

    verdict: Verdict
    base: StateInfo | None = None  # None: it could not be loaded (see `reason`)
    target: StateInfo | None = None
    changes: tuple[Change, ...] = ()  # most severe first, then by node
    privacy: tuple[PrivacyFlag, ...] = ()
    select: str = ""  # the --select the review was limited to ("" all)
    reason: str = ""  # cannot review: why, as one sentence
    notes: tuple[str, ...] = ()  # what limited the review, what to do about it
    # Nodes whose columns were compared as declared only (not in both catalogs).
    declared_only: tuple[str, ...] = ()
    sql_parsed: int = 0  # queries parsed to find the readers
    reviewed_at: datetime | None = None

    @property
    def exit_code(self) -> int:
        return EXIT_CODES[self.verdict]

    def of(self, classification: Classification) -> tuple[Change, ...]:
        return tuple(c for c in self.changes if c.classification is classification)

    @property
    def breaking(self) -> tuple[Change, ...]:
        return self.of(Classification.BREAKING)

    @property
    def partial(self) -> tuple[Change, ...]:
        return self.of(Classification.PARTIAL)

    @property
    def non_breaking(self) -> tuple[Change, ...]:
        return self.of(Classification.NON_BREAKING)

    @property
    def contracted(self) -> tuple[Change, ...]:
        """Changes to models with an enforced contract that can break a reader."""
        return tuple(
            c
            for c in self.changes
            if c.contracted and c.classification is not Classification.NON_BREAKING
        )

    @property
    def owners(self) -> tuple[str, ...]:
        """Owners to notify: of whatever reads a breaking or partial-breaking change."""
        return unique_owners(
            owner
            for change in self.changes
            if change.classification is not Classification.NON_BREAKING and change.impact
            for owner in change.impact.owners
        )


def compare(
    base: DbtState,
    target: DbtState,
    *,
    base_ref: StateRef,
    target_ref: StateRef,
    selected: frozenset[str] | None = None,
    select: str = "",
    now: datetime | None = None,
) -> ChangeReview:
    """The review of the change from `base` to `target` (limited to `selected` nodes)."""
    base_sql = Readings(base, also=target)
    target_sql = Readings(target, also=base)
    found = diff(base, target, selected=selected, base_sql=base_sql, target_sql=target_sql)
    changes = assess(found.changes, Tracer(target, target_sql))
    rank = {c: i for i, c in enumerate(SEVERITY)}
    ordered = tuple(sorted(changes, key=lambda c: rank[c.classification]))  # stable: by node
    notes: list[str] = []
    missing = [
        (side, info)
        for side, info in (("base", base), ("target", target))
        if info.catalog_at is None
    ]
    for side, state in missing:
        notes.append(
            f"The {side} ({state.label}) has no catalog.json: only the columns its YAML declares "
            "were compared, so dropped or retyped undeclared columns cannot be seen. Run "
            "`dbt docs generate` after the build there."
        )
    if found.declared_only and not missing:
        names = [(target.nodes.get(u) or base.nodes[u]).name for u in found.declared_only]
        notes.append(
            f"Not in catalog.json on both sides (not built on one side or either), so only "
            f"their declared columns were compared: {_listed(names)}."
        )
    if base.project and target.project and base.project != target.project:
        notes.append(f"The states are of two projects: `{base.project}` and `{target.project}`.")
    breaking = any(c.classification is Classification.BREAKING for c in ordered)
    reason = ""
    if breaking:
        verdict = Verdict.BREAKING
    elif missing:
        verdict = Verdict.CANNOT_REVIEW
        reason = "catalog.json is missing, so no all-clear can be given"
    else:
        verdict = Verdict.SAFE
    return ChangeReview(
        verdict=verdict,
        base=StateInfo.of(base_ref, base),
        target=StateInfo.of(target_ref, target),
        changes=ordered,
        privacy=found.privacy,
        select=select,
        reason=reason,
        notes=tuple(notes),
        declared_only=found.declared_only,
        sql_parsed=base_sql.parsed + target_sql.parsed,
        reviewed_at=now,
    )


def cannot_review(
    reason: str,
    *,
    notes: tuple[str, ...] = (),
    base: StateInfo | None = None,
    target: StateInfo | None = None,
    select: str = "",
    now: datetime | None = None,
) -> ChangeReview:
    """The review when a state could not be loaded or the input was unusable."""
    return ChangeReview(
        verdict=Verdict.CANNOT_REVIEW,
        base=base,
        target=target,
        reason=reason,
        notes=notes,
        select=select,
        reviewed_at=now,
    )


def _listed(names: list[str], limit: int = 8) -> str:
    shown = ", ".join(f"`{n}`" for n in names[:limit])
    return shown + (f" and {len(names) - limit} more" if len(names) > limit else "")

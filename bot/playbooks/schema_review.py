"""`schema-review <model>`: a model's columns as the warehouse has them, against what the dbt
project declares and against the columns of the last build — drift, what it breaks and for
whom, and governance gaps.

`schema-review <run-id>` and `schema-review <base> <target>` review a *change* instead — two
whole dbt states compared (`bot.playbooks.change_review`, `bot.review`); `run` tells the forms
apart: a number is a dbt Cloud run id, a path-like word a folder, two words a base and a
target, any other single word a model.

Where the columns come from, and what they are compared with:

- the warehouse, read live when it is configured, compared with the declaration (YAML) **and**
  with catalog.json, the columns dbt saw at its last ``docs generate``: most projects declare
  no ``data_type``, so the catalog is the only baseline that shows a type change or a dropped
  undeclared column;
- else catalog.json alone — which is only as current as the last ``dbt docs generate``. When it
  is older than the last build it may no longer show the warehouse, so the review refuses an
  all-clear from it: the verdict is *cannot review*, and the reply says what to run.

Findings, most severe first:

- declared columns the relation no longer has (removed or renamed: consumers selecting them
  fail), with the models, exposures and owners downstream;
- columns the last build had that the relation lost, undeclared ones included: breaking when a
  model downstream selects them — found by parsing each reader's SQL (`DbtProject.column_uses`);
- type changes against the declared type, else against the catalog's (with an enforced contract
  dbt refuses the build);
- columns the relation has but the project does not declare (added, undocumented);
- governance: columns that look like personal data, declared columns without a description, no
  column tested as a key (unique + not_null).

The verdict (`SchemaReview.verdict`) is what ``pipebot schema-review`` exits with: 0 when the
relation matches or only has things to follow up, 1 when the change is breaking, 2 when it
cannot be reviewed. With an agent, a review (ship / ship with follow-ups / block) written from
these facts follows.
"""

from __future__ import annotations

import difflib
import json
import re
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import datetime
from enum import StrEnum
from typing import Any

from sqlglot import exp
from sqlglot.errors import ParseError

from bot import phrases
from bot.agent import Agent
from bot.commands import Request
from bot.errors import NotFound
from bot.facts import ArtifactTimes, ColumnDoc, ColumnUse, DbtNode, DbtRun, Lineage, Table
from bot.fanout import Outcome, gather
from bot.messages import Field, Reply, Section, Tone
from bot.owners import OwnerDirectory, unique_owners
from bot.playbooks import change_review
from bot.playbooks.dbt_text import command_text, message_gist
from bot.playbooks.replies import agent_text, missing_argument, not_found_reply, source_missing
from bot.prompts import prompt
from bot.relations import locate
from bot.review import privacy

USAGE = "schema-review <model> | schema-review <run-id> | schema-review <base> <target>"
# Every reply that is a review (not an input or lookup problem) has a title starting so.
TITLE = "Schema review of "
TIMEOUT_S = 20.0
LISTED = 15
# Kinds of node that are a relation in the warehouse.
_RELATIONS = frozenset({"model", "seed", "snapshot", "source"})
# dbt commands that (re)build relations: after one, an older catalog.json may be out of date.
BUILDING_COMMANDS = frozenset({"build", "run", "seed", "snapshot", "retry", "clone"})
DOCS_GENERATE = "dbt docs generate"


class Verdict(StrEnum):
    MATCHES = "matches"
    FOLLOW_UP = "follow up"
    BREAKING = "breaking"
    CANNOT_REVIEW = "cannot review"


# `pipebot schema-review` exit codes (README, docs/operations.md): a CI step stops on non-zero.
EXIT_CODES = {
    Verdict.MATCHES: 0,
    Verdict.FOLLOW_UP: 0,
    Verdict.BREAKING: 1,
    Verdict.CANNOT_REVIEW: 2,
}


@dataclass(frozen=True, kw_only=True)
class TypeChange:
    column: str
    expected: str
    actual: str
    basis: str  # "declared" (the YAML's data_type) or "catalog" (catalog.json, the last build)


@dataclass(frozen=True, kw_only=True)
class Drift:
    """How the relation's columns differ from the declaration and from the last build."""

    missing: tuple[ColumnDoc, ...] = ()  # declared, not in the relation
    dropped: tuple[ColumnDoc, ...] = ()  # undeclared, in catalog.json, not in the relation
    added: tuple[str, ...] = ()  # in the relation, not declared
    retyped: tuple[TypeChange, ...] = ()
    renamed: tuple[tuple[str, str], ...] = ()  # (old name, likely new name)
    personal: tuple[str, ...] = ()
    undescribed: tuple[str, ...] = ()
    key_tested: bool = True
    actual: dict[str, str] = field(default_factory=dict)  # column → type as the relation has it
    baseline: bool = False  # catalog.json's columns were compared with

    @property
    def lost(self) -> tuple[ColumnDoc, ...]:
        """Every column the relation no longer has, declared or not."""
        return self.missing + self.dropped


@dataclass(frozen=True, kw_only=True)
class SchemaReview:
    """The review as values: the reply, the CLI's exit code and the agent read this."""

    node: DbtNode
    verdict: Verdict
    drift: Drift | None = None  # None when the relation could not be reviewed
    lineage: Lineage | None = None
    uses: tuple[ColumnUse, ...] = ()  # what the models reading it select of the changed columns
    uses_error: str = ""  # why `uses` could not be read
    columns_from: str = ""  # "warehouse" or "catalog"
    times: ArtifactTimes = field(default_factory=ArtifactTimes)
    last_build: DbtRun | None = None  # the latest run that built relations, when known
    reason: str = ""  # cannot review: why, as the end of the title
    explanation: str = ""  # cannot review: what was found and what to run
    used: tuple[str, ...] = ()
    notes: tuple[str, ...] = ()
    now: datetime | None = None

    @property
    def exit_code(self) -> int:
        return EXIT_CODES[self.verdict]

    def readers(self, column: str) -> tuple[list[str], list[str]]:
        """(models that select `column`, models that may select it)."""
        wanted = column.lower()
        sure = [u.reader.name for u in self.uses if wanted in (c.lower() for c in u.columns)]
        maybe = [
            u.reader.name
            for u in self.uses
            if wanted in (c.lower() for c in u.maybe) and u.reader.name not in sure
        ]
        return sure, maybe

    def read_downstream(self, column: str) -> bool:
        sure, maybe = self.readers(column)
        if sure or maybe:
            return True
        # Unknown is not "nobody": when the SQL could not be read, anyone downstream may.
        return bool(self.uses_error and self.lineage is not None and self.lineage.children)


def run(
    request: Request, agent: Agent | None = None, owners: OwnerDirectory | None = None
) -> Reply:
    if change_review.is_change(request.args):
        return change_review.run(request, owners, agent)
    result = assess(request)
    if isinstance(result, Reply):
        return result
    return render(result, request=request, agent=agent)


def assess(request: Request) -> SchemaReview | Reply:
    """The review of `request.args[0]`, or a reply saying why there is nothing to review
    (no dbt, no argument, no such node, a node without columns)."""
    dbt = request.sources.dbt
    if dbt is None:
        return source_missing("dbt")
    if not request.args:
        return missing_argument(USAGE, "a dbt model, seed, snapshot or source name")
    name = request.args[0]
    request.progress(f"dbt: reading the declaration and lineage of {name}")
    calls: dict[str, tuple[str, Callable[[], Any]]] = {
        "node": (dbt.system, lambda: dbt.node(name)),
        "lineage": (dbt.system, lambda: dbt.lineage(name)),
        "times": (dbt.system, dbt.artifact_times),
        "run": (dbt.system, dbt.last_run),
    }
    out = gather(calls, timeout=TIMEOUT_S)
    if not out["node"].ok:
        return not_found_reply(out["node"], what=f"dbt node `{name}`")
    node_out: Outcome[DbtNode] = out["node"]
    node = node_out.value
    assert node is not None  # ok outcomes carry a value
    if node.resource_type not in _RELATIONS:
        return Reply(
            title=f"`{name}` has no schema",
            tone=Tone.WARNING,
            text=f"`{name}` is a dbt {node.resource_type.replace('_', ' ')}; review a model, "
            "seed, snapshot or source instead.",
        )
    lineage_out: Outcome[Lineage] = out["lineage"]
    lineage = lineage_out.value if lineage_out.ok else None
    times_out: Outcome[ArtifactTimes] = out["times"]
    times = times_out.value if times_out.ok and times_out.value else ArtifactTimes()
    run_out: Outcome[DbtRun | None] = out["run"]
    last_run = run_out.value if run_out.ok else None
    last_build = last_run if last_run is not None and _builds(last_run) else None
    now = request.sources.now()
    template = SchemaReview(
        node=node,
        verdict=Verdict.CANNOT_REVIEW,
        lineage=lineage,
        times=times,
        last_build=last_build,
        now=now,
    )
    used = [f"{dbt.system}: manifest (declared columns, tests, contract), lineage"]
    notes: list[str] = []
    failed_build = _failed_build_note(node, last_run)

    actual: dict[str, str] | None = None
    columns_from = ""
    absent = ""  # the warehouse says the relation does not exist
    warehouse = request.sources.warehouse
    located = locate(node.relation)
    if warehouse is not None and located is not None:
        schema, table_name = located
        request.progress(f"Warehouse: reading the columns of {schema}.{table_name}")
        table_out: Outcome[Table] = gather(
            {"table": (warehouse.system, lambda: warehouse.table(schema, table_name))},
            timeout=TIMEOUT_S,
        )["table"]
        if table_out.ok and table_out.value is not None:
            actual = {c.name: c.data_type for c in table_out.value.columns}
            columns_from = "warehouse"
            used.append(f"{warehouse.system}: columns of {schema}.{table_name} (live)")
        elif isinstance(table_out.exc, NotFound) and not table_out.error.startswith(
            ("schema ", "no schema ")
        ):
            # Its "did you mean" names other tables: beside the point for a relation dbt
            # names exactly, so only the fact is kept.
            absent = f"The warehouse has no table or view {schema}.{table_name}."
        else:
            # The schema is not readable here (not configured, say): catalog.json may tell.
            notes.append(f"The warehouse could not show {schema}.{table_name}: {table_out.error}")

    catalog_columns = {c.name: c.catalog_type for c in node.columns if c.catalog_type}
    if actual is None and absent:
        gone = (
            f"catalog.json ({_catalog_said(times, now)}) still lists it: it was dropped or "
            "renamed since, and every model reading it fails."
            if catalog_columns and not failed_build
            else ""
        )
        return replace(
            template,
            reason="its columns in the warehouse are unknown",
            explanation=" ".join(
                part
                for part in (
                    absent,
                    gone,
                    failed_build,
                    f"Fix and build it (`dbt build -s {node.name}`), then review again."
                    if failed_build
                    else f"Build it (`dbt build -s {node.name}`) and review again.",
                )
                if part
            ),
            used=tuple(used),
            notes=tuple(notes),
        )
    if actual is None and catalog_columns:
        catalog_said = _catalog_said(times, now)
        stale = _stale_catalog(times, last_build, now)
        if stale:
            return replace(
                template,
                reason="catalog.json is older than the last build",
                explanation=(
                    "Without the warehouse, the columns come from dbt's catalog.json, "
                    f"{catalog_said} — {stale}. The relation may have changed since, "
                    "so no all-clear can be given from it. Run `dbt docs generate` after the "
                    "build (it rewrites catalog.json), or configure the warehouse "
                    "(`PIPEBOT_WAREHOUSE__URL`) to read the columns live, then review again."
                ),
                used=(*used, f"{dbt.system}: catalog.json ({catalog_said})"),
                notes=tuple(notes),
            )
        actual = catalog_columns
        columns_from = "catalog"
        used.append(
            f"{dbt.system}: catalog.json (columns at the last `dbt docs generate`, {catalog_said})"
        )
    if actual is None:
        return replace(
            template,
            reason="its columns in the warehouse are unknown",
            explanation=" ".join(
                part
                for part in (
                    "Neither the warehouse nor dbt's catalog.json shows this relation.",
                    failed_build,
                    f"Check that it was built (`dbt build -s {node.name}`), that the warehouse "
                    "connector can read its schema, or run `dbt docs generate` so catalog.json "
                    "lists it.",
                )
                if part
            ),
            used=tuple(used),
            notes=tuple(notes),
        )

    if failed_build:
        notes.append(failed_build[:-1] + ": the relation is what an earlier build left.")
    drift = review(node, actual, baseline=columns_from == "warehouse")
    if drift.baseline:
        used.append(f"{dbt.system}: catalog.json as the baseline ({_catalog_said(times, now)})")
    elif columns_from == "warehouse":
        notes.append(
            "catalog.json does not list this relation: a type change of a column without a "
            "declared `data_type`, or a dropped undeclared column, cannot be seen. Run "
            f"`{DOCS_GENERATE}` after each build to keep a baseline."
        )
    uses: tuple[ColumnUse, ...] = ()
    uses_error = ""
    changed = [c.name for c in drift.lost] + [t.column for t in drift.retyped]
    if changed and lineage is not None and lineage.children:
        request.progress(f"dbt: reading the SQL of the models that read {node.name}")
        uses_out: Outcome[list[ColumnUse]] = gather(
            {"uses": (dbt.system, lambda: dbt.column_uses(node.unique_id, changed))},
            timeout=TIMEOUT_S,
        )["uses"]
        if uses_out.ok and uses_out.value is not None:
            uses = tuple(uses_out.value)
            used.append(f"{dbt.system}: SQL of the models reading it (which columns they select)")
        else:
            uses_error = uses_out.error or "no answer"
            notes.append(f"Which columns the models downstream select is unknown: {uses_error}")
    reviewed = replace(
        template,
        drift=drift,
        uses=uses,
        uses_error=uses_error,
        columns_from=columns_from,
        used=tuple(used),
        notes=tuple(notes),
    )
    return replace(reviewed, verdict=_verdict(reviewed, drift))


def _verdict(review_: SchemaReview, drift: Drift) -> Verdict:
    if (
        drift.missing
        or drift.retyped
        or any(review_.read_downstream(c.name) for c in drift.dropped)
    ):
        return Verdict.BREAKING
    if drift.dropped or _new_columns(drift) or _governance(drift):
        return Verdict.FOLLOW_UP
    return Verdict.MATCHES


def review(node: DbtNode, actual: dict[str, str], *, baseline: bool = False) -> Drift:
    """Compare the columns the relation has (name → type) with the declaration of `node` and,
    with `baseline`, with the columns catalog.json recorded (`ColumnDoc.catalog_type`)."""
    by_lower = {name.lower(): name for name in actual}
    declared = [c for c in node.columns if c.declared]
    declared_names = {c.name.lower() for c in declared}
    missing = tuple(c for c in declared if c.name.lower() not in by_lower)
    has_baseline = baseline and any(c.catalog_type for c in node.columns)
    dropped = (
        tuple(
            c
            for c in node.columns
            if not c.declared and c.catalog_type and c.name.lower() not in by_lower
        )
        if has_baseline
        else ()
    )
    added = tuple(n for n in actual if n.lower() not in declared_names)
    retyped: list[TypeChange] = []
    for column in node.columns:
        now = by_lower.get(column.name.lower())
        # The declaration wins: a type that matches it is intended, even if the last build
        # had another.
        expected, basis = (
            (column.declared_type, "declared")
            if column.declared_type
            else (column.catalog_type if has_baseline else "", "catalog")
        )
        if now is not None and expected and not _same_type(expected, actual[now]):
            retyped.append(
                TypeChange(column=column.name, expected=expected, actual=actual[now], basis=basis)
            )
    renamed = _renames((*missing, *dropped), added, actual)
    personal = tuple(n for n in actual if privacy.category(n, actual[n]))
    undescribed = tuple(c.name for c in declared if not c.description.strip())
    key_tested = any(
        any(t.startswith("unique") for t in c.tests)
        and any(t.startswith("not_null") for t in c.tests)
        for c in node.columns
    )
    return Drift(
        missing=missing,
        dropped=dropped,
        added=added,
        retyped=tuple(retyped),
        renamed=renamed,
        personal=personal,
        undescribed=undescribed,
        key_tested=key_tested or node.resource_type == "source",
        actual=actual,
        baseline=has_baseline,
    )


# --- the reply -----------------------------------------------------------------------------


def render(review_: SchemaReview, *, request: Request, agent: Agent | None = None) -> Reply:
    node = review_.node
    if review_.verdict is Verdict.CANNOT_REVIEW or review_.drift is None:
        return Reply(
            title=f"Cannot review `{node.name}`: {review_.reason}",
            tone=Tone.WARNING,
            text=review_.explanation,
            sources=review_.used,
            notes=_notes(review_, request),
        )
    drift = review_.drift
    sections: list[Section] = [_summary(review_, drift)]
    if drift.missing:
        sections.append(
            Section(
                heading=f"Declared but missing ({len(drift.missing)}) — breaking",
                text="Models, tests and dashboards that select these columns fail.",
                bullets=tuple(_lost_bullet(review_, c) for c in drift.missing[:LISTED])
                + _more(drift.missing),
            )
        )
    if drift.dropped:
        read = [c for c in drift.dropped if review_.read_downstream(c.name)]
        sections.append(
            Section(
                heading=f"Dropped since the last build ({len(drift.dropped)})"
                + (" — breaking" if read else ""),
                text="catalog.json had these columns; the relation no longer does. They are not "
                "declared, so only the SQL of the models reading the relation tells who breaks.",
                bullets=tuple(_lost_bullet(review_, c) for c in drift.dropped[:LISTED])
                + _more(drift.dropped),
            )
        )
    if drift.retyped:
        text = (
            "The contract is enforced: the next `dbt build` of this model fails until the SQL "
            "or the declaration changes."
            if node.contract_enforced
            else "Consumers that cast, join or aggregate these columns may break or change results."
        )
        sections.append(
            Section(
                heading=f"Type changed ({len(drift.retyped)})",
                text=text,
                bullets=tuple(_type_bullet(review_, t) for t in drift.retyped[:LISTED]),
            )
        )
    new_columns = _new_columns(drift)
    if new_columns:
        sections.append(
            Section(
                heading=f"Not declared in dbt ({len(new_columns)})",
                text="Added since the YAML was written, or never documented: declare them "
                "(name, description, tests) so consumers and contracts know them.",
                bullets=tuple(f"`{n}` `{drift.actual[n]}`" for n in new_columns[:LISTED])
                + _more(new_columns),
            )
        )
    governance = _governance(drift)
    if governance:
        sections.append(Section(heading="Governance", bullets=tuple(governance)))
    lineage = review_.lineage
    if (drift.lost or drift.retyped) and lineage is not None:
        sections.append(_affected(lineage))

    if review_.verdict is Verdict.BREAKING:
        tone = Tone.ERROR
        read_dropped = sum(1 for c in drift.dropped if review_.read_downstream(c.name))
        title = f"{TITLE}{node.name}: breaking — " + ", ".join(
            part
            for part in (
                phrases.plural(len(drift.missing), "declared column") + " missing"
                if drift.missing
                else "",
                phrases.plural(read_dropped, "dropped column") + " read downstream"
                if read_dropped
                else "",
                phrases.plural(len(drift.retyped), "type change") if drift.retyped else "",
            )
            if part
        )
    elif review_.verdict is Verdict.FOLLOW_UP:
        tone = Tone.WARNING
        count = len(drift.dropped) + len(new_columns) + len(governance)
        title = (
            f"{TITLE}{node.name}: no breaking change, "
            + phrases.plural(count, "thing")
            + " to follow up"
        )
    else:
        tone = Tone.SUCCESS
        title = f"{TITLE}{node.name}: matches its declaration" + (
            " and the last build" if drift.baseline else ""
        )
    reply = Reply(
        title=title,
        tone=tone,
        sections=tuple(sections),
        sources=review_.used,
        notes=_notes(review_, request),
    )
    if agent is not None and review_.verdict in (Verdict.BREAKING, Verdict.FOLLOW_UP):
        reply = _with_review(reply, review_=review_, agent=agent, request=request)
    return reply


def _summary(review_: SchemaReview, drift: Drift) -> Section:
    node = review_.node
    declared = sum(1 for c in node.columns if c.declared)
    catalog_at = review_.times.catalog
    fields = [
        Field("Relation", f"`{node.relation}`") if node.relation else None,
        Field("Owners", ", ".join(unique_owners(node.owners)) or "–"),
        Field("Contract", "enforced" if node.contract_enforced else "not enforced"),
        Field("Columns", f"{len(drift.actual)} in the relation, {declared} declared"),
        Field(
            "Compared with",
            "the declaration and catalog.json of "
            + phrases.timestamp(catalog_at)
            + (f" ({phrases.ago(catalog_at, review_.now)})" if catalog_at and review_.now else ""),
        )
        if drift.baseline
        else None,
    ]
    return Section(fields=tuple(f for f in fields if f is not None))


def _lost_bullet(review_: SchemaReview, column: ColumnDoc) -> str:
    drift = review_.drift
    assert drift is not None
    text = f"`{column.name}`"
    if column.catalog_type and not column.declared:
        text += f" `{column.catalog_type}`"
    new = _new_name(column.name, drift)
    if new:
        text += f" — probably renamed to `{new}`"
    sure, maybe = review_.readers(column.name)
    readers = []
    if sure:
        readers.append("selected by " + _names(sure))
    if maybe:
        readers.append("perhaps selected by " + _names(maybe))
    if readers:
        fails = "its next build fails" if len(sure) + len(maybe) == 1 else "their next builds fail"
        text += " — " + "; ".join(readers) + ": " + fails
    elif review_.uses and not review_.uses_error:
        text += " — no model downstream selects it"
    if column.tests:
        text += f" (tests: {', '.join(column.tests)})"
    return text


def _type_bullet(review_: SchemaReview, change: TypeChange) -> str:
    where = "declared" if change.basis == "declared" else "catalog.json (the last build) had"
    text = f"`{change.column}`: {where} `{change.expected}`, the relation has `{change.actual}`"
    sure, maybe = review_.readers(change.column)
    if sure or maybe:
        text += " — read by " + _names(sure + maybe)
    elif review_.uses and not review_.uses_error:
        text += " — no model downstream selects it"
    return text


def _names(models: list[str]) -> str:
    return ", ".join(f"`{m}`" for m in models)


def _notes(review_: SchemaReview, request: Request) -> tuple[str, ...]:
    notes = list(review_.notes)
    drift = review_.drift
    if drift is not None and drift.renamed:
        notes.append("Renames are guessed: a lost and an undeclared column of the same type.")
    if any(u.maybe for u in review_.uses):
        notes.append(
            "“Perhaps selected”: through `select *`, an unqualified name, Jinja pipebot does "
            "not render, or SQL it could not parse — "
            + "; ".join(
                f"`{u.reader.name}`: {u.problem or 'from its ' + u.code + ' SQL'}"
                for u in review_.uses
                if u.maybe
            )
            + "."
        )
    if request.sources.label:
        notes.append(request.sources.label)
    return tuple(notes)


def _new_columns(drift: Drift) -> list[str]:
    renamed_to = {new for _, new in drift.renamed}
    return [n for n in drift.added if n not in renamed_to]


def _governance(drift: Drift) -> list[str]:
    governance: list[str] = []
    if drift.personal:
        governance.append(
            "Looks like personal data: "
            + ", ".join(f"`{n}`" for n in drift.personal)
            + " — check masking, access grants and retention, and tag it in `meta`."
        )
    if drift.undescribed:
        governance.append(
            "Declared without a description: " + ", ".join(f"`{n}`" for n in drift.undescribed)
        )
    if not drift.key_tested:
        governance.append(
            "No column is tested as a key (`unique` + `not_null`): duplicates would go unnoticed."
        )
    return governance


def _affected(lineage: Lineage) -> Section:
    # One person, one way of writing them: "@dana" on a model and "dana@example.com" on a
    # dashboard are both shown as @dana.
    everyone = [o for n in (*lineage.downstream, *lineage.exposures) for o in n.owners]
    owners = sorted(unique_owners(everyone))
    bullets = [
        f"{n.resource_type} `{n.name}`"
        + (f" — {', '.join(unique_owners(n.owners, known=everyone))}" if n.owners else "")
        for n in (*lineage.children, *lineage.exposures)
    ]
    further = len(lineage.downstream) - len(lineage.children)
    if further > 0:
        bullets.append(f"and {phrases.plural(further, 'more node')} further downstream")
    return Section(
        heading="Who is affected",
        text="Nothing downstream in dbt." if not bullets else "",
        fields=(Field("Owners to tell", ", ".join(owners) or "–"),) if bullets else (),
        bullets=tuple(bullets[: LISTED + 1]),
    )


def _with_review(reply: Reply, *, review_: SchemaReview, agent: Agent, request: Request) -> Reply:
    request.progress("Agent: reviewing the schema change")
    node, drift, lineage = review_.node, review_.drift, review_.lineage
    assert drift is not None
    facts: dict[str, Any] = {
        "model": node.name,
        "relation": node.relation,
        "verdict": str(review_.verdict),
        "columns_from": review_.columns_from,
        "baseline": (
            f"catalog.json of {phrases.timestamp(review_.times.catalog)}" if drift.baseline else ""
        ),
        "contract_enforced": node.contract_enforced,
        "declared": [
            {"name": c.name, "type": c.declared_type, "tests": list(c.tests)}
            for c in node.columns
            if c.declared
        ],
        "relation_columns": drift.actual,
        "missing": [c.name for c in drift.missing],
        "dropped_since_last_build": [c.name for c in drift.dropped],
        "added": list(drift.added),
        "retyped": [
            {"column": t.column, "was": t.expected, "now": t.actual, "basis": t.basis}
            for t in drift.retyped
        ],
        "likely_renamed": [list(r) for r in drift.renamed],
        "selected_downstream": {
            u.reader.name: {"selects": list(u.columns), "may_select": list(u.maybe)}
            for u in review_.uses
        },
        "personal_data_like": list(drift.personal),
        "downstream": [n.name for n in lineage.downstream] if lineage else [],
        "exposures": [n.name for n in lineage.exposures] if lineage else [],
    }
    change = f"the columns of {node.name} against its dbt declaration and last build"
    answer = agent.answer(
        prompt("schema_review", change=change, facts=json.dumps(facts, indent=1)),
        history=[],
        request=request,
    )
    text = agent_text(answer)
    if answer.tone is Tone.ERROR or not text:
        return reply
    return Reply(
        title=reply.title,
        tone=reply.tone,
        sections=(*reply.sections, Section(heading="Review", text=text)),
        sources=reply.sources + answer.sources,
        notes=(*reply.notes, "Review written by the agent from the facts above."),
    )


# --- the facts behind the verdict ----------------------------------------------------------


def _builds(run: DbtRun) -> bool:
    """The run (re)built relations: ``build``, ``run`` … (dbt Cloud joins steps with "+")."""
    words = {part.strip().split(" ")[0] for part in run.command.split("+")}
    return bool(words & BUILDING_COMMANDS)


def _stale_catalog(times: ArtifactTimes, last_build: DbtRun | None, now: datetime) -> str:
    """What catalog.json is older than, as words ("" when it is current, as far as the
    artifacts tell). Without a build in run_results.json, a newer manifest.json means some dbt
    command ran after `docs generate`: it may have been a build."""
    catalog = times.catalog
    if last_build is not None and last_build.generated_at is not None:
        built = last_build.generated_at
        if catalog is None:
            return (
                f"its age is unknown, and a build ran {phrases.ago(built, now)} "
                f"({command_text(last_build.command)})"
            )
        if catalog < built:
            return (
                f"{phrases.duration((built - catalog).total_seconds())} before the last build "
                f"({command_text(last_build.command)}, {phrases.ago(built, now)})"
            )
        return ""
    manifest = times.manifest
    if manifest is not None and (catalog is None or catalog < manifest):
        return (
            (f"{phrases.duration((manifest - catalog).total_seconds())} " if catalog else "")
            + f"before manifest.json ({phrases.ago(manifest, now)}): a dbt command ran since, "
            "and run_results.json does not show whether it rebuilt the relation"
        )
    return ""


def _catalog_said(times: ArtifactTimes, now: datetime) -> str:
    if times.catalog is None:
        return "generated at an unknown time"
    return f"generated {phrases.timestamp(times.catalog)}, {phrases.ago(times.catalog, now)}"


def _failed_build_note(node: DbtNode, run: DbtRun | None) -> str:
    """The node's own result in the latest run, when it did not build."""
    if run is None or not _builds(run):
        return ""
    result = next((r for r in run.results if r.unique_id == node.unique_id), None)
    if result is None or result.status not in ("error", "skipped", "runtime error"):
        return ""
    said = message_gist(result.message)
    what = "was skipped" if result.status == "skipped" else "ended in error"
    return f"Its last {command_text(run.command)} {what}" + (f" ({said})" if said else "") + "."


def _same_type(expected: str, actual: str) -> bool:
    """Equal types, where a type written without parameters matches any of its sizes (a
    declared ``varchar`` is the warehouse's ``VARCHAR(256)``)."""
    left, right = _canonical(expected), _canonical(actual)
    if left == right:
        return True
    base_left, _, params_left = left.partition("(")
    base_right, _, params_right = right.partition("(")
    return base_left == base_right and not (params_left and params_right)


def _canonical(type_text: str) -> str:
    try:
        return exp.DataType.build(type_text).sql().lower().replace(" ", "")
    except (ParseError, ValueError):
        return re.sub(r"\s+", "", type_text.lower())


def _renames(
    lost: tuple[ColumnDoc, ...], added: tuple[str, ...], actual: dict[str, str]
) -> tuple[tuple[str, str], ...]:
    """Pairs of a lost column and an undeclared one of the same type, where each is the only
    candidate for the other — or, among several of that type, the only one with a similar
    name (``country`` → ``country_code``)."""
    pairs: list[tuple[str, str]] = []
    for column in lost:
        wanted = column.declared_type or column.catalog_type
        if not wanted:
            continue
        candidates = [n for n in added if _same_type(actual[n], wanted)]
        rivals = [c for c in lost if _same_type(c.declared_type or c.catalog_type, wanted)]
        if len(candidates) == 1 and len(rivals) == 1:
            pairs.append((column.name, candidates[0]))
            continue
        similar = [n for n in candidates if _similar(column.name, n)]
        if len(similar) == 1 and [c for c in rivals if _similar(c.name, similar[0])] == [column]:
            pairs.append((column.name, similar[0]))
    return tuple(pairs)


def _similar(old: str, new: str) -> bool:
    a, b = old.lower(), new.lower()
    return a in b or b in a or difflib.SequenceMatcher(None, a, b).ratio() >= 0.8


def _new_name(old: str, drift: Drift) -> str:
    return next((new for was, new in drift.renamed if was == old), "")


def _more(items: tuple[Any, ...] | list[Any]) -> tuple[str, ...]:
    return (phrases.more(LISTED, len(items)),) if len(items) > LISTED else ()

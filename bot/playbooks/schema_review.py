"""`schema-review <model>`: a model's columns as the warehouse has them, against what the dbt
project declares — drift, what it breaks and for whom, and governance gaps.

The warehouse is read live when it is configured (else dbt's catalog.json, the columns seen at
the last `dbt docs generate`). Findings, most severe first:

- declared columns the relation no longer has (removed or renamed: consumers selecting them
  fail), with the models, exposures and owners downstream;
- type changes against the declared type (with an enforced contract dbt refuses the build);
- columns the relation has but the project does not declare (added, undocumented);
- governance: columns that look like personal data, declared columns without a description, no
  column tested as a key (unique + not_null).

With an agent, a review (ship / ship with follow-ups / block) written from these facts follows.
"""

from __future__ import annotations

import itertools
import json
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from sqlglot import exp
from sqlglot.errors import ParseError

from bot import phrases
from bot.agent import Agent
from bot.commands import Request
from bot.facts import ColumnDoc, DbtNode, Lineage, Table
from bot.fanout import Outcome, gather
from bot.messages import Field, Reply, Section, Tone
from bot.playbooks.replies import agent_text, missing_argument, not_found_reply, source_missing
from bot.prompts import prompt

USAGE = "schema-review <model>"
# Every reply that is a review (not an input or lookup problem) has a title starting so.
TITLE = "Schema review of "
TIMEOUT_S = 20.0
LISTED = 15
# Column-name words that usually mean personal data (GDPR/CCPA scope), matched per word.
_PERSONAL = frozenset(
    {
        "email",
        "mail",
        "phone",
        "mobile",
        "msisdn",
        "ssn",
        "passport",
        "birth",
        "birthday",
        "dob",
        "address",
        "street",
        "postcode",
        "zip",
        "zipcode",
        "iban",
        "ip",
        "surname",
        "lastname",
        "firstname",
        "fullname",
    }
)
_PERSONAL_PAIRS = frozenset({("first", "name"), ("last", "name"), ("full", "name")})


@dataclass(frozen=True, kw_only=True)
class Drift:
    """How the relation's columns differ from the project's declaration."""

    missing: tuple[ColumnDoc, ...] = ()  # declared, not in the relation
    added: tuple[str, ...] = ()  # in the relation, not declared
    retyped: tuple[tuple[str, str, str], ...] = ()  # (column, declared type, actual type)
    renamed: tuple[tuple[str, str], ...] = ()  # (declared name, likely new name)
    personal: tuple[str, ...] = ()
    undescribed: tuple[str, ...] = ()
    key_tested: bool = True
    actual: dict[str, str] = field(default_factory=dict)  # column → type as the relation has it

    @property
    def breaking(self) -> bool:
        return bool(self.missing or self.retyped)


def run(request: Request, agent: Agent | None = None) -> Reply:
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
    }
    out = gather(calls, timeout=TIMEOUT_S)
    if not out["node"].ok:
        return not_found_reply(out["node"], what=f"dbt node `{name}`")
    node_out: Outcome[DbtNode] = out["node"]
    node = node_out.value
    assert node is not None  # ok outcomes carry a value
    if node.resource_type in ("test", "exposure"):
        return Reply(
            title=f"`{name}` has no schema",
            tone=Tone.WARNING,
            text=f"`{name}` is a dbt {node.resource_type}; review a model, seed, snapshot or "
            "source instead.",
        )
    lineage_out: Outcome[Lineage] = out["lineage"]
    lineage = lineage_out.value if lineage_out.ok else None

    warehouse_note = ""
    actual: dict[str, str] | None = None
    used = [f"{dbt.system}: manifest (declared columns, tests, contract), lineage"]
    warehouse = request.sources.warehouse
    located = _locate(node.relation)
    if warehouse is not None and located is not None:
        schema, table_name = located
        request.progress(f"Warehouse: reading the columns of {schema}.{table_name}")
        table_out: Outcome[Table] = gather(
            {"table": (warehouse.system, lambda: warehouse.table(schema, table_name))},
            timeout=TIMEOUT_S,
        )["table"]
        if table_out.ok and table_out.value is not None:
            actual = {c.name: c.data_type for c in table_out.value.columns}
            used.append(f"{warehouse.system}: columns of {schema}.{table_name} (live)")
        else:
            warehouse_note = (
                f"The warehouse could not show {schema}.{table_name}: {table_out.error}"
            )
    if actual is None:
        in_catalog = {c.name: c.catalog_type for c in node.columns if c.catalog_type}
        if in_catalog:
            actual = in_catalog
            used.append(f"{dbt.system}: catalog.json (columns at the last `dbt docs generate`)")
    if actual is None:
        return Reply(
            title=f"Cannot review `{node.name}`: its columns in the warehouse are unknown",
            tone=Tone.WARNING,
            text=(warehouse_note + " " if warehouse_note else "")
            + "Neither the warehouse nor dbt's catalog.json shows this relation. Check that it "
            "was built (`dbt build -s " + node.name + "`), that the warehouse connector can read "
            "its schema, or run `dbt docs generate` so catalog.json lists it.",
            sources=tuple(used),
        )

    drift = review(node, actual)
    return _render(
        node,
        lineage=lineage,
        drift=drift,
        used=used,
        warehouse_note=warehouse_note,
        request=request,
        agent=agent,
    )


def review(node: DbtNode, actual: dict[str, str]) -> Drift:
    """Compare the declaration of `node` with the columns the relation has (name → type)."""
    by_lower = {name.lower(): name for name in actual}
    declared = [c for c in node.columns if c.declared]
    declared_names = {c.name.lower() for c in declared}
    missing = tuple(c for c in declared if c.name.lower() not in by_lower)
    added = tuple(n for n in actual if n.lower() not in declared_names)
    retyped = tuple(
        (c.name, c.declared_type, actual[by_lower[c.name.lower()]])
        for c in declared
        if c.declared_type
        and c.name.lower() in by_lower
        and not _same_type(c.declared_type, actual[by_lower[c.name.lower()]])
    )
    renamed = _renames(missing, added, actual)
    personal = tuple(n for n in actual if _looks_personal(n))
    undescribed = tuple(c.name for c in declared if not c.description.strip())
    key_tested = any(
        any(t.startswith("unique") for t in c.tests)
        and any(t.startswith("not_null") for t in c.tests)
        for c in node.columns
    )
    return Drift(
        missing=missing,
        added=added,
        retyped=retyped,
        renamed=renamed,
        personal=personal,
        undescribed=undescribed,
        key_tested=key_tested or node.resource_type == "source",
        actual=actual,
    )


def _render(
    node: DbtNode,
    *,
    lineage: Lineage | None,
    drift: Drift,
    used: list[str],
    warehouse_note: str,
    request: Request,
    agent: Agent | None,
) -> Reply:
    sections: list[Section] = [
        Section(
            fields=tuple(
                f
                for f in (
                    Field("Relation", f"`{node.relation}`") if node.relation else None,
                    Field("Owners", ", ".join(node.owners) or "–"),
                    Field("Contract", "enforced" if node.contract_enforced else "not enforced"),
                    Field(
                        "Columns",
                        f"{len(drift.actual)} in the relation, "
                        f"{sum(1 for c in node.columns if c.declared)} declared",
                    ),
                )
                if f is not None
            )
        )
    ]
    if drift.missing:
        bullets = [
            f"`{c.name}`"
            + (f" — probably renamed to `{new}`" if (new := _new_name(c.name, drift)) else "")
            + (f" (tests: {', '.join(c.tests)})" if c.tests else "")
            for c in drift.missing[:LISTED]
        ]
        sections.append(
            Section(
                heading=f"Declared but missing ({len(drift.missing)}) — breaking",
                text="Models, tests and dashboards that select these columns fail.",
                bullets=tuple(bullets) + _more(drift.missing),
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
                bullets=tuple(
                    f"`{col}`: declared `{declared}`, the relation has `{now}`"
                    for col, declared, now in drift.retyped[:LISTED]
                ),
            )
        )
    new_columns = [n for n in drift.added if n not in {new for _, new in drift.renamed}]
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
    if governance:
        sections.append(Section(heading="Governance", bullets=tuple(governance)))
    if drift.breaking and lineage is not None:
        sections.append(_affected(lineage))

    findings = len(drift.missing) + len(drift.retyped) + len(new_columns)
    if drift.breaking:
        tone = Tone.ERROR
        title = f"{TITLE}{node.name}: breaking — " + ", ".join(
            part
            for part in (
                phrases.plural(len(drift.missing), "declared column") + " missing"
                if drift.missing
                else "",
                phrases.plural(len(drift.retyped), "type change") if drift.retyped else "",
            )
            if part
        )
    elif findings or governance:
        tone = Tone.WARNING
        title = (
            f"{TITLE}{node.name}: no breaking change, "
            + phrases.plural(findings + len(governance), "thing")
            + " to follow up"
        )
    else:
        tone, title = Tone.SUCCESS, f"{TITLE}{node.name}: matches its declaration"
    notes = [warehouse_note] if warehouse_note else []
    if drift.renamed:
        notes.append("Renames are guessed: a missing and an undeclared column of the same type.")
    if request.sources.label:
        notes.append(request.sources.label)
    reply = Reply(
        title=title, tone=tone, sections=tuple(sections), sources=tuple(used), notes=tuple(notes)
    )
    if agent is not None and (findings or governance):
        reply = _with_review(
            reply, node=node, drift=drift, lineage=lineage, agent=agent, request=request
        )
    return reply


def _affected(lineage: Lineage) -> Section:
    owners = sorted({o for n in (*lineage.downstream, *lineage.exposures) for o in n.owners})
    bullets = [
        f"{n.resource_type} `{n.name}`" + (f" — {', '.join(n.owners)}" if n.owners else "")
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


def _with_review(
    reply: Reply,
    *,
    node: DbtNode,
    drift: Drift,
    lineage: Lineage | None,
    agent: Agent,
    request: Request,
) -> Reply:
    request.progress("Agent: reviewing the schema change")
    facts: dict[str, Any] = {
        "model": node.name,
        "relation": node.relation,
        "contract_enforced": node.contract_enforced,
        "declared": [
            {"name": c.name, "type": c.declared_type, "tests": list(c.tests)}
            for c in node.columns
            if c.declared
        ],
        "relation_columns": drift.actual,
        "missing": [c.name for c in drift.missing],
        "added": list(drift.added),
        "retyped": [list(r) for r in drift.retyped],
        "likely_renamed": [list(r) for r in drift.renamed],
        "personal_data_like": list(drift.personal),
        "downstream": [n.name for n in lineage.downstream] if lineage else [],
        "exposures": [n.name for n in lineage.exposures] if lineage else [],
    }
    change = f"the columns of {node.name} against its dbt declaration"
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


def _locate(relation: str) -> tuple[str, str] | None:
    """(schema, table) of a dbt relation name such as ``"shop"."marts"."fct_orders"``."""
    if not relation:
        return None
    try:
        table = exp.to_table(relation)
    except ParseError:
        return None
    if not table.name or not table.db:
        return None
    return table.db, table.name


def _same_type(declared: str, actual: str) -> bool:
    return _canonical(declared) == _canonical(actual)


def _canonical(type_text: str) -> str:
    try:
        return exp.DataType.build(type_text).sql().lower().replace(" ", "")
    except (ParseError, ValueError):
        return re.sub(r"\s+", "", type_text.lower())


def _renames(
    missing: tuple[ColumnDoc, ...], added: tuple[str, ...], actual: dict[str, str]
) -> tuple[tuple[str, str], ...]:
    """Pairs of a missing declared column and an undeclared one of the same type, where each
    is the only candidate for the other."""
    pairs: list[tuple[str, str]] = []
    for column in missing:
        wanted = column.declared_type or column.catalog_type
        if not wanted:
            continue
        candidates = [n for n in added if _same_type(actual[n], wanted)]
        rivals = [c for c in missing if _same_type(c.declared_type or c.catalog_type, wanted)]
        if len(candidates) == 1 and len(rivals) == 1:
            pairs.append((column.name, candidates[0]))
    return tuple(pairs)


def _new_name(old: str, drift: Drift) -> str:
    return next((new for was, new in drift.renamed if was == old), "")


def _looks_personal(name: str) -> bool:
    words = [w for w in re.split(r"[^a-z0-9]+", name.lower()) if w]
    if any(w in _PERSONAL for w in words):
        return True
    return any(pair in _PERSONAL_PAIRS for pair in itertools.pairwise(words))


def _more(items: tuple[Any, ...] | list[Any]) -> tuple[str, ...]:
    return (phrases.more(LISTED, len(items)),) if len(items) > LISTED else ()

"""`lineage <model>`: what a dbt node reads, what reads it, down to dashboards and owners.

The impact of a node is what gets rebuilt from it (models, seeds, snapshots) and the
exposures on it; the metrics, semantic models and saved queries built on it are listed apart.
A name that fits several nodes (a seed and a source over one table) is never resolved
silently: the reply lists every candidate with what reads it and the exact name to ask for.

With a warehouse configured, the node's relation is read there too (its columns as the
warehouse has them, rows, size, last change): lineage says what exists, not only what dbt
declares — a relation the warehouse lacks is said, and a warehouse that cannot answer is a note.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace

from bot import phrases
from bot.commands import Request
from bot.errors import Ambiguous, Candidate, NotFound
from bot.facts import DbtNode, Lineage, Table
from bot.fanout import Outcome, gather
from bot.messages import Field, Reply, Section, Tone
from bot.owners import unique_owners
from bot.playbooks.dbt_text import tests_heading
from bot.playbooks.replies import missing_argument, not_found_reply, source_missing
from bot.ports import DbtProject, WarehouseCatalog
from bot.relations import locate

LISTED = 15
CANDIDATES = 6  # candidates of an ambiguous name whose lineage is read
TIMEOUT_S = 20.0
_SEMANTIC = frozenset({"metric", "semantic_model", "saved_query"})
_TESTS = frozenset({"test", "unit_test"})


def kind_word(resource_type: str) -> str:
    """``semantic_model`` → ``semantic model``: dbt's resource types as people say them."""
    return resource_type.replace("_", " ")


def run(request: Request) -> Reply:
    dbt = request.sources.dbt
    if dbt is None:
        return source_missing("dbt")
    if not request.args:
        return missing_argument(
            "lineage <model>",
            "a model, seed, snapshot, source (`source_name.table`), exposure, metric, "
            "semantic model or saved query name",
        )
    name = request.args[0]
    request.progress(f"dbt: tracing lineage of {name}")
    out = gather({"lineage": (dbt.system, lambda: dbt.lineage(name))}, timeout=TIMEOUT_S)["lineage"]
    if isinstance(out.exc, Ambiguous):
        return _ambiguous(dbt, name, out.exc)
    if not out.ok:
        return not_found_reply(out, what=f"dbt node `{name}`")
    lineage = out.value
    assert lineage is not None  # ok outcomes carry a value
    reply = _reply(lineage, asked=name, system=dbt.system)
    warehouse = request.sources.warehouse
    located = locate(lineage.node.relation)
    if warehouse is None or located is None:
        return reply
    request.progress(f"Warehouse: reading {located[0]}.{located[1]}")
    return _with_warehouse(reply, warehouse, *located)


def _with_warehouse(reply: Reply, warehouse: WarehouseCatalog, schema: str, name: str) -> Reply:
    """The reply with the relation as the warehouse has it, or a note saying why not."""
    found: Outcome[Table] = gather(
        {"table": (warehouse.system, lambda: warehouse.table(schema, name))}, timeout=TIMEOUT_S
    )["table"]
    table = found.value
    if not found.ok or table is None:
        missing = isinstance(found.exc, NotFound) and not found.error.startswith(
            ("schema ", "no schema ")
        )
        note = (
            f"The warehouse has no table or view `{schema}.{name}`: not built yet, or "
            "dropped or renamed outside dbt."
            if missing
            else f"The warehouse could not show `{schema}.{name}`: {found.error}"
        )
        return replace(reply, notes=(*reply.notes, note))
    columns = tuple(table.columns)
    bullets = tuple(
        f"`{c.name}` {c.data_type}{'' if c.nullable is not False else ' not null'}"
        for c in columns[:LISTED]
    )
    extra = phrases.more(len(bullets), len(columns))
    section = Section(
        heading=f"In the warehouse ({table.kind} `{table.qualified_name}`)",
        text=table.comment or "",
        fields=(
            Field("Columns", f"{len(columns):,}"),
            Field("Rows", "unknown" if table.row_count is None else f"{table.row_count:,}"),
            Field("Size", phrases.size(table.size_bytes)),
            Field(
                "Last altered",
                phrases.timestamp(table.last_altered) if table.last_altered else "unknown",
            ),
        ),
        bullets=(*bullets, extra) if extra else bullets,
    )
    return replace(
        reply,
        sections=(*reply.sections, section),
        sources=(*reply.sources, f"{warehouse.system}: {schema}.{name} (live)"),
    )


def _one_spelling(lineage: Lineage) -> Lineage:
    """Each person written one way on every line ("@dana", not "@dana" here and
    "dana@example.com" there): owners merged against everyone the reply names."""
    everyone = [
        owner
        for nodes in (
            (lineage.node,),
            lineage.parents,
            lineage.children,
            lineage.upstream,
            lineage.downstream,
            lineage.exposures,
            lineage.tests,
            lineage.semantic,
        )
        for n in nodes
        for owner in n.owners
    ]

    def people(nodes: tuple[DbtNode, ...]) -> tuple[DbtNode, ...]:
        return tuple(replace(n, owners=unique_owners(n.owners, known=everyone)) for n in nodes)

    return replace(
        lineage,
        node=people((lineage.node,))[0],
        parents=people(lineage.parents),
        children=people(lineage.children),
        upstream=people(lineage.upstream),
        downstream=people(lineage.downstream),
        exposures=people(lineage.exposures),
        tests=people(lineage.tests),
        semantic=people(lineage.semantic),
    )


def _reply(lineage: Lineage, *, asked: str, system: str) -> Reply:
    lineage = _one_spelling(lineage)
    node = lineage.node
    semantic = node.resource_type in _SEMANTIC
    tested = node.resource_type in _TESTS
    sections = [
        Section(
            text=node.description,
            fields=tuple(
                f
                for f in (
                    Field("Type", _type(node)),
                    Field("Owners", ", ".join(node.owners) or "–"),
                    Field("Relation", f"`{node.relation}`") if node.relation else None,
                    Field("Path", f"`{node.path}`") if node.path else None,
                    Field("Contract", "enforced") if node.contract_enforced else None,
                    Field("Access", node.access) if node.access else None,
                )
                if f is not None
            ),
        ),
        _nodes("Checks" if tested else "Built on" if semantic else "Reads from", lineage.parents),
    ]
    parents = {p.unique_id for p in lineage.parents}
    further_up = tuple(n for n in lineage.upstream if n.unique_id not in parents)
    if further_up:
        sections.append(_nodes("Further upstream", further_up))
    affects = lineage.downstream or lineage.exposures or lineage.semantic
    if lineage.children or not (affects or tested):
        sections.append(_nodes("Read by", lineage.children))
    children = {c.unique_id for c in lineage.children}
    further = tuple(n for n in lineage.downstream if n.unique_id not in children)
    if further:
        sections.append(_nodes("Further downstream", further))
    if lineage.exposures:
        sections.append(
            Section(
                heading="Dashboards and other exposures affected",
                bullets=tuple(_exposure(e) for e in lineage.exposures),
            )
        )
    if lineage.semantic:
        sections.append(
            _nodes(
                "Used by" if semantic else "Metrics and semantic models built on it",
                lineage.semantic,
            )
        )
    if lineage.tests:
        sections.append(_tests(lineage))
    notes = [_totals(lineage)]
    if lineage.also:
        others = ", ".join(
            f"{kind_word(n.resource_type)} `{n.name}` (`lineage {n.unique_id}`)"
            for n in lineage.also
        )
        notes.append(f"`{asked}` also names {others}.")
    return Reply(
        title=f"Lineage of {node.name}",
        tone=Tone.INFO,
        sections=tuple(s for s in sections if s.bullets or s.fields or s.text),
        sources=(f"{system}: manifest parent/child maps, exposures, semantic layer, test results",),
        notes=tuple(notes),
    )


def _type(node: DbtNode) -> str:
    detail = node.materialized or node.metric_type or node.exposure_type
    return kind_word(node.resource_type) + (f" ({detail})" if detail else "")


def _totals(lineage: Lineage) -> str:
    """The blast radius in one line: models and exposures, the semantic layer apart."""
    parts = [
        f"{phrases.plural(len(lineage.upstream), 'node')} upstream",
        f"{phrases.plural(len(lineage.downstream), 'model')} downstream",
        phrases.plural(len(lineage.exposures), "exposure"),
    ]
    if lineage.semantic:
        parts.append(
            f"{len(lineage.semantic):,} in the semantic layer (metrics, semantic models, "
            "saved queries)"
        )
    return ", ".join(parts) + " in total."


def _tests(lineage: Lineage) -> Section:
    failing = [
        t
        for t in lineage.tests
        if (r := lineage.test_results.get(t.unique_id)) is not None
        and r.status in ("fail", "error", "warn")
    ]
    # Without a single result ("success" rows of `dbt docs generate` are none) no test is
    # called passing, failing or "not run": nothing is known about them.
    ran = bool(lineage.test_results)
    bullets = []
    for test in lineage.tests[:LISTED]:
        result = lineage.test_results.get(test.unique_id)
        unit = " (unit test)" if test.resource_type == "unit_test" else ""
        status = result.status if result else "not run" if ran else ""
        bullets.append(f"`{test.name}`{unit}" + (f" — {status}" if status else ""))
    if len(lineage.tests) > LISTED:
        bullets.append(phrases.more(LISTED, len(lineage.tests)))
    heading, text = tests_heading(len(lineage.tests), len(failing), lineage.run, ran=ran)
    return Section(heading=heading, text=text, bullets=tuple(bullets))


def _ambiguous(dbt: DbtProject, name: str, exc: Ambiguous) -> Reply:
    """Every node the name fits, with what reads it, and the exact name to ask for each."""
    candidates = exc.candidates[:CANDIDATES]
    found = gather({c.ref: (dbt.system, _bind(dbt, c.ref)) for c in candidates}, timeout=TIMEOUT_S)
    sections = [_candidate(c, found.get(c.ref)) for c in candidates]
    tables = {c.detail for c in exc.candidates}
    text = f"`{name}` fits {phrases.plural(len(exc.candidates), 'dbt node')}"
    if len(tables) == 1 and "" not in tables:
        both = "both" if len(exc.candidates) == 2 else "all"
        text += f", {both} over the same table `{tables.pop()}`"
    text += ". Ask for one of them: " + " or ".join(f"`lineage {c.ref}`" for c in exc.candidates)
    return Reply(
        title=f"Which {name}?",
        tone=Tone.WARNING,
        text=text + ".",
        sections=tuple(sections),
        sources=(f"{dbt.system}: manifest names, parent/child maps, exposures",),
        notes=(phrases.more(len(candidates), len(exc.candidates)),)
        if len(exc.candidates) > len(candidates)
        else (),
    )


def _bind(dbt: DbtProject, ref: str) -> Callable[[], Lineage]:
    return lambda: dbt.lineage(ref)


def _candidate(candidate: Candidate, found: Outcome[Lineage] | None) -> Section:
    heading = f"{candidate.kind} `{candidate.name}` — `lineage {candidate.ref}`"
    lineage = found.value if found is not None and found.ok else None
    if lineage is None:
        return Section(
            heading=heading,
            fields=(Field("Table", f"`{candidate.detail}`"),) if candidate.detail else (),
            text=f"Could not read its lineage: {found.error}" if found is not None else "",
        )
    node = lineage.node
    impact = [
        f"{phrases.plural(len(lineage.downstream), 'model')} downstream",
        phrases.plural(len(lineage.exposures), "exposure")
        + (
            " (" + ", ".join(f"`{e.name}`" for e in lineage.exposures[:LISTED]) + ")"
            if lineage.exposures
            else ""
        ),
    ]
    if lineage.semantic:
        impact.append(f"{len(lineage.semantic):,} in the semantic layer")
    fields = [
        Field("Table", f"`{candidate.detail}`") if candidate.detail else None,
        Field("Owners", ", ".join(node.owners) or "–"),
        Field("Reads from", _names(lineage.parents)),
        Field("Read by", _names(lineage.children)),
        Field("Impact", ", ".join(impact)),
    ]
    return Section(heading=heading, fields=tuple(f for f in fields if f is not None))


def _names(nodes: tuple[DbtNode, ...]) -> str:
    names = ", ".join(f"{kind_word(n.resource_type)} `{n.name}`" for n in nodes[:LISTED])
    return (names + f" {phrases.more(LISTED, len(nodes))}").strip() or "nothing"


def _nodes(heading: str, nodes: tuple[DbtNode, ...]) -> Section:
    bullets = [
        f"{kind_word(n.resource_type)} `{n.name}`"
        + (f" — {', '.join(n.owners)}" if n.owners else "")
        for n in nodes[:LISTED]
    ]
    if len(nodes) > LISTED:
        bullets.append(phrases.more(LISTED, len(nodes)))
    return Section(heading=heading, bullets=tuple(bullets) or ("nothing",))


def _exposure(node: DbtNode) -> str:
    text = f"{node.exposure_type or 'exposure'} `{node.name}`"
    if node.owners:
        text += " — owner " + ", ".join(node.owners)
    if node.url:
        text += f" — {node.url}"
    return text

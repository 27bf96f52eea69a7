"""`lineage <model>`: what a dbt node reads, what reads it, down to dashboards and owners."""

from __future__ import annotations

from bot import phrases
from bot.commands import Request
from bot.facts import DbtNode
from bot.fanout import gather
from bot.messages import Field, Reply, Section, Tone
from bot.playbooks.replies import missing_argument, not_found_reply, source_missing

LISTED = 15
TIMEOUT_S = 20.0


def run(request: Request) -> Reply:
    dbt = request.sources.dbt
    if dbt is None:
        return source_missing("dbt")
    if not request.args:
        return missing_argument("lineage <model>", "a model, seed, snapshot or source name")
    name = request.args[0]
    request.progress(f"dbt: tracing lineage of {name}")
    out = gather({"lineage": (dbt.system, lambda: dbt.lineage(name))}, timeout=TIMEOUT_S)["lineage"]
    if not out.ok:
        return not_found_reply(out, what=f"dbt node `{name}`")
    lineage = out.value
    assert lineage is not None  # ok outcomes carry a value
    node = lineage.node
    sections = [
        Section(
            text=node.description,
            fields=tuple(
                f
                for f in (
                    Field(
                        "Type",
                        node.resource_type
                        + (f" ({node.materialized})" if node.materialized else ""),
                    ),
                    Field("Owners", ", ".join(node.owners) or "–"),
                    Field("Relation", f"`{node.relation}`") if node.relation else None,
                    Field("Path", f"`{node.path}`") if node.path else None,
                    Field("Contract", "enforced") if node.contract_enforced else None,
                    Field("Access", node.access) if node.access else None,
                )
                if f is not None
            ),
        ),
        _nodes("Reads from", lineage.parents),
        _nodes("Read by", lineage.children),
    ]
    further = [
        n for n in lineage.downstream if n.unique_id not in {c.unique_id for c in lineage.children}
    ]
    if further:
        sections.append(_nodes("Further downstream", tuple(further)))
    if lineage.exposures:
        sections.append(
            Section(
                heading="Dashboards and other exposures affected",
                bullets=tuple(_exposure(e) for e in lineage.exposures),
            )
        )
    if lineage.tests:
        failing = [
            t
            for t in lineage.tests
            if lineage.test_results.get(t.unique_id)
            and lineage.test_results[t.unique_id].status in ("fail", "error", "warn")
        ]
        bullets = []
        for test in lineage.tests[:LISTED]:
            result = lineage.test_results.get(test.unique_id)
            bullets.append(f"`{test.name}` — {result.status if result else 'not run'}")
        sections.append(
            Section(
                heading=f"Tests ({len(lineage.tests)}, {len(failing)} failing)",
                bullets=tuple(bullets)
                + (
                    (phrases.more(LISTED, len(lineage.tests)),)
                    if len(lineage.tests) > LISTED
                    else ()
                ),
            )
        )
    return Reply(
        title=f"Lineage of {node.name}",
        tone=Tone.INFO,
        sections=tuple(s for s in sections if s.bullets or s.fields or s.text),
        sources=(f"{dbt.system}: manifest parent/child maps, exposures, test results",),
        notes=(
            f"{phrases.plural(len(lineage.upstream), 'node')} upstream, "
            f"{phrases.plural(len(lineage.downstream), 'node')} downstream in total.",
        ),
    )


def _nodes(heading: str, nodes: tuple[DbtNode, ...]) -> Section:
    bullets = [
        f"{n.resource_type} `{n.name}`" + (f" — {', '.join(n.owners)}" if n.owners else "")
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

"""Who reads what changed, and how bad each change is.

The readers of a changed column are found in the target state, hop by hop: each model or
snapshot directly downstream has its SQL parsed (`bot.review.sql`), and only those that read
the column — in a projection, a join, a filter — are readers; the columns they make from it
carry the change on to *their* readers, and so on. Tests on an affected column, singular tests
whose SQL reads it, and the exposures that depend on a reader (or on the changed node itself,
whose columns they do not declare) are readers too. A model downstream that never touches the
column is not listed: "downstream" is not "affected".

Each change is then classified (`Classification`): what can break a reader starts as
partial-breaking and becomes breaking when something reads it, or when the node promised it —
an enforced contract, ``access: public``. See docs/schema-review.md for the table.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace

from bot import phrases
from bot.facts import DbtState
from bot.owners import unique_owners
from bot.review.change import Change, Classification, Impact, Kind, Reader
from bot.review.sql import Readings

MAX_DEPTH = 10  # hops followed downstream from a changed column
MAX_READERS = 100  # readers traced per change, nearest first

_NON = Classification.NON_BREAKING
_PARTIAL = Classification.PARTIAL
_BREAKING = Classification.BREAKING
# Changes a reader of the column or node can feel, whose readers are traced.
_COLUMN_KINDS = frozenset({Kind.COLUMN_REMOVED, Kind.COLUMN_RENAMED, Kind.TYPE_CHANGED})
_ACCESS_RANK = {"private": 0, "protected": 1, "public": 2}


class Graph:
    """Who depends on whom in one state: models, snapshots, tests and exposures by parent."""

    def __init__(self, state: DbtState) -> None:
        children: dict[str, list[str]] = {}
        for uid, node in state.nodes.items():
            for parent in node.parents:
                children.setdefault(parent, []).append(uid)
        for uid, exposure in state.exposures.items():
            for parent in exposure.parents:
                children.setdefault(parent, []).append(uid)
        for uid, test in state.tests.items():
            for parent in test.parents:
                children.setdefault(parent, []).append(uid)
        self.children = {uid: sorted(kids) for uid, kids in children.items()}


@dataclass(slots=True)
class _Found:
    reader: Reader
    order: int


class Tracer:
    """Traces the readers of changed columns and nodes in the target state."""

    def __init__(self, state: DbtState, sql: Readings, graph: Graph | None = None) -> None:
        self.state = state
        self.sql = sql
        self.graph = graph or Graph(state)

    def name(self, uid: str) -> str:
        node = self.state.nodes.get(uid) or self.state.exposures.get(uid)
        if node is not None:
            return node.name
        test = self.state.tests.get(uid)
        return test.name if test is not None else uid.rsplit(".", 1)[-1]

    def column(self, uid: str, column: str) -> Impact:
        """Everything that reads `column` of `uid`, directly or through columns made from it."""
        state = self.state
        found: dict[str, _Found] = {}
        unknown: list[str] = []
        start = column.lower()
        frontier: list[tuple[str, str, str, str]] = [(uid, start, "sure", "")]
        seen = {(uid, start)}
        depth = 0
        capped = False
        while frontier and depth < MAX_DEPTH and not capped:
            depth += 1
            following: list[tuple[str, str, str, str]] = []
            for parent, col, certainty, origin in frontier:
                if len(found) >= MAX_READERS:
                    # Nearest first: enough to classify and to tell the owners who matter
                    # most; a wider trace would parse much of a large project.
                    capped = True
                    break
                subject = f"`{self.name(parent)}.{col}`" + (
                    f" (made from {origin})" if origin else ""
                )
                for child in self.graph.children.get(parent, ()):
                    if child in state.exposures:
                        if depth == 1:
                            self._add(
                                found,
                                child,
                                "maybe",
                                f"depends on `{self.name(parent)}` itself, and exposures do not "
                                "declare which columns they show",
                                depth,
                            )
                        continue
                    test = state.tests.get(child)
                    if test is not None:
                        how = self._test_reads(child, parent, col)
                        if how:
                            self._add(
                                found, child, _worst(how, certainty), f"tests {subject}", depth
                            )
                        continue
                    node = state.nodes.get(child)
                    if node is None or node.resource_type not in ("model", "snapshot"):
                        continue
                    if not self.sql.may_read(child, col):
                        continue
                    reading = self.sql.of(child)
                    how = reading.reads_column(parent, col)
                    if not how:
                        continue
                    how = _worst(how, certainty)
                    made = tuple(reading.derived_from(parent, col))
                    verb = "selects" if how == "sure" else "may select"
                    self._add(found, child, how, f"{verb} {subject}", depth, columns=made)
                    if reading.problem:
                        unknown.append(f"`{node.name}`: {reading.problem}")
                    for grandchild in self.graph.children.get(child, ()):
                        if grandchild in state.exposures:
                            self._add(
                                found,
                                grandchild,
                                how,
                                f"depends on `{node.name}`, which reads {subject}",
                                depth + 1,
                            )
                    here = f"`{self.name(parent)}.{col}`"
                    for out in made:
                        if (child, out) not in seen:
                            seen.add((child, out))
                            following.append((child, out, how, here))
            frontier = following
        if capped:
            unknown.append(
                f"more than {MAX_READERS} nodes read it: the nearest are listed, the trace "
                "stopped there"
            )
        elif frontier:
            unknown.append(f"followed {MAX_DEPTH} models downstream and stopped there")
        return self._impact(found, unknown)

    def exposures_on(self, uid: str, why: str) -> Impact:
        """The exposures that depend on `uid` itself (they query its relation by name)."""
        found: dict[str, _Found] = {}
        for child in self.graph.children.get(uid, ()):
            if child in self.state.exposures:
                self._add(found, child, "sure", why, 1)
        return self._impact(found, [])

    def _test_reads(self, test_id: str, parent: str, column: str) -> str:
        test = self.state.tests[test_id]
        if test.kind != "singular":
            return "sure" if test.attached == parent and test.column.lower() == column else ""
        return self.sql.of(test_id).reads_column(parent, column)

    def _add(
        self,
        found: dict[str, _Found],
        uid: str,
        certainty: str,
        via: str,
        depth: int,
        *,
        columns: Sequence[str] = (),
    ) -> None:
        known = found.get(uid)
        if known is not None:
            old = known.reader
            merged = tuple(dict.fromkeys((*old.columns, *columns)))
            if old.certainty == "maybe" and certainty == "sure":
                # The sure path is the one worth telling.
                known.reader = replace(
                    old, certainty=certainty, via=via, depth=depth, columns=merged
                )
            elif merged != old.columns:
                known.reader = replace(old, columns=merged)
            return
        state = self.state
        node = state.nodes.get(uid) or state.exposures.get(uid)
        test = state.tests.get(uid)
        if node is not None:
            kind, owners, url = node.resource_type, node.owners, node.url
        elif test is not None:
            attached = state.nodes.get(test.attached)
            kind, owners, url = "test", attached.owners if attached else (), ""
        else:
            return
        found[uid] = _Found(
            Reader(
                unique_id=uid,
                name=self.name(uid),
                resource_type=kind,
                certainty=certainty,
                via=via,
                depth=depth,
                columns=tuple(columns),
                owners=owners,
                url=url,
            ),
            len(found),
        )

    def _impact(self, found: dict[str, _Found], unknown: list[str]) -> Impact:
        readers = [
            f.reader for f in sorted(found.values(), key=lambda f: (f.reader.depth, f.order))
        ]
        owners = unique_owners(o for r in readers if r.resource_type != "test" for o in r.owners)
        return Impact(
            readers=tuple(readers[:MAX_READERS]),
            owners=owners,
            unknown=tuple(dict.fromkeys(unknown)),
            truncated=max(0, len(readers) - MAX_READERS),
        )


def _worst(how: str, certainty: str) -> str:
    return "maybe" if "maybe" in (how, certainty) else "sure"


def assess(changes: Iterable[Change], tracer: Tracer) -> tuple[Change, ...]:
    """`changes` with their impact and classification."""
    changes = list(changes)
    typed = {
        (c.node, (c.new_column or c.column).lower()) for c in changes if c.kind in _COLUMN_KINDS
    }
    touched = {c.node for c in changes}
    out: list[Change] = []
    for found in changes:
        impact = _impact(found, tracer)
        change = (
            replace(found, because=_because(found, tracer, typed, touched))
            if found.knock_on
            else found
        )
        classification, reason = classify(change, impact)
        out.append(replace(change, impact=impact, classification=classification, reason=reason))
    return tuple(out)


def _impact(change: Change, tracer: Tracer) -> Impact | None:
    kind = change.kind
    if kind in (Kind.COLUMN_REMOVED, Kind.COLUMN_RENAMED):
        # Readers of the old name: a model the change updated reads the new one.
        return tracer.column(change.node, change.column)
    if kind is Kind.TYPE_CHANGED:
        return tracer.column(change.node, change.column)
    if kind is Kind.NULLABILITY_CHANGED and change.after == "nullable":
        return tracer.column(change.node, change.column)
    if kind is Kind.RELATION_CHANGED or (
        kind is Kind.MATERIALIZATION_CHANGED and change.after == "ephemeral"
    ):
        return tracer.exposures_on(
            change.node, f"depends on `{change.name}` and may query its old relation by name"
        )
    if kind is Kind.NODE_REMOVED:
        # dbt cannot parse a project that still refs a removed node, so nothing in the target
        # reads it: only readers outside dbt (and other projects, when it was public) remain.
        return Impact()
    return None


def _because(
    change: Change, tracer: Tracer, typed: set[tuple[str, str]], touched: set[str]
) -> tuple[str, ...]:
    """What upstream explains a knock-on type change: the changed parent columns it is made
    from, else the changed parents."""
    node = tracer.state.nodes.get(change.node)
    if node is None:
        return ()
    reading = tracer.sql.of(change.node)
    origins = reading.derives.get(change.column.lower(), set())
    causes = [
        f"{tracer.name(parent)}.{column}"
        for parent, column in sorted(origins)
        if (parent, column) in typed
    ]
    if causes:
        return tuple(causes)
    return tuple(tracer.name(p) for p in node.parents if p in touched)


def classify(change: Change, impact: Impact | None) -> tuple[Classification, str]:
    """The classification of one change and why, in one sentence."""
    kind, before, after = change.kind, change.before, change.after
    if kind is Kind.NODE_ADDED:
        return _NON, f"a new {change.resource_type}: nothing reads it yet"
    if kind is Kind.COLUMN_ADDED:
        return _NON, "a new column: existing readers do not select it (`select *` gains it)"
    if kind in (Kind.DESCRIPTION_CHANGED, Kind.OWNER_CHANGED, Kind.META_CHANGED, Kind.TAGS_CHANGED):
        return _NON, "documentation and metadata: the relation is unchanged"
    if kind is Kind.CONSTRAINT_ADDED:
        return _NON, "a new guarantee (the build fails if the data breaks it)"
    if kind is Kind.MATERIALIZATION_CHANGED:
        if after == "ephemeral":
            return _escalate(
                change,
                impact,
                "it is no longer built in the warehouse: queries of its relation fail",
            )
        return _NON, f"built as a {after} instead of a {before}: same columns, same name"
    if kind is Kind.ACCESS_CHANGED:
        if _ACCESS_RANK.get(after, 1) >= _ACCESS_RANK.get(before, 1):
            return _NON, f"access widened from {before} to {after}"
        if before == "public":
            return _BREAKING, (
                f"access narrowed from public to {after}: models in other projects that ref it fail"
            )
        return _PARTIAL, f"access narrowed to {after}: models in other groups that ref it fail"
    if kind is Kind.CONTRACT_CHANGED:
        if after == "enforced":
            return _NON, "the contract is now enforced: a new guarantee"
        if change.public:
            return _BREAKING, "the contract of a public model is no longer enforced"
        return _PARTIAL, "the contract is no longer enforced: its columns and types may drift"
    if kind is Kind.CONSTRAINT_REMOVED:
        if change.contracted:
            return _BREAKING, f"the enforced contract no longer guarantees {before}"
        return _PARTIAL, f"{before} is no longer guaranteed"
    if kind is Kind.NULLABILITY_CHANGED:
        if after != "nullable":
            return _NON, "now declared not null: a new guarantee"
        return _escalate(change, impact, "it may now be null")
    if kind is Kind.RELATION_CHANGED:
        return _escalate(change, impact, "its table is renamed: queries of the old name fail")
    if kind is Kind.NODE_REMOVED:
        return _escalate(
            change,
            impact,
            f"the {change.resource_type} is gone (dbt leaves its old relation, no longer updated)",
        )
    if kind in (Kind.COLUMN_REMOVED, Kind.COLUMN_RENAMED):
        what = "removed" if kind is Kind.COLUMN_REMOVED else f"renamed to `{change.new_column}`"
        return _escalate(change, impact, f"the column is {what}: queries selecting it fail")
    if kind is Kind.TYPE_CHANGED:
        words = {
            "widening": f"widened from {before} to {after}",
            "narrowing": f"narrowed from {before} to {after}",
            "changed": f"changed from {before} to {after}",
        }[change.shift]
        if change.knock_on:
            words += " by a change upstream"
        if change.shift == "widening" and not change.contracted:
            return _NON, f"the type {words}: every old value still fits"
        return _escalate(change, impact, f"the type {words}")
    return _NON, ""


def _escalate(change: Change, impact: Impact | None, what: str) -> tuple[Classification, str]:
    """Partial-breaking, or breaking when something reads it or it was promised."""
    if impact:
        assert impact is not None
        counts = [
            phrases.plural(len(group), noun)
            for group, noun in (
                (impact.models, "model"),
                (impact.tests, "test"),
                (impact.exposures, "exposure"),
            )
            if group
        ]
        more = f" (+{impact.truncated} more)" if impact.truncated else ""
        return _BREAKING, f"{what}, and {', '.join(counts)}{more} read it"
    if change.contracted:
        return _BREAKING, f"{what}, and its contract is enforced: consumers were promised it"
    if change.public:
        return _BREAKING, f"{what}, and it is public: models in other projects may read it"
    return _PARTIAL, f"{what}; nothing in the project reads it, readers outside dbt may"

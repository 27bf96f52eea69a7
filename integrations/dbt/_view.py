"""One set of parsed artifacts, indexed and answering as a `bot.ports.DbtProject`.

`ManifestIndex` is built once per manifest (+ catalog): name lookups and parent/child maps
(rebuilt from ``depends_on`` when the file lacks them). Tests per column and node facts are
built on first use and cached, so loading stays cheap on large projects while repeated
questions are answered from memory. `ProjectView` adds the run and freshness results. Both
are read-only after construction, so any number of threads may query one view.
"""

from __future__ import annotations

import difflib
from abc import ABC, abstractmethod
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any

from bot.errors import Ambiguous, Candidate
from bot.facts import (
    NOT_COMPUTED,
    ArtifactTimes,
    ColumnDoc,
    ColumnUse,
    DbtNode,
    DbtResult,
    DbtRun,
    Lineage,
    SourceFreshness,
)
from bot.terminal import strip_escapes
from integrations.dbt.artifacts import (
    Catalog,
    CatalogTable,
    Column,
    Exposure,
    Loaded,
    Manifest,
    Node,
    Result,
    RunResults,
    SemanticNode,
    Source,
    SourcesArtifact,
    UnitTest,
    freshness_rule,
    joined_columns,
    merge_tags,
    meta_owner,
    normalize_owners,
    parse_time,
)
from integrations.dbt.columns import column_uses
from integrations.errors import UpstreamNotFound

# The order candidates for one name are listed in.
_PRIORITY = {
    "model": 0,
    "seed": 1,
    "snapshot": 2,
    "source": 3,
    "exposure": 4,
    "semantic_model": 5,
    "metric": 6,
    "saved_query": 7,
    "analysis": 8,
}
_OTHER_PRIORITY = 9
# Kinds a bare name means first: tables and views, and the dashboards on them. A name that
# fits two of these is ambiguous (a seed and a source over one table); a metric, semantic
# model or test of the same name is mentioned beside the chosen node, not chosen.
_FIRST_CHOICE = frozenset({"model", "seed", "snapshot", "source", "exposure"})
_PROBLEMS = frozenset({"error", "fail", "warn", "runtime error", "partial success"})
_TESTS = ("test.", "unit_test.")
_NOT_UPSTREAM = ("test.", "unit_test.", "exposure.")
# The blast radius: what is rebuilt from a node. Exposures are counted apart, and so is the
# semantic layer (metrics, semantic models, saved queries), which is no model.
_BUILT = ("model.", "seed.", "snapshot.")
_SEMANTIC = ("semantic_model.", "metric.", "saved_query.")
_KIND_WORDS = {
    "semantic_model": "semantic model",
    "saved_query": "saved query",
    "unit_test": "unit test",
}


def resource_type_of(unique_id: str) -> str:
    return unique_id.split(".", 1)[0]


@dataclass(frozen=True, kw_only=True)
class TestInfo:
    """What a test checks, beyond its `DbtNode`."""

    __test__ = False  # not a pytest class, despite the name

    unique_id: str
    attached_to: str  # unique id of the model or source it belongs to ("" when unknown)
    column: str
    kind: str  # not_null, unique, … "singular", or "unit" for a unit test
    severity: str


# Tests by unique id, and test names by attached node and lower-cased column.
_TestIndex = tuple[dict[str, TestInfo], dict[str, dict[str, list[str]]]]


class ManifestIndex:
    """The manifest (and optionally the catalog) indexed for lookups and lineage."""

    def __init__(
        self,
        manifest: Loaded[Manifest],
        catalog: Loaded[Catalog] | None = None,
        *,
        system: str = "dbt",
    ) -> None:
        self.system = system
        self.loaded = manifest
        value = manifest.value
        self.metadata = value.metadata
        self.generated_at = parse_time(value.metadata.generated_at)
        self.project = value.metadata.project_name or ""
        self._nodes: dict[str, Node] = value.nodes or {}
        self._sources: dict[str, Source] = value.sources or {}
        self._exposures: dict[str, Exposure] = value.exposures or {}
        self._unit_tests: dict[str, UnitTest] = value.unit_tests or {}
        self._semantic: dict[str, SemanticNode] = {}
        for layer in (value.semantic_models, value.metrics, value.saved_queries):
            self._semantic.update(layer or {})
        self._group_owners: dict[str, tuple[str, ...]] = {}
        for group in (value.groups or {}).values():
            if group.name:
                self._group_owners[group.name] = normalize_owners(group.owner)
        self._catalog: dict[str, CatalogTable] = {}
        self.catalog_generated_at = (
            parse_time(catalog.value.metadata.generated_at) if catalog is not None else None
        )
        if catalog is not None:
            self._catalog.update(catalog.value.nodes or {})
            self._catalog.update(catalog.value.sources or {})
        self.parents, self.children = self._maps(value)
        self._by_name: dict[str, list[str]] = {}
        self._index_names()
        # The model each unit test checks, and the unit tests of each model (a manifest's maps
        # may predate unit tests; these do not depend on them).
        self._tested: dict[str, str] = {}
        self._unit_tests_of: dict[str, list[str]] = {}
        for uid, unit in self._unit_tests.items():
            tested = self._tested_model(unit)
            self._tested[uid] = tested
            if tested:
                self._unit_tests_of.setdefault(tested, []).append(uid)
        # Tests per column are only needed to describe nodes: built on first use.
        self._tests_index: _TestIndex | None = None
        self._facts: dict[str, DbtNode] = {}
        self._briefs: dict[str, DbtNode] = {}

    # -- building ---------------------------------------------------------------------------

    def _maps(self, value: Manifest) -> tuple[dict[str, list[str]], dict[str, list[str]]]:
        parents = value.parent_map
        children = value.child_map
        if parents is not None and children is not None:
            return parents, children
        if parents is None and children is None:
            # Old or trimmed manifests: dbt derives both maps from depends_on, so do we.
            parents = {}
            for uid, node in self._nodes.items():
                parents[uid] = list(node.depends_on.nodes or ()) if node.depends_on else []
            for uid, exposure in self._exposures.items():
                deps = exposure.depends_on
                parents[uid] = list(deps.nodes or ()) if deps else []
            for layer in (self._unit_tests, self._semantic):
                for uid, item in layer.items():
                    deps = item.depends_on
                    parents[uid] = list(deps.nodes or ()) if deps else []
            for uid in self._sources:
                parents[uid] = []
        if children is None:
            return parents or {}, _invert(parents or {})
        return _invert(children), children

    def _index_names(self) -> None:
        by_name = self._by_name
        for uid, node in self._nodes.items():
            name = node.name or uid.rsplit(".", 1)[-1]
            by_name.setdefault(name.lower(), []).append(uid)
            if node.version is not None and uid.endswith(f".v{node.version}"):
                by_name.setdefault(f"{name}.v{node.version}".lower(), []).append(uid)
        for uid, source in self._sources.items():
            table = source.name or uid.rsplit(".", 1)[-1]
            if source.source_name:
                by_name.setdefault(f"{source.source_name}.{table}".lower(), []).append(uid)
            by_name.setdefault(table.lower(), []).append(uid)
            # People name a source by its warehouse table too (raw.orders over raw_orders).
            identifier = (source.identifier or "").lower()
            if identifier and identifier != table.lower():
                by_name.setdefault(identifier, []).append(uid)
        for layer in (self._exposures, self._unit_tests, self._semantic):
            for uid, item in layer.items():
                by_name.setdefault((item.name or uid.rsplit(".", 1)[-1]).lower(), []).append(uid)
        for uids in by_name.values():
            if len(uids) > 1:
                uids.sort(key=self._rank)

    def _rank(self, uid: str) -> tuple[int, int, int, str]:
        kind = resource_type_of(uid)
        package = uid.split(".")[1] if uid.count(".") >= 2 else ""
        # Versioned models (model.pkg.name.v2): a bare name means the newest version.
        suffix = uid.rsplit(".", 1)[-1]
        version = int(suffix[1:]) if suffix[:1] == "v" and suffix[1:].isdigit() else 0
        return (
            _PRIORITY.get(kind, _OTHER_PRIORITY),
            0 if package == self.project else 1,
            -version,
            uid,
        )

    @property
    def _tests(self) -> dict[str, TestInfo]:
        return self._test_index()[0]

    @property
    def _column_tests(self) -> dict[str, dict[str, list[str]]]:
        return self._test_index()[1]

    def _test_index(self) -> _TestIndex:
        built = self._tests_index
        if built is None:
            # Two threads may both build it; each builds the same value, the last one stays.
            built = self._tests_index = self._build_test_index()
        return built

    def _build_test_index(self) -> _TestIndex:
        tests: dict[str, TestInfo] = {}
        by_column: dict[str, dict[str, list[str]]] = {}
        for uid, node in self._nodes.items():
            if not uid.startswith("test.") and node.resource_type != "test":
                continue
            attached = _attached(node)
            config = node.config
            info = TestInfo(
                unique_id=uid,
                attached_to=attached,
                column=node.column_name or "",
                kind=(node.test_metadata.name or "") if node.test_metadata else "singular",
                severity=((config.severity if config else None) or "error").lower(),
            )
            tests[uid] = info
            if attached and info.column:
                names = by_column.setdefault(attached, {})
                names.setdefault(info.column.lower(), []).append(node.name or uid)
        for uid in self._unit_tests:
            # Unit tests have no severity setting: a failing one fails the build.
            tests[uid] = TestInfo(
                unique_id=uid,
                attached_to=self._tested[uid],
                column="",
                kind="unit",
                severity="error",
            )
        return tests, by_column

    # -- lookups ----------------------------------------------------------------------------

    def __contains__(self, unique_id: object) -> bool:
        return (
            unique_id in self._nodes
            or unique_id in self._sources
            or unique_id in self._exposures
            or unique_id in self._unit_tests
            or unique_id in self._semantic
        )

    def resolve(self, name: str) -> str:
        """The unique id for a name, ``source_name.table``, or unique id; else `NotFound`,
        or `Ambiguous` when a bare name fits several nodes (see `lookup`)."""
        return self.lookup(name)[0]

    def lookup(self, name: str) -> tuple[str, list[str]]:
        """The unique id a name means, and the other nodes it also fits.

        Unique ids and ``source_name.table`` are exact. A bare name may fit several nodes:
        versions of one model mean the newest, the root project's node beats a package's of
        the same kind; then, if two tables (models, seeds, snapshots, sources) or exposures
        remain, it raises `Ambiguous` listing them with an exact name for each. Metrics,
        semantic models and tests of the same name come back as the "also" list.
        """
        wanted = name.strip()
        if wanted in self:
            return wanted, []
        chosen, candidates = self._choose(wanted)
        if not candidates:
            raise UpstreamNotFound(
                self.system,
                f"no model, seed, snapshot, source, exposure, metric, semantic model, saved "
                f"query or test named '{wanted}' in the manifest",
                suggestions=self.suggest(wanted),
            )
        if chosen is None:
            raise self._ambiguous(wanted, candidates)
        return chosen, [uid for uid in candidates if uid != chosen]

    def _choose(self, wanted: str) -> tuple[str | None, list[str]]:
        """(the node meant or None when ambiguous, every distinct node the name fits)."""
        uids = self._by_name.get(wanted.lower())
        if not uids:
            return None, []
        if len(uids) == 1:
            return uids[0], uids
        distinct: list[str] = []
        seen: set[tuple[str, str]] = set()
        for uid in uids:  # ranked: root project first, newest version first
            key = self._identity(uid)
            if key not in seen:
                seen.add(key)
                distinct.append(uid)
        first = [uid for uid in distinct if resource_type_of(uid) in _FIRST_CHOICE]
        if len(first) > 1 or (not first and len(distinct) > 1):
            return None, distinct
        return (first or distinct)[0], distinct

    def _identity(self, uid: str) -> tuple[str, str]:
        """Kind and name without package or version: what two packages or two versions of
        one model share (``model.pkg.orders.v2`` → ``("model", "orders")``)."""
        kind, _, rest = uid.partition(".")
        rest = rest.partition(".")[2] or rest
        node = self._nodes.get(uid)
        if node is not None and node.version is not None:
            rest = rest.removesuffix(f".v{node.version}")
        return kind, rest

    def _ambiguous(self, wanted: str, uids: Sequence[str]) -> Ambiguous:
        candidates = [
            Candidate(
                ref=self.exact_name(uid),
                kind=_KIND_WORDS.get(resource_type_of(uid), resource_type_of(uid)),
                name=self._display(uid),
                detail=self._relation(uid),
            )
            for uid in uids
        ]
        listed = ", ".join(f"{c.kind} {c.name}" for c in candidates)
        reason = f"'{wanted}' fits {len(candidates)} dbt nodes: {listed}"
        tables = {c.detail for c in candidates}
        if len(tables) == 1 and "" not in tables:
            both = "both" if len(candidates) == 2 else "all"
            reason += f", {both} over the table {tables.pop()}"
        return Ambiguous(self.system, reason, candidates)

    def exact_name(self, uid: str) -> str:
        """The shortest name that means `uid` and nothing else: its name when that is
        unambiguous, ``source_name.table`` for a source, else the unique id."""
        display = self._display(uid)
        return display if self._choose(display)[0] == uid else uid

    def _relation(self, uid: str) -> str:
        node = self._nodes.get(uid)
        if node is not None:
            return node.relation_name or ""
        source = self._sources.get(uid)
        if source is not None:
            return source.relation_name or ""
        item = self._semantic.get(uid)
        if item is not None and item.node_relation is not None:
            return item.node_relation.relation_name or ""
        return ""

    def relation_of(self, uid: str) -> str:
        """The warehouse relation of a node ("" when it has none)."""
        return self._relation(uid)

    def code_of(self, uid: str) -> tuple[str, str]:
        """A model's or snapshot's SQL: ("compiled", code) when the manifest has it, else
        ("raw", code); ("", "") for anything else."""
        node = self._nodes.get(uid)
        if node is None:
            return "", ""
        if node.compiled_code:
            return "compiled", node.compiled_code
        return ("raw", node.raw_code) if node.raw_code else ("", "")

    def column_names(self, uid: str) -> list[str]:
        """The node's columns as catalog.json and the YAML know them."""
        return [c.name for c in self.fact(uid).columns]

    def _tested_model(self, unit: UnitTest) -> str:
        """The unique id of the model a unit test checks."""
        deps = unit.depends_on.nodes if unit.depends_on and unit.depends_on.nodes else []
        for uid in deps:
            if uid.startswith("model."):
                return uid
        models = [
            u for u in self._by_name.get((unit.model or "").lower(), ()) if u.startswith("model.")
        ]
        if unit.version is not None:
            versioned = [u for u in models if u.endswith(f".v{unit.version}")]
            models = versioned or models
        return models[0] if models else ""

    def suggest(self, name: str, limit: int = 5) -> list[str]:
        candidates = {self._display(uids[0]): None for uids in self._by_name.values()}
        lowered = {c.lower(): c for c in candidates}
        close = difflib.get_close_matches(name.lower(), list(lowered), n=limit, cutoff=0.6)
        return [lowered[c] for c in close]

    def _display(self, uid: str) -> str:
        source = self._sources.get(uid)
        if source is not None and source.source_name:
            return f"{source.source_name}.{source.name}"
        node = self._nodes.get(uid)
        if node is not None and node.name:
            return node.name
        exposure = self._exposures.get(uid)
        if exposure is not None and exposure.name:
            return exposure.name
        other = self._unit_tests.get(uid) or self._semantic.get(uid)
        if other is not None and other.name:
            return other.name
        return uid.rsplit(".", 1)[-1]

    def unique_ids(self, resource_type: str | None = None) -> list[str]:
        uids: Iterable[str]
        if resource_type == "source":
            uids = self._sources
        elif resource_type == "exposure":
            uids = self._exposures
        elif resource_type == "unit_test":
            uids = self._unit_tests
        elif resource_type in ("metric", "semantic_model", "saved_query"):
            uids = [uid for uid in self._semantic if resource_type_of(uid) == resource_type]
        elif resource_type is None:
            uids = [
                *self._nodes,
                *self._sources,
                *self._exposures,
                *self._unit_tests,
                *self._semantic,
            ]
        else:
            uids = [
                uid
                for uid, node in self._nodes.items()
                if (node.resource_type or resource_type_of(uid)) == resource_type
            ]
        return sorted(uids)

    def source_names(self, unique_id: str) -> tuple[str, str] | None:
        """``(source_name, table)`` of a source in the manifest."""
        source = self._sources.get(unique_id)
        if source is None:
            return None
        parts = unique_id.split(".")
        return (
            source.source_name or (parts[2] if len(parts) >= 4 else ""),
            source.name or parts[-1],
        )

    def test_info(self, unique_id: str) -> TestInfo | None:
        return self._tests.get(unique_id)

    def tests_of(self, unique_id: str) -> list[str]:
        """Tests of the node: generic tests on its columns, singular tests reading it, and
        unit tests of its logic."""
        found = [c for c in self.children.get(unique_id, ()) if c.startswith(_TESTS)]
        found += [u for u in self._unit_tests_of.get(unique_id, ()) if u not in found]
        return found

    def walk(self, start: str, *, downstream: bool, depth: int | None = None) -> list[str]:
        """Breadth-first over the parent or child map: nearest first, each node once."""
        edges = (self.children if downstream else self.parents).get
        seen = {start}
        mark = seen.add
        found: list[str] = []
        frontier = [start]
        level = 0
        while frontier and (depth is None or level < depth):
            level += 1
            step: list[str] = []
            keep = step.append
            for uid in frontier:
                for other in edges(uid, ()):
                    if other not in seen:
                        mark(other)
                        keep(other)
            found.extend(step)
            frontier = step
        return found

    # -- facts ------------------------------------------------------------------------------

    def fact(self, unique_id: str) -> DbtNode:
        """The node with its columns (types from the catalog, tests per column)."""
        cached = self._facts.get(unique_id)
        if cached is None:
            cached = self._build(unique_id, columns=True)
            # A race builds the same value twice; dict assignment keeps it consistent.
            self._facts[unique_id] = cached
        return cached

    def brief(self, unique_id: str) -> DbtNode:
        """The node without its columns: what lists of neighbours need, at a fraction of the
        cost on a large graph (thousands of downstream nodes)."""
        cached = self._briefs.get(unique_id)
        if cached is None:
            full = self._facts.get(unique_id)
            cached = (
                replace(full, columns=())
                if full is not None
                else self._build(unique_id, columns=False)
            )
            self._briefs[unique_id] = cached
        return cached

    def _build(self, uid: str, *, columns: bool) -> DbtNode:
        node = self._nodes.get(uid)
        if node is not None:
            return self._node_fact(uid, node, columns=columns)
        source = self._sources.get(uid)
        if source is not None:
            return self._source_fact(uid, source, columns=columns)
        exposure = self._exposures.get(uid)
        if exposure is not None:
            return self._exposure_fact(uid, exposure)
        unit = self._unit_tests.get(uid)
        if unit is not None:
            return self._unit_test_fact(uid, unit)
        item = self._semantic.get(uid)
        if item is not None:
            return self._semantic_fact(uid, item)
        # Anything newer (functions …) appears in the maps; describe it by its id.
        parts = uid.split(".")
        return DbtNode(
            unique_id=uid,
            name=parts[-1],
            resource_type=parts[0],
            package=parts[1] if len(parts) > 2 else "",
        )

    def owners_of(self, uid: str) -> tuple[str, ...]:
        node = self._nodes.get(uid)
        if node is not None:
            return self._node_owners(uid, node)
        source = self._sources.get(uid)
        if source is not None:
            config = source.config
            own = normalize_owners(
                [meta_owner(config.meta if config else None), meta_owner(source.meta)]
            )
            # The source-level owner is the default for its tables; a table's own wins.
            return own or normalize_owners(meta_owner(source.source_meta))
        exposure = self._exposures.get(uid)
        if exposure is not None:
            config = exposure.config
            return normalize_owners(
                [
                    exposure.owner,
                    meta_owner(config.meta if config else None),
                    meta_owner(exposure.meta),
                ]
            )
        unit = self._unit_tests.get(uid)
        if unit is not None:
            config = unit.config
            own = normalize_owners(meta_owner(config.meta if config else None))
            # A unit test checks its model's logic: whoever owns the model owns the failure.
            tested = self._tested.get(uid, "")
            return own or (self.owners_of(tested) if tested and tested != uid else ())
        item = self._semantic.get(uid)
        if item is not None:
            config = item.config
            written = [meta_owner(config.meta if config else None), meta_owner(item.meta)]
            group = item.group or (config.group if config else None)
            if group:
                written.append(list(self._group_owners.get(group, ())))
            return normalize_owners(written)
        return ()

    def _node_owners(self, uid: str, node: Node) -> tuple[str, ...]:
        config = node.config
        own = [meta_owner(config.meta if config else None), meta_owner(node.meta)]
        group = node.group or (config.group if config else None)
        if group:
            own.append(list(self._group_owners.get(group, ())))
        owners = normalize_owners(own)
        if owners or node.resource_type != "test":
            return owners
        # A test without an owner of its own is owned by whoever owns what it tests.
        attached = _attached(node)
        if attached and attached != uid:
            return self.owners_of(attached)
        return ()

    def _node_fact(self, uid: str, node: Node, *, columns: bool) -> DbtNode:
        config = node.config
        contract = node.contract or (config.contract if config else None)
        resource_type = node.resource_type or resource_type_of(uid)
        access = node.access or (config.access if config else None) or ""
        return DbtNode(
            unique_id=uid,
            name=node.name or uid.rsplit(".", 1)[-1],
            resource_type=resource_type,
            package=node.package_name or "",
            path=node.original_file_path or node.path or "",
            description=node.description or "",
            owners=self._node_owners(uid, node),
            group=node.group or (config.group if config else None) or "",
            materialized=(config.materialized if config else None) or "",
            tags=merge_tags(node.tags, config.tags if config else None),
            relation=node.relation_name or "",
            access=access if resource_type == "model" else "",
            contract_enforced=bool(contract and contract.enforced),
            columns=self._columns(uid, node.columns) if columns else (),
            tested=_attached(node) if resource_type == "test" else "",
        )

    def _source_fact(self, uid: str, source: Source, *, columns: bool) -> DbtNode:
        config = source.config
        rule = source.freshness or (config.freshness if config else None)
        return DbtNode(
            unique_id=uid,
            name=f"{source.source_name}.{source.name}" if source.source_name else uid,
            resource_type="source",
            package=source.package_name or "",
            path=source.original_file_path or "",
            description=source.description or source.source_description or "",
            owners=self.owners_of(uid),
            tags=merge_tags(source.tags, config.tags if config else None),
            relation=source.relation_name or "",
            columns=self._columns(uid, source.columns) if columns else (),
            freshness_rule=freshness_rule(rule),
        )

    def _exposure_fact(self, uid: str, exposure: Exposure) -> DbtNode:
        config = exposure.config
        return DbtNode(
            unique_id=uid,
            name=exposure.name or uid.rsplit(".", 1)[-1],
            resource_type="exposure",
            package=exposure.package_name or "",
            path=exposure.original_file_path or "",
            description=exposure.description or exposure.label or "",
            owners=self.owners_of(uid),
            tags=merge_tags(exposure.tags, config.tags if config else None),
            exposure_type=exposure.kind or "",
            url=exposure.url or "",
        )

    def _unit_test_fact(self, uid: str, unit: UnitTest) -> DbtNode:
        config = unit.config
        return DbtNode(
            unique_id=uid,
            name=unit.name or uid.rsplit(".", 1)[-1],
            resource_type="unit_test",
            package=unit.package_name or "",
            path=unit.original_file_path or "",
            description=unit.description or "",
            owners=self.owners_of(uid),
            tags=merge_tags(config.tags if config else None),
            tested=self._tested.get(uid, ""),
        )

    def _semantic_fact(self, uid: str, item: SemanticNode) -> DbtNode:
        config = item.config
        resource_type = item.resource_type or resource_type_of(uid)
        return DbtNode(
            unique_id=uid,
            name=item.name or uid.rsplit(".", 1)[-1],
            resource_type=resource_type,
            package=item.package_name or "",
            path=item.original_file_path or "",
            description=item.description or item.label or "",
            owners=self.owners_of(uid),
            group=item.group or (config.group if config else None) or "",
            tags=merge_tags(item.tags, config.tags if config else None),
            relation=self._relation(uid),
            metric_type=(item.kind or "") if resource_type == "metric" else "",
        )

    def _columns(self, uid: str, declared: Mapping[str, Column] | None) -> tuple[ColumnDoc, ...]:
        tests = self._column_tests.get(uid, {})
        out: list[ColumnDoc] = []
        for name, doc, found in joined_columns(declared, self._catalog.get(uid)):
            declared_type = (doc.data_type or "") if doc else ""
            catalog_type = (found.kind or "") if found else ""
            out.append(
                ColumnDoc(
                    name=name,
                    description=(doc.description or "") if doc else "",
                    data_type=declared_type or catalog_type,
                    tests=tuple(tests.get(name.lower(), ())),
                    declared=doc is not None,
                    declared_type=declared_type,
                    catalog_type=catalog_type,
                )
            )
        return tuple(out)


def _attached(test: Node) -> str:
    """The model or source a test checks (older manifests lack ``attached_node``)."""
    if test.attached_node:
        return test.attached_node
    deps = test.depends_on.nodes if test.depends_on and test.depends_on.nodes else []
    return deps[0] if len(deps) == 1 else ""


def _invert(edges: Mapping[str, Sequence[str]]) -> dict[str, list[str]]:
    inverted: dict[str, list[str]] = {uid: [] for uid in edges}
    for uid, others in edges.items():
        for other in others:
            inverted.setdefault(other, []).append(uid)
    for others in inverted.values():
        others.sort()
    return inverted


# --- results -------------------------------------------------------------------------------


def dbt_result(result: Result) -> DbtResult:
    status = result.status or ""
    message = result.message
    completed = None
    for timing in result.timing or ():
        if timing.completed_at and (timing.name == "execute" or completed is None):
            completed = parse_time(timing.completed_at)
    code = result.compiled_code or result.compiled_sql or ""
    return DbtResult(
        unique_id=result.unique_id or "",
        status=status,
        # dbt colours some messages (a unit test's diff): the codes stop here.
        message="" if message is None else strip_escapes(str(message)),
        failures=result.failures,
        execution_time_s=result.execution_time,
        completed_at=completed,
        # Compiled SQL helps explain a failure; for the thousands of green nodes it is bulk.
        compiled_code=code if status in _PROBLEMS else "",
    )


# `args.which` as people type the command (dbt records the click sub-command's own name).
_WHICH = {"generate": "docs generate", "serve": "docs serve", "freshness": "source freshness"}
_TWO_WORDS = ("docs", "source")


def run_command(args: Mapping[str, Any]) -> str:
    """The dbt command that wrote a run_results.json: ``build``, ``docs generate`` …

    From ``args.which`` (every dbt since 1.0), else the words of ``args.invocation_command``
    before its first option (options are left out: ``--vars`` may hold secrets).
    """
    which = args.get("which") or args.get("rpc_method")
    if isinstance(which, str) and which.strip():
        return _WHICH.get(which.strip(), which.strip())
    invoked = args.get("invocation_command")
    if not isinstance(invoked, str):
        return ""
    words = invoked.split()
    if words[:1] == ["dbt"]:
        words = words[1:]
    command: list[str] = []
    for word in words:
        if word.startswith("-"):
            break
        command.append(word)
    if not command:
        return ""
    if command[0] in _TWO_WORDS and len(command) > 1:
        return " ".join(command[:2])
    return command[0]


def dbt_run(
    loaded: Loaded[RunResults],
    *,
    cloud_run_id: int | None = None,
    job_name: str = "",
    url: str = "",
    status: str = "",
) -> DbtRun:
    value = loaded.value
    return DbtRun(
        invocation_id=value.metadata.invocation_id or "",
        command=run_command(value.args or {}),
        generated_at=parse_time(value.metadata.generated_at),
        elapsed_s=value.elapsed_time,
        results=tuple(dbt_result(r) for r in value.results or () if r.unique_id),
        cloud_run_id=cloud_run_id,
        job_name=job_name,
        url=url,
        status=status,
    )


class ProjectView:
    """Manifest index + latest run + freshness, answering `bot.ports.DbtProject` questions."""

    def __init__(
        self,
        index: ManifestIndex,
        *,
        run: DbtRun | None = None,
        sources: Loaded[SourcesArtifact] | None = None,
    ) -> None:
        self.index = index
        self.run = run
        self.sources = sources
        # `dbt docs generate`, `compile`, `ls` … report "success" for every node they compiled:
        # those are no test or model results, so nothing reads them as such.
        self._results = {r.unique_id: r for r in run.results} if run and run.executed else {}

    def node(self, name: str) -> DbtNode:
        return self.index.fact(self.index.resolve(name))

    def nodes(self, resource_type: str | None = None) -> list[DbtNode]:
        return [self.index.fact(uid) for uid in self.index.unique_ids(resource_type)]

    def result(self, unique_id: str) -> DbtResult | None:
        return self._results.get(unique_id)

    def lineage(self, name: str, *, depth: int | None = None) -> Lineage:
        index = self.index
        uid, also = index.lookup(name)
        fact = index.brief
        downstream_all = index.walk(uid, downstream=True, depth=depth)
        # Affected dashboards and metrics matter whatever depth is listed: always complete.
        reach = downstream_all if depth is None else index.walk(uid, downstream=True)
        tests = index.tests_of(uid)
        return Lineage(
            node=index.fact(uid),
            parents=tuple(fact(p) for p in index.parents.get(uid, ()) if _upstream(p)),
            children=tuple(fact(c) for c in index.children.get(uid, ()) if c.startswith(_BUILT)),
            upstream=tuple(
                fact(p) for p in index.walk(uid, downstream=False, depth=depth) if _upstream(p)
            ),
            downstream=tuple(fact(c) for c in downstream_all if c.startswith(_BUILT)),
            exposures=tuple(fact(e) for e in reach if e.startswith("exposure.")),
            tests=tuple(fact(t) for t in tests),
            test_results={t: r for t in tests if (r := self._results.get(t)) is not None},
            semantic=tuple(fact(m) for m in reach if m.startswith(_SEMANTIC)),
            also=tuple(fact(a) for a in also),
        )

    def freshness(self) -> list[SourceFreshness]:
        """Every source with a freshness rule: dbt's result from sources.json, or, for a rule
        dbt gave no result for, `NOT_COMPUTED` and why. Empty without a sources.json."""
        if self.sources is None:
            return []
        index = self.index
        out: list[SourceFreshness] = []
        seen: set[str] = set()
        for item in self.sources.value.results or ():
            uid = item.unique_id or ""
            if not uid:
                continue
            seen.add(uid)
            parts = uid.split(".")
            source_name = parts[2] if len(parts) >= 4 else ""
            table = parts[-1]
            rule = freshness_rule(item.criteria)
            owners: tuple[str, ...] = ()
            names = index.source_names(uid)
            if names is not None:
                source_name, table = names
                rule = rule or index.fact(uid).freshness_rule
                owners = index.owners_of(uid)
            error = "" if item.error is None else strip_escapes(str(item.error))
            status = item.status or ""
            out.append(
                SourceFreshness(
                    unique_id=uid,
                    source_name=source_name,
                    table=table,
                    status=status,
                    max_loaded_at=parse_time(item.max_loaded_at),
                    snapshotted_at=parse_time(item.snapshotted_at),
                    age_s=item.max_loaded_at_time_ago_in_s,
                    rule=rule,
                    owners=owners,
                    error=error,
                    reason=f"runtime error: {error}" if status == "runtime error" else "",
                )
            )
        # Sources with a rule that sources.json has no result for were silently dropped: dbt
        # skips a rule it cannot compute (no loaded_at_field, on an adapter without metadata
        # freshness), and a `--select` leaves the rest out.
        for uid, source in sorted(index._sources.items()):
            if uid in seen:
                continue
            config = source.config
            rule = freshness_rule(source.freshness) or freshness_rule(
                config.freshness if config else None
            )
            if not rule:
                continue
            names = index.source_names(uid) or ("", uid)
            out.append(
                SourceFreshness(
                    unique_id=uid,
                    source_name=names[0],
                    table=names[1],
                    status=NOT_COMPUTED,
                    rule=rule,
                    owners=index.owners_of(uid),
                    reason=_not_computed_reason(source),
                )
            )
        return out

    def as_of(self) -> datetime | None:
        stamps = [self.index.generated_at]
        if self.run is not None:
            stamps.append(self.run.generated_at)
        if self.sources is not None:
            stamps.append(parse_time(self.sources.value.metadata.generated_at))
        known = [s for s in stamps if s is not None]
        return max(known) if known else None


def _upstream(unique_id: str) -> bool:
    return not unique_id.startswith(_NOT_UPSTREAM)


def _not_computed_reason(source: Source) -> str:
    config = source.config
    loaded_at = (
        source.loaded_at_field
        or source.loaded_at_query
        or (config.loaded_at_field if config else None)
        or (config.loaded_at_query if config else None)
    )
    if not loaded_at:
        return (
            "no loaded_at_field: dbt cannot measure it; add `loaded_at_field` or `loaded_at_query`"
        )
    return "no result in the latest sources.json (left out of that `dbt source freshness` run)"


class ViewBacked(ABC):
    """The `bot.ports.DbtProject` methods, answered from a `ProjectView`.

    Subclasses say where the view comes from (local files, dbt Cloud artifacts) by
    implementing `view()`, which must be cheap when nothing changed.
    """

    @abstractmethod
    def view(self) -> ProjectView: ...

    def node(self, name: str) -> DbtNode:
        return self.view().node(name)

    def nodes(self, resource_type: str | None = None) -> list[DbtNode]:
        return self.view().nodes(resource_type)

    def lineage(self, name: str, *, depth: int | None = None) -> Lineage:
        view = self.view()
        # The run its test results come from, so a reader can tell "no test ran" from "passed".
        return replace(view.lineage(name, depth=depth), run=view.run)

    def last_run(self) -> DbtRun | None:
        return self.view().run

    def freshness(self) -> list[SourceFreshness]:
        return self.view().freshness()

    def as_of(self) -> datetime | None:
        return self.view().as_of()

    def artifact_times(self) -> ArtifactTimes:
        view = self.view()
        sources = view.sources
        return ArtifactTimes(
            manifest=view.index.generated_at,
            catalog=view.index.catalog_generated_at,
            run_results=view.run.generated_at if view.run is not None else None,
            sources=parse_time(sources.value.metadata.generated_at) if sources else None,
        )

    def column_uses(self, name: str, columns: Sequence[str]) -> list[ColumnUse]:
        index = self.view().index
        return column_uses(index, index.resolve(name), columns)

    def test_info(self, unique_id: str) -> TestInfo | None:
        return self.view().index.test_info(unique_id)

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

from bot.facts import ColumnDoc, DbtNode, DbtResult, DbtRun, Lineage, SourceFreshness
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
    Source,
    SourcesArtifact,
    freshness_rule,
    meta_owner,
    normalize_owners,
    parse_time,
    string_list,
)
from integrations.errors import UpstreamNotFound

# Which node wins when several share a name (a model and a seed called the same, say).
_PRIORITY = {"model": 0, "seed": 1, "snapshot": 2, "source": 3, "exposure": 4, "analysis": 5}
_OTHER_PRIORITY = 6
_PROBLEMS = frozenset({"error", "fail", "warn", "runtime error", "partial success"})
_NOT_LINEAGE = ("test.", "unit_test.", "exposure.")


def resource_type_of(unique_id: str) -> str:
    return unique_id.split(".", 1)[0]


@dataclass(frozen=True, kw_only=True)
class TestInfo:
    """What a test checks, beyond its `DbtNode`."""

    __test__ = False  # not a pytest class, despite the name

    unique_id: str
    attached_to: str  # unique id of the model or source it belongs to ("" when unknown)
    column: str
    kind: str  # not_null, unique, … or "singular"
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
        self._group_owners: dict[str, tuple[str, ...]] = {}
        for group in (value.groups or {}).values():
            if group.name:
                self._group_owners[group.name] = normalize_owners(group.owner)
        self._catalog: dict[str, CatalogTable] = {}
        if catalog is not None:
            self._catalog.update(catalog.value.nodes or {})
            self._catalog.update(catalog.value.sources or {})
        self.parents, self.children = self._maps(value)
        self._by_name: dict[str, list[str]] = {}
        self._index_names()
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
        for uid, exposure in self._exposures.items():
            by_name.setdefault((exposure.name or uid.rsplit(".", 1)[-1]).lower(), []).append(uid)
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
        return tests, by_column

    # -- lookups ----------------------------------------------------------------------------

    def __contains__(self, unique_id: object) -> bool:
        return (
            unique_id in self._nodes or unique_id in self._sources or unique_id in self._exposures
        )

    def resolve(self, name: str) -> str:
        """The unique id for a name, ``source_name.table``, or unique id; else `NotFound`."""
        wanted = name.strip()
        if wanted in self:
            return wanted
        uids = self._by_name.get(wanted.lower())
        if uids:
            return uids[0]
        raise UpstreamNotFound(
            self.system,
            f"no model, seed, snapshot, source or exposure named '{wanted}' in the manifest",
            suggestions=self.suggest(wanted),
        )

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
        return uid.rsplit(".", 1)[-1]

    def unique_ids(self, resource_type: str | None = None) -> list[str]:
        uids: Iterable[str]
        if resource_type == "source":
            uids = self._sources
        elif resource_type == "exposure":
            uids = self._exposures
        elif resource_type is None:
            uids = [*self._nodes, *self._sources, *self._exposures]
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
        """Tests that read the node (generic tests on its columns, singular tests on it)."""
        return [c for c in self.children.get(unique_id, ()) if c.startswith("test.")]

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
        # Metrics, semantic models … appear in the maps; describe them by their id.
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
            tags=_tags(node.tags, config.tags if config else None),
            relation=node.relation_name or "",
            access=access if resource_type == "model" else "",
            contract_enforced=bool(contract and contract.enforced),
            columns=self._columns(uid, node.columns) if columns else (),
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
            tags=_tags(source.tags, config.tags if config else None),
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
            tags=_tags(exposure.tags, config.tags if config else None),
            exposure_type=exposure.kind or "",
            url=exposure.url or "",
        )

    def _columns(self, uid: str, declared: Mapping[str, Column] | None) -> tuple[ColumnDoc, ...]:
        docs: dict[str, tuple[str, Column]] = {}
        for key, column in (declared or {}).items():
            name = column.name or key
            docs[name.lower()] = (name, column)
        tests = self._column_tests.get(uid, {})
        out: list[ColumnDoc] = []
        table = self._catalog.get(uid)
        seen: set[str] = set()
        if table is not None and table.columns:
            ordered = sorted(table.columns.items(), key=lambda kv: kv[1].index or 0)
            for key, found in ordered:
                name = found.name or key
                lowered = name.lower()
                seen.add(lowered)
                doc = docs.get(lowered)
                declared_type = (doc[1].data_type or "") if doc else ""
                out.append(
                    ColumnDoc(
                        name=doc[0] if doc else name,
                        description=(doc[1].description or "") if doc else "",
                        data_type=declared_type or found.kind or "",
                        tests=tuple(tests.get(lowered, ())),
                        declared=doc is not None,
                        declared_type=declared_type,
                        catalog_type=found.kind or "",
                    )
                )
        for lowered, (name, column) in docs.items():
            if lowered in seen:
                continue
            out.append(
                ColumnDoc(
                    name=name,
                    description=column.description or "",
                    data_type=column.data_type or "",
                    tests=tuple(tests.get(lowered, ())),
                    declared=True,
                    declared_type=column.data_type or "",
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


def _tags(*values: Any) -> tuple[str, ...]:
    found: list[str] = []
    for value in values:
        for tag in string_list(value):
            if tag not in found:
                found.append(tag)
    return tuple(found)


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
        message="" if message is None else str(message),
        failures=result.failures,
        execution_time_s=result.execution_time,
        completed_at=completed,
        # Compiled SQL helps explain a failure; for the thousands of green nodes it is bulk.
        compiled_code=code if status in _PROBLEMS else "",
    )


def dbt_run(
    loaded: Loaded[RunResults],
    *,
    cloud_run_id: int | None = None,
    job_name: str = "",
    url: str = "",
    status: str = "",
) -> DbtRun:
    value = loaded.value
    args = value.args or {}
    command = args.get("which") or args.get("rpc_method") or ""
    return DbtRun(
        invocation_id=value.metadata.invocation_id or "",
        command=str(command),
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
        self._results = {r.unique_id: r for r in run.results} if run else {}

    def node(self, name: str) -> DbtNode:
        return self.index.fact(self.index.resolve(name))

    def nodes(self, resource_type: str | None = None) -> list[DbtNode]:
        return [self.index.fact(uid) for uid in self.index.unique_ids(resource_type)]

    def result(self, unique_id: str) -> DbtResult | None:
        return self._results.get(unique_id)

    def lineage(self, name: str, *, depth: int | None = None) -> Lineage:
        index = self.index
        uid = index.resolve(name)
        fact = index.brief
        downstream_all = index.walk(uid, downstream=True, depth=depth)
        # Affected dashboards matter whatever depth is listed, so exposures are always complete.
        reach = downstream_all if depth is None else index.walk(uid, downstream=True)
        tests = index.tests_of(uid)
        return Lineage(
            node=index.fact(uid),
            parents=tuple(fact(p) for p in index.parents.get(uid, ()) if _in_lineage(p)),
            children=tuple(fact(c) for c in index.children.get(uid, ()) if _in_lineage(c)),
            upstream=tuple(
                fact(p) for p in index.walk(uid, downstream=False, depth=depth) if _in_lineage(p)
            ),
            downstream=tuple(fact(c) for c in downstream_all if _in_lineage(c)),
            exposures=tuple(fact(e) for e in reach if e.startswith("exposure.")),
            tests=tuple(fact(t) for t in tests),
            test_results={t: r for t in tests if (r := self._results.get(t)) is not None},
        )

    def freshness(self) -> list[SourceFreshness]:
        if self.sources is None:
            return []
        index = self.index
        out: list[SourceFreshness] = []
        for item in self.sources.value.results or ():
            uid = item.unique_id or ""
            if not uid:
                continue
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
            error = item.error
            out.append(
                SourceFreshness(
                    unique_id=uid,
                    source_name=source_name,
                    table=table,
                    status=item.status or "",
                    max_loaded_at=parse_time(item.max_loaded_at),
                    snapshotted_at=parse_time(item.snapshotted_at),
                    age_s=item.max_loaded_at_time_ago_in_s,
                    rule=rule,
                    owners=owners,
                    error="" if error is None else str(error),
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


def _in_lineage(unique_id: str) -> bool:
    return not unique_id.startswith(_NOT_LINEAGE)


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
        return self.view().lineage(name, depth=depth)

    def last_run(self) -> DbtRun | None:
        return self.view().run

    def freshness(self) -> list[SourceFreshness]:
        return self.view().freshness()

    def as_of(self) -> datetime | None:
        return self.view().as_of()

    def test_info(self, unique_id: str) -> TestInfo | None:
        return self.view().index.test_info(unique_id)

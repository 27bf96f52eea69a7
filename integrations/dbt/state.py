"""Whole dbt states for the schema review of a change: a folder or a dbt Cloud run, read into
`bot.facts.DbtState`.

A state is manifest.json (the project: nodes, columns as declared, tests, SQL, owners) plus
catalog.json when there is one (the warehouse: every column and its real type)::

    loader = StateLoader(cloud=client, production_job=42)
    base = loader.state(StateRef(kind="production"))          # the deploy job's latest run
    target = loader.state(StateRef(kind="dir", value="pr/target"))

The manifest is decoded with `artifacts`' Structs, extended by the fields a diff needs
besides (column meta and tags, constraints, checksums), once per file. Finished dbt Cloud runs
do not change, so their states are kept by run id.

Folders are read wherever the command line points; a `StateLoader` built with `roots` (the
chat's) reads only folders inside them, so chat users cannot probe the bot's disk.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from msgspec import field

from bot.facts import DbtState, StateColumn, StateNode, StateRef, StateTest
from bot.ports import DbtStates
from integrations.dbt import columns as sql_columns
from integrations.dbt.artifacts import (
    ArtifactError,
    Catalog,
    CatalogColumn,
    CatalogTable,
    Column,
    Exposure,
    Group,
    Loaded,
    Metadata,
    Node,
    Source,
    _read,
    _Struct,
    joined_columns,
    merge_tags,
    meta_owner,
    normalize_owners,
    parse_time,
    read_catalog,
)
from integrations.dbt.cloud import SYSTEM as CLOUD
from integrations.dbt.cloud import DbtCloudClient, Run, _last_step
from integrations.errors import UpstreamError, UpstreamNotFound

SYSTEM = "dbt"
MANIFEST = "manifest.json"
CATALOG = "catalog.json"
# Resource types a state compares (tests and exposures are kept apart).
_RELATIONS = frozenset({"model", "seed", "snapshot"})
PRODUCTION_LOOK_BACK = 5  # finished runs of the deploy job tried for a manifest


# --- the manifest, as much of it as a diff needs ---------------------------------------------


class _Constraint(_Struct):
    type: str | None = None
    name: str | None = None
    expression: str | None = None
    columns: list[str] | None = None  # model-level constraints
    to: str | None = None
    to_columns: list[str] | None = None


class _ColumnConfig(_Struct):
    meta: Any = None
    tags: Any = None


class _Column(Column):
    """A column as the lookups read it, and what a diff compares besides."""

    meta: Any = None
    tags: Any = None
    constraints: list[_Constraint] | None = None
    config: _ColumnConfig | None = None


class _Checksum(_Struct):
    checksum: str | None = None


class _Node(Node):
    """`artifacts.Node` and what a diff compares besides: richer columns, constraints, the
    checksum that tells an edited file, the language that tells SQL to render."""

    columns: dict[str, _Column] | None = None
    constraints: list[_Constraint] | None = None
    language: str | None = None
    checksum: _Checksum | None = None


class _Source(Source):
    columns: dict[str, _Column] | None = None


class _Manifest(_Struct):
    """Its own top level, not `artifacts.Manifest`'s: a diff needs neither the parent and
    child maps nor the semantic layer, which would be decoded for nothing."""

    metadata: Metadata = field(default_factory=Metadata)
    nodes: dict[str, _Node] | None = None
    sources: dict[str, _Source] | None = None
    exposures: dict[str, Exposure] | None = None
    groups: dict[str, Group] | None = None


# --- building a state ----------------------------------------------------------------------


def read_state(
    manifest: bytes,
    catalog: bytes | None = None,
    *,
    label: str,
    run_id: int | None = None,
    url: str = "",
) -> DbtState:
    """A `DbtState` from the bytes of manifest.json (and catalog.json). Raises
    `ArtifactError` when the manifest is not a dbt artifact."""
    # `_read` decodes under `artifacts._DECODING`: msgspec crashes when two threads build
    # one Struct type's decoder at once, and these Structs extend the lookups' ones.
    loaded: Loaded[_Manifest] = _read(manifest, _Manifest)
    if loaded.kind and loaded.kind != "manifest":
        raise ArtifactError(f"it is a {loaded.kind} artifact, not a manifest")
    parsed_catalog: Loaded[Catalog] | None = read_catalog(catalog) if catalog else None
    builder = _Builder(loaded.value, parsed_catalog, label=label, run_id=run_id, url=url)
    return builder.state()


class _Builder:
    def __init__(
        self,
        manifest: _Manifest,
        catalog: Loaded[Catalog] | None,
        *,
        label: str,
        run_id: int | None,
        url: str,
    ) -> None:
        self.manifest = manifest
        self.metadata = manifest.metadata
        self.label, self.run_id, self.url = label, run_id, url
        self.dialect = sql_columns.dialect_of(manifest.metadata.adapter_type)
        self.tables: dict[str, CatalogTable] = {}
        self.catalog_at = None
        if catalog is not None:
            self.tables.update(catalog.value.nodes or {})
            self.tables.update(catalog.value.sources or {})
            self.catalog_at = parse_time(catalog.value.metadata.generated_at)
        self.groups = {
            g.name: normalize_owners(g.owner) for g in (manifest.groups or {}).values() if g.name
        }
        self.nodes = manifest.nodes or {}
        self.sources = manifest.sources or {}
        # Relations and names for rendering raw SQL: ref('x') → x's relation.
        self.relations: dict[str, str] = {}
        self.names: dict[str, str] = {}
        for uid, node in self.nodes.items():
            self.relations[uid] = node.relation_name or ""
            self.names[uid] = node.name or uid.rsplit(".", 1)[-1]
        for uid, source in self.sources.items():
            self.relations[uid] = source.relation_name or ""
        self.tests_on: dict[tuple[str, str], list[str]] = {}
        # Owners by how they are written: thousands of models share a few owners.
        self._owners_seen: dict[str, tuple[str, ...]] = {}
        self.tests: dict[str, StateTest] = {}

    def state(self) -> DbtState:
        self._tests()
        nodes: dict[str, StateNode] = {}
        for uid, node in self.nodes.items():
            kind = node.resource_type or uid.split(".", 1)[0]
            if kind in _RELATIONS and (node.config is None or node.config.enabled is not False):
                nodes[uid] = self._node(uid, node, kind)
        for uid, source in self.sources.items():
            nodes[uid] = self._source(uid, source)
        exposures = {
            uid: self._exposure(uid, exposure)
            for uid, exposure in (self.manifest.exposures or {}).items()
        }
        metadata = self.metadata
        return DbtState(
            label=self.label,
            nodes=nodes,
            exposures=exposures,
            tests=self.tests,
            project=metadata.project_name or "",
            adapter=metadata.adapter_type or "",
            dialect=self.dialect or "",
            dbt_version=metadata.dbt_version or "",
            generated_at=parse_time(metadata.generated_at),
            catalog_at=self.catalog_at,
            run_id=self.run_id,
            url=self.url,
        )

    def _tests(self) -> None:
        for uid, node in self.nodes.items():
            if (node.resource_type or uid.split(".", 1)[0]) != "test":
                continue
            parents = tuple(node.depends_on.nodes or ()) if node.depends_on else ()
            attached = node.attached_node or (parents[0] if len(parents) == 1 else "")
            generic = node.test_metadata is not None
            kind = (node.test_metadata.name or "generic") if node.test_metadata else "singular"
            column = node.column_name or ""
            if generic and attached and column:
                self.tests_on.setdefault((attached, column.lower()), []).append(kind)
            sql = ""
            if not generic:
                sql, _ = self._sql(node, parents)
            self.tests[uid] = StateTest(
                unique_id=uid,
                name=node.name or uid.rsplit(".", 1)[-1],
                kind=kind,
                attached=attached,
                column=column,
                parents=parents,
                sql=sql,
            )

    def _owners(self, *written: Any) -> tuple[str, ...]:
        key = repr(written)
        found = self._owners_seen.get(key)
        if found is None:
            found = self._owners_seen[key] = normalize_owners(list(written))
        return found

    def _sql(self, node: _Node, parents: Sequence[str]) -> tuple[str, str]:
        """(SQL, "compiled" | "raw" | "") — raw SQL with ref() and source() rendered."""
        if node.compiled_code:
            return node.compiled_code, "compiled"
        if not node.raw_code or (node.language or "sql") != "sql":
            return "", ""
        refs = {
            self.names[p].lower(): self.relations.get(p, "") for p in parents if p in self.names
        }
        sources: dict[tuple[str, str], str] = {}
        for p in parents:
            source = self.sources.get(p)
            if source is not None and source.source_name and source.name:
                sources[(source.source_name.lower(), source.name.lower())] = (
                    source.relation_name or ""
                )
        return sql_columns.render_raw(node.raw_code, refs, sources), "raw"

    def _node(self, uid: str, node: _Node, kind: str) -> StateNode:
        config = node.config
        parents = tuple(node.depends_on.nodes or ()) if node.depends_on else ()
        contract = node.contract or (config.contract if config else None)
        group = node.group or (config.group if config else None) or ""
        owners = self._owners(
            meta_owner(config.meta if config else None),
            meta_owner(node.meta),
            self.groups.get(group, ()) if group else (),
        )
        sql, sql_kind = self._sql(node, parents) if kind in ("model", "snapshot") else ("", "")
        return StateNode(
            unique_id=uid,
            name=node.name or uid.rsplit(".", 1)[-1],
            resource_type=kind,
            package=node.package_name or "",
            path=node.original_file_path or "",
            relation=node.relation_name or "",
            description=node.description or "",
            owners=owners,
            group=group,
            materialized=(config.materialized if config else None) or "",
            access=node.access or (config.access if config else None) or "",
            contract_enforced=bool(contract and contract.enforced),
            constraints=tuple(_constraint(c, model=True) for c in node.constraints or ()),
            version="" if node.version is None else str(node.version),
            tags=merge_tags(node.tags, config.tags if config else None),
            meta=_meta(node.meta, config.meta if config else None),
            checksum=(node.checksum.checksum or "") if node.checksum else "",
            columns=self._columns(uid, node.columns),
            in_catalog=uid in self.tables,
            parents=parents,
            sql=sql,
            sql_kind=sql_kind,
            sql_partial=sql_kind == "raw" and sql_columns._PLACEHOLDER in sql,
        )

    def _source(self, uid: str, source: _Source) -> StateNode:
        config = source.config
        owners = normalize_owners(
            [meta_owner(config.meta if config else None), meta_owner(source.meta)]
        ) or normalize_owners(meta_owner(source.source_meta))
        table = source.name or uid.rsplit(".", 1)[-1]
        return StateNode(
            unique_id=uid,
            name=f"{source.source_name}.{table}" if source.source_name else table,
            resource_type="source",
            package=source.package_name or "",
            path=source.original_file_path or "",
            relation=source.relation_name or "",
            description=source.description or "",
            owners=owners,
            tags=merge_tags(source.tags, config.tags if config else None),
            meta=_meta(source.meta, config.meta if config else None),
            columns=self._columns(uid, source.columns),
            in_catalog=uid in self.tables,
        )

    def _exposure(self, uid: str, exposure: Exposure) -> StateNode:
        config = exposure.config
        return StateNode(
            unique_id=uid,
            name=exposure.name or uid.rsplit(".", 1)[-1],
            resource_type="exposure",
            package=exposure.package_name or "",
            path=exposure.original_file_path or "",
            description=exposure.description or "",
            owners=normalize_owners(
                [
                    exposure.owner,
                    meta_owner(config.meta if config else None),
                    meta_owner(exposure.meta),
                ]
            ),
            tags=merge_tags(exposure.tags, config.tags if config else None),
            meta=_meta(exposure.meta, config.meta if config else None),
            parents=tuple(exposure.depends_on.nodes or ()) if exposure.depends_on else (),
            exposure_type=exposure.kind or "",
            url=exposure.url or "",
        )

    def _columns(self, uid: str, declared: Mapping[str, _Column] | None) -> tuple[StateColumn, ...]:
        joined = joined_columns(declared, self.tables.get(uid))
        return tuple(self._column(uid, name, doc, found) for name, doc, found in joined)

    def _column(
        self, uid: str, name: str, doc: _Column | None, found: CatalogColumn | None
    ) -> StateColumn:
        tests = tuple(self.tests_on.get((uid, name.lower()), ()))
        position = found.index if found else None
        data_type = (found.kind or "") if found else ""
        if doc is None:
            return StateColumn(name=name, position=position, data_type=data_type, tests=tests)
        config = doc.config
        return StateColumn(
            name=name,
            position=position,
            data_type=data_type,
            declared_type=doc.data_type or "",
            description=doc.description or "",
            declared=True,
            constraints=tuple(_constraint(c, model=False) for c in doc.constraints or ()),
            tests=tests,
            meta=_meta(doc.meta, config.meta if config else None),
            tags=merge_tags(doc.tags, config.tags if config else None),
        )


def _constraint(constraint: _Constraint, *, model: bool) -> str:
    kind = constraint.type or "custom"
    text = kind
    if constraint.expression:
        text += f": {constraint.expression}"
    if kind == "foreign_key" and constraint.to:
        to_columns = ", ".join(constraint.to_columns or ())
        text += f" → {constraint.to}" + (f" ({to_columns})" if to_columns else "")
    if model and constraint.columns:
        text += f" ({', '.join(constraint.columns)})"
    return text


def _meta(*values: Any) -> dict[str, Any]:
    merged: dict[str, Any] = {}
    for value in values:
        if value and isinstance(value, dict):
            merged.update(value)
    return merged


# --- where states come from ----------------------------------------------------------------


class StateLoader:
    """`bot.ports.DbtStates` over folders and dbt Cloud runs.

    `roots`: folders may only be read inside these (None: anywhere — the command line; ``()``:
    nowhere — chat without a configured artifacts folder). `production_job` is the deploy job
    whose latest finished run is production.
    """

    system = SYSTEM

    def __init__(
        self,
        *,
        cloud: DbtCloudClient | None = None,
        production_job: int | None = None,
        roots: Sequence[Path] | None = None,
        keep: int = 4,
    ) -> None:
        self.cloud = cloud
        self.production_job = production_job
        self.roots = None if roots is None else tuple(r.resolve() for r in roots)
        self.keep = keep
        self._lock = threading.Lock()
        self._runs: OrderedDict[int, DbtState] = OrderedDict()

    def state(self, ref: StateRef) -> DbtState:
        if ref.kind == "dir":
            return self.folder(Path(ref.value).expanduser())
        if ref.kind == "run":
            try:
                run_id = int(ref.value)
            except ValueError:
                raise UpstreamError(
                    CLOUD, f"{ref.value!r} is not a dbt Cloud run id (a number)"
                ) from None
            return self.run(run_id)
        if ref.kind == "production":
            return self.production()
        raise UpstreamError(SYSTEM, f"unknown kind of dbt state {ref.kind!r}")

    # -- folders ------------------------------------------------------------------------------

    def folder(self, path: Path) -> DbtState:
        """The state in a dbt ``target/`` folder (or a project folder holding one)."""
        resolved = path.resolve()
        if self.roots is not None and not any(resolved.is_relative_to(r) for r in self.roots):
            if not self.roots:
                raise UpstreamError(
                    SYSTEM,
                    "folders can be compared from the command line (`pipebot schema-review "
                    "--base DIR --target DIR`); here, give dbt Cloud run ids",
                )
            raise UpstreamError(
                SYSTEM,
                f"{path} is outside the folders chat may read ("
                + ", ".join(str(r) for r in self.roots)
                + "): give a folder inside them, or dbt Cloud run ids",
            )
        if not resolved.is_dir():
            raise UpstreamNotFound(SYSTEM, f"no folder {path}: give a dbt target/ folder")
        folder = resolved
        if not (folder / MANIFEST).is_file() and (folder / "target" / MANIFEST).is_file():
            folder = folder / "target"
        manifest = folder / MANIFEST
        if not manifest.is_file():
            raise UpstreamNotFound(
                SYSTEM,
                f"no {MANIFEST} in {path}: give a dbt target/ folder (after `dbt build` and "
                "`dbt docs generate`)",
            )
        catalog = folder / CATALOG
        try:
            return read_state(
                manifest.read_bytes(),
                catalog.read_bytes() if catalog.is_file() else None,
                label=f"dbt artifacts in {folder}",
            )
        except (OSError, ArtifactError) as exc:
            raise UpstreamError(
                SYSTEM, f"the artifacts in {folder} cannot be read ({exc})"
            ) from None

    # -- dbt Cloud ----------------------------------------------------------------------------

    def _client(self, what: str) -> DbtCloudClient:
        if self.cloud is None:
            raise UpstreamError(
                CLOUD,
                f"{what} needs dbt Cloud: set PIPEBOT_DBT_CLOUD__ACCOUNT_ID and "
                "PIPEBOT_DBT_CLOUD__TOKEN (or compare two folders)",
            )
        return self.cloud

    def run(self, run_id: int) -> DbtState:
        """The state a finished dbt Cloud run left (kept by run id: it cannot change)."""
        with self._lock:
            cached = self._runs.get(run_id)
        if cached is not None:
            return cached
        client = self._client(f"run {run_id}")
        run = client.run(run_id)
        if not run.complete:
            raise UpstreamError(
                CLOUD,
                f"run {run_id} is still {run.status_text.lower() or 'running'}: review it when it "
                "finishes",
            )
        state = self._load(client, run)
        if state is None:
            raise UpstreamNotFound(
                CLOUD,
                f"run {run_id} ({run.status_text}) left no {MANIFEST}: it stopped before dbt "
                "parsed the project",
            )
        return state

    def production(self) -> DbtState:
        """The state of the deploy job's latest finished run that left a manifest."""
        client = self._client("production")
        if self.production_job is None:
            raise UpstreamError(
                CLOUD,
                "production is the latest run of the deploy job: set PIPEBOT_DBT_CLOUD__JOB_ID "
                "(or give the base explicitly)",
            )
        runs = client.runs(
            job_id=self.production_job,
            statuses=("success", "error"),
            order_by="-finished_at",
            limit=PRODUCTION_LOOK_BACK,
        )
        for run in runs:
            with self._lock:
                cached = self._runs.get(run.id)
            if cached is not None:
                return cached
            full = client.run(run.id)
            state = self._load(client, full, production=True)
            if state is not None:
                return state
        if not runs:
            raise UpstreamNotFound(
                CLOUD, f"the deploy job {self.production_job} has no finished run yet"
            )
        raise UpstreamNotFound(
            CLOUD,
            f"none of the last {len(runs)} finished runs of the deploy job "
            f"{self.production_job} left a {MANIFEST}",
        )

    def _load(
        self, client: DbtCloudClient, run: Run, *, production: bool = False
    ) -> DbtState | None:
        manifest = client.run_artifact_or_none(run.id, MANIFEST)
        if manifest is None:
            return None
        steps = run.run_steps or []
        docs_step = _last_step(steps, "docs generate")
        catalog = None
        if docs_step is not None or run.has_docs_generated:
            catalog = client.run_artifact_or_none(run.id, CATALOG, step=docs_step)
        job = run.job.name if run.job and run.job.name else ""
        label = f"dbt Cloud run {run.id}" + (f" (job '{job}')" if job else "")
        if production:
            label = "production: " + label
        try:
            state = read_state(manifest, catalog, label=label, run_id=run.id, url=run.href or "")
        except ArtifactError as exc:
            raise UpstreamError(
                CLOUD, f"the artifacts of run {run.id} cannot be read ({exc})"
            ) from None
        with self._lock:
            self._runs[run.id] = state
            while len(self._runs) > self.keep:
                self._runs.popitem(last=False)
        return state


def _implements_port(loader: StateLoader) -> DbtStates:
    # Never called: mypy checks here that the class satisfies the core's Protocol.
    return loader

"""Warehouse drift: the catalog of the configured schemas, snapshotted daily, compared with the
snapshot before it, and the changes no dbt run explains.

A change — a table or view added or dropped, a column added, dropped, retyped or made
(not) nullable, a table that became a view — is *explained* when the relation is built by a
dbt model, seed or snapshot whose last build (the project's last run: run_results.json or the
dbt Cloud job's last run) finished between the two snapshots. Anything else is *unexpected*:
someone ran DDL outside dbt, a loader changed a source table, a schema vanished.

**Once.** The clock submits one ``drift`` job per daily slot (its key is the slot). The job
takes the snapshot under that key — whole, in one transaction, or not at all — then decides
what changed since the snapshot before it, once: the decision is stored on the snapshot and a
run after it gets the stored one back. The post is keyed by the snapshot pair
(``drift:<base>:<snapshot>``) and goes through the outbox, so a job that dies anywhere — after
the snapshot, after the decision, during the post — and runs again posts it once::

    watch = DriftWatch(store, sources, schemas=("marts", "staging"))
    report = watch.check("scheduled:2026-12-04T06:00:00+00:00")   # DriftReport | None
    report.unexpected                                              # what to post

`latest(store.drift)` returns the newest decided findings as a value (for the digest).
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any

import msgspec
from sqlglot import exp
from sqlglot.errors import ParseError

from bot import phrases
from bot.errors import ConfigError, NotFound, SourceUnavailable
from bot.facts import DbtRun, Table
from bot.fanout import gather
from bot.ports import DbtProject, Sources, WarehouseCatalog
from bot.store import Store
from bot.store.drift import (
    COMPLETE,
    MISSING,
    PARTIAL,
    DriftSnapshots,
    Snapshot,
    SnapshotColumn,
    SnapshotRelation,
)

log = logging.getLogger(__name__)

DRIFT_JOB = "drift"
# Kinds of dbt node that build a relation in the warehouse.
BUILT_KINDS = frozenset({"model", "seed", "snapshot"})
# A build this close outside the window still explains a change: the dbt host's clock and
# ours differ a little, and a build that swaps its relation in may finish just after it did.
CLOCK_SKEW = timedelta(minutes=5)
# How long reading the catalog (every schema of a snapshot) and the dbt project may take.
CATALOG_TIMEOUT_S = 300.0
DBT_TIMEOUT_S = 60.0


class ChangeKind(StrEnum):
    RELATION_ADDED = "relation added"
    RELATION_DROPPED = "relation dropped"
    KIND_CHANGED = "kind changed"  # a table became a view …
    COLUMN_ADDED = "column added"
    COLUMN_DROPPED = "column dropped"
    COLUMN_RETYPED = "column retyped"
    NULLABILITY_CHANGED = "nullability changed"
    SCHEMA_DROPPED = "schema dropped"  # a schema the snapshots covered is gone


@dataclass(frozen=True, kw_only=True)
class Change:
    kind: ChangeKind
    schema: str
    relation: str = ""  # "" for a schema-level change
    relation_kind: str = ""  # table | view | … (as the catalog says)
    column: str = ""
    before: str = ""  # the type, "nullable"/"not null", the kind, or "12 relations"
    after: str = ""
    dbt_node: str = ""  # unique id of the dbt model/seed/snapshot that builds this relation
    built_at: datetime | None = None  # that node's last build, when the check knew of one
    explained: bool = False  # that build falls between the two snapshots

    @property
    def where(self) -> str:
        qualified = f"{self.schema}.{self.relation}" if self.relation else self.schema
        return f"{qualified}.{self.column}" if self.column else qualified


@dataclass(frozen=True, kw_only=True)
class DriftReport:
    """What changed in the warehouse between two catalogs: two snapshots (`snapshot_id` set),
    or the newest snapshot and the warehouse as it is now (the `drift` command)."""

    base_id: int | None  # None: the first snapshot, nothing to compare with
    base_taken_at: datetime | None
    snapshot_id: int | None  # None: the live catalog
    taken_at: datetime
    schemas: tuple[str, ...]  # the schemas compared
    changes: tuple[Change, ...] = ()
    dbt: str = ""  # the dbt run the changes were checked against, "" when none
    notes: tuple[str, ...] = ()

    @property
    def unexpected(self) -> tuple[Change, ...]:
        return tuple(c for c in self.changes if not c.explained)

    @property
    def explained(self) -> tuple[Change, ...]:
        return tuple(c for c in self.changes if c.explained)

    @property
    def post_key(self) -> str:
        """The idempotency key of the post about this pair of snapshots."""
        return f"drift:{self.base_id}:{self.snapshot_id}"

    def to_dict(self) -> dict[str, Any]:
        data: dict[str, Any] = msgspec.to_builtins(self)
        return data

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> DriftReport:
        return msgspec.convert(dict(data), cls)


@dataclass(frozen=True, kw_only=True)
class DriftJob:
    """The payload of a ``drift`` job: which snapshot to take (and check)."""

    snapshot: str  # "scheduled:<slot>" (the clock) or "manual:<id>" (`pipebot drift snapshot`)

    @property
    def key(self) -> str:
        return f"drift:{self.snapshot}"


def scheduled_key(slot: datetime) -> str:
    return f"scheduled:{slot.isoformat()}"


# --- catalogs ----------------------------------------------------------------------------


@dataclass(frozen=True, kw_only=True)
class CatalogState:
    """A catalog to compare: a stored snapshot, or the warehouse read just now."""

    taken_at: datetime
    scope: tuple[str, ...] | None  # the schemas asked for; None: every usable schema
    schemas: Mapping[str, str]  # schema → complete | partial | missing
    relations: Mapping[tuple[str, str], SnapshotRelation]
    notes: tuple[str, ...] = ()

    def covers(self, schema: str) -> bool:
        return self.scope is None or schema in self.scope


def stored(snapshots: DriftSnapshots, snapshot: Snapshot) -> CatalogState:
    return CatalogState(
        taken_at=snapshot.taken_at,
        scope=snapshot.scope,
        schemas=snapshot.schemas,
        relations={(r.schema, r.name): r for r in snapshots.relations(snapshot.id)},
        notes=status_notes(snapshot.schemas),
    )


def status_notes(schemas: Mapping[str, str]) -> tuple[str, ...]:
    """What a reader must know about the schemas a catalog could not read whole."""
    notes = []
    for name, status in sorted(schemas.items()):
        if status == MISSING:
            notes.append(f"Schema `{name}` was not found in the warehouse.")
        elif status == PARTIAL:
            notes.append(
                f"Schema `{name}` was not read whole (the warehouse row or byte cap, "
                "PIPEBOT_WAREHOUSE__ROW_CAP / __BYTE_CAP): only changes to relations read both "
                "times are reported there."
            )
    return tuple(notes)


def read_catalog(
    warehouse: WarehouseCatalog, scope: Sequence[str], *, taken_at: datetime
) -> CatalogState:
    """Every relation of `scope` (or of every schema the warehouse lists) with its columns.

    A schema in `scope` the warehouse does not have is recorded as missing; a schema listed
    at the warehouse's row cap as partial (relations beyond the cap were not read, so their
    absence means nothing). Raises `SourceError` when the catalog cannot be read whole.
    """
    system = warehouse.system
    if scope:
        names = list(dict.fromkeys(scope))
    else:
        listed = gather({"schemas": (system, warehouse.schemas)}, timeout=CATALOG_TIMEOUT_S)
        names = list(_value(listed["schemas"]) or [])

    def read(schema: str) -> tuple[str, list[Table]]:
        """(why the schema is missing or "", its relations)."""
        try:
            return "", warehouse.tables(schema)
        except NotFound as exc:
            if not scope:
                raise  # a schema the warehouse itself listed: something else is wrong
            log.warning(
                "drift: a schema to snapshot is missing",
                extra={"schema": schema, "reason": exc.reason},
            )
            return exc.reason or "not found", []

    found = gather(
        {name: (system, lambda name=name: read(name)) for name in names},  # type: ignore[misc]
        timeout=CATALOG_TIMEOUT_S,
    )
    # The port has no "this listing is whole" signal, so the SQL catalog's own marks are read
    # when it has them: a listing as long as its row cap may have been cut, and `last_cut`
    # (sticky until its next check) says a result was cut at its byte cap. Either way the
    # relations not read must not be reported as dropped.
    cap = getattr(warehouse, "row_cap", None)
    byte_cut = getattr(warehouse, "last_cut", None) is not None
    statuses: dict[str, str] = {}
    relations: dict[tuple[str, str], SnapshotRelation] = {}
    for name in names:
        missing, tables = _value(found[name])
        if missing:
            statuses[name] = MISSING
            continue
        partial = byte_cut or (isinstance(cap, int) and len(tables) >= cap)
        statuses[name] = PARTIAL if partial else COMPLETE
        for table in tables:
            relations[(table.schema, table.name)] = SnapshotRelation(
                table.schema,
                table.name,
                table.kind,
                tuple(SnapshotColumn(c.name, c.data_type, c.nullable) for c in table.columns),
            )
    return CatalogState(
        taken_at=taken_at,
        scope=tuple(scope) if scope else None,
        schemas=statuses,
        relations=relations,
        notes=status_notes(statuses),
    )


def _value(outcome: Any) -> Any:
    """The outcome's value; its connector error raised (the catalog is read whole or not)."""
    if outcome.ok:
        return outcome.value
    if outcome.exc is not None:
        raise outcome.exc
    raise SourceUnavailable(outcome.system or "warehouse", outcome.error)


# --- comparing ---------------------------------------------------------------------------


def compared_schemas(base: CatalogState, current: CatalogState) -> list[str]:
    """The schemas both catalogs were asked to cover."""
    if base.scope is None and current.scope is None:
        names = set(base.schemas) | set(current.schemas)
    elif base.scope is None:
        names = set(current.scope or ())
    elif current.scope is None:
        names = set(base.scope)
    else:
        names = set(base.scope) & set(current.scope)
    return sorted(names)


def compare(base: CatalogState, current: CatalogState) -> list[Change]:
    """Every change from `base` to `current` in the schemas both cover, sorted by where."""
    changes: list[Change] = []
    by_schema_base = _by_schema(base.relations.values())
    by_schema_current = _by_schema(current.relations.values())
    for schema in compared_schemas(base, current):
        before_status = base.schemas.get(schema, MISSING)
        after_status = current.schemas.get(schema, MISSING)
        before = by_schema_base.get(schema, {})
        after = by_schema_current.get(schema, {})
        if after_status == MISSING and before_status != MISSING:
            changes.append(
                Change(
                    kind=ChangeKind.SCHEMA_DROPPED,
                    schema=schema,
                    before=_count(len(before)),
                    after="gone",
                )
            )
            continue
        whole = PARTIAL not in (before_status, after_status)
        for name in sorted(set(before) | set(after)):
            old, new = before.get(name), after.get(name)
            if old is None and new is not None:
                if whole:
                    changes.append(_relation_change(ChangeKind.RELATION_ADDED, new))
            elif new is None and old is not None:
                if whole:
                    changes.append(_relation_change(ChangeKind.RELATION_DROPPED, old))
            elif old is not None and new is not None and old != new:
                changes.extend(_relation_changes(old, new))
    return changes


def _by_schema(
    relations: Iterable[SnapshotRelation],
) -> dict[str, dict[str, SnapshotRelation]]:
    grouped: dict[str, dict[str, SnapshotRelation]] = {}
    for relation in relations:
        grouped.setdefault(relation.schema, {})[relation.name] = relation
    return grouped


def _count(n: int) -> str:
    return phrases.plural(n, "relation")


def _columns(relation: SnapshotRelation) -> str:
    return phrases.plural(len(relation.columns), "column")


def _relation_change(kind: ChangeKind, relation: SnapshotRelation) -> Change:
    return Change(
        kind=kind,
        schema=relation.schema,
        relation=relation.name,
        relation_kind=relation.kind,
        before=_columns(relation) if kind is ChangeKind.RELATION_DROPPED else "",
        after=_columns(relation) if kind is ChangeKind.RELATION_ADDED else "",
    )


def _relation_changes(old: SnapshotRelation, new: SnapshotRelation) -> list[Change]:
    def change(kind: ChangeKind, column: str = "", before: str = "", after: str = "") -> Change:
        return Change(
            kind=kind,
            schema=new.schema,
            relation=new.name,
            relation_kind=new.kind,
            column=column,
            before=before,
            after=after,
        )

    changes: list[Change] = []
    if _norm(old.kind) != _norm(new.kind):
        changes.append(change(ChangeKind.KIND_CHANGED, before=old.kind, after=new.kind))
    before = {c.name: c for c in old.columns}
    after = {c.name: c for c in new.columns}
    for column in new.columns:
        if column.name not in before:
            changes.append(change(ChangeKind.COLUMN_ADDED, column.name, after=column.data_type))
    for column in old.columns:
        now = after.get(column.name)
        if now is None:
            changes.append(change(ChangeKind.COLUMN_DROPPED, column.name, before=column.data_type))
            continue
        if _norm(column.data_type) != _norm(now.data_type):
            changes.append(
                change(ChangeKind.COLUMN_RETYPED, column.name, column.data_type, now.data_type)
            )
        # None: the catalog does not say (some dialects), which is not a change.
        if None not in (column.nullable, now.nullable) and column.nullable != now.nullable:
            changes.append(
                change(
                    ChangeKind.NULLABILITY_CHANGED,
                    column.name,
                    _nullability(bool(column.nullable)),
                    _nullability(bool(now.nullable)),
                )
            )
    return changes


def _norm(text: str) -> str:
    return " ".join(text.split()).casefold()


def _nullability(nullable: bool) -> str:
    return "nullable" if nullable else "not null"


# --- explaining --------------------------------------------------------------------------


@dataclass(frozen=True, kw_only=True)
class Builds:
    """What the dbt project says about the relations it builds."""

    run: DbtRun | None  # the last run that built or tested, when known
    # (schema, relation) casefolded → (the node's unique id, its last build in `run` or None)
    relations: Mapping[tuple[str, str], tuple[str, datetime | None]]

    def describe(self) -> str:
        run = self.run
        if run is None:
            return "no dbt run known"
        what = f"dbt {run.command}" if run.command else "dbt run"
        if run.cloud_run_id:
            what += f" (dbt Cloud run {run.cloud_run_id})"
        elif run.invocation_id:
            what += f" {run.invocation_id[:8]}"
        if run.generated_at is not None:
            what += f" at {run.generated_at.isoformat(timespec='seconds')}"
        return what


def builds(dbt: DbtProject) -> Builds:
    """The relations of the project's models, seeds and snapshots and when its last run built
    each. Raises `SourceError` when dbt cannot be read."""
    run = dbt.last_run()
    built: dict[str, datetime | None] = {}
    if run is not None and run.executed:
        for result in run.results:
            if result.status == "skipped":
                continue
            built[result.unique_id] = result.completed_at or run.generated_at
    relations: dict[tuple[str, str], tuple[str, datetime | None]] = {}
    for node in dbt.nodes():
        if node.resource_type not in BUILT_KINDS:
            continue
        located = locate(node.relation)
        if located is not None:
            relations[located] = (node.unique_id, built.get(node.unique_id))
    return Builds(run=run, relations=relations)


def locate(relation: str) -> tuple[str, str] | None:
    """(schema, table) casefolded of a dbt relation name such as ``"shop"."marts"."orders"``."""
    if not relation:
        return None
    try:
        table = exp.to_table(relation)
    except (ParseError, ValueError):
        return None
    if not table.name or not table.db:
        return None
    return table.db.casefold(), table.name.casefold()


def explain(
    changes: Sequence[Change], found: Builds | None, *, since: datetime, until: datetime
) -> tuple[Change, ...]:
    """`changes` with the dbt node of each relation, its last build and whether that build
    (finished between `since` and `until`, give or take `CLOCK_SKEW`) explains the change."""
    if found is None:
        return tuple(changes)
    explained: list[Change] = []
    for change in changes:
        node = found.relations.get((change.schema.casefold(), change.relation.casefold()))
        if node is None or not change.relation:
            explained.append(change)
            continue
        unique_id, built_at = node
        within = built_at is not None and since - CLOCK_SKEW < built_at <= until + CLOCK_SKEW
        explained.append(replace(change, dbt_node=unique_id, built_at=built_at, explained=within))
    return tuple(explained)


# --- the check ---------------------------------------------------------------------------


class DriftWatch:
    """Takes snapshots and decides, once per snapshot, what changed since the one before."""

    def __init__(self, store: Store, sources: Sources, *, schemas: Sequence[str] = ()) -> None:
        self._store = store
        self._sources = sources
        self._scope = tuple(dict.fromkeys(s for s in schemas if s))

    def snapshot(self, key: str) -> tuple[Snapshot, bool]:
        """The snapshot `key`, taken now unless it was taken before; (it, taken now)."""
        existing = self._store.drift.by_key(key)
        if existing is not None:
            return existing, False
        warehouse = self._sources.warehouse
        if warehouse is None:
            raise ConfigError("warehouse drift needs a warehouse: set PIPEBOT_WAREHOUSE__URL")
        state = read_catalog(warehouse, self._scope, taken_at=self._sources.now())
        snapshot, new = self._store.drift.take(
            key,
            taken_at=state.taken_at,
            scope=state.scope,
            schemas=state.schemas,
            relations=list(state.relations.values()),
        )
        if new:
            log.info(
                "drift: snapshot taken",
                extra={"snapshot": snapshot.id, "relations": snapshot.relation_count},
            )
        return snapshot, new

    def check(self, key: str, *, final: bool = True) -> DriftReport:
        """Take the snapshot `key` (once) and decide (once) what changed since the snapshot
        before it. Unless `final`, a dbt project that cannot be read raises (the job runs
        again); on the final attempt the changes are decided without it, and say so."""
        # Snapshots are taken and compared one at a time, so "the one before" is settled.
        with self._store.locks.hold("drift"):
            snapshot, _ = self.snapshot(key)
            if snapshot.decided and snapshot.report is not None:
                return DriftReport.from_dict(snapshot.report)
            base = self._store.drift.before(snapshot)
            if base is None:
                report = DriftReport(
                    base_id=None,
                    base_taken_at=None,
                    snapshot_id=snapshot.id,
                    taken_at=snapshot.taken_at,
                    schemas=tuple(sorted(snapshot.schemas)),
                    notes=status_notes(snapshot.schemas),
                )
            else:
                report = _report(
                    stored(self._store.drift, base),
                    stored(self._store.drift, snapshot),
                    self._sources,
                    base_id=base.id,
                    snapshot_id=snapshot.id,
                    strict=not final,
                )
            decided = self._store.drift.decide(
                snapshot.id, base_id=report.base_id, report=report.to_dict()
            )
        assert decided.report is not None
        return DriftReport.from_dict(decided.report)


def since_last(
    snapshots: DriftSnapshots, sources: Sources, schema: str | None = None
) -> DriftReport | None:
    """The warehouse now against the newest snapshot (of `schema`, or of what that snapshot
    covers); None when there is no snapshot yet. Takes no snapshot. Raises `NotFound` for a
    schema the snapshots do not cover, `SourceError` when the catalog cannot be read."""
    latest_snapshot = snapshots.latest()
    if latest_snapshot is None:
        return None
    warehouse = sources.warehouse
    if warehouse is None:
        raise ConfigError("warehouse drift needs a warehouse: set PIPEBOT_WAREHOUSE__URL")
    if schema is not None:
        covered = latest_snapshot.scope is None or schema in latest_snapshot.scope
        if not covered or schema not in latest_snapshot.schemas:
            known = sorted(latest_snapshot.schemas)
            raise NotFound(
                "drift",
                f"the snapshots do not cover schema {schema} (they cover "
                f"{', '.join(known) or 'no schema'}; PIPEBOT_DRIFT__SCHEMAS)",
                suggestions=known,
            )
    scope: Sequence[str] = (schema,) if schema is not None else (latest_snapshot.scope or ())
    base = stored(snapshots, latest_snapshot)
    if schema is not None:
        base = _only(base, schema)
    current = read_catalog(warehouse, scope, taken_at=sources.now())
    return _report(
        base, current, sources, base_id=latest_snapshot.id, snapshot_id=None, strict=False
    )


def _only(state: CatalogState, schema: str) -> CatalogState:
    return CatalogState(
        taken_at=state.taken_at,
        scope=(schema,),
        schemas={k: v for k, v in state.schemas.items() if k == schema},
        relations={k: v for k, v in state.relations.items() if k[0] == schema},
    )


def _report(
    base: CatalogState,
    current: CatalogState,
    sources: Sources,
    *,
    base_id: int | None,
    snapshot_id: int | None,
    strict: bool,
) -> DriftReport:
    changes = compare(base, current)
    notes = list(dict.fromkeys((*base.notes, *current.notes)))
    found: Builds | None = None
    dbt_said = ""
    if changes and sources.dbt is not None:
        dbt = sources.dbt
        outcome = gather({"builds": (dbt.system, lambda: builds(dbt))}, timeout=DBT_TIMEOUT_S)[
            "builds"
        ]
        if outcome.ok:
            found = outcome.value
            dbt_said = found.describe() if found is not None else ""
        elif strict:
            raise outcome.exc or SourceUnavailable(dbt.system, outcome.error)
        else:
            notes.append(
                f"{dbt.system} could not be read ({outcome.error}), so no change was checked "
                "against dbt runs."
            )
    elif changes:
        notes.append("dbt is not configured, so no change was checked against dbt runs.")
    return DriftReport(
        base_id=base_id,
        base_taken_at=base.taken_at,
        snapshot_id=snapshot_id,
        taken_at=current.taken_at,
        schemas=tuple(compared_schemas(base, current)),
        changes=explain(changes, found, since=base.taken_at, until=current.taken_at),
        dbt=dbt_said,
        notes=tuple(notes),
    )


def latest(snapshots: DriftSnapshots) -> DriftReport | None:
    """The newest decided drift findings (None before two snapshots were compared) — for
    the digest and anything else that wants to mention drift."""
    snapshot = snapshots.latest(decided=True)
    if snapshot is None or snapshot.report is None:
        return None
    report = DriftReport.from_dict(snapshot.report)
    return report if report.base_id is not None else None

"""Snapshots of the warehouse catalog, for drift checks (`bot.drift`).

A snapshot is written whole, in one transaction, or not at all: a crash while it is stored
leaves nothing, so no half-read catalog is ever compared (it would report every missing table
as dropped). Its `key` is unique, so a job that runs again finds the snapshot it took instead
of taking another. The comparison with the snapshot before it is decided once (`decide`) and
kept on the row; a post is made from that stored decision, never from a fresh one::

    snapshot, new = store.drift.take("scheduled:2026-12-04T06:00:00+00:00", taken_at=now,
                                     scope=None, schemas={"marts": "complete"}, relations=rows)
    base = store.drift.before(snapshot)
    decided = store.drift.decide(snapshot.id, base_id=base.id, report={...})  # first one wins
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, NamedTuple

from sqlalchemy import and_, delete, insert, or_, select, update
from sqlalchemy.dialects import postgresql, sqlite

from bot.store.keys import fit
from bot.store.sessions import Sessions
from bot.store.tables import DriftRelationRow, DriftSnapshotRow, utcnow

COMPLETE, PARTIAL, MISSING = "complete", "partial", "missing"


class SnapshotColumn(NamedTuple):
    name: str
    data_type: str
    nullable: bool | None


class SnapshotRelation(NamedTuple):
    """One table or view as a snapshot recorded it."""

    schema: str
    name: str
    kind: str
    columns: tuple[SnapshotColumn, ...]


@dataclass(frozen=True, kw_only=True)
class Snapshot:
    id: int
    key: str
    taken_at: datetime
    scope: tuple[str, ...] | None  # the schemas asked for; None: every usable schema
    schemas: Mapping[str, str]  # schema → complete | partial | missing
    relation_count: int
    base_id: int | None  # the snapshot it was compared with, once decided
    report: Mapping[str, Any] | None  # what that comparison found, once decided
    checked_at: datetime | None

    @property
    def decided(self) -> bool:
        return self.checked_at is not None


def _snapshot(row: DriftSnapshotRow) -> Snapshot:
    return Snapshot(
        id=row.id,
        key=row.key,
        taken_at=row.taken_at,
        scope=tuple(row.scope) if row.scope is not None else None,
        schemas=dict(row.schemas or {}),
        relation_count=row.relation_count,
        base_id=row.base_id,
        report=row.report,
        checked_at=row.checked_at,
    )


class DriftSnapshots:
    def __init__(self, sessions: Sessions) -> None:
        self._sessions = sessions

    def take(
        self,
        key: str,
        *,
        taken_at: datetime,
        scope: Sequence[str] | None,
        schemas: Mapping[str, str],
        relations: Sequence[SnapshotRelation],
    ) -> tuple[Snapshot, bool]:
        """Store a snapshot under `key` with its relations; (the snapshot, True) when stored
        now, (the one stored before, False) when `key` was taken already."""
        values = {
            "key": fit(key),
            "taken_at": taken_at,
            "scope": list(scope) if scope is not None else None,
            "schemas": dict(schemas),
            "relation_count": len(relations),
        }
        with self._sessions.begin() as session:
            module = postgresql if session.get_bind().dialect.name == "postgresql" else sqlite
            inserted = session.execute(
                module.insert(DriftSnapshotRow)
                .values(**values)
                .on_conflict_do_nothing()
                .returning(DriftSnapshotRow.id)
            ).scalar_one_or_none()
            if inserted is not None and relations:
                session.execute(
                    insert(DriftRelationRow),
                    [
                        {
                            "snapshot_id": inserted,
                            "schema_name": r.schema,
                            "table_name": r.name,
                            "kind": r.kind,
                            "columns": [list(c) for c in r.columns],
                        }
                        for r in relations
                    ],
                )
        found = self.by_key(key)
        if found is None:  # pragma: no cover - the row was committed or already there
            raise LookupError(f"drift snapshot {key} vanished")
        return found, inserted is not None

    def by_key(self, key: str) -> Snapshot | None:
        with self._sessions() as session:
            row = session.scalars(
                select(DriftSnapshotRow).where(DriftSnapshotRow.key == fit(key))
            ).one_or_none()
            return None if row is None else _snapshot(row)

    def get(self, snapshot_id: int) -> Snapshot | None:
        with self._sessions() as session:
            row = session.get(DriftSnapshotRow, snapshot_id)
            return None if row is None else _snapshot(row)

    def latest(self, *, decided: bool = False) -> Snapshot | None:
        """The newest snapshot (of those whose comparison was decided, with `decided`)."""
        query = select(DriftSnapshotRow)
        if decided:
            query = query.where(DriftSnapshotRow.checked_at.is_not(None))
        query = query.order_by(DriftSnapshotRow.taken_at.desc(), DriftSnapshotRow.id.desc())
        with self._sessions() as session:
            row = session.scalars(query.limit(1)).first()
            return None if row is None else _snapshot(row)

    def before(self, snapshot: Snapshot) -> Snapshot | None:
        """The newest snapshot taken before `snapshot`."""
        row_ = DriftSnapshotRow
        earlier = or_(
            row_.taken_at < snapshot.taken_at,
            and_(row_.taken_at == snapshot.taken_at, row_.id < snapshot.id),
        )
        with self._sessions() as session:
            row = session.scalars(
                select(row_).where(earlier).order_by(row_.taken_at.desc(), row_.id.desc()).limit(1)
            ).first()
            return None if row is None else _snapshot(row)

    def relations(self, snapshot_id: int) -> list[SnapshotRelation]:
        with self._sessions() as session:
            rows = session.execute(
                select(
                    DriftRelationRow.schema_name,
                    DriftRelationRow.table_name,
                    DriftRelationRow.kind,
                    DriftRelationRow.columns,
                ).where(DriftRelationRow.snapshot_id == snapshot_id)
            ).all()
        return [
            SnapshotRelation(
                schema,
                name,
                kind,
                # `_make` skips the field-by-field constructor: a catalog has 100,000 columns.
                tuple(map(SnapshotColumn._make, columns or ())),
            )
            for schema, name, kind, columns in rows
        ]

    def decide(self, snapshot_id: int, *, base_id: int | None, report: dict[str, Any]) -> Snapshot:
        """Record what comparing `snapshot_id` with `base_id` found — unless a run before
        this one recorded it already: the first decision stays, and is returned."""
        with self._sessions.begin() as session:
            session.execute(
                update(DriftSnapshotRow)
                .where(DriftSnapshotRow.id == snapshot_id, DriftSnapshotRow.checked_at.is_(None))
                .values(base_id=base_id, report=report, checked_at=utcnow())
            )
        found = self.get(snapshot_id)
        if found is None:
            raise LookupError(f"drift snapshot #{snapshot_id} is gone")
        return found

    def prune(self, older_than: datetime) -> int:
        """Delete snapshots taken before `older_than`, except the newest snapshot of all: the
        next check compares with it, however old it is. Snapshots deleted."""
        newest = self.latest()
        if newest is None:
            return 0
        with self._sessions.begin() as session:
            doomed = select(DriftSnapshotRow.id).where(
                DriftSnapshotRow.taken_at < older_than, DriftSnapshotRow.id != newest.id
            )
            ids = list(session.scalars(doomed))
            if not ids:
                return 0
            # Relations first: SQLite enforces ON DELETE CASCADE only with its pragma on.
            session.execute(delete(DriftRelationRow).where(DriftRelationRow.snapshot_id.in_(ids)))
            session.execute(
                update(DriftSnapshotRow)
                .where(DriftSnapshotRow.base_id.in_(ids))
                .values(base_id=None)
            )
            session.execute(delete(DriftSnapshotRow).where(DriftSnapshotRow.id.in_(ids)))
            return len(ids)

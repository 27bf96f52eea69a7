"""The diff of two dbt states: every model, seed, snapshot and source added, removed or
changed, column by column — before anything is classified or traced downstream.

Which columns a node has: catalog.json's when both states list the node there (the
warehouse's truth: undeclared columns and real types included), else the columns the YAML
declares on both sides (then only declared columns can be compared, and the review says so).

Renames are inferred, never assumed: a removed and an added column of one node are paired only
with evidence — the SQL selects the old name under the new one (``order_date as
ordered_on``), both are made from the same upstream column (lineage), or, for seeds and
sources that have no SQL, they sit at the same position with the same type and similar
names — and the evidence is kept on the change.

Relations are compared by table name only: a CI run builds into its own schema, so the schema
and database always differ from production's.
"""

from __future__ import annotations

import difflib
import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from bot.facts import DbtState, StateColumn, StateNode
from bot.owners import unique_owners
from bot.review import datatype
from bot.review.change import Change, Evidence, Kind
from bot.review.privacy import PrivacyFlag, flag
from bot.review.sql import Reading, Readings, relation_key

# Kinds of node the review compares, in the order they are listed.
RESOURCE_ORDER = {"model": 0, "snapshot": 1, "seed": 2, "source": 3}
# Meta keys reported as an owner change, not as a meta change.
_OWNER_KEYS = frozenset({"owner", "owners"})


@dataclass(frozen=True, slots=True, kw_only=True)
class Diff:
    changes: tuple[Change, ...]
    privacy: tuple[PrivacyFlag, ...]
    # Nodes whose columns could only be compared as declared (not in both catalogs).
    declared_only: tuple[str, ...] = ()


def diff(
    base: DbtState,
    target: DbtState,
    *,
    selected: frozenset[str] | None = None,
    base_sql: Readings | None = None,
    target_sql: Readings | None = None,
) -> Diff:
    """Every difference between `base` and `target` on the nodes in `selected` (all: None)."""
    base_sql = base_sql or Readings(base, also=target)
    target_sql = target_sql or Readings(target, also=base)
    changes: list[Change] = []
    privacy: list[PrivacyFlag] = []
    declared_only: list[str] = []
    uids = set(base.nodes) | set(target.nodes)
    if selected is not None:
        uids &= selected
    for uid in sorted(uids, key=lambda u: _order(base, target, u)):
        old, new = base.nodes.get(uid), target.nodes.get(uid)
        if new is None:
            assert old is not None
            changes.append(_node_change(Kind.NODE_REMOVED, old, before=_what(old)))
        elif old is None:
            changes.append(_node_change(Kind.NODE_ADDED, new, after=_what(new)))
            origin = f"new {new.resource_type}"
            for column in _columns(new, catalog=new.in_catalog):
                found = _privacy(new, column, origin)
                if found is not None:
                    privacy.append(found)
        else:
            comparison = _Node(old, new, base_sql, target_sql, base.dialect or None)
            changes.extend(comparison.changes())
            privacy.extend(comparison.privacy)
            if comparison.declared_only:
                declared_only.append(uid)
    return Diff(changes=tuple(changes), privacy=tuple(privacy), declared_only=tuple(declared_only))


def _order(base: DbtState, target: DbtState, uid: str) -> tuple[int, str, str]:
    node = target.nodes.get(uid) or base.nodes[uid]
    return RESOURCE_ORDER.get(node.resource_type, 9), node.name.lower(), uid


def _what(node: StateNode) -> str:
    return f"{node.materialized} {node.relation}".strip() if node.materialized else node.relation


def _node_change(kind: Kind, node: StateNode, **values: Any) -> Change:
    return Change(
        kind=kind,
        node=node.unique_id,
        name=node.name,
        resource_type=node.resource_type,
        contracted=node.contract_enforced,
        public=node.access == "public",
        owners=node.owners,
        **values,
    )


def _columns(node: StateNode, *, catalog: bool) -> list[StateColumn]:
    if catalog:
        return [c for c in node.columns if c.position is not None]
    return [c for c in node.columns if c.declared]


def _privacy(node: StateNode, column: StateColumn, origin: str) -> PrivacyFlag | None:
    return flag(
        node=node.unique_id,
        name=node.name,
        column=column.name,
        data_type=column.data_type or column.declared_type,
        origin=origin,
        owners=node.owners,
        meta=column.meta,
        tags=column.tags,
    )


class _Node:
    """The comparison of one node present in both states."""

    def __init__(
        self,
        old: StateNode,
        new: StateNode,
        base_sql: Readings,
        target_sql: Readings,
        dialect: str | None,
    ) -> None:
        self.old, self.new = old, new
        self.base_sql, self.target_sql = base_sql, target_sql
        self.dialect = dialect
        self.catalog = old.in_catalog and new.in_catalog
        self.declared_only = not self.catalog
        self.privacy: list[PrivacyFlag] = []
        self._out: list[Change] = []

    def _add(self, kind: Kind, **values: Any) -> None:
        new = self.new
        self._out.append(
            Change(
                kind=kind,
                node=new.unique_id,
                name=new.name,
                resource_type=new.resource_type,
                # The promises consumers relied on are the base's.
                contracted=self.old.contract_enforced,
                public=self.old.access == "public",
                owners=unique_owners((*new.owners, *self.old.owners)) or (),
                **values,
            )
        )

    def changes(self) -> list[Change]:
        self._node_level()
        self._column_level()
        return self._out

    # -- the node itself ----------------------------------------------------------------------

    def _node_level(self) -> None:
        old, new = self.old, self.new
        before, after = _identifier(old.relation), _identifier(new.relation)
        if before and after and before != after:
            self._add(Kind.RELATION_CHANGED, before=old.relation, after=new.relation)
        if old.materialized != new.materialized and old.materialized and new.materialized:
            self._add(Kind.MATERIALIZATION_CHANGED, before=old.materialized, after=new.materialized)
        if (old.access or "protected") != (
            new.access or "protected"
        ) and new.resource_type == "model":
            self._add(
                Kind.ACCESS_CHANGED,
                before=old.access or "protected",
                after=new.access or "protected",
            )
        if old.contract_enforced != new.contract_enforced:
            self._add(
                Kind.CONTRACT_CHANGED,
                before=_enforced(old.contract_enforced),
                after=_enforced(new.contract_enforced),
            )
        self._constraints("", old.constraints, new.constraints)
        if old.description.strip() != new.description.strip():
            self._add(Kind.DESCRIPTION_CHANGED, before=old.description, after=new.description)
        owners_before, owners_after = unique_owners(old.owners), unique_owners(new.owners)
        if {o.lower() for o in owners_before} != {o.lower() for o in owners_after}:
            self._add(
                Kind.OWNER_CHANGED,
                before=", ".join(owners_before),
                after=", ".join(owners_after),
            )
        self._meta("", old.meta, new.meta)
        self._tags("", old.tags, new.tags)

    def _constraints(self, column: str, old: Iterable[str], new: Iterable[str]) -> None:
        # not_null is nullability, reported as such.
        before = {c for c in old if c != "not_null" or not column}
        after = {c for c in new if c != "not_null" or not column}
        for gone in sorted(before - after):
            self._add(Kind.CONSTRAINT_REMOVED, column=column, before=gone)
        for added in sorted(after - before):
            self._add(Kind.CONSTRAINT_ADDED, column=column, after=added)

    def _meta(self, column: str, old: Mapping[str, Any], new: Mapping[str, Any]) -> None:
        keys = sorted(
            k
            for k in {*old, *new}
            if k not in _OWNER_KEYS and _json(old.get(k)) != _json(new.get(k))
        )
        if keys:
            self._add(
                Kind.META_CHANGED,
                column=column,
                before=_json({k: old[k] for k in keys if k in old}),
                after=_json({k: new[k] for k in keys if k in new}),
            )

    def _tags(self, column: str, old: Iterable[str], new: Iterable[str]) -> None:
        before, after = sorted(set(old)), sorted(set(new))
        if before != after:
            self._add(
                Kind.TAGS_CHANGED, column=column, before=", ".join(before), after=", ".join(after)
            )

    # -- its columns --------------------------------------------------------------------------

    def _column_level(self) -> None:
        old_columns = {c.name.lower(): c for c in _columns(self.old, catalog=self.catalog)}
        new_columns = {c.name.lower(): c for c in _columns(self.new, catalog=self.catalog)}
        removed = [c for key, c in old_columns.items() if key not in new_columns]
        added = [c for key, c in new_columns.items() if key not in old_columns]
        pairs = self._renames(removed, added)
        renamed_from = {new.name.lower(): old for old, new, _ in pairs}
        renamed_old = {old.name.lower() for old, _, _ in pairs}
        for column in removed:
            if column.name.lower() not in renamed_old:
                self._add(Kind.COLUMN_REMOVED, column=column.name, before=_type_of(column))
        for old, new, evidence in pairs:
            self._add(
                Kind.COLUMN_RENAMED,
                column=old.name,
                new_column=new.name,
                before=_type_of(old),
                after=_type_of(new),
                evidence=evidence,
            )
            self._compare(old, new, column=new.name)
        for column in added:
            was = renamed_from.get(column.name.lower())
            if was is None:
                self._add(Kind.COLUMN_ADDED, column=column.name, after=_type_of(column))
            origin = f"renamed from {was.name}" if was is not None else "added"
            found = _privacy(self.new, column, origin)
            if found is not None:
                self.privacy.append(found)
        for key, before in old_columns.items():
            after = new_columns.get(key)
            if after is not None:
                self._compare(before, after, column=after.name)

    def _compare(self, old: StateColumn, new: StateColumn, *, column: str) -> None:
        self._type(old, new, column)
        if old.not_null != new.not_null:
            self._add(
                Kind.NULLABILITY_CHANGED,
                column=column,
                before=_nullability(old),
                after=_nullability(new),
            )
        self._constraints(column, old.constraints, new.constraints)
        if (old.declared or new.declared) and old.description.strip() != new.description.strip():
            self._add(
                Kind.DESCRIPTION_CHANGED,
                column=column,
                before=old.description,
                after=new.description,
            )
        self._meta(column, old.meta, new.meta)
        self._tags(column, old.tags, new.tags)

    def _type(self, old: StateColumn, new: StateColumn, column: str) -> None:
        if self.catalog and old.data_type and new.data_type:
            before, after = old.data_type, new.data_type
        else:
            before, after = old.declared_type, new.declared_type
        moved = datatype.shift(before, after, self.dialect)
        if moved is datatype.Shift.SAME:
            return
        # The warehouse type moved though the node's code and declaration did not: something
        # upstream changed it.
        knock_on = (
            self.catalog
            and self.new.resource_type in ("model", "snapshot")
            and self.old.checksum == self.new.checksum
            and bool(self.old.checksum)
            and old.declared_type == new.declared_type
        )
        self._add(
            Kind.TYPE_CHANGED,
            column=column,
            before=before,
            after=after,
            shift=str(moved),
            knock_on=knock_on,
        )

    def _renames(
        self, removed: list[StateColumn], added: list[StateColumn]
    ) -> list[tuple[StateColumn, StateColumn, tuple[Evidence, ...]]]:
        if not removed or not added:
            return []
        base = self.base_sql.of(self.old.unique_id) if self.old.sql else None
        target = self.target_sql.of(self.new.unique_id) if self.new.sql else None
        scored: list[tuple[int, int, StateColumn, StateColumn, tuple[Evidence, ...]]] = []
        for i, old in enumerate(removed):
            for new in added:
                evidence, contradicted = self._evidence(old, new, base, target)
                if not evidence or contradicted:
                    continue
                score = sum({"sql": 4, "lineage": 2, "position": 1}[e.kind] for e in evidence)
                if score == 1 and (
                    (base is not None and target is not None) or not _similar(old.name, new.name)
                ):
                    # Position and type alone: only where there is no SQL to tell (seeds,
                    # sources), and only for similar names.
                    continue
                scored.append((-score, i, old, new, evidence))
        pairs: list[tuple[StateColumn, StateColumn, tuple[Evidence, ...]]] = []
        used_old: set[str] = set()
        used_new: set[str] = set()
        for _, _, old, new, evidence in sorted(scored, key=lambda s: (s[0], s[1])):
            if old.name in used_old or new.name in used_new:
                continue
            used_old.add(old.name)
            used_new.add(new.name)
            pairs.append((old, new, evidence))
        return pairs

    def _evidence(
        self, old: StateColumn, new: StateColumn, base: Reading | None, target: Reading | None
    ) -> tuple[tuple[Evidence, ...], bool]:
        found: list[Evidence] = []
        contradicted = False
        if target is not None:
            written = target.expressions.get(new.name.lower(), "")
            if written and written.rsplit(".", 1)[-1].lower() == old.name.lower():
                found.append(
                    Evidence(kind="sql", detail=f"`{written} AS {new.name}` in the target's SQL")
                )
        if base is not None and target is not None:
            before = base.derives.get(old.name.lower())
            after = target.derives.get(new.name.lower())
            if before and after and before == after:
                found.append(
                    Evidence(kind="lineage", detail="both made from " + self._origins(before))
                )
            elif before and after and not before & after:
                contradicted = not found  # an explicit `old AS new` still wins
        if (
            old.position is not None
            and old.position == new.position
            and datatype.same(_type_of(old), _type_of(new), self.dialect)
        ):
            found.append(
                Evidence(
                    kind="position",
                    detail=f"same position ({old.position}) and type ({_type_of(new) or '?'})",
                )
            )
        return tuple(found), contradicted

    def _origins(self, origins: set[tuple[str, str]]) -> str:
        state = self.target_sql.state
        names = []
        for uid, column in sorted(origins):
            node = state.nodes.get(uid)
            names.append(f"`{node.name if node else uid}.{column}`")
        return ", ".join(names)


def _identifier(relation: str) -> str:
    key = relation_key(relation, None) if relation else None
    return key[2] if key else relation.lower()


def _enforced(value: bool) -> str:
    return "enforced" if value else "not enforced"


def _nullability(column: StateColumn) -> str:
    return "not null" if column.not_null else "nullable"


def _type_of(column: StateColumn) -> str:
    return column.data_type or column.declared_type


def _json(value: Any) -> str:
    return json.dumps(value, sort_keys=True, default=str, ensure_ascii=False)


def _similar(old: str, new: str) -> bool:
    a, b = old.lower(), new.lower()
    return a in b or b in a or difflib.SequenceMatcher(None, a, b).ratio() >= 0.6

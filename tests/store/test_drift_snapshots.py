"""Warehouse snapshots in the bot's store, on SQLite and the real PostgreSQL: taken once per key,
decided once, pruned after their retention window except the newest."""

from __future__ import annotations

import threading
from datetime import timedelta

from sqlalchemy import func, select

from bot.store import Store, retention
from bot.store.drift import COMPLETE, SnapshotColumn, SnapshotRelation
from bot.store.tables import DriftRelationRow, utcnow

ORDERS = SnapshotRelation(
    "raw",
    "orders",
    "table",
    (SnapshotColumn("id", "bigint", False), SnapshotColumn("amount", "numeric(12,2)", True)),
)


def take(store: Store, key: str, *, days_ago: float = 0.0) -> int:
    snapshot, _ = store.drift.take(
        key,
        taken_at=utcnow() - timedelta(days=days_ago),
        scope=("raw",),
        schemas={"raw": COMPLETE},
        relations=[ORDERS],
    )
    return snapshot.id


def relation_rows(store: Store) -> int:
    with store.sessions() as session:
        return int(session.scalar(select(func.count()).select_from(DriftRelationRow)) or 0)


def test_a_key_is_taken_once_even_concurrently(store: Store) -> None:
    results: list[tuple[int, bool]] = []

    def racer() -> None:
        snapshot, new = store.drift.take(
            "scheduled:2026-12-04T06:00:00+00:00",
            taken_at=utcnow(),
            scope=None,
            schemas={"raw": COMPLETE},
            relations=[ORDERS],
        )
        results.append((snapshot.id, new))

    threads = [threading.Thread(target=racer) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert len({snapshot_id for snapshot_id, _ in results}) == 1
    assert sorted(new for _, new in results) == [False, False, False, True]
    (only,) = {snapshot_id for snapshot_id, _ in results}
    assert store.drift.relations(only) == [ORDERS]
    assert relation_rows(store) == 1


def test_the_first_decision_stays(store: Store) -> None:
    base, current = take(store, "a", days_ago=1), take(store, "b")
    got = store.drift.get(current)
    assert got is not None and store.drift.before(got) is not None
    assert store.drift.before(got).id == base  # type: ignore[union-attr]
    first = store.drift.decide(current, base_id=base, report={"found": 1})
    again = store.drift.decide(current, base_id=None, report={"found": 2})
    assert (again.base_id, again.report) == (base, {"found": 1}) == (first.base_id, first.report)
    assert store.drift.latest(decided=True) == again


def test_retention_deletes_old_snapshots_but_keeps_the_newest(store: Store) -> None:
    old = [take(store, f"old-{n}", days_ago=40 + n) for n in range(3)]
    recent = take(store, "recent", days_ago=2)
    store.drift.decide(recent, base_id=old[0], report={})
    windows = retention.Windows(drift=timedelta(days=30))
    assert retention.prune(store, windows)["drift_snapshots"] == 3
    assert [store.drift.get(i) for i in old] == [None, None, None]
    kept = store.drift.get(recent)
    assert kept is not None and kept.base_id is None  # its base is gone; its report stays
    assert relation_rows(store) == 1
    # Even past its window, the newest stays: the next check compares with it.
    assert retention.prune(store, retention.Windows(drift=timedelta(days=1))) == {
        **dict.fromkeys(("processed_events", "accepted_events", "jobs", "outbox", "audit"), 0),
        "drift_snapshots": 0,
    }
    assert store.drift.get(recent) is not None

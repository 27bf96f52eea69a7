"""Small dbt states built by hand, for the review's unit tests: a model is its SQL, its columns
(name → type, in catalog order) and its parents, as a manifest and a catalog would give them."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

from bot.facts import DbtState, StateColumn, StateNode, StateRef, StateTest
from bot.review.report import ChangeReview, compare

CATALOG_AT = datetime(2026, 11, 25, 6, 0, tzinfo=UTC)


def rel(name: str, schema: str = "marts") -> str:
    return f'"shop"."{schema}"."{name}"'


def node(
    name: str,
    columns: Mapping[str, str] | Sequence[StateColumn] = (),
    *,
    sql: str = "",
    parents: Sequence[str] = (),
    resource_type: str = "model",
    schema: str = "marts",
    **more: Any,
) -> StateNode:
    """A node; `columns` as name → catalog type (positions in order) or as `StateColumn`s."""
    if isinstance(columns, Mapping):
        built = tuple(
            StateColumn(name=n, position=i, data_type=t)
            for i, (n, t) in enumerate(columns.items(), start=1)
        )
    else:
        built = tuple(columns)
    more.setdefault("in_catalog", True)
    more.setdefault("checksum", f"sha-{name}")
    more.setdefault("materialized", "table" if resource_type == "model" else "")
    return StateNode(
        unique_id=f"{resource_type}.shop.{name}",
        name=name,
        resource_type=resource_type,
        relation=rel(name.rsplit(".", maxsplit=1)[-1], schema),
        columns=built,
        parents=tuple(p if p.count(".") >= 2 else f"model.shop.{p}" for p in parents),
        sql=sql,
        sql_kind="compiled" if sql else "",
        **more,
    )


def exposure(name: str, *parents: str, owners: tuple[str, ...] = ()) -> StateNode:
    return StateNode(
        unique_id=f"exposure.shop.{name}",
        name=name,
        resource_type="exposure",
        owners=owners,
        parents=tuple(f"model.shop.{p}" for p in parents),
        url=f"https://bi.example.com/{name}",
    )


def data_test(
    name: str, on: str, column: str = "", *, kind: str = "not_null", sql: str = ""
) -> StateTest:
    attached = f"model.shop.{on}"
    return StateTest(
        unique_id=f"test.shop.{name}",
        name=name,
        kind=kind,
        attached=attached,
        column=column,
        parents=(attached,),
        sql=sql,
    )


def state(
    *nodes: StateNode,
    exposures: Sequence[StateNode] = (),
    tests: Sequence[StateTest] = (),
    catalog: bool = True,
) -> DbtState:
    return DbtState(
        label="a hand-made state",
        nodes={n.unique_id: n for n in nodes},
        exposures={e.unique_id: e for e in exposures},
        tests={t.unique_id: t for t in tests},
        project="shop",
        adapter="duckdb",
        dialect="duckdb",
        catalog_at=CATALOG_AT if catalog else None,
    )


def review(base: DbtState, target: DbtState, **options: Any) -> ChangeReview:
    return compare(
        base,
        target,
        base_ref=StateRef(kind="dir", value="base"),
        target_ref=StateRef(kind="dir", value="target"),
        **options,
    )

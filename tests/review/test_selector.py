"""`--select`: dbt's node selection syntax over the nodes of both states."""

from __future__ import annotations

import pytest

from bot.review.selector import SelectorError, select
from tests.review.support import node, state

BASE = state(
    node("raw.orders", {"id": "INTEGER"}, resource_type="source", schema="raw"),
    node(
        "stg_orders",
        {"id": "INTEGER"},
        parents=["source.shop.raw.orders"],
        tags=("staging",),
        path="models/staging/stg_orders.sql",
    ),
    node(
        "fct_orders",
        {"id": "INTEGER"},
        parents=["stg_orders"],
        tags=("finance",),
        path="models/marts/fct_orders.sql",
        access="public",
    ),
    node(
        "orders_daily",
        {"id": "INTEGER"},
        parents=["fct_orders"],
        path="models/marts/orders_daily.sql",
    ),
    node(
        "old_report", {"id": "INTEGER"}, parents=["fct_orders"], path="models/marts/old_report.sql"
    ),
)
TARGET = state(*(n for n in BASE.nodes.values() if n.name != "old_report"))


def picked(expression: str) -> set[str]:
    return {uid.rsplit(".", 1)[-1] for uid in select(expression, [BASE, TARGET])}


def test_names_wildcards_and_methods() -> None:
    assert picked("fct_orders") == {"fct_orders"}
    assert picked("*_orders") == {"stg_orders", "fct_orders"}
    assert picked("tag:finance") == {"fct_orders"}
    assert picked("path:models/marts") == {"fct_orders", "orders_daily", "old_report"}
    assert picked("source:raw") == {"orders"}
    assert picked("access:public resource_type:source") == {"fct_orders", "orders"}
    # A node the change removed can still be selected.
    assert picked("old_report") == {"old_report"}


def test_graph_operators_and_intersections() -> None:
    assert picked("stg_orders+") == {"stg_orders", "fct_orders", "orders_daily", "old_report"}
    assert picked("stg_orders+1") == {"stg_orders", "fct_orders"}
    assert picked("+fct_orders") == {"orders", "stg_orders", "fct_orders"}
    assert picked("stg_orders+,path:models/marts/orders*") == {"orders_daily"}


def test_an_unknown_method_says_which_exist() -> None:
    with pytest.raises(SelectorError, match="does not know the selector method `colour:`"):
        select("colour:red", [BASE])

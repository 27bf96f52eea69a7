"""A small dbt target/ folder written by hand in the manifest v12 / run_results v6 shape, for
tests that need one exact situation the real build does not (or not yet) have.

The shapes follow dbt-core 1.11's real output for the same YAML (compared field by field with
the build of tests/stack/dbt_project): unit tests under ``unit_tests`` with the tested model in
``depends_on`` and as their parent in the maps; semantic models, metrics and saved queries
under their own keys, chained through ``depends_on``; a seed and a source over one table. The
unit test's failure message is dbt's own, ANSI colours and ``\\r\\n`` included.

    raw.orders (= seed raw_orders) ─► stg_orders ─► fct_orders ─┬─► revenue_by_status
                                                                │     └─► status_dashboard
                                                                └─► semantic model orders
        semantic model orders ─► metric revenue ─┬─► metric average_order_value
                                                 └─► saved query daily_revenue
    raw.payments ─► model payments (named like the source table)
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

MANIFEST_V12 = "https://schemas.getdbt.com/dbt/manifest/v12.json"
RUN_RESULTS_V6 = "https://schemas.getdbt.com/dbt/run-results/v6.json"
UNIT_TEST = "unit_test.shop.revenue_by_status.revenue_by_status_sums_completed"
# What dbt 1.11 wrote for this unit test (expected 30.00, computed 42.50), byte for byte.
UNIT_TEST_MESSAGE = (
    "\n\n\x1b[32mactual\x1b[0m differs from \x1b[31mexpected\x1b[0m:\n\n"
    "\x1b[0;1m@@\x1b[0m\x1b[33m,\x1b[0m\x1b[0;1mstatus\x1b[0m   \x1b[33m,\x1b[0m"
    "\x1b[0;1morder_count\x1b[0m\x1b[33m,\x1b[0m\x1b[0;1mrevenue\x1b[0m\r\n"
    "\x1b[31;1m\x1b[34;1m→\x1b[32;1m\x1b[0m \x1b[33m,\x1b[0mcompleted\x1b[33m,\x1b[0m2"
    "          \x1b[33m,\x1b[0m\x1b[31;1m30.00\x1b[34;1m→\x1b[32;1m42.50\x1b[0m\r\n\n"
)
RAW_ORDERS = '"shop"."raw"."raw_orders"'


def _node(
    kind: str, name: str, deps: Sequence[str] = (), *, uid: str = "", **extra: Any
) -> tuple[str, dict[str, Any]]:
    uid = uid or f"{kind}.shop.{name}"
    body: dict[str, Any] = {
        "name": name,
        "resource_type": kind,
        "package_name": "shop",
        "unique_id": uid,
        "original_file_path": f"models/{name}.sql",
        "depends_on": {"macros": [], "nodes": list(deps)},
        "config": {"meta": {}, "tags": []},
    }
    body.update(extra)
    return uid, body


def manifest(*, maps: bool = True) -> dict[str, Any]:
    """The manifest; without `maps`, no parent_map/child_map (older or trimmed files)."""
    nodes = dict(
        [
            _node("seed", "raw_orders", relation_name=RAW_ORDERS),
            _node(
                "model",
                "stg_orders",
                ["source.shop.raw.orders"],
                meta={"owner": "@dana"},
                relation_name='"shop"."staging"."stg_orders"',
            ),
            _node(
                "model",
                "fct_orders",
                ["model.shop.stg_orders"],
                group="finance",
                relation_name='"shop"."marts"."fct_orders"',
            ),
            _node(
                "model",
                "revenue_by_status",
                ["model.shop.fct_orders"],
                group="finance",
                relation_name='"shop"."marts"."revenue_by_status"',
            ),
            _node(
                "model",
                "payments",
                ["source.shop.raw.payments"],
                config={"meta": {"owner": "@sam"}},
                relation_name='"shop"."marts"."payments"',
            ),
            _node(
                "test",
                "not_null_fct_orders_order_id",
                ["model.shop.fct_orders"],
                attached_node="model.shop.fct_orders",
                column_name="order_id",
                test_metadata={"name": "not_null", "kwargs": {}},
                uid="test.shop.not_null_fct_orders_order_id.4e687af8d0",
            ),
        ]
    )
    # A package's model of the same name as the project's own: the project's wins, as in dbt.
    nodes["model.shop_utils.fct_orders"] = {
        **nodes["model.shop.fct_orders"],
        "package_name": "shop_utils",
        "unique_id": "model.shop_utils.fct_orders",
        "depends_on": {"macros": [], "nodes": []},
        "relation_name": '"shop"."utils"."fct_orders"',
    }
    sources = {
        "source.shop.raw.orders": {
            "name": "orders",
            "source_name": "raw",
            "identifier": "raw_orders",
            "resource_type": "source",
            "package_name": "shop",
            "unique_id": "source.shop.raw.orders",
            "relation_name": RAW_ORDERS,
            "source_meta": {"owner": "@dana"},
        },
        "source.shop.raw.payments": {
            "name": "payments",
            "source_name": "raw",
            "identifier": "payments",
            "resource_type": "source",
            "package_name": "shop",
            "unique_id": "source.shop.raw.payments",
            "relation_name": '"shop"."raw"."payments"',
        },
    }
    exposures = {
        "exposure.shop.status_dashboard": {
            "name": "status_dashboard",
            "type": "dashboard",
            "owner": {"name": "Sam Ortiz", "email": "sam@example.com"},
            "resource_type": "exposure",
            "package_name": "shop",
            "unique_id": "exposure.shop.status_dashboard",
            "depends_on": {"macros": [], "nodes": ["model.shop.revenue_by_status"]},
        }
    }
    unit_tests = {
        UNIT_TEST: {
            "name": "revenue_by_status_sums_completed",
            "model": "revenue_by_status",
            "resource_type": "unit_test",
            "package_name": "shop",
            "unique_id": UNIT_TEST,
            "original_file_path": "models/marts/_marts.yml",
            "description": "Completed orders are summed per status.",
            "given": [{"input": "ref('fct_orders')", "rows": [], "format": "dict"}],
            "expect": {"rows": [], "format": "dict"},
            "depends_on": {"macros": [], "nodes": ["model.shop.revenue_by_status"]},
            "config": {"tags": [], "meta": {}, "enabled": True},
            "versions": None,
            "version": None,
        }
    }
    semantic_models = dict(
        [
            _node(
                "semantic_model",
                "orders",
                ["model.shop.fct_orders"],
                model="ref('fct_orders')",
                node_relation={
                    "alias": "fct_orders",
                    "schema_name": "marts",
                    "relation_name": '"shop"."marts"."fct_orders"',
                },
                description="Orders as the semantic layer sees them.",
            )
        ]
    )
    metrics = dict(
        [
            _node(
                "metric",
                "revenue",
                ["semantic_model.shop.orders"],
                type="simple",
                label="Revenue",
                description="Sum of order amounts in EUR.",
            ),
            _node(
                "metric",
                "average_order_value",
                ["metric.shop.revenue"],
                type="ratio",
                label="Average order value",
            ),
        ]
    )
    saved_queries = dict([_node("saved_query", "daily_revenue", ["metric.shop.revenue"])])
    body: dict[str, Any] = {
        "metadata": {
            "dbt_schema_version": MANIFEST_V12,
            "dbt_version": "1.11.0",
            "project_name": "shop",
            "invocation_id": "inv-1",
            "generated_at": "2026-11-25T06:00:00Z",
        },
        "nodes": nodes,
        "sources": sources,
        "exposures": exposures,
        "groups": {
            "group.shop.finance": {
                "name": "finance",
                "owner": {"name": "Finance Data Team", "email": "finance-data@example.com"},
            }
        },
        "unit_tests": unit_tests,
        "semantic_models": semantic_models,
        "metrics": metrics,
        "saved_queries": saved_queries,
    }
    if maps:
        parents: dict[str, list[str]] = {}
        for section in (nodes, exposures, unit_tests, semantic_models, metrics, saved_queries):
            for uid, item in section.items():
                parents[uid] = sorted(item["depends_on"]["nodes"])
        for uid in sources:
            parents[uid] = []
        children: dict[str, list[str]] = {uid: [] for uid in parents}
        for uid, found in parents.items():
            for parent in found:
                children[parent].append(uid)
        body["parent_map"] = parents
        body["child_map"] = {uid: sorted(found) for uid, found in children.items()}
    return body


def run_results() -> dict[str, Any]:
    """`dbt build`: the unit test fails, so revenue_by_status and its dashboard are skipped."""

    def result(uid: str, status: str, message: str | None = None, **extra: Any) -> dict[str, Any]:
        return {
            "unique_id": uid,
            "status": status,
            "message": message,
            "failures": extra.pop("failures", None),
            "execution_time": 0.1,
            "timing": [],
            "thread_id": "Thread-1",
            "adapter_response": {},
            "compiled": True,
            "compiled_code": "",
            "relation_name": None,
            **extra,
        }

    return {
        "metadata": {
            "dbt_schema_version": RUN_RESULTS_V6,
            "dbt_version": "1.11.0",
            "invocation_id": "inv-1",
            "generated_at": "2026-11-25T06:01:00Z",
        },
        "results": [
            result("seed.shop.raw_orders", "success", "INSERT 4"),
            result("model.shop.stg_orders", "success", "OK"),
            result("model.shop.fct_orders", "success", "OK"),
            result("test.shop.not_null_fct_orders_order_id.4e687af8d0", "pass", None, failures=0),
            result(UNIT_TEST, "fail", UNIT_TEST_MESSAGE, failures=1),
            result("model.shop.revenue_by_status", "skipped"),
            result("exposure.shop.status_dashboard", "skipped"),
            result("saved_query.shop.daily_revenue", "no-op", "NO-OP", failures=0),
        ],
        "elapsed_time": 1.5,
        "args": {"which": "build"},
    }


def write(target: Path, *, maps: bool = True) -> Path:
    """Write manifest.json and run_results.json into `target` (created); return it."""
    target.mkdir(parents=True, exist_ok=True)
    (target / "manifest.json").write_text(json.dumps(manifest(maps=maps)))
    (target / "run_results.json").write_text(json.dumps(run_results()))
    return target

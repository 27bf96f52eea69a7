"""The dbt project over the `rest_shop` tables, written as a dbt target/ folder for one
warehouse: the same models and YAML everywhere, only the relation names (each adapter quotes
its own way) and catalog.json (the columns and types that warehouse reported at the last
``dbt docs generate``) differ — as when one team's project runs on another warehouse.

    customers ─┐
    orders ────┴─► order_report ─► exposure revenue_dashboard

The situation the schema review must find on every warehouse:

- ``orders`` declares ``status``, which the table does not have (breaking);
- catalog.json's ``orders`` had ``legacy_flag``, now gone, and ``order_report`` selects it
  (breaking, with its reader named) — ``order_report`` also selects ``status``;
- ``orders.note`` is in the table but not declared (to follow up);
- ``customers.email`` looks like personal data; ``orders.status`` has no description;
- ``id`` is tested unique + not_null in both models.

The manifest follows the v12 shapes of tests/integrations/dbt/small_project.py.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from bot.facts import Table

# dbt's adapter type for each catalog dialect (manifest metadata.adapter_type).
ADAPTERS = {
    "postgresql": "postgres",
    "bigquery": "bigquery",
    "databricks": "databricks",
    "snowflake": "snowflake",
    "redshift": "redshift",
}
DECLARED: dict[str, list[tuple[str, str]]] = {
    "customers": [("id", "Customer key"), ("email", "Contact address"), ("tier", "Loyalty tier")],
    "orders": [
        ("id", "Order key"),
        ("customer_id", "Who ordered"),
        ("amount", "Order total in EUR"),
        ("status", ""),
    ],
}
GONE = "legacy_flag"  # in catalog.json's orders, no longer in the table
BUILT = "2026-12-01T06:00:00Z"
DOCUMENTED = "2026-12-01T06:05:00Z"
MANIFEST_V12 = "https://schemas.getdbt.com/dbt/manifest/v12.json"


def relation(dialect: str, database: str, schema: str, table: str) -> str:
    """A relation name as each adapter writes ``relation_name``."""
    if dialect in ("bigquery", "databricks"):
        return f"`{database}`.`{schema}`.`{table}`"
    if dialect == "snowflake":  # dbt-snowflake leaves names unquoted: upper case
        return f"{database}.{schema}.{table}".upper()
    return f'"{database}"."{schema}"."{table}"'


def write(
    target: Path, dialect: str, database: str, schema: str, built: Mapping[str, Table]
) -> Path:
    """The target/ folder for the shop on `dialect`, whose tables `built` (customers, orders,
    as that warehouse's catalog describes them) also give catalog.json."""
    target.mkdir(parents=True, exist_ok=True)
    named = {t: relation(dialect, database, schema, t) for t in (*DECLARED, "order_report")}
    (target / "manifest.json").write_text(json.dumps(_manifest(dialect, named)))
    (target / "catalog.json").write_text(json.dumps(_catalog(built)))
    (target / "run_results.json").write_text(json.dumps(_run_results()))
    return target


def _model(name: str, relation_name: str, deps: Sequence[str] = (), **extra: Any) -> Any:
    return {
        "name": name,
        "resource_type": "model",
        "package_name": "shop",
        "unique_id": f"model.shop.{name}",
        "original_file_path": f"models/{name}.sql",
        "depends_on": {"macros": [], "nodes": list(deps)},
        "config": {"meta": {}, "tags": [], "materialized": "table"},
        "relation_name": relation_name,
        **extra,
    }


def _test(kind: str, model: str, column: str) -> tuple[str, dict[str, Any]]:
    name = f"{kind}_{model}_{column}"
    uid = f"test.shop.{name}.0123456789"
    return uid, {
        "name": name,
        "resource_type": "test",
        "package_name": "shop",
        "unique_id": uid,
        "depends_on": {"macros": [], "nodes": [f"model.shop.{model}"]},
        "attached_node": f"model.shop.{model}",
        "column_name": column,
        "test_metadata": {"name": kind, "kwargs": {"column_name": column}},
        "config": {"meta": {}, "tags": [], "severity": "ERROR"},
    }


def _manifest(dialect: str, named: Mapping[str, str]) -> dict[str, Any]:
    nodes: dict[str, Any] = {}
    for table, columns in DECLARED.items():
        nodes[f"model.shop.{table}"] = _model(
            table,
            named[table],
            description=f"The shop's {table}.",
            meta={"owner": "@dana"},
            columns={
                name: {"name": name, "description": text, "data_type": None, "meta": {}}
                for name, text in columns
            },
        )
        nodes.update(_test(kind, table, "id") for kind in ("unique", "not_null"))
    nodes["model.shop.order_report"] = _model(
        "order_report",
        named["order_report"],
        ["model.shop.orders"],
        meta={"owner": "@sam"},
        compiled_code=(
            f"select o.id, o.status, o.{GONE}, o.amount from {named['orders']} as o "
            "where o.amount > 0"
        ),
    )
    exposures = {
        "exposure.shop.revenue_dashboard": {
            "name": "revenue_dashboard",
            "type": "dashboard",
            "owner": {"name": "Sam Ortiz", "email": "sam@example.com"},
            "resource_type": "exposure",
            "package_name": "shop",
            "unique_id": "exposure.shop.revenue_dashboard",
            "depends_on": {"macros": [], "nodes": ["model.shop.order_report"]},
        }
    }
    parents = {uid: sorted(n["depends_on"]["nodes"]) for uid, n in {**nodes, **exposures}.items()}
    children: dict[str, list[str]] = {uid: [] for uid in parents}
    for uid, found in parents.items():
        for parent in found:
            children[parent].append(uid)
    return {
        "metadata": {
            "dbt_schema_version": MANIFEST_V12,
            "dbt_version": "1.11.0",
            "project_name": "shop",
            "adapter_type": ADAPTERS[dialect],
            "invocation_id": "inv-shop",
            "generated_at": BUILT,
        },
        "nodes": nodes,
        "sources": {},
        "exposures": exposures,
        "parent_map": parents,
        "child_map": {uid: sorted(found) for uid, found in children.items()},
    }


def _catalog(built: Mapping[str, Table]) -> dict[str, Any]:
    nodes: dict[str, Any] = {}
    for table in DECLARED:
        found = built[table]
        columns = [(c.name, c.data_type) for c in found.columns]
        if table == "orders":
            # The last build still had it, typed as the warehouse types the key.
            name = GONE.upper() if found.columns[0].name.isupper() else GONE
            columns.append((name, found.columns[0].data_type))
        nodes[f"model.shop.{table}"] = {
            "unique_id": f"model.shop.{table}",
            "metadata": {
                "type": "BASE TABLE",
                "schema": found.schema,
                "name": found.name,
                "database": found.database,
            },
            "columns": {
                name: {"name": name, "type": kind, "index": index, "comment": None}
                for index, (name, kind) in enumerate(columns, start=1)
            },
            "stats": {},
        }
    return {
        "metadata": {
            "dbt_schema_version": "https://schemas.getdbt.com/dbt/catalog/v1.json",
            "dbt_version": "1.11.0",
            "generated_at": DOCUMENTED,
            "invocation_id": "inv-docs",
        },
        "nodes": nodes,
        "sources": {},
        "errors": None,
    }


def _run_results() -> dict[str, Any]:
    def result(uid: str, status: str) -> dict[str, Any]:
        return {
            "unique_id": uid,
            "status": status,
            "message": "OK" if status == "success" else None,
            "failures": 0 if status == "pass" else None,
            "execution_time": 0.1,
            "timing": [],
            "thread_id": "Thread-1",
            "adapter_response": {},
            "compiled": True,
            "compiled_code": "",
            "relation_name": None,
        }

    models = [f"model.shop.{t}" for t in (*DECLARED, "order_report")]
    tests = [f"test.shop.{k}_{t}_id.0123456789" for t in DECLARED for k in ("unique", "not_null")]
    return {
        "metadata": {
            "dbt_schema_version": "https://schemas.getdbt.com/dbt/run-results/v6.json",
            "dbt_version": "1.11.0",
            "invocation_id": "inv-shop",
            "generated_at": BUILT,
        },
        "results": [result(u, "success") for u in models] + [result(u, "pass") for u in tests],
        "elapsed_time": 3.2,
        "args": {"which": "build"},
    }

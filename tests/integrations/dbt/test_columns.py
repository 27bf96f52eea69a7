"""Which columns of a node the models reading it select (`integrations.dbt.columns`): sqlglot
on compiled SQL, and on raw SQL with the Jinja pipebot can render; the real demo manifest for
the index-backed part."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from integrations.dbt import ArtifactsProject
from integrations.dbt.columns import render_raw, selected
from integrations.demo import data_dir

CUSTOMERS = '"shop"."staging"."stg_customers"'
ORDERS = '"shop"."staging"."stg_orders"'
PARENTS = [
    (CUSTOMERS, ["customer_id", "first_name", "email", "country"]),
    (ORDERS, ["order_id", "customer_id", "order_date"]),
]


def pick(sql: str, *columns: str, parents: list[tuple[str, list[str]]] = PARENTS) -> object:
    return selected(
        sql, relation=CUSTOMERS, columns=list(columns), parents=parents, dialect="duckdb"
    )


@pytest.mark.parametrize(
    ("sql", "expected"),
    [
        # Named, through an alias, inside an expression, in a join condition.
        (f"select c.email from {CUSTOMERS} as c", (("email",), ())),
        (f"select lower(email) as e from {CUSTOMERS}", (("email",), ())),
        (
            f"select o.order_id from {ORDERS} o join {CUSTOMERS} c on c.email = o.order_id",
            (("email",), ()),
        ),
        # Resolved by the parents' columns: `email` can only be the customers'.
        (
            f"select email, order_date from {CUSTOMERS} c join {ORDERS} o using (customer_id)",
            (("email",), ()),
        ),
        # Another column, an alias that reuses the name, a count(*): nothing selected.
        (f"select customer_id from {CUSTOMERS}", ((), ())),
        (f"select customer_id as email from {CUSTOMERS}", ((), ())),
        (f"select count(*) from {CUSTOMERS}", ((), ())),
        # The other table's star does not select it.
        (f"select o.* from {CUSTOMERS} c join {ORDERS} o using (customer_id)", ((), ())),
        # Stars pass every column on: "perhaps" (the model itself still builds).
        (f"select * from {CUSTOMERS}", ((), ("email",))),
        (f"select c.* from {CUSTOMERS} c join {ORDERS} o using (customer_id)", ((), ("email",))),
        (f"with x as (select * from {CUSTOMERS}) select x.email from x", ((), ("email",))),
    ],
)
def test_selected_columns(sql: str, expected: object) -> None:
    assert pick(sql, "email") == expected


def test_an_unqualified_name_with_an_unknown_table_beside_is_only_perhaps() -> None:
    sql = f"select email from {CUSTOMERS} c join other.unknown u on c.customer_id = u.id"
    assert pick(sql, "email", parents=[(CUSTOMERS, [])]) == ((), ("email",))


def test_snowflake_identifiers_fold_to_upper_case() -> None:
    relation = "ANALYTICS.STAGING.STG_CUSTOMERS"
    found = selected(
        "select email from analytics.staging.stg_customers",
        relation=relation,
        columns=["EMAIL"],
        parents=[(relation, ["CUSTOMER_ID", "EMAIL"])],
        dialect="snowflake",
    )
    assert found == (("EMAIL",), ())


def test_raw_sql_gets_its_refs_and_sources_and_loses_the_rest_of_the_jinja() -> None:
    raw = (
        "{{ config(materialized='table') }}\n{# a comment #}\n"
        "select c.email, {{ dbt_utils.star(ref('stg_orders')) }}\n"
        "from {{ ref('stg_customers') }} as c\n"
        "join {{ ref('shop', 'stg_orders') }} as o using (customer_id)\n"
        "join {{ source('raw', 'orders') }} as r on r.id = o.order_id\n"
        "{% if is_incremental() %} where c.customer_id > 0 {% endif %}"
    )
    sql = render_raw(
        raw,
        {"stg_customers": CUSTOMERS, "stg_orders": ORDERS},
        {("raw", "orders"): '"shop"."raw"."raw_orders"'},
    )
    assert "{" not in sql and "config" not in sql
    assert f"from {CUSTOMERS} as c" in sql and f"join {ORDERS} as o" in sql
    assert 'join "shop"."raw"."raw_orders" as r' in sql
    assert pick(sql, "email") == (("email",), ())


@pytest.fixture
def target(tmp_path: Path) -> Path:
    """The demo's real dbt artifacts (from `dbt build` + `docs generate`), copied to edit."""
    copy = tmp_path / "target"
    shutil.copytree(data_dir() / "dbt", copy)
    return copy


def test_column_uses_from_compiled_and_raw_sql(target: Path) -> None:
    uses = ArtifactsProject(target).column_uses("stg_customers", ["email", "nope"])
    [dim] = [u for u in uses if u.reader.name == "dim_customers"]
    assert (dim.columns, dim.maybe, dim.code, dim.problem) == (("email",), (), "compiled", "")
    # A manifest written by `dbt run -s other_model` has no compiled SQL for it: raw SQL.
    path = target / "manifest.json"
    manifest = json.loads(path.read_text())
    del manifest["nodes"]["model.shop.dim_customers"]["compiled_code"]
    path.write_text(json.dumps(manifest))
    [dim] = [
        u
        for u in ArtifactsProject(target).column_uses("stg_customers", ["email"])
        if u.reader.name == "dim_customers"
    ]
    assert (dim.columns, dim.code) == (("email",), "raw")


def test_sql_that_does_not_parse_is_perhaps_with_the_reason_and_no_escapes(target: Path) -> None:
    path = target / "manifest.json"
    manifest = json.loads(path.read_text())
    manifest["nodes"]["model.shop.dim_customers"]["compiled_code"] = "select email from where"
    path.write_text(json.dumps(manifest))
    [dim] = [
        u
        for u in ArtifactsProject(target).column_uses("stg_customers", ["email"])
        if u.reader.name == "dim_customers"
    ]
    assert dim.columns == () and dim.maybe == ("email",)
    assert dim.problem.startswith("its compiled SQL could not be parsed (")
    assert "\x1b" not in dim.problem


def test_artifact_times(target: Path) -> None:
    times = ArtifactsProject(target).artifact_times()
    assert times.manifest and times.catalog and times.run_results and times.sources
    # dbt build, then docs generate: the catalog is the newest.
    assert times.run_results < times.manifest < times.catalog

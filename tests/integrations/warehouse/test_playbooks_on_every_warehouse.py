"""Issue 14's acceptance: ``schema-review``, ``lineage`` and the catalog tools give the same
answers on PostgreSQL, BigQuery, Databricks, Redshift and Snowflake for the same tables and the
same dbt project (shop_project.py: a declared column gone, a dropped column a model downstream
still selects, an undeclared one, personal data).

How each warehouse is reached — nothing mocked, the catalogs pipebot ships:

- PostgreSQL, BigQuery and Databricks by their URL alone: through the composition root
  (`bot.compose.build_sources` from ``PIPEBOT_*`` settings) and through ``pipebot
  schema-review`` as a process. BigQuery and Databricks are the local REST fakes
  (tests/fakes/) driven by their real SDKs;
- Redshift: its catalog SQL through sqlalchemy-redshift's psycopg2 dialect against the real
  PostgreSQL with ``svv_*`` shims (test_redshift.py), by a `Catalog` built here: the shims need
  the session statements PostgreSQL understands (no ``query_group``);
- Snowflake: pipebot's `Catalog` in the fakesnow venv, called live over a pipe
  (`tests.stack.snowflake_stack.RemoteCatalog`) — the playbooks' dependencies do not fit that
  venv. fakesnow drops column comments and lists no views (test_snowflake.py), so those two
  facts are left out of its comparison.

``lineage`` answers the same with each warehouse configured, and shows the relation as that
warehouse has it (its columns, in order); the warehouse's columns reach the impact through
``schema-review``, which names the models downstream that select a column the warehouse no
longer has.
"""

from __future__ import annotations

import dataclasses
import os
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from pydantic import SecretStr
from sqlalchemy import text
from sqlalchemy.engine import Engine, make_url

from bot.commands import Request
from bot.compose import build_sources
from bot.facts import Table
from bot.messages import Reply
from bot.playbooks import lineage, schema_review
from bot.ports import Sources
from bot.rendering import to_text
from bot.settings import WarehouseSettings, load_settings
from bot.tools import StaticToolset, ToolStatus
from integrations.dbt import ArtifactsProject
from integrations.warehouse import Catalog, open_catalog, warehouse_toolset
from integrations.warehouse.sql import REDSHIFT
from tests.agent.support import ProgressLog, inbound
from tests.fakes.bigquery_api import FakeBigQuery
from tests.fakes.databricks_api import FakeDatabricks
from tests.integrations.warehouse import rest_shop, shop_project
from tests.integrations.warehouse.support import search_path_schema, unique_name
from tests.integrations.warehouse.test_redshift import SHIMS, pg_session
from tests.stack.snowflake_stack import SnowflakeStack

NOW = datetime(2026, 12, 2, 9, 0, tzinfo=UTC)
PROJECT = "pipebot-test"
TOKEN = "dapi-shop-0123456789"
WAREHOUSES = ("bigquery", "databricks", "redshift", "snowflake")


@dataclass
class Shop:
    """The shop on one warehouse: its sources as pipebot builds them, and the environment for
    ``pipebot`` as a process (None where the URL alone cannot reach the warehouse)."""

    warehouse: str
    schema: str
    sources: Sources
    cli_env: dict[str, str] | None = None

    @property
    def tools(self) -> StaticToolset:
        """The catalog's toolset (the warehouse may bring others: its usage views)."""
        (found,) = [
            t
            for t in self.sources.toolsets
            if any(tool.name == "describe_table" for tool in t.tools())
        ]
        assert isinstance(found, StaticToolset)
        return found


def ask(sources: Sources, *args: str) -> Request:
    return Request(
        message=inbound(" ".join(args)), args=args, sources=sources, progress=ProgressLog()
    )


def composed(monkeypatch: pytest.MonkeyPatch, env: dict[str, str]) -> Sources:
    """The sources `pipebot` builds from these settings (and none of this shell's)."""
    for name in list(os.environ):
        if name.startswith("PIPEBOT_"):
            monkeypatch.delenv(name)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    return dataclasses.replace(build_sources(load_settings(env_file=None)), now=lambda: NOW)


def by_hand(folder: Path, catalog: Any) -> Sources:
    """Sources as the composition root builds them, for a catalog it cannot open by URL."""
    return Sources(
        dbt=ArtifactsProject(folder),
        warehouse=catalog,
        toolsets=(warehouse_toolset(catalog),),
        now=lambda: NOW,
    )


def described(catalog: Any, schema: str) -> dict[str, Table]:
    return {t.name.lower(): t for t in catalog.tables(schema)}


# --- the shop on each warehouse --------------------------------------------------------------


def postgres_shop(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, pg_url: str, pg_engine: Engine
) -> Shop:
    schema = search_path_schema(pg_url)
    rest_shop.build_postgres(pg_engine, schema)
    with Catalog(pg_url, [schema]) as catalog:
        folder = shop_project.write(
            tmp_path / "postgres", "postgresql", "test", schema, described(catalog, schema)
        )
    env = {
        "PIPEBOT_WAREHOUSE__URL": pg_url,
        "PIPEBOT_WAREHOUSE__SCHEMAS": schema,
        "PIPEBOT_DBT__ARTIFACTS_DIR": str(folder),
    }
    return Shop("postgresql", schema, composed(monkeypatch, env), env)


def rest_shop_on(
    warehouse: str, url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, database: str
) -> Shop:
    opened: Any = open_catalog(WarehouseSettings(url=SecretStr(url)))
    with opened as catalog:
        folder = shop_project.write(
            tmp_path / warehouse, warehouse, database, "shop", described(catalog, "shop")
        )
    env = {"PIPEBOT_WAREHOUSE__URL": url, "PIPEBOT_DBT__ARTIFACTS_DIR": str(folder)}
    return Shop(warehouse, "shop", composed(monkeypatch, env), env)


@pytest.fixture
def bigquery(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Shop]:
    with FakeBigQuery(PROJECT) as fake:
        rest_shop.build_bigquery(fake, "shop")
        url = f"bigquery://{PROJECT}/shop?api_endpoint={fake.url}"
        yield rest_shop_on("bigquery", url, tmp_path, monkeypatch, PROJECT)


@pytest.fixture
def databricks(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Shop]:
    with FakeDatabricks(token=TOKEN, empty_pages=True) as fake:
        rest_shop.build_databricks(fake, "main", "shop")
        url = f"databricks://token:{TOKEN}@127.0.0.1:{fake.port}?catalog=main&schema=shop"
        yield rest_shop_on("databricks", url, tmp_path, monkeypatch, "main")


@pytest.fixture
def redshift(tmp_path: Path, pg_url: str, pg_engine: Engine) -> Iterator[Shop]:
    shims = search_path_schema(pg_url)
    mart = unique_name("rs_shop")
    with pg_engine.begin() as connection:
        for statement in SHIMS:
            connection.execute(text(f'SET search_path TO "{shims}"; {statement}'))
        connection.execute(text(f'CREATE SCHEMA "{mart}"'))
    rest_shop.build_postgres(pg_engine, mart)
    url = make_url(pg_url).set(drivername="redshift+psycopg2")
    url = url.update_query_dict({"sslmode": "disable"})
    sql = dataclasses.replace(REDSHIFT, session=pg_session(shims))
    catalog = Catalog(url.render_as_string(hide_password=False), [mart], sql=sql)
    try:
        folder = shop_project.write(
            tmp_path / "redshift", "redshift", "test", mart, described(catalog, mart)
        )
        yield Shop("redshift", mart, by_hand(folder, catalog))
    finally:
        catalog.close()
        with pg_engine.begin() as connection:
            connection.execute(text(f'DROP SCHEMA "{mart}" CASCADE'))


@pytest.fixture(scope="module")
def fakesnow() -> Iterator[SnowflakeStack]:
    with SnowflakeStack() as stack:
        yield stack


def snowflake_setup() -> list[str]:
    """The shop's tables in Snowflake's SQL; its types are spelled as PostgreSQL's."""
    statements = [
        "CREATE DATABASE IF NOT EXISTS analytics",
        "USE DATABASE analytics",
        "CREATE SCHEMA IF NOT EXISTS mart",
    ]
    for table, columns in rest_shop.COLUMNS.items():
        body = ", ".join(
            f"{name} {pg_type}{'' if null else ' NOT NULL'}"
            for name, pg_type, _bq, _dbx, null in columns
        )
        statements.append(f"CREATE TABLE mart.{table} ({body})")
    customers = ", ".join(f"({i}, 'c{i}@example.com', 'gold')" for i in range(1, 41))
    orders = ", ".join(f"({i}, {1 + i % 40}, {i}, NULL)" for i in range(1, 251))
    return [
        *statements,
        # Table comments only: fakesnow drops column comments (COMMENT ON COLUMN raises). And
        # before the INSERTs: after them, in the same transaction, fakesnow 0.12.1 hangs.
        f"COMMENT ON TABLE mart.customers IS '{rest_shop.COMMENTS['customers', None]}'",
        f"INSERT INTO mart.customers VALUES {customers}",
        f"INSERT INTO mart.orders VALUES {orders}",
    ]


@pytest.fixture(scope="module")
def snowflake(fakesnow: SnowflakeStack, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Shop]:
    # Once per module: fakesnow's server keeps the tables until it stops.
    with fakesnow.catalog(
        fakesnow.url("analytics", "mart"), ["MART"], setup=snowflake_setup()
    ) as catalog:
        folder = shop_project.write(
            tmp_path_factory.mktemp("snowflake"),
            "snowflake",
            "analytics",
            "MART",
            described(catalog, "MART"),
        )
        yield Shop("snowflake", "MART", by_hand(folder, catalog))


@pytest.fixture
def postgres(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, pg_url: str, pg_engine: Engine
) -> Shop:
    return postgres_shop(tmp_path, monkeypatch, pg_url, pg_engine)


@pytest.fixture(params=WAREHOUSES)
def shop(request: pytest.FixtureRequest, postgres: Shop) -> Shop:
    """Each warehouse, after the PostgreSQL baseline was built (both need the test's schema)."""
    found: Shop = request.getfixturevalue(request.param)
    return found


# --- what is compared ----------------------------------------------------------------------


def findings(review: schema_review.SchemaReview | Any) -> dict[str, Any]:
    """The review's findings, names in lower case (Snowflake stores unquoted names upper)."""
    assert isinstance(review, schema_review.SchemaReview), to_text(review)
    drift = review.drift
    assert drift is not None, review.explanation
    return {
        "verdict": review.verdict,
        "columns from": review.columns_from,
        "baseline": drift.baseline,
        "missing": sorted(c.name.lower() for c in drift.missing),
        "dropped": sorted(c.name.lower() for c in drift.dropped),
        "added": sorted(n.lower() for n in drift.added),
        "retyped": sorted(t.column.lower() for t in drift.retyped),
        "renamed": sorted((a.lower(), b.lower()) for a, b in drift.renamed),
        "personal": sorted(n.lower() for n in drift.personal),
        "undescribed": sorted(n.lower() for n in drift.undescribed),
        "key tested": drift.key_tested,
        "readers": {c: review.readers(c) for c in ("status", shop_project.GONE)},
        "uses error": review.uses_error,
    }


def relation_free(reply_text: str, shop: Shop, table: str) -> str:
    """A reply with the warehouse-specific relation name taken out."""
    project = shop.sources.dbt
    assert project is not None
    return reply_text.replace(project.node(table).relation, "<relation>")


def catalog_facts(shop: Shop, *, comments: bool = True) -> dict[str, Any]:
    """What the catalog tools say about the shop, in forms every warehouse shares: lower-case
    names; rows where the warehouse knows them (Databricks' REST API does not)."""
    tools = {t.name: t for t in shop.tools.tools()}
    schemas = tools["list_schemas"].call({})
    assert schemas.status is ToolStatus.SUCCESS, schemas.data
    assert shop.schema in schemas.data["schemas"]
    listing = tools["list_tables"].call({"schema": shop.schema})
    assert listing.status is ToolStatus.SUCCESS, listing.data
    tables = {
        t["name"].lower(): (t["kind"], t["columns"], t.get("rows"))
        for t in listing.data["tables"]
        if t["name"].lower() in ("customers", "orders")
    }
    facts: dict[str, Any] = {"tables": tables}
    for table in ("customers", "orders"):
        name = table.upper() if shop.warehouse == "snowflake" else table
        answer = tools["describe_table"].call({"schema": shop.schema, "table": name})
        assert answer.status is ToolStatus.SUCCESS, answer.data
        facts[table] = {
            "kind": answer.data["kind"],
            "comment": answer.data.get("comment"),
            "columns": [
                (c["name"].lower(), c["nullable"], c["position"])
                + ((c.get("comment"),) if comments else ())
                for c in answer.data["columns"]
            ],
        }
    return facts


# --- the tests -----------------------------------------------------------------------------


def test_the_postgres_baseline_finds_what_the_project_was_built_to_show(postgres: Shop) -> None:
    orders = findings(schema_review.assess(ask(postgres.sources, "orders")))
    assert orders == {
        "verdict": schema_review.Verdict.BREAKING,
        "columns from": "warehouse",
        "baseline": True,
        "missing": ["status"],
        "dropped": [shop_project.GONE],
        "added": ["note"],
        "retyped": [],
        "renamed": [],
        "personal": [],
        "undescribed": ["status"],
        "key tested": True,
        "readers": {"status": (["order_report"], []), shop_project.GONE: (["order_report"], [])},
        "uses error": "",
    }
    customers = findings(schema_review.assess(ask(postgres.sources, "customers")))
    assert customers["verdict"] is schema_review.Verdict.FOLLOW_UP
    assert customers["personal"] == ["email"] and customers["missing"] == []


def test_schema_review_finds_the_same_on_every_warehouse(shop: Shop, postgres: Shop) -> None:
    for model in ("orders", "customers"):
        expected = findings(schema_review.assess(ask(postgres.sources, model)))
        actual = findings(schema_review.assess(ask(shop.sources, model)))
        assert actual == expected, (shop.warehouse, model)
    reply = schema_review.run(ask(shop.sources, "orders"))
    assert reply.title == schema_review.run(ask(postgres.sources, "orders")).title
    table = "ORDERS" if shop.warehouse == "snowflake" else "orders"
    assert f"warehouse: columns of {shop.schema}.{table} (live)" in reply.sources


def test_lineage_answers_the_same_with_every_warehouse(shop: Shop, postgres: Shop) -> None:
    replies = {}
    for name in ("orders", "order_report"):
        expected_reply, expected_seen = split_warehouse(lineage.run(ask(postgres.sources, name)))
        actual_reply, actual_seen = split_warehouse(lineage.run(ask(shop.sources, name)))
        expected = relation_free(to_text(expected_reply), postgres, name)
        actual = relation_free(to_text(actual_reply), shop, name)
        assert actual == expected, shop.warehouse
        # The relation as each warehouse has it: the same columns, in the same order (or the
        # same absence: order_report is never built).
        assert actual_seen == expected_seen, (shop.warehouse, name)
        replies[name] = actual
    assert "model `order_report`" in replies["orders"]
    assert "`revenue_dashboard`" in replies["order_report"]
    assert split_warehouse(lineage.run(ask(shop.sources, "orders")))[1] == [
        "id",
        "customer_id",
        "amount",
        "note",
    ], shop.warehouse


def split_warehouse(reply: Reply) -> tuple[Reply, list[str]]:
    """The reply without what the warehouse said (its "In the warehouse" section, source line
    and notes), and what it said: the section's column names (lower case: Snowflake stores
    unquoted names upper case), or ``["absent"]`` when it has no such relation."""
    sections = [s for s in reply.sections if s.heading.startswith("In the warehouse")]
    notes = [n for n in reply.notes if n.startswith("The warehouse ")]
    seen = [b.split("`")[1].lower() for s in sections for b in s.bullets if b.startswith("`")]
    if any(n.startswith("The warehouse has no table or view") for n in notes):
        seen.append("absent")
    rest = dataclasses.replace(
        reply,
        sections=tuple(s for s in reply.sections if s not in sections),
        sources=tuple(x for x in reply.sources if not x.endswith("(live)")),
        notes=tuple(n for n in reply.notes if n not in notes),
    )
    return rest, seen


def test_the_catalog_tools_give_the_same_facts_on_every_warehouse(
    shop: Shop, postgres: Shop
) -> None:
    # fakesnow keeps no column comments (its gap, not Snowflake's: test_snowflake.py).
    comments = shop.warehouse != "snowflake"
    expected = catalog_facts(postgres, comments=comments)
    actual = catalog_facts(shop, comments=comments)
    if shop.warehouse == "databricks":
        # Unity Catalog's REST API has no row counts: unknown, not 0 (docs/warehouses.md).
        assert {rows for _kind, _count, rows in actual["tables"].values()} == {None}
        expected["tables"] = {
            name: (kind, count, None) for name, (kind, count, _rows) in expected["tables"].items()
        }
    assert actual == expected, shop.warehouse
    assert expected["customers"]["comment"] == "one row per customer"
    assert expected["tables"]["orders"][1] == 4


@pytest.mark.parametrize("which", ["bigquery", "databricks"])
def test_pipebot_schema_review_as_a_process_exits_as_on_postgres(
    which: str, request: pytest.FixtureRequest, postgres: Shop, tmp_path: Path
) -> None:
    shop: Shop = request.getfixturevalue(which)
    outputs = {}
    for each in (postgres, shop):
        assert each.cli_env is not None
        for model, code in (("orders", 1), ("customers", 0)):
            done = subprocess.run(
                [sys.executable, "-m", "bot", "schema-review", model],
                capture_output=True,
                text=True,
                timeout=120,
                cwd=tmp_path,
                env={"PATH": "/usr/bin:/bin", "HOME": str(tmp_path), **each.cli_env},
                check=False,
            )
            assert done.returncode == code, (each.warehouse, model, done.stdout + done.stderr)
            outputs[each.warehouse, model] = done.stdout.splitlines()[0]
    assert outputs[which, "orders"] == outputs["postgresql", "orders"]
    assert "Schema review of orders: breaking" in outputs["postgresql", "orders"]
    assert TOKEN not in str(outputs)

"""`digest` and `schema-review` on the bundled demo environment (real recorded Airflow answers,
real dbt artifacts, the real DuckDB warehouse — copied and altered where a test needs drift),
and with the agent through the fake Messages API."""

from __future__ import annotations

import dataclasses
import json
import shutil
import subprocess
import sys
from datetime import timedelta
from pathlib import Path
from typing import Any

import duckdb
import pytest

from bot.commands import Request
from bot.messages import Reply, Tone
from bot.playbooks import default_commands, digest, schema_review
from bot.ports import Sources
from bot.rendering import to_text
from bot.store import Store
from integrations.demo import data_dir, demo_sources
from integrations.warehouse.catalog import Catalog
from tests.agent.support import ProgressLog, agent_for, inbound
from tests.fakes.anthropic_api import FakeAnthropic, message, text


def ask(sources: Sources, *args: str, progress: ProgressLog | None = None) -> Request:
    return Request(
        message=inbound(" ".join(args)),
        args=args,
        sources=sources,
        progress=progress or ProgressLog(),
    )


def as_text(reply: Reply) -> str:
    return to_text(reply)


# --- digest --------------------------------------------------------------------------------


def test_digest_reports_failing_and_green_dags_dbt_and_freshness() -> None:
    progress = ProgressLog()
    reply = digest.run(ask(demo_sources(), progress=progress))
    out = as_text(reply)
    assert reply.tone is Tone.ERROR
    assert reply.title.startswith("Pipeline digest, last 24 hours — needs attention: 1 failing DAG")
    assert "6, 4 succeeded (67%)" in out
    assert (
        "`orders_daily` (new failure) — 2 of 2 runs failed, 2 failures in a row, "
        "no success in the window" in out
    )
    # The top lines come first; the details (a thread in Slack and Discord) after them.
    assert [s.heading for s in reply.sections] == ["Needs attention", "Last 14 days"]
    assert reply.sections[1].image is not None and reply.sections[1].image.url.endswith(".png")
    assert [s.heading for s in reply.details][:2] == ["Airflow", "Run time"]
    assert "all runs succeeded: `payments_sync` (2), `shop_ingest` (2)" in out
    assert "import error in `broken_dag.py`" in out
    # dbt failing tests and warnings grouped by the model they check.
    assert "`customer_ltv` — build error: Conversion Error" in out
    assert "`orders_daily` — 1 test failing: `not_null_orders_daily_revenue`" in out
    assert "`dim_customers` — 1 warning: `accepted_values_dim_customers_country" in out
    assert "`raw.customers` — error" in out
    assert progress.lines == ["Digest of the last 24 hours: reading Airflow and dbt"]


def test_digest_lists_incidents_seen_in_the_window(sqlite_store: Store) -> None:
    sources = demo_sources()
    now = sources.now()
    sqlite_store.incidents.record_failure(
        fingerprint="airflow:orders_daily:transform",
        system="Airflow",
        subject="orders_daily",
        node="transform",
        title="orders_daily failed: transform — KeyError",
        run_id="r1",
        window=timedelta(hours=6),
        now=now - timedelta(hours=2),
    )
    reply = digest.run(ask(sources), sqlite_store.incidents)
    out = as_text(reply)
    assert "Seen in the window  1" in out and "Still open          1" in out
    assert "`orders_daily` / `transform` — open for 2h 00m, 1 failure" in out
    assert "1 open incident" in reply.title
    last_half_hour = digest.run(ask(sources, "30m"), sqlite_store.incidents)
    assert "Seen in the window  0" in as_text(last_half_hour)


@pytest.mark.parametrize("window", ["banana", "0h", "40d", "-3h"])
def test_digest_rejects_a_bad_window_with_usage(window: str) -> None:
    reply = digest.run(ask(demo_sources(), window))
    assert reply.title == "Invalid window" and reply.tone is Tone.WARNING
    assert f"`{window}`" in reply.text and "digest [now] [window" in reply.text


def test_digest_without_sources_says_so() -> None:
    reply = digest.run(ask(Sources()))
    assert reply.title == "Nothing to digest"


def test_digest_summary_from_the_agent_uses_the_digest_facts(
    api: FakeAnthropic, sqlite_store: Store
) -> None:
    api.script(message(text("• `orders_daily` has failed twice in a row — dana owns it.")))
    agent = agent_for(api.url, sqlite_store)
    reply = digest.run(ask(demo_sources()), None, agent)
    assert reply.sections[0].heading == "Summary"
    assert "failed twice in a row" in reply.sections[0].text
    assert reply.notes[-1] == "Summary written by the agent from the facts below."
    question = api.bodies[0]["messages"][-1]["content"]
    sent = json.dumps(question)
    assert "Summarise the pipeline health below for a team channel: last 24 hours" in sent
    assert "orders_daily" in sent and "2 of 2 runs failed" in sent


# --- schema-review -------------------------------------------------------------------------


def test_schema_review_flags_undeclared_and_personal_columns() -> None:
    reply = schema_review.run(ask(demo_sources(), "dim_customers"))
    out = as_text(reply)
    assert reply.tone is Tone.WARNING
    assert (
        reply.title == "Schema review of dim_customers: no breaking change, 3 things to follow up"
    )
    assert "Not declared in dbt (2)" in out
    assert "`first_name` `VARCHAR`" in out and "`last_name` `VARCHAR`" in out
    assert "Looks like personal data: `first_name`, `last_name`, `email`" in out
    assert "warehouse: columns of marts.dim_customers (live)" in reply.sources


def test_schema_review_of_a_matching_contracted_model_is_clean() -> None:
    reply = schema_review.run(ask(demo_sources(), "fct_orders"))
    assert reply.tone is Tone.SUCCESS
    assert reply.title == "Schema review of fct_orders: matches its declaration and the last build"


@pytest.fixture
def drifted(tmp_path: Path) -> Sources:
    """The demo with fct_orders changed in the warehouse: `amount` renamed, `order_date` retyped."""
    copy = tmp_path / "warehouse.duckdb"
    shutil.copy(data_dir() / "warehouse.duckdb", copy)
    with duckdb.connect(str(copy)) as con:
        con.execute("ALTER TABLE marts.fct_orders RENAME COLUMN amount TO amount_eur")
        con.execute("ALTER TABLE marts.fct_orders ALTER order_date TYPE VARCHAR")
        con.execute("ALTER TABLE marts.fct_orders ADD COLUMN customer_email VARCHAR")
    return dataclasses.replace(demo_sources(), warehouse=Catalog(f"duckdb:///{copy}"))


def test_schema_review_finds_breaking_drift_and_who_it_hits(drifted: Sources) -> None:
    reply = schema_review.run(ask(drifted, "fct_orders"))
    out = as_text(reply)
    assert reply.tone is Tone.ERROR
    assert reply.title == (
        "Schema review of fct_orders: breaking — 1 declared column missing, 1 type change"
    )
    assert "`amount` — probably renamed to `amount_eur`" in out
    assert "`order_date`: declared `date`, the relation has `VARCHAR`" in out
    assert "the next `dbt build` of this model fails" in out
    assert "Not declared in dbt (1)" in out and "`customer_email` `VARCHAR`" in out
    assert "Looks like personal data: `customer_email`" in out
    assert "model `orders_daily`" in out and "exposure `revenue_dashboard`" in out
    assert "dana@example.com" in out


def test_schema_review_falls_back_to_the_catalog_without_a_warehouse() -> None:
    sources = dataclasses.replace(demo_sources(), warehouse=None)
    reply = schema_review.run(ask(sources, "dim_customers"))
    # How old the catalog is, always: it is only as current as the last `dbt docs generate`.
    assert (
        "dbt: catalog.json (columns at the last `dbt docs generate`, "
        "generated 2026-11-25 20:41 UTC, 55s ago)"
    ) in reply.sources
    assert "Not declared in dbt (2)" in as_text(reply)


def test_schema_review_of_an_unbuilt_model_explains_what_to_do() -> None:
    reply = schema_review.run(ask(demo_sources(), "customer_ltv"))
    assert reply.title == "Cannot review `customer_ltv`: its columns in the warehouse are unknown"
    assert "dbt build -s customer_ltv" in reply.text


def test_schema_review_input_errors() -> None:
    assert schema_review.run(ask(demo_sources())).title == "Missing argument"
    unknown = schema_review.run(ask(demo_sources(), "fct_order"))
    assert unknown.title == "No dbt node `fct_order`" and "`fct_orders`" in unknown.text
    test_node = schema_review.run(ask(demo_sources(), "not_null_orders_daily_revenue"))
    assert test_node.title == "`not_null_orders_daily_revenue` has no schema"


def test_schema_review_adds_the_agents_review(
    api: FakeAnthropic, sqlite_store: Store, drifted: Sources
) -> None:
    api.script(message(text("Block: restore `amount` or version the contract first.")))
    reply = schema_review.run(ask(drifted, "fct_orders"), agent_for(api.url, sqlite_store))
    assert reply.sections[-1].heading == "Review"
    assert reply.sections[-1].text == "Block: restore `amount` or version the contract first."
    sent = json.dumps(api.bodies[0]["messages"][-1]["content"])
    assert "Review this schema change" in sent and "amount_eur" in sent


def test_both_commands_are_in_the_command_table() -> None:
    commands = default_commands()
    assert commands.get("digest") is not None and commands.get("schema-review") is not None
    routed = commands.route("/pipebot schema-review fct_orders")
    assert routed.command is not None and routed.args == ("fct_orders",)


def test_digest_now_is_the_same_digest() -> None:
    now = digest.run(ask(demo_sources(), "now", "7d"))
    assert now.title == digest.run(ask(demo_sources(), "7d")).title
    assert "last 7 days" in now.title


# --- the shell commands --------------------------------------------------------------------


def pipebot(*args: str, tmp_path: Path, env: dict[str, str] | None = None) -> Any:
    return subprocess.run(
        [sys.executable, "-m", "bot", *args],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=tmp_path,
        env={"PATH": "/usr/bin:/bin", "HOME": str(tmp_path), **(env or {})},
        check=False,
    )


def test_cli_schema_review_exit_codes(tmp_path: Path, drifted: Sources) -> None:
    clean = pipebot("schema-review", "fct_orders", "--demo", tmp_path=tmp_path)
    assert clean.returncode == 0, clean.stderr
    assert "matches its declaration" in clean.stdout
    unknown = pipebot("schema-review", "nope", "--demo", "--format", "json", tmp_path=tmp_path)
    assert unknown.returncode == 2 and json.loads(unknown.stdout)["title"] == "No dbt node `nope`"
    altered = tmp_path / "warehouse.duckdb"  # the `drifted` fixture's copy
    breaking = pipebot(
        "schema-review",
        "fct_orders",
        tmp_path=tmp_path,
        env={
            "PIPEBOT_DBT__ARTIFACTS_DIR": str(data_dir() / "dbt"),
            "PIPEBOT_WAREHOUSE__URL": f"duckdb:///{altered}",
            "PIPEBOT_WAREHOUSE__SCHEMAS": "marts",
        },
    )
    assert breaking.returncode == 1, breaking.stderr
    assert "breaking — 1 declared column missing, 1 type change" in breaking.stdout


def test_cli_digest(tmp_path: Path) -> None:
    out = pipebot("digest", "7d", "--demo", "--format", "json", tmp_path=tmp_path)
    assert out.returncode == 0, out.stderr  # a finding exits 1 only with --exit-code
    body = json.loads(out.stdout)
    assert body["schema"] == "pipebot.digest/1" and body["window"]["label"] == "last 7 days"
    assert body["verdict"] == "failing" and body["failing"] is True
    assert [d["dag_id"] for d in body["airflow"]["failing"]] == ["orders_daily"]
    flagged = pipebot("digest", "--demo", "--exit-code", tmp_path=tmp_path)
    assert flagged.returncode == 1, flagged.stderr
    assert flagged.stdout.startswith("✗ Pipeline digest, last 24 hours — needs attention")
    narrowed = pipebot(
        "digest",
        "--demo",
        "--format",
        "json",
        "--owner",
        "dana",
        "--select",
        "tag:x",
        tmp_path=tmp_path,
    )
    body = json.loads(narrowed.stdout)
    assert body["filters"] == {"tags": [], "owners": ["dana"], "dbt_select": ["tag:x"]}
    assert [d["dag_id"] for d in body["airflow"]["dags"]] == ["orders_daily"]
    assert body["dbt"]["selected"] == 0 and body["dbt"]["run"]["counts"] == {}
    refused = pipebot("digest", "--demo", "--select", "colour:red", tmp_path=tmp_path)
    assert refused.returncode == 2 and "does not know the dbt selector method `colour`" in (
        refused.stderr
    )
    bad = pipebot("digest", "soon", "--demo", tmp_path=tmp_path)
    assert bad.returncode == 2 and bad.stdout == ""
    assert "'soon' is not a window: use e.g. 90m, 24h, 7d or 2w" in bad.stderr

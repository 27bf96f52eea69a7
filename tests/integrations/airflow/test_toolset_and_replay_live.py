"""The Airflow toolset, and record → replay, against the real Airflow 3 harness."""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from bot.errors import NotFound
from bot.facts import Dag
from bot.tools import Tool, ToolStatus
from integrations.airflow import AirflowClient, airflow_toolset
from integrations.replay import ReplayAdapter
from tests.stack.airflow_fixtures import AirflowEnv
from tests.stack.record_airflow import TRIAGE_STATES, record

pytestmark = pytest.mark.integration
Tools = dict[str, Tool[Any]]

TOOLS = {
    "list_dags",
    "get_dag",
    "list_dag_runs",
    "get_task_instances",
    "get_task_tries",
    "get_task_log",
    "list_import_errors",
    "airflow_health",
}


@pytest.fixture
def tools(airflow_stack: AirflowEnv) -> Tools:
    client = AirflowClient(airflow_stack.base_url, username="viewer", password="viewer")
    return {tool.name: tool for tool in airflow_toolset(client).tools()}


def test_every_tool_is_described_and_typed(tools: Tools) -> None:
    assert set(tools) == TOOLS
    for tool in tools.values():
        assert len(tool.description) > 60, tool.name
        schema = tool.input_schema()
        for name, field in schema.get("properties", {}).items():
            assert field.get("description"), f"{tool.name}.{name} has no description"


def test_triage_through_tools(tools: Tools, airflow_stack: AirflowEnv) -> None:
    runs = tools["list_dag_runs"].call({"states": ["failed"], "hours_back": 24})
    assert runs.status is ToolStatus.SUCCESS
    # the first call of a fresh client also shows the version detection it made
    assert runs.invocation.startswith("GET /api/v2/version; GET /api/v2/dags/~/dagRuns?")
    assert "state=failed" in runs.invocation
    assert {r["dag_id"] for r in runs.data["dag_runs"]} == {"orders_daily"}
    json.dumps(runs.data)

    run_id = airflow_stack.run_ids["orders_daily"]
    tasks = tools["get_task_instances"].call(
        {"dag_id": "orders_daily", "run_id": run_id, "states": ["failed"]}
    )
    assert [t["task_id"] for t in tasks.data["task_instances"]] == ["transform"]
    assert "%3A" in tasks.invocation and "%2B" in tasks.invocation

    log = tools["get_task_log"].call(
        {"dag_id": "orders_daily", "run_id": run_id, "task_id": "transform", "try_number": 1,
         "max_chars": 600}
    )  # fmt: skip
    assert log.status is ToolStatus.SUCCESS
    assert log.data["errors"][0]["exc_type"] == "KeyError"
    assert sum(len(line) + 1 for line in log.data["lines"]) <= 600
    assert log.data["omitted_chars"] > 0
    assert log.invocation.endswith("/taskInstances/transform/logs/1")
    json.dumps(log.data)

    tries = tools["get_task_tries"].call(
        {"dag_id": "payments_sync", "run_id": airflow_stack.run_ids["payments_sync"],
         "task_id": "sync_payments"}
    )  # fmt: skip
    assert [t["state"] for t in tries.data["tries"]] == ["failed", "success"]

    errors = tools["list_import_errors"].call({})
    assert errors.data["import_errors"][0]["filename"] == "broken_dag.py"
    health = tools["airflow_health"].call({})
    assert health.data["healthy"] is True
    assert health.data["version"] == "3.3.2"


def test_no_data_and_errors_say_what_was_searched(tools: Tools) -> None:
    empty = tools["list_dags"].call({"name_contains": "refunds"})
    assert empty.status is ToolStatus.NO_DATA
    assert "'refunds'" in empty.data["searched"]
    assert "GET /api/v2/dags?" in empty.invocation

    none_failed = tools["list_dag_runs"].call({"dag_id": "shop_ingest", "states": ["failed"]})
    assert none_failed.status is ToolStatus.NO_DATA
    assert "shop_ingest" in none_failed.data["searched"]

    unknown = tools["get_dag"].call({"dag_id": "orders_dialy"})
    assert unknown.status is ToolStatus.ERROR
    assert "did you mean: orders_daily" in (unknown.error or "")
    assert unknown.invocation.startswith("GET /api/v2/dags/orders_dialy;")

    invalid = tools["get_task_log"].call({"dag_id": "x", "run_id": "y", "task_id": "z"})
    assert invalid.status is ToolStatus.ERROR
    assert "try_number" in (invalid.error or "")


def test_replay_round_trip(airflow_stack: AirflowEnv, tmp_path: Path) -> None:
    recorder = record(airflow_stack.stack, tmp_path)
    live = AirflowClient(airflow_stack.base_url, username="viewer", password="viewer")
    offline = AirflowClient("http://airflow.demo", adapter=ReplayAdapter(tmp_path))
    since = recorder.recorded_at - timedelta(hours=24)

    # The dag-processor re-parses every 5 s, moving parse times between record and compare.
    def steady(found: list[Any]) -> list[Any]:
        return [replace(x, last_parsed=None) if isinstance(x, Dag) else replace(x, timestamp=None)
                for x in found]  # fmt: skip

    assert steady(offline.dags()) == steady(live.dags())
    assert offline.health().healthy
    assert offline.version() == "3.3.2"
    assert steady(offline.import_errors()) == steady(live.import_errors())
    assert offline.runs(None, limit=15) == live.runs(None, limit=15)
    # time-window parameters are not part of the key: a later "since" still answers
    failed = offline.runs(None, states=("failed",), since=since + timedelta(hours=5), limit=100)
    assert failed == live.runs(None, states=("failed",), since=since, limit=100)
    run_id = airflow_stack.run_ids["orders_daily"]
    assert offline.runs("orders_daily", limit=25) == live.runs("orders_daily", limit=25)
    assert offline.task_instances("orders_daily", run_id, states=TRIAGE_STATES) == (
        live.task_instances("orders_daily", run_id, states=TRIAGE_STATES)
    )
    flaky = airflow_stack.run_ids["payments_sync"]
    assert offline.tries("payments_sync", flaky, "sync_payments") == live.tries(
        "payments_sync", flaky, "sync_payments"
    )
    assert offline.task_log("orders_daily", run_id, "transform", 1) == live.task_log(
        "orders_daily", run_id, "transform", 1
    )

    with pytest.raises(
        NotFound, match="not in the recorded demo data: GET /api/v2/dags/orders_daily/dagRuns/nope"
    ):
        offline.run("orders_daily", "nope")
    with pytest.raises(NotFound, match="Airflow has no DAG `nope`"):
        offline.dag("nope")  # said for people, as a live Airflow's 404 is

    index = json.loads((tmp_path / "index.json").read_text())
    assert index["recorded_at"] == recorder.recorded_at.isoformat()
    files = sorted(p.name for p in tmp_path.glob("*.json") if p.name != "index.json")
    assert sorted(index["responses"].values()) == files
    everything = "".join(p.read_text() for p in tmp_path.glob("*.json"))
    assert "Bearer" not in everything
    assert "access_token" not in everything
    assert airflow_stack.stack.token("viewer") not in everything

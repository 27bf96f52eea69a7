"""The agent on the bundled demo environment: recorded Airflow 3 answers and real dbt artifacts.

The model is scripted but reactive: each turn reads the tool results the agent actually sent and
picks its next call from them, as a model would, so these tests follow whatever the recording
holds instead of hard-coding its run ids.
"""

from __future__ import annotations

import json
import re
from typing import Any

from bot.store import Store
from integrations.demo import demo_sources
from tests.agent.support import ProgressLog, agent_for, request_for
from tests.agent.test_loop import reply_text
from tests.fakes.anthropic_api import FakeAnthropic, Recorded, message, text, tool_use


def _results(request: Recorded) -> list[dict[str, Any]]:
    assert request.body is not None
    last = request.body["messages"][-1]["content"]
    return [b for b in last if b.get("type") == "tool_result"]


def _data(block: dict[str, Any]) -> Any:
    assert block["is_error"] is False, block["content"]
    inner = block["content"].split("\n", 1)[1].rsplit("\n</tool_output>", 1)[0]
    return json.loads(inner)


def test_triage_of_a_failed_demo_run(api: FakeAnthropic, sqlite_store: Store) -> None:
    picked: dict[str, Any] = {}

    def tasks_of_failed_run(request: Recorded) -> dict[str, Any]:
        runs = _data(_results(request)[0])["dag_runs"]
        failed = [r for r in runs if r["state"] == "failed"]
        assert failed, f"the demo recording has no failed orders_daily run: {runs}"
        picked["run_id"] = failed[0]["run_id"]
        return message(
            tool_use("get_task_instances", {"dag_id": "orders_daily", "run_id": picked["run_id"]})
        )

    def log_of_failed_task(request: Recorded) -> dict[str, Any]:
        tasks = _data(_results(request)[0])["task_instances"]
        failed = [t for t in tasks if t.get("state") == "failed"]
        assert failed, f"no failed task in {picked['run_id']}: {tasks}"
        picked["task_id"], picked["try"] = failed[0]["task_id"], failed[0]["try_number"]
        return message(
            tool_use(
                "get_task_log",
                {
                    "dag_id": "orders_daily",
                    "run_id": picked["run_id"],
                    "task_id": picked["task_id"],
                    "try_number": picked["try"],
                },
            )
        )

    def answer(request: Recorded) -> dict[str, Any]:
        (log,) = _results(request)
        assert log["is_error"] is False, log["content"]
        errors = re.findall(r"\b(\w+(?:Error|Exception))\b", log["content"])
        assert errors, "the recorded log names no exception"
        picked["error"] = errors[-1]
        return message(
            text(
                f"`orders_daily` run `{picked['run_id']}` failed in `{picked['task_id']}` "
                f"(try {picked['try']}) with `{picked['error']}`."
            )
        )

    api.script(
        message(tool_use("list_dag_runs", {"dag_id": "orders_daily"})),
        tasks_of_failed_run,
        log_of_failed_task,
        answer,
    )
    progress = ProgressLog()
    reply = agent_for(api.url, sqlite_store).answer(
        "why did orders_daily fail?",
        history=[],
        request=request_for(demo_sources(), progress=progress),
    )

    assert reply_text(reply) == (
        f"`orders_daily` run `{picked['run_id']}` failed in `{picked['task_id']}` "
        f"(try {picked['try']}) with `{picked['error']}`."
    )
    assert progress.lines[-1] == (
        f"Airflow: reading log of {picked['task_id']}, try {picked['try']}"
    )
    assert len(reply.sources) == 3
    assert all(
        source.startswith("Airflow · GET /api/v2/dags/orders_daily") for source in reply.sources
    )
    assert reply.sources[-1].endswith(f"/taskInstances/{picked['task_id']}/logs/{picked['try']}")
    assert reply.notes == ()
    context = api.bodies[0]["messages"][0]["content"][0]["text"]
    assert "Environment: demo environment recorded" in context
    assert "Airflow (8 tools)" in context and "dbt (" in context


def test_dbt_tools_of_the_demo_answer_in_parallel(api: FakeAnthropic, sqlite_store: Store) -> None:
    def answer(request: Recorded) -> dict[str, Any]:
        last_run, lineage = (_data(block) for block in _results(request))
        assert last_run and lineage
        return message(text("Read the last run and the lineage of fct_orders."))

    api.script(
        message(
            tool_use("dbt_last_run", {}),
            tool_use("dbt_lineage", {"name": "fct_orders", "direction": "downstream"}),
        ),
        answer,
    )
    reply = agent_for(api.url, sqlite_store).answer(
        "what depends on fct_orders and how did the last run go?",
        history=[],
        request=request_for(demo_sources()),
    )
    assert reply_text(reply) == "Read the last run and the lineage of fct_orders."
    assert len(reply.sources) == 2
    assert all(source.startswith("dbt · ") for source in reply.sources)

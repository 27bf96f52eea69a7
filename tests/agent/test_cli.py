"""`pipebot demo` as a user runs it, with the agent on: the real CLI process, the real SDK, the
local fake Messages API, and the recorded Airflow / real dbt data of the demo."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from tests.agent.support import API_KEY
from tests.fakes.anthropic_api import FakeAnthropic, Recorded, message, text, tool_use


def test_a_question_in_the_cli_calls_tools_on_demo_data_and_names_its_sources(
    api: FakeAnthropic, tmp_path: Path
) -> None:
    seen: dict[str, str] = {}

    def answer(request: Recorded) -> dict[str, object]:
        assert request.body is not None
        [result] = [
            block
            for block in request.body["messages"][-1]["content"]
            if block.get("type") == "tool_result"
        ]
        seen["tool_result"] = str(result["content"])
        return message(text("`orders_daily` failed twice in the last day: see the runs above."))

    api.script(
        message(tool_use("list_dag_runs", {"dag_id": "orders_daily", "states": ["failed"]})),
        answer,
    )
    env = {
        "PATH": "/usr/bin:/bin",
        "HOME": str(tmp_path),
        "ANTHROPIC_API_KEY": API_KEY,
        "ANTHROPIC_BASE_URL": api.url,
    }
    done = subprocess.run(
        [sys.executable, "-m", "bot", "demo", "--format", "json"],
        input="why did orders_daily fail?\n",
        capture_output=True,
        text=True,
        timeout=120,
        cwd=tmp_path,
        env=env,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    reply = json.loads(done.stdout)
    assert "failed twice" in json.dumps(reply)
    # The tool ran against the recorded Airflow data, and the reply cites that call.
    assert "manual__" in seen["tool_result"] and "failed" in seen["tool_result"]
    assert any("/api/v2/dags/orders_daily/dagRuns" in s for s in reply["sources"])
    assert len(api.requests) == 2
    assert API_KEY not in json.dumps(reply) + done.stderr

"""Acceptance: the digest against the real Airflow 3 and the real dbt build of the harness.

Every count in ``pipebot.digest/1`` is computed a second time here, straight from what the APIs
and artifacts say — Airflow's REST API read with plain `requests` (its own paging, its own
date filter), dbt's run_results.json, manifest.json and sources.json read as JSON — and the two
must agree. The command line is checked end to end as well: ``pipebot digest --format json
--exit-code --chart`` exits 1 (a DAG is failing) and prints the same document.
"""

from __future__ import annotations

import json
import os
import struct
import subprocess
import sys
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import requests

from bot.commands import Request
from bot.health.document import document
from bot.health.selection import Filters
from bot.messages import InboundMessage, no_progress
from bot.playbooks import digest
from bot.ports import Sources
from integrations.airflow import AirflowClient
from integrations.dbt import ArtifactsProject
from tests.stack.airflow_fixtures import AirflowEnv
from tests.stack.dbt_stack import DbtBuild

pytestmark = pytest.mark.integration

WINDOW = timedelta(hours=24)


def api_runs(env: AirflowEnv, since: datetime) -> list[dict[str, Any]]:
    """Every run since `since`, as Airflow's own API pages them (newest first, 50 a page)."""
    token = requests.post(
        f"{env.base_url}/auth/token",
        json={"username": env.viewer.username, "password": env.viewer.password},
        timeout=10,
    ).json()["access_token"]
    runs: list[dict[str, Any]] = []
    while True:
        body = requests.get(
            f"{env.base_url}/api/v2/dags/~/dagRuns",
            params={"run_after_gte": since.isoformat(), "offset": len(runs), "limit": 50},
            headers={"Authorization": f"Bearer {token}"},
            timeout=10,
        ).json()
        runs += body["dag_runs"]
        if not body["dag_runs"] or len(runs) >= body["total_entries"]:
            return runs


def api_import_errors(env: AirflowEnv) -> int:
    token = requests.post(
        f"{env.base_url}/auth/token",
        json={"username": env.viewer.username, "password": env.viewer.password},
        timeout=10,
    ).json()["access_token"]
    body = requests.get(
        f"{env.base_url}/api/v2/importErrors",
        headers={"Authorization": f"Bearer {token}"},
        timeout=10,
    ).json()
    return int(body["total_entries"])


def expected_airflow(runs: list[dict[str, Any]], since: datetime) -> dict[str, Any]:
    def started(run: dict[str, Any]) -> datetime:
        return datetime.fromisoformat(run["start_date"] or run["run_after"])

    in_window = [r for r in runs if started(r) >= since]
    finished = [r for r in in_window if r["state"] in ("success", "failed")]
    latest: dict[str, dict[str, Any]] = {}
    for run in sorted(finished, key=started):
        latest[run["dag_id"]] = run
    return {
        "totals": {
            "dags": len({r["dag_id"] for r in in_window}),
            "runs": len(in_window),
            "finished": len(finished),
            "succeeded": sum(r["state"] == "success" for r in finished),
            "failed": sum(r["state"] == "failed" for r in finished),
            "active": len(in_window) - len(finished),
        },
        "failing": sorted(d for d, r in latest.items() if r["state"] == "failed"),
        "per_dag": {
            dag: (
                sum(r["dag_id"] == dag for r in in_window),
                sum(r["dag_id"] == dag and r["state"] == "failed" for r in in_window),
            )
            for dag in {r["dag_id"] for r in in_window}
        },
    }


def expected_dbt(target: Path) -> dict[str, Any]:
    results = json.loads((target / "run_results.json").read_text())["results"]
    manifest = json.loads((target / "manifest.json").read_text())
    by_model: dict[str, set[str]] = {}
    for result in results:
        uid = result["unique_id"]
        if result["status"] not in ("fail", "error"):
            continue
        if uid.startswith("test."):  # a data test: the node it is attached to
            node = manifest["nodes"][uid]
            model = node.get("attached_node") or node["depends_on"]["nodes"][-1]
        elif uid.startswith("unit_test."):  # a unit test: the model it tests, by name
            node = manifest["unit_tests"][uid]
            model = f"model.{node['package_name']}.{node['model']}"
        else:
            continue
        by_model.setdefault(model, set()).add(node["name"])
    sources = json.loads((target / "sources.json").read_text())["results"]
    return {
        "counts": dict(Counter(r["status"] for r in results)),
        "failed_tests": by_model,
        "freshness": {s["unique_id"]: s["status"] for s in sources},
    }


@pytest.fixture(scope="module")
def report_and_doc(airflow_stack: AirflowEnv, dbt_build: DbtBuild) -> tuple[Any, dict[str, Any]]:
    client = AirflowClient(airflow_stack.base_url, username="viewer", password="viewer")
    sources = Sources(airflow=client, dbt=ArtifactsProject(dbt_build.target_dir))
    message = InboundMessage(
        platform="cli", workspace="l", channel="c", thread="", user="u", text="digest", event_id="e"
    )
    request = Request(message=message, args=(), sources=sources, progress=no_progress)
    made = digest.report_for(request, WINDOW, Filters())
    return made, document(made)


def test_airflow_counts_equal_what_the_api_reports(
    report_and_doc: tuple[Any, dict[str, Any]], airflow_stack: AirflowEnv
) -> None:
    made, doc = report_and_doc
    since = made.window.start
    # Read after the digest: the harness makes no runs meanwhile (it never schedules).
    expected = expected_airflow(api_runs(airflow_stack, since - timedelta(days=14)), since)
    totals = doc["airflow"]["totals"]
    assert {k: totals[k] for k in expected["totals"]} == expected["totals"]
    assert expected["totals"]["failed"] >= 1 and expected["totals"]["runs"] >= 4
    # Each failing DAG is an object with its dag_id.
    assert [d["dag_id"] for d in doc["airflow"]["failing"]] == expected["failing"]
    assert expected["failing"] == ["orders_daily"]
    assert {d["dag_id"]: (d["runs"], d["failed"]) for d in doc["airflow"]["dags"]} == expected[
        "per_dag"
    ]
    assert len(doc["airflow"]["import_errors"]) == api_import_errors(airflow_stack) == 1
    assert doc["airflow"]["complete"] is True and doc["unread"] == []
    assert doc["failing"] is True and doc["verdict"] == "failing"


def test_dbt_counts_equal_the_artifacts(
    report_and_doc: tuple[Any, dict[str, Any]], dbt_build: DbtBuild
) -> None:
    _, doc = report_and_doc
    expected = expected_dbt(dbt_build.target_dir)
    assert doc["dbt"]["run"]["counts"] == expected["counts"]
    assert doc["dbt"]["run"]["is_build"] is True
    failed = {m["node"]: set(m["failed_tests"]) for m in doc["dbt"]["models"] if m["failed_tests"]}
    assert failed == expected["failed_tests"] and failed
    got = {s["unique_id"]: s["status"] for s in doc["sources"]}
    assert {uid: got[uid] for uid in expected["freshness"]} == expected["freshness"]


def test_the_command_line_exits_1_and_prints_the_same_document(
    report_and_doc: tuple[Any, dict[str, Any]],
    airflow_stack: AirflowEnv,
    dbt_build: DbtBuild,
    tmp_path: Path,
) -> None:
    _, doc = report_and_doc
    chart = tmp_path / "digest.png"
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "bot",
            "digest",
            "--format",
            "json",
            "--exit-code",
            "--chart",
            str(chart),
        ],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=tmp_path,
        env={
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            "HOME": str(tmp_path),
            "PIPEBOT_DATABASE_URL": f"sqlite:///{tmp_path}/pipebot.db",
            "PIPEBOT_AIRFLOW__BASE_URL": airflow_stack.base_url,
            "PIPEBOT_AIRFLOW__USERNAME": "viewer",
            "PIPEBOT_AIRFLOW__PASSWORD": "viewer",
            "PIPEBOT_DBT__ARTIFACTS_DIR": str(dbt_build.target_dir),
        },
        check=False,
    )
    assert done.returncode == 1, done.stderr
    printed = json.loads(done.stdout)
    assert printed["airflow"]["totals"] == doc["airflow"]["totals"]
    assert printed["dbt"]["run"]["counts"] == doc["dbt"]["run"]["counts"]
    assert printed["chart"] == {"path": str(chart), "width": 1200, "height": 1200}
    data = chart.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    assert struct.unpack(">II", data[16:24]) == (1200, 1200)
    assert f"Chart: {chart}" in done.stderr
    assert datetime.fromisoformat(printed["generated_at"]) <= datetime.now(UTC)

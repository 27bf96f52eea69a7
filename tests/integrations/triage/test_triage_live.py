"""Triage against the real Airflow 3 of the harness and the real dbt build."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from bot.owners import OwnerDirectory
from bot.playbooks.triage import TriageReport, render, triage_airflow
from bot.ports import Sources
from integrations.airflow import AirflowClient
from integrations.dbt import ArtifactsProject
from tests.stack.airflow_fixtures import AirflowEnv
from tests.stack.dbt_stack import DbtBuild

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def sources(airflow_stack: AirflowEnv, dbt_build: DbtBuild) -> Sources:
    viewer = AirflowClient(
        airflow_stack.base_url,
        username=airflow_stack.viewer.username,
        password=airflow_stack.viewer.password,
    )
    return Sources(airflow=viewer, dbt=ArtifactsProject(dbt_build.target_dir))


def test_failing_dag_names_task_error_cascade_owners_and_history(sources: Sources) -> None:
    report = triage_airflow(sources, dag_id="orders_daily")
    assert isinstance(report, TriageReport)
    assert report.run_state == "failed"
    [failed] = report.failed
    assert failed.task_id == "transform"
    assert failed.error_type == "KeyError"
    assert "column 'amount' missing from raw.orders" in failed.error_message
    assert failed.category == "upstream data/schema"
    assert any("KeyError" in line for line in failed.log_excerpt)
    assert [t.state for t in failed.tries] == ["failed"]
    assert set(report.upstream_failed) == {"publish_dashboard", "notify"}
    assert "dana" in report.owners
    assert report.flaky[0].task_id == "transform" and report.flaky[0].runs_failed >= 1
    # dbt side: the DAG builds the model of the same name, whose dashboard is affected.
    assert "orders_daily" in report.dbt_models
    assert [e.name for e in report.exposures] == ["revenue_dashboard"]
    assert report.fingerprint == "airflow:orders_daily:transform"
    reply = render(report, platform="slack", owners=OwnerDirectory(slack={"dana": "U024BE7LH"}))
    assert "<@U024BE7LH>" in reply.sections[0].fields[1].value


def test_flaky_dag_is_reported_as_flaky(sources: Sources) -> None:
    report = triage_airflow(sources, dag_id="payments_sync")
    assert isinstance(report, TriageReport)
    assert report.run_state == "success" and report.failed == ()
    [retried] = report.retried
    assert retried.task_id == "sync_payments"
    assert retried.error_type == "ConnectionError" and retried.category == "connection"
    assert [(t.try_number, t.state) for t in retried.tries] == [(1, "failed"), (2, "success")]
    assert report.flaky[0].verdict == "flaky"
    reply = render(report, platform="console", owners=OwnerDirectory())
    assert reply.title == "payments_sync succeeded after retries"


def test_triage_of_a_given_run_and_a_healthy_dag(
    sources: Sources, airflow_stack: AirflowEnv
) -> None:
    run_id = airflow_stack.run_ids["orders_daily"]
    report = triage_airflow(sources, dag_id="orders_daily", run_id=run_id)
    assert isinstance(report, TriageReport) and report.run_id == run_id
    healthy = triage_airflow(sources, dag_id="shop_ingest")
    assert isinstance(healthy, TriageReport)
    assert healthy.failed == () and healthy.run_state == "success"


def test_unknown_dag_is_not_found_with_suggestion(sources: Sources) -> None:
    reply = triage_airflow(sources, dag_id="orders_dialy")
    assert not isinstance(reply, TriageReport)
    assert "orders_daily" in reply.text


def test_cli_json_has_stable_keys(airflow_stack: AirflowEnv, tmp_path: Path) -> None:
    env = {
        "PATH": "/usr/bin:/bin",
        "HOME": str(tmp_path),
        "PIPEBOT_AIRFLOW__BASE_URL": airflow_stack.base_url,
        "PIPEBOT_AIRFLOW__USERNAME": "viewer",
        "PIPEBOT_AIRFLOW__PASSWORD": "viewer",
    }
    result = subprocess.run(
        [sys.executable, "-m", "bot", "triage", "--dag-id", "orders_daily", "--format", "json"],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=tmp_path,
        env=env,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    body = json.loads(result.stdout)
    assert body["schema"] == "pipebot.triage/1"
    for key in (
        "system",
        "subject",
        "run_id",
        "run_state",
        "failed",
        "upstream_failed",
        "retried",
        "flaky",
        "owners",
        "exposures",
        "stale_sources",
        "unavailable",
        "fingerprint",
        "reply",
    ):
        assert key in body
    assert body["failed"][0]["error_type"] == "KeyError"
    assert "viewer" not in result.stdout + result.stderr or "viewer" in body["subject"]


def test_partial_answer_when_dbt_is_down(airflow_stack: AirflowEnv, tmp_path: Path) -> None:
    target = tmp_path / "target"
    target.mkdir()  # no artifacts: the dbt side fails, Airflow facts remain
    viewer = AirflowClient(airflow_stack.base_url, username="viewer", password="viewer")
    report = triage_airflow(
        Sources(airflow=viewer, dbt=ArtifactsProject(target)), dag_id="orders_daily"
    )
    assert isinstance(report, TriageReport)
    assert report.failed[0].task_id == "transform"
    assert any(u.startswith("dbt") for u in report.unavailable)

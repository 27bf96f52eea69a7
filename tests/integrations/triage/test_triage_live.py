"""Triage against the real Airflow of the harness — Airflow 3 and Airflow 2, the same facts
expected from both — and the real dbt build."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from bot.messages import Reply
from bot.owners import OwnerDirectory
from bot.playbooks.triage import TriageReport, render, triage_airflow
from bot.ports import Sources
from integrations.airflow import AirflowClient
from integrations.dbt import ArtifactsProject
from tests.stack.airflow_fixtures import AirflowEnv
from tests.stack.dbt_stack import DbtBuild

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def sources(any_airflow: AirflowEnv, dbt_build: DbtBuild) -> Sources:
    viewer = AirflowClient(
        any_airflow.base_url,
        username=any_airflow.viewer.username,
        password=any_airflow.viewer.password,
    )
    return Sources(airflow=viewer, dbt=ArtifactsProject(dbt_build.target_dir))


def field(reply: Reply, label: str) -> str:
    return next(f.value for s in reply.sections for f in s.fields if f.label == label)


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
    # The DAG's "dana", the models' "@dana" and the dashboard's "dana@example.com": one person.
    assert "@dana" in report.owners and "dana@example.com" not in report.owners
    assert report.flaky[0].task_id == "transform" and report.flaky[0].runs_failed >= 1
    assert report.duration_s is not None and report.duration_s > 0  # Airflow 2: end − start
    # dbt side: the DAG builds the model of the same name, whose dashboard is affected.
    assert "orders_daily" in report.dbt_models
    assert [e.name for e in report.exposures] == ["revenue_dashboard"]
    assert report.fingerprint == "airflow:orders_daily:transform"
    reply = render(report, platform="slack", owners=OwnerDirectory(slack={"dana": "U024BE7LH"}))
    assert "<@U024BE7LH>" in reply.sections[0].fields[1].value
    [history] = [s.bullets for s in reply.sections if s.heading == "History"]
    assert history == ("`transform` — first failure: failed in the only run checked",)


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
    assert field(reply, "Last success") == "this run succeeded after a retry"


def test_the_run_that_ran_last_is_triaged_with_the_usual_duration(
    sources: Sources, any_airflow: AirflowEnv
) -> None:
    # shop_ingest ran twice; the second run is dated eleven months earlier but ran last.
    report = triage_airflow(sources, dag_id="shop_ingest")
    assert isinstance(report, TriageReport)
    assert report.run_id == any_airflow.late_run_id
    assert report.history_checked == 2 and report.history_failed == 0
    assert report.duration_s is not None and report.usual_duration_s is not None
    reply = render(report, platform="console", owners=OwnerDirectory())
    assert field(reply, "Last success") == "this run"
    assert "(usually " in field(reply, "Duration")


def test_a_dag_that_is_only_an_import_error_is_triaged_with_it(sources: Sources) -> None:
    reply = triage_airflow(sources, dag_id="shop_refunds")
    assert isinstance(reply, Reply)
    assert reply.title == "shop_refunds: its DAG file fails to import"
    assert field(reply, "Error") == "`ModuleNotFoundError: No module named 'shop_refunds_sdk'`"
    assert field(reply, "File").endswith("broken_dag.py`")


def test_triage_of_a_given_run_and_a_healthy_dag(sources: Sources, any_airflow: AirflowEnv) -> None:
    run_id = any_airflow.run_ids["orders_daily"]
    report = triage_airflow(sources, dag_id="orders_daily", run_id=run_id)
    assert isinstance(report, TriageReport) and report.run_id == run_id
    healthy = triage_airflow(sources, dag_id="shop_ingest")
    assert isinstance(healthy, TriageReport)
    assert healthy.failed == () and healthy.run_state == "success"


def test_unknown_dag_is_not_found_with_suggestion(sources: Sources) -> None:
    reply = triage_airflow(sources, dag_id="orders_dialy")
    assert not isinstance(reply, TriageReport)
    assert reply.text.startswith("Airflow has no DAG `orders_dialy`. Did you mean `orders_daily`?")
    assert "/api/" not in reply.text


def test_cli_json_has_stable_keys(any_airflow: AirflowEnv, tmp_path: Path) -> None:
    env = {
        "PATH": "/usr/bin:/bin",
        "HOME": str(tmp_path),
        "PIPEBOT_AIRFLOW__BASE_URL": any_airflow.base_url,
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


def test_partial_answer_when_dbt_is_down(any_airflow: AirflowEnv, tmp_path: Path) -> None:
    target = tmp_path / "target"
    target.mkdir()  # no artifacts: the dbt side fails, Airflow facts remain
    viewer = AirflowClient(any_airflow.base_url, username="viewer", password="viewer")
    report = triage_airflow(
        Sources(airflow=viewer, dbt=ArtifactsProject(target)), dag_id="orders_daily"
    )
    assert isinstance(report, TriageReport)
    assert report.failed[0].task_id == "transform"
    assert any(u.startswith("dbt") for u in report.unavailable)

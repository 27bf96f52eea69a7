"""`DbtCloudClient` and `CloudProject` against the fake dbt Cloud (tests/fakes/dbt_cloud.py)."""

from __future__ import annotations

import json
import time
from dataclasses import replace

import pytest
from pydantic import SecretStr

from bot.errors import NotFound, SourceAuthError, SourceUnavailable
from bot.settings import DbtCloudSettings
from integrations.dbt.cloud import CloudProject, DbtCloudClient, dbt_command, status_code
from integrations.dbt.project import ArtifactsProject
from tests.fakes.dbt_cloud import CI_JOB, DAILY_JOB, FRESHNESS_JOB, FakeDbtCloud, runs_of
from tests.integrations.dbt.conftest import client_for
from tests.stack.dbt_stack import DbtBuild

# --- no dbt build needed -----------------------------------------------------------------------


def test_check_reads_the_account(empty_cloud: FakeDbtCloud) -> None:
    check = client_for(empty_cloud).check()
    assert check.ok
    assert check.detail == "account 'Shop Analytics' (id 1) readable with the token"
    assert check.target == empty_cloud.base_url
    sent = empty_cloud.requests[-1]
    assert sent.authorization == f"Token {empty_cloud.token}"
    assert sent.path == "/api/v2/accounts/1/"


def test_wrong_token_is_a_readable_secret_free_401(empty_cloud: FakeDbtCloud) -> None:
    secret = "dbtc_wrong_secret_value_123"
    client = client_for(empty_cloud, token=secret)
    with pytest.raises(SourceAuthError) as caught:
        client.runs(limit=3)
    message = str(caught.value)
    assert message.startswith("dbt Cloud: GET /api/v2/accounts/1/runs/")
    assert "returned 401 Unauthorized: Invalid token. — check the credentials" in message
    assert secret not in message
    assert empty_cloud.token not in message
    check = client.check()
    assert not check.ok
    assert secret not in check.detail
    assert "401" in check.detail


def test_missing_token_is_a_401_too(empty_cloud: FakeDbtCloud) -> None:
    with pytest.raises(SourceAuthError, match="Authentication credentials were not provided"):
        client_for(empty_cloud, token="").account()


def test_another_account_is_forbidden(empty_cloud: FakeDbtCloud) -> None:
    client = DbtCloudClient(base_url=empty_cloud.base_url, account_id=2, token=empty_cloud.token)
    with pytest.raises(SourceAuthError, match="403 Forbidden: You do not have access"):
        client.jobs()


def test_runs_paginate_until_total_count(empty_cloud: FakeDbtCloud) -> None:
    client = client_for(empty_cloud)
    runs = client.runs(limit=500)
    assert len(runs) == len(empty_cloud.runs) == 131
    assert len({r.id for r in runs}) == 131
    pages = [r for r in empty_cloud.requests if r.path == "/api/v2/accounts/1/runs/"]
    assert [(p.query["offset"], p.query["limit"]) for p in pages] == [
        (["0"], ["100"]),
        (["100"], ["100"]),
    ]
    # Descending finished_at puts the run still going first, like the real API (PostgreSQL).
    assert runs[0].status_text == "Running"
    finished = [r.finished for r in runs[1:]]
    assert finished == sorted(finished, reverse=True)  # type: ignore[type-var]


def test_runs_limit_and_offset(empty_cloud: FakeDbtCloud) -> None:
    client = client_for(empty_cloud)
    first = client.runs(limit=5, order_by="id")
    assert [r.id for r in first] == [70_000, 70_001, 70_002, 70_003, 70_004]
    later = client.runs(limit=3, offset=5, order_by="id")
    assert [r.id for r in later] == [70_005, 70_006, 70_007]
    assert len(empty_cloud.paths()) == 2  # one page each


def test_runs_filters(empty_cloud: FakeDbtCloud) -> None:
    client = client_for(empty_cloud)
    daily = client.runs(job_id=DAILY_JOB, limit=100)
    assert len(daily) == 41
    assert {r.job_definition_id for r in daily} == {DAILY_JOB}
    failed = client.runs(job_id=DAILY_JOB, statuses=("error",), limit=100)
    assert [r.id for r in failed] == [
        r.id for r in runs_of(empty_cloud, DAILY_JOB) if r.status == 20
    ]
    assert all(r.status == 20 and r.status_text == "Error" for r in failed)
    cancelled = client.runs(status="cancelled", limit=100)
    assert cancelled
    assert {r.status for r in cancelled} == {30}
    assert {r.job_definition_id for r in cancelled} == {CI_JOB}
    either = client.runs(statuses=(10, "Cancelled"), limit=200)
    assert {r.status for r in either} == {10, 30}
    query = empty_cloud.requests[-1].query
    assert query["status__in"] == ["10", "30"]
    assert query["order_by"] == ["-finished_at"]


def test_runs_with_related_job_and_trigger(empty_cloud: FakeDbtCloud) -> None:
    runs = client_for(empty_cloud).runs(job_id=CI_JOB, limit=2, include_related=("job", "trigger"))
    assert runs[0].job is not None
    assert runs[0].job.name == "CI checks"
    assert runs[0].trigger is not None
    assert runs[0].trigger.cause_category == "ci"
    assert empty_cloud.requests[-1].query["include_related"] == ["job,trigger"]


def test_jobs_and_job(empty_cloud: FakeDbtCloud) -> None:
    client = client_for(empty_cloud)
    assert [j.name for j in client.jobs()] == ["Daily shop build", "CI checks", "Hourly freshness"]
    assert [j.id for j in client.jobs(name_contains="fresh")] == [FRESHNESS_JOB]
    job = client.job(DAILY_JOB)
    assert job.execute_steps == ["dbt seed", "dbt build", "dbt source freshness"]
    assert job.generate_docs is True
    with pytest.raises(NotFound, match="404"):
        client.job(4242)


def test_unknown_run_is_not_found(empty_cloud: FakeDbtCloud) -> None:
    with pytest.raises(NotFound) as caught:
        client_for(empty_cloud).run(1)
    assert "GET /api/v2/accounts/1/runs/1/" in caught.value.reason


def test_429_is_retried_after_retry_after(empty_cloud: FakeDbtCloud) -> None:
    client = client_for(empty_cloud)
    empty_cloud.throttle(1, retry_after="1")
    started = time.perf_counter()
    account = client.account()
    assert account.name == "Shop Analytics"
    assert time.perf_counter() - started >= 0.95
    assert empty_cloud.paths() == ["/api/v2/accounts/1/", "/api/v2/accounts/1/"]


def test_429_that_never_ends_is_unavailable(empty_cloud: FakeDbtCloud) -> None:
    client = client_for(empty_cloud)
    empty_cloud.throttle(10, retry_after="0")
    with pytest.raises(SourceUnavailable, match="returned 429 Too Many Requests: Too many"):
        client.account()
    assert len(empty_cloud.requests) == 4  # the first try and three retries


def test_discovery_queries_go_through_mutations_do_not(empty_cloud: FakeDbtCloud) -> None:
    client = client_for(empty_cloud)
    assert client.discovery_query("{ __typename }") == {"__typename": "Query"}
    posts = [r for r in empty_cloud.requests if r.method == "POST"]
    assert [p.path for p in posts] == ["/graphql"]
    assert posts[0].authorization == f"Bearer {empty_cloud.token}"
    with pytest.raises(Exception, match="pipebot only reads"):
        client.discovery_query('mutation { createJob(name: "x") { id } }')
    assert len([r for r in empty_cloud.requests if r.method == "POST"]) == 1


def test_constructors_from_settings() -> None:
    settings = DbtCloudSettings(
        account_id=7,
        token=SecretStr("dbtc_from_settings"),
        base_url="https://ab123.us1.dbt.com",
        job_id=99,
        timeout=5,
    )
    client = DbtCloudClient.from_settings(settings)
    assert (client.account_id, client.base_url, client.session.timeout) == (
        7,
        "https://ab123.us1.dbt.com",
        5,
    )
    assert "dbtc_from_settings" not in repr(client)
    project = CloudProject.from_settings(settings)
    assert project.job_id == 99
    with pytest.raises(ValueError, match="JOB_ID"):
        CloudProject.from_settings(DbtCloudSettings(account_id=7, token=SecretStr("x")))


def test_step_commands_and_statuses() -> None:
    assert dbt_command("Invoke dbt with `dbt build --select tag:nightly`") == "build"
    assert dbt_command("Invoke dbt with `dbt source freshness`") == "source freshness"
    assert dbt_command("dbt docs generate --no-compile") == "docs generate"
    assert dbt_command("Clone git repository") == ""
    assert status_code("Error") == status_code("failed") == status_code(20) == 20
    with pytest.raises(ValueError, match="unknown dbt Cloud run status"):
        status_code("exploded")


# --- with the real build's artifacts ------------------------------------------------------------


@pytest.mark.integration
def test_run_steps_and_failure_details(fake_cloud: FakeDbtCloud) -> None:
    client = client_for(fake_cloud)
    run = client.run(fake_cloud.latest_run_id)
    assert run.status_text == "Error"
    assert run.job is not None
    assert run.job.name == "Daily shop build"
    assert run.href is not None
    assert run.href.endswith(f"/runs/{run.id}/")
    steps = run.run_steps or []
    assert [s.command for s in steps] == [
        "",
        "",
        "deps",
        "seed",
        "build",
        "source freshness",
        "docs generate",
    ]
    assert [s.status_text for s in steps][3:] == ["Success", "Error", "Error", "Success"]
    assert [s.index for s in client.run_steps(run.id)] == [1, 2, 3, 4, 5, 6, 7]
    step = client.step(run.id * 100 + 5)
    assert (step.command, step.status) == ("build", 20)
    assert "ERROR model.shop.customer_ltv" in (step.logs or "")
    details = client.failure_details(run.id)
    assert details.failed_step == "Invoke dbt with `dbt build`"


@pytest.mark.integration
def test_artifacts_per_step(fake_cloud: FakeDbtCloud, dbt_build: DbtBuild) -> None:
    client = client_for(fake_cloud)
    run_id = fake_cloud.latest_run_id
    assert client.run_artifacts(run_id) == [
        "catalog.json",
        "manifest.json",
        "run_results.json",
        "sources.json",
    ]

    def which(step: int | None) -> str:
        data = client.run_artifact(run_id, "run_results.json", step=step)
        return str(json.loads(data)["args"]["which"])

    assert which(4) == "seed"
    assert which(5) == "build"
    assert which(None) == "generate"  # the last step's, as dbt Cloud defaults
    assert fake_cloud.requests[-1].query == {}
    assert fake_cloud.requests[-2].query == {"step": ["5"]}
    assert client.run_artifact_or_none(run_id, "sources.json", step=5) is None
    with pytest.raises(NotFound, match=r"has no artifact catalog\.json of step 1"):
        client.run_artifact(run_id, "catalog.json", step=1)
    latest = client.job_artifact(DAILY_JOB, "manifest.json")
    assert latest == (dbt_build.target_dir / "manifest.json").read_bytes()
    with pytest.raises(NotFound):
        client.job_artifact(CI_JOB, "manifest.json")


@pytest.mark.integration
def test_cloud_project_answers_like_the_local_artifacts(
    fake_cloud: FakeDbtCloud, built_project: ArtifactsProject
) -> None:
    cloud = CloudProject(client_for(fake_cloud), DAILY_JOB)
    assert cloud.system == "dbt Cloud"
    assert cloud.nodes() == built_project.nodes()
    for node in built_project.nodes("model") + built_project.nodes("source"):
        # The run differs only in how it is named (the cloud run's steps: "seed + build").
        cloud_lineage = cloud.lineage(node.unique_id)
        local = built_project.lineage(node.unique_id)
        assert replace(cloud_lineage, run=None) == replace(local, run=None)
        assert cloud_lineage.run is not None and cloud_lineage.run.command == "seed + build"
        assert cloud.node(node.name) == node
    assert cloud.freshness() == built_project.freshness()
    assert cloud.as_of() == built_project.as_of()
    cloud_run = cloud.last_run()
    local_run = built_project.last_run()
    assert cloud_run is not None
    assert local_run is not None
    assert cloud_run.results == local_run.results
    assert cloud_run.invocation_id == local_run.invocation_id
    assert (cloud_run.cloud_run_id, cloud_run.job_name, cloud_run.status) == (
        fake_cloud.latest_run_id,
        "Daily shop build",
        "Error",
    )
    assert cloud_run.command == "seed + build"
    assert cloud_run.url.endswith(f"/runs/{fake_cloud.latest_run_id}/")
    with pytest.raises(NotFound) as caught:
        cloud.node("fct_order")
    assert caught.value.system == "dbt Cloud"
    assert "fct_orders" in caught.value.suggestions


@pytest.mark.integration
def test_cloud_project_caches_by_run_id(fake_cloud: FakeDbtCloud) -> None:
    now = [0.0]
    cloud = CloudProject(client_for(fake_cloud), DAILY_JOB, refresh_s=60, clock=lambda: now[0])
    cloud.node("fct_orders")
    downloads = [p for p in fake_cloud.paths() if "/artifacts/" in p]
    manifest = f"/api/v2/accounts/1/runs/{fake_cloud.latest_run_id}/artifacts/manifest.json"
    assert manifest in downloads
    fake_cloud.clear()
    cloud.lineage("fct_orders")
    assert fake_cloud.paths() == []  # within refresh_s: nothing asked
    now[0] = 61.0
    cloud.freshness()
    assert fake_cloud.paths() == ["/api/v2/accounts/1/runs/"]  # same run: no download
    fake_cloud.clear()
    newer = fake_cloud.publish_run()
    now[0] = 122.0
    assert cloud.last_run() is not None
    assert cloud.last_run().cloud_run_id == newer.id  # type: ignore[union-attr]
    assert f"/api/v2/accounts/1/runs/{newer.id}/artifacts/manifest.json" in fake_cloud.paths()


@pytest.mark.integration
def test_cloud_run_by_id(fake_cloud: FakeDbtCloud, built_project: ArtifactsProject) -> None:
    cloud = CloudProject(client_for(fake_cloud), DAILY_JOB)
    run = cloud.cloud_run(fake_cloud.latest_run_id)
    local = built_project.last_run()
    assert local is not None
    assert run.results == local.results
    assert (run.job_name, run.status) == ("Daily shop build", "Error")
    fake_cloud.clear()
    assert cloud.cloud_run(fake_cloud.latest_run_id) is run  # finished runs are cached
    assert fake_cloud.paths() == []
    # An older run without artifacts: the facts the API gives, no results.
    older = next(r for r in runs_of(fake_cloud, DAILY_JOB) if r.id != fake_cloud.latest_run_id)
    bare = cloud.cloud_run(older.id)
    assert bare.results == ()
    assert bare.status in ("Success", "Error")
    assert bare.job_name == "Daily shop build"


@pytest.mark.integration
def test_cloud_project_without_artifacts(fake_cloud: FakeDbtCloud) -> None:
    client = client_for(fake_cloud)
    with pytest.raises(NotFound, match=r"none of the last 5 finished runs of job 1002 left a"):
        CloudProject(client, CI_JOB).nodes()
    with pytest.raises(NotFound, match="has no finished run"):
        CloudProject(client, 4242).nodes()
    check = CloudProject(client, CI_JOB).check()
    assert not check.ok
    assert "manifest.json" in check.detail
    good = CloudProject(client, DAILY_JOB).check()
    assert good.ok, good.detail
    assert "job 'Daily shop build' (1001): manifest v12 of run" in good.detail


@pytest.mark.integration
def test_a_run_that_died_early_falls_back_to_the_previous_one(fake_cloud: FakeDbtCloud) -> None:
    good = fake_cloud.latest_run_id
    died = fake_cloud.publish_run(status=20, artifacts=False)
    cloud = CloudProject(client_for(fake_cloud), DAILY_JOB)
    assert cloud.node("fct_orders").owners == ("@dana", "finance-data@example.com")
    assert cloud.artifacts_run_id() == good
    assert f"/api/v2/accounts/1/runs/{died.id}/artifacts/manifest.json" in fake_cloud.paths()
    fake_cloud.clear()
    cloud.refresh_s = 0
    cloud.lineage("fct_orders")
    # The empty run is remembered: only the run list is asked again.
    assert fake_cloud.paths() == ["/api/v2/accounts/1/runs/"]

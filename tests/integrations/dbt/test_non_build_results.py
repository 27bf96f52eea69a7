"""run_results.json of commands that build nothing (`dbt docs generate` after `dbt build`),
read from the real build's step folders and from the fake dbt Cloud serving them."""

from __future__ import annotations

from datetime import timedelta

import pytest

from bot.kept_runs import KeepsLastBuild
from bot.store import Store
from integrations.dbt.cloud import CloudProject
from integrations.dbt.project import ArtifactsProject
from tests.fakes.dbt_cloud import DAILY_JOB, FakeDbtCloud, FakeRun, FakeStep
from tests.integrations.dbt.conftest import client_for
from tests.stack.dbt_stack import DbtBuild

pytestmark = pytest.mark.integration


def test_docs_generate_results_are_named_and_not_read_as_a_build(dbt_build: DbtBuild) -> None:
    project = ArtifactsProject(dbt_build.step("dbt docs generate").artifacts_dir)
    run = project.last_run()
    assert run is not None
    assert run.command == "docs generate"
    assert not run.executed
    # What made the false all-clear: a "success" for every node the command compiled.
    assert run.results and {r.status for r in run.results} == {"success"}
    lineage = project.lineage("model.shop.orders_daily")
    assert lineage.tests  # the manifest knows the tests …
    assert lineage.test_results == {}  # … and no result says they passed
    assert lineage.run == run
    check = project.check()
    assert "run_results.json is from `dbt docs generate`" in check.detail


def test_the_build_step_is_a_build(dbt_build: DbtBuild) -> None:
    run = ArtifactsProject(dbt_build.step("dbt build").artifacts_dir).last_run()
    assert run is not None and run.command == "build" and run.executed
    assert run.count("error", "fail") >= 2


def _docs_only_run(fake: FakeDbtCloud, build: DbtBuild) -> FakeRun:
    """A newer run of the daily job that ran `dbt docs generate` and nothing else."""
    latest = fake.runs[fake.latest_run_id]
    assert latest.finished_at is not None
    docs = build.step("dbt docs generate")
    run = FakeRun(
        id=max(fake.runs) + 1,
        job_id=DAILY_JOB,
        status=10,
        created_at=latest.finished_at + timedelta(minutes=1),
        started_at=latest.finished_at + timedelta(minutes=2),
        finished_at=latest.finished_at + timedelta(minutes=3),
        steps=[
            FakeStep(index=1, name="Clone git repository", status=10),
            FakeStep(
                index=2,
                name="Invoke dbt with `dbt docs generate`",
                status=10,
                artifacts=docs.artifacts_dir,
            ),
        ],
    )
    fake.runs[run.id] = run
    return run


def test_cloud_reports_the_build_step_of_a_job_that_ends_with_docs(
    fake_cloud: FakeDbtCloud, dbt_build: DbtBuild
) -> None:
    # The real run's steps: seed, build, source freshness, docs generate (the last).
    cloud = CloudProject(client_for(fake_cloud), DAILY_JOB)
    run = cloud.last_run()
    assert run is not None
    assert run.command == "seed + build" and run.executed
    build = ArtifactsProject(dbt_build.step("dbt build").artifacts_dir).last_run()
    assert build is not None
    assert run.invocation_id == build.invocation_id
    assert run.count("error", "fail") == build.count("error", "fail")
    # A run that only generated docs is told as such, not as "no results" nor as a success.
    docs_run = _docs_only_run(fake_cloud, dbt_build)
    ran_docs = cloud.cloud_run(docs_run.id)
    assert (ran_docs.command, ran_docs.results, ran_docs.executed) == ("docs generate", (), False)


def test_cloud_build_is_kept_when_the_next_run_only_generates_docs(
    fake_cloud: FakeDbtCloud, dbt_build: DbtBuild, sqlite_store: Store
) -> None:
    cloud = CloudProject(client_for(fake_cloud), DAILY_JOB, refresh_s=0)
    kept = KeepsLastBuild(cloud, sqlite_store.dbt_runs, key=cloud.project_key)
    assert cloud.project_key == f"dbt-cloud:{fake_cloud.account_id}:job:{DAILY_JOB}"
    seen = kept.last_run()
    assert seen is not None and seen.executed and seen.kept_at is None
    _docs_only_run(fake_cloud, dbt_build)
    latest = cloud.last_run()
    assert latest is not None and latest.command == "docs generate"
    run = kept.last_run()
    assert run is not None
    assert run.invocation_id == seen.invocation_id and run.results == seen.results
    assert run.superseded_by == "docs generate" and run.kept_at is not None

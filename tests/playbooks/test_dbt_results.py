"""`status`, `triage dbt`, `lineage` and `freshness` on the real dbt build of the sample project.

The acceptance of issue 11: after a failing ``dbt build`` followed by ``dbt docs generate`` no
command reports success — the failing build when pipebot saw it (kept in its store, on SQLite
and on PostgreSQL), otherwise a reply saying the latest results are not from a build. Also:
the database's error is shown, not dbt's hint; no terminal colours; every source with a
freshness rule is told; an error-level stale source is a failure headline.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from bot.commands import Request
from bot.compose import build_sources
from bot.kept_runs import KeepsLastBuild
from bot.messages import Reply, Tone
from bot.owners import OwnerDirectory
from bot.playbooks import digest, freshness, lineage, status
from bot.playbooks.triage import TriageReport, render, triage_dbt
from bot.ports import DbtProject, Sources
from bot.rendering import to_json, to_text
from bot.settings import Settings
from bot.store import Store
from bot.tools import StaticToolset
from integrations.dbt.project import ArtifactsProject
from tests.agent.support import ProgressLog, inbound
from tests.integrations.dbt.test_toolset import call
from tests.stack.dbt_stack import DbtBuild

pytestmark = pytest.mark.integration

ORDERS_DAILY = "model.shop.orders_daily"
FAILING_TEST = "not_null_orders_daily_revenue"


def ask(sources: Sources, command: str, *args: str) -> Request:
    return Request(
        message=inbound(" ".join((command, *args))),
        args=args,
        sources=sources,
        progress=ProgressLog(),
    )


def copy_into(source: Path, target: Path) -> None:
    target.mkdir(parents=True, exist_ok=True)
    for path in source.iterdir():
        shutil.copy2(path, target / path.name)


def kept(project: ArtifactsProject, store: Store) -> KeepsLastBuild:
    return KeepsLastBuild(project, store.dbt_runs, key=project.project_key)


def assert_no_success_from_docs(text: str) -> None:
    """What the old replies said after `dbt docs generate`."""
    for wrong in ("dbt generate", "All clear", "Failures\n--------\n• none", "success, 0 failing"):
        assert wrong not in text
    assert "30 success" not in text and "0 failing" not in text


# --- no build seen: the latest results are named for what they are -------------------------


@pytest.mark.parametrize("with_store", [False, True], ids=["connector", "store-never-saw-it"])
def test_after_docs_generate_without_a_seen_build_nothing_reports_success(
    dbt_build: DbtBuild, sqlite_store: Store, with_store: bool
) -> None:
    project = ArtifactsProject(dbt_build.step("dbt docs generate").artifacts_dir)
    dbt: DbtProject = kept(project, sqlite_store) if with_store else project
    sources = Sources(dbt=dbt)

    reply = status.run(ask(sources, "status"))
    text = to_text(reply)
    assert reply.tone is not Tone.SUCCESS
    assert "latest dbt results are from `dbt docs generate`, not a build" in reply.title
    assert "`dbt docs generate`" in text and "--target-path" in text
    assert "Last run" not in text and "Results" not in text
    assert_no_success_from_docs(text)

    triaged = triage_dbt(sources)
    assert isinstance(triaged, Reply)  # no report: there is no build to triage
    assert triaged.tone is Tone.WARNING and triaged.title == "No dbt build to triage"
    assert "`dbt docs generate`" in triaged.text and "builds and tests nothing" in triaged.text
    assert_no_success_from_docs(to_text(triaged))

    traced = lineage.run(ask(sources, "lineage", ORDERS_DAILY))
    tests = next(s for s in traced.sections if s.heading.startswith("Tests"))
    assert tests.heading == "Tests (3): no results"
    assert "`dbt docs generate`" in tests.text
    assert not any("—" in bullet for bullet in tests.bullets)  # no status for any test
    assert_no_success_from_docs(to_text(traced))

    digested = digest.run(ask(sources, "digest"))
    assert digested.tone is not Tone.SUCCESS
    assert "latest dbt results are from `dbt docs generate`, not a build" in digested.title
    assert "mostly fine" not in digested.title and "all clear" not in digested.title
    assert_no_success_from_docs(to_text(digested))


def test_cli_triage_without_a_seen_build_exits_1(dbt_build: DbtBuild, tmp_path: Path) -> None:
    done = pipebot(
        tmp_path,
        artifacts=dbt_build.step("dbt docs generate").artifacts_dir,
        db=tmp_path / "never-saw.db",
    )
    assert done.returncode == 1, done.stderr
    assert "No dbt build to triage" in done.stdout and "`dbt docs generate`" in done.stdout


# --- the build seen first: it is what every command reports --------------------------------


def test_after_build_then_docs_generate_the_failing_build_is_reported(
    dbt_build: DbtBuild, store: Store, tmp_path: Path
) -> None:
    target = tmp_path / "target"
    copy_into(dbt_build.step("dbt source freshness").artifacts_dir, target)
    project = ArtifactsProject(target)
    sources = Sources(dbt=kept(project, store))
    build = project.last_run()
    assert build is not None and build.command == "build"
    failures = build.count("error", "fail", "runtime error")
    assert failures >= 2

    first = status.run(ask(sources, "status"))  # pipebot sees the build here
    assert first.tone is Tone.ERROR and f"{failures} dbt failures" in first.title

    copy_into(dbt_build.step("dbt docs generate").artifacts_dir, target)
    latest = project.last_run()
    assert latest is not None and latest.command == "docs generate"  # the folder moved on

    reply = status.run(ask(sources, "status"))
    text = to_text(reply)
    assert reply.tone is Tone.ERROR and f"{failures} dbt failures" in reply.title
    assert "The latest dbt results are from `dbt docs generate`" in text
    assert "showing the last `dbt build` pipebot saw" in text
    assert "`dbt build`" in text and "(kept by pipebot)" in text
    assert_no_success_from_docs(text)

    report = triage_dbt(sources)
    assert isinstance(report, TriageReport)
    assert report.run_state == "error" and report.run_id == build.invocation_id
    assert len(report.dbt_failures) == failures
    assert (report.dbt_command, report.dbt_superseded_by) == ("build", "docs generate")
    assert report.dbt_kept_at is not None
    rendered = render(report, platform="console", owners=OwnerDirectory())
    assert rendered.tone is Tone.ERROR
    assert rendered.sections[0].text.startswith(
        "The latest dbt results are from `dbt docs generate`"
    )
    assert report.to_dict()["dbt_superseded_by"] == "docs generate"

    traced = lineage.run(ask(sources, "lineage", ORDERS_DAILY))
    tests = next(s for s in traced.sections if s.heading.startswith("Tests"))
    assert tests.heading == "Tests (3, 1 failing)"
    assert f"`{FAILING_TEST}` — fail" in tests.bullets
    assert "showing the last `dbt build` pipebot saw" in tests.text

    # Another process (or a restart) on the same store knows the build too.
    again = kept(ArtifactsProject(target), store).last_run()
    assert again is not None and again.invocation_id == build.invocation_id
    assert again.superseded_by == "docs generate"


def test_cli_triage_reports_the_build_it_saw_before_docs_generate(
    dbt_build: DbtBuild, tmp_path: Path
) -> None:
    target, db = tmp_path / "target", tmp_path / "pipebot.db"
    copy_into(dbt_build.step("dbt build").artifacts_dir, target)
    before = pipebot(tmp_path, artifacts=target, db=db, fmt="json")
    assert before.returncode == 0, before.stderr
    seen = json.loads(before.stdout)
    assert seen["dbt_command"] == "build" and seen["dbt_failures"]
    copy_into(dbt_build.step("dbt docs generate").artifacts_dir, target)
    after = pipebot(tmp_path, artifacts=target, db=db, fmt="json")
    assert after.returncode == 0, after.stderr
    body = json.loads(after.stdout)
    assert body["run_id"] == seen["run_id"]
    assert body["dbt_superseded_by"] == "docs generate"
    assert body["dbt_failures"] == seen["dbt_failures"]
    assert body["reply"]["tone"] == "error"


def pipebot(
    tmp_path: Path, *, artifacts: Path, db: Path, fmt: str = "text"
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "bot", "triage", "--dbt", "--format", fmt],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=tmp_path,
        env={
            "PATH": "/usr/bin:/bin",
            "HOME": str(tmp_path),
            "PIPEBOT_DBT__ARTIFACTS_DIR": str(artifacts),
            "PIPEBOT_DATABASE_URL": f"sqlite:///{db}",
        },
        check=False,
    )


# --- error text --------------------------------------------------------------------------


def test_triage_shows_the_database_cause_and_no_colours(dbt_build: DbtBuild) -> None:
    project = ArtifactsProject(dbt_build.target_dir)
    run = project.last_run()
    assert run is not None
    # The unit test whose cause (DuckDB's Binder Error) comes after dbt's header and hints.
    raw = next(r for r in run.results if "Binder Error" in r.message)
    lines = raw.message.splitlines()
    at = next(n for n, line in enumerate(lines) if "Binder Error" in line)
    assert at >= 3  # below the three lines the old triage kept
    cause = lines[at].strip()
    report = triage_dbt(Sources(dbt=project))
    assert isinstance(report, TriageReport)
    failure = next(f for f in report.dbt_failures if f.unique_id == raw.unique_id)
    assert cause in failure.message
    reply = render(report, platform="console", owners=OwnerDirectory())
    failures = next(s for s in reply.sections if s.heading == "Failures")
    assert any(f"error: {cause}" in bullet for bullet in failures.bullets)
    # dbt colours a failing unit test's diff: the codes reach neither the JSON nor the text.
    coloured = [r for r in run.results if "\x1b[" in r.message]
    raw_file = json.loads((dbt_build.target_dir / "run_results.json").read_text())
    assert any("\x1b[" in (r.get("message") or "") for r in raw_file["results"])
    assert coloured == []  # stripped where the artifact is read
    for out in (json.dumps(report.to_dict()), to_json(reply), to_text(reply)):
        assert "\\u001b" not in out and "\x1b" not in out and "[0m" not in out


# --- freshness -----------------------------------------------------------------------------


def test_freshness_lists_the_sources_dbt_could_not_compute(dbt_build: DbtBuild) -> None:
    sources = Sources(dbt=ArtifactsProject(dbt_build.target_dir))
    reply = freshness.run(ask(sources, "freshness"))
    text = to_text(reply)
    assert reply.tone is Tone.ERROR
    assert reply.title == "2 stale sources and 1 not computed of 4 with freshness rules"
    assert "1 of 4 sources with freshness rules fresh, 1 not computed" in text
    computed = next(s for s in reply.sections if s.heading == "Not computed")
    assert computed.bullets == (
        "`raw.products` — not computed (no loaded_at_field: dbt cannot measure it; add "
        "`loaded_at_field` or `loaded_at_query`) (warn after 1 day) — owner @dana",
    )


def test_status_is_no_mostly_fine_with_a_source_past_its_error_limit(
    dbt_build: DbtBuild, tmp_path: Path
) -> None:
    # A clean run (the seeds) and the freshness results: raw.customers is past its error limit.
    target = tmp_path / "target"
    copy_into(dbt_build.step("dbt seed").artifacts_dir, target)
    shutil.copy2(dbt_build.target_dir / "sources.json", target / "sources.json")
    sources = Sources(dbt=ArtifactsProject(target))
    reply = status.run(ask(sources, "status"))
    assert reply.tone is Tone.ERROR
    assert reply.title.startswith("Needs attention: 1 source stale past the error limit")
    assert "Mostly fine" not in reply.title
    fresh = next(s for s in reply.sections if s.heading == "Source freshness")
    assert fresh.text == "1 of 4 sources with freshness rules fresh, 1 not computed."
    assert fresh.bullets[0].startswith("`raw.customers` — error")
    assert any(b.startswith("`raw.products` — not computed") for b in fresh.bullets)


def _without_rules(manifest: Path, target: Path) -> None:
    data: dict[str, Any] = json.loads(manifest.read_text())
    for source in data["sources"].values():
        source["freshness"] = None
        source["config"]["freshness"] = None
    target.mkdir(parents=True, exist_ok=True)
    (target / "manifest.json").write_text(json.dumps(data))


@pytest.mark.parametrize("with_sources_json", [False, True])
def test_no_rules_no_advice_to_run_source_freshness(
    dbt_build: DbtBuild, tmp_path: Path, with_sources_json: bool
) -> None:
    target = tmp_path / "target"
    _without_rules(dbt_build.target_dir / "manifest.json", target)
    if with_sources_json:
        sources_json = json.loads((dbt_build.target_dir / "sources.json").read_text())
        sources_json["results"] = []
        (target / "sources.json").write_text(json.dumps(sources_json))
    reply = freshness.run(ask(Sources(dbt=ArtifactsProject(target)), "freshness"))
    assert reply.title == "No freshness rules"
    assert reply.tone is Tone.INFO
    assert "dbt source freshness" not in to_text(reply)
    assert "has a freshness rule" in reply.text


def test_the_agents_tools_read_the_kept_build(
    dbt_build: DbtBuild, sqlite_store: Store, tmp_path: Path
) -> None:
    target = tmp_path / "target"
    copy_into(dbt_build.step("dbt build").artifacts_dir, target)
    settings = Settings(_env_file=None, dbt={"artifacts_dir": str(target)})
    sources = build_sources(settings, store=sqlite_store)
    assert isinstance(sources.dbt, KeepsLastBuild)
    [toolset] = sources.toolsets
    assert isinstance(toolset, StaticToolset)
    seen = call(toolset, "dbt_last_run")
    assert seen.data["command"] == "build" and "not_a_build" not in seen.data
    copy_into(dbt_build.step("dbt docs generate").artifacts_dir, target)
    result = call(toolset, "dbt_last_run")
    assert result.data["invocation_id"] == seen.data["invocation_id"]
    assert result.data["latest_results_from"] == "docs generate"
    assert result.data["counts"] == seen.data["counts"]
    assert result.invocation.startswith(f"dbt artifacts in {target}")
    tests = call(toolset, "dbt_tests", name=ORDERS_DAILY)
    assert {row["name"]: row["status"] for row in tests.data["tests"]}[FAILING_TEST] == "fail"


def test_digest_after_docs_generate_is_not_confirmed_rather_than_mostly_fine(
    dbt_build: DbtBuild, tmp_path: Path
) -> None:
    # Without sources.json nothing is stale: only the unknown dbt results are left to report.
    target = tmp_path / "target"
    copy_into(dbt_build.step("dbt docs generate").artifacts_dir, target)
    (target / "sources.json").unlink()
    reply = digest.run(ask(Sources(dbt=ArtifactsProject(target)), "digest"))
    assert reply.tone is Tone.WARNING
    assert reply.title.startswith(
        "Pipeline digest, last 24 hours — not confirmed: latest dbt results are from "
        "`dbt docs generate`, not a build"
    )

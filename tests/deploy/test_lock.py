"""uv.lock: in step with pyproject.toml (and shown to fail when it is not), from PyPI only,
installable by pip as well as by uv and Heroku's buildpack; .python-version agrees with
pyproject.toml, the Dockerfile and CI."""

from __future__ import annotations

import re
import shutil
import sys
import tomllib
from pathlib import Path

from packaging.specifiers import SpecifierSet

from tests.deploy.deployfiles import ROOT, run, tool

LOCK = ROOT / "uv.lock"
OUT_OF_DATE = "needs to be updated"


def lock_check(project: Path) -> tuple[int, str]:
    """`uv lock --check` in `project`: offline first (instant when uv's cache has the metadata);
    when offline cannot decide, again with the index."""
    for offline in (["--offline"], []):
        done = run([tool("uv"), "lock", "--check", *offline], cwd=project, timeout=180, check=False)
        output = done.stdout + done.stderr
        if done.returncode == 0 or OUT_OF_DATE in output:
            return done.returncode, output
    return done.returncode, output


def test_lock_is_in_step_with_pyproject() -> None:
    code, output = lock_check(ROOT)
    assert code == 0, f"uv.lock is out of date: run `make lock` and commit uv.lock\n{output}"


def test_lock_check_fails_after_a_dependency_changes(tmp_path: Path) -> None:
    # What CI does when someone edits pyproject.toml and forgets `uv lock`: here on a copy.
    shutil.copy2(LOCK, tmp_path / "uv.lock")
    pyproject = (ROOT / "pyproject.toml").read_text(encoding="utf-8")
    changed = pyproject.replace('"click>=8.1,<9"', '"click>=8.1,<10"')
    assert changed != pyproject, "the click requirement this test widens is gone: pick another"
    (tmp_path / "pyproject.toml").write_text(changed, encoding="utf-8")
    code, output = lock_check(tmp_path)
    assert code == 1 and OUT_OF_DATE in output, f"uv lock --check exited {code}:\n{output}"


def test_every_locked_package_comes_from_pypi() -> None:
    lock = tomllib.loads(LOCK.read_text(encoding="utf-8"))
    foreign = sorted(
        f"{p['name']} {p['source']}"
        for p in lock["package"]
        if p["source"] != {"registry": "https://pypi.org/simple"} and p["name"] != "pipebot"
    )
    # A machine's pip.conf or UV_INDEX_URL must not leak a local index into the lock.
    assert not foreign, "\n".join(foreign)


def test_pip_can_install_the_runtime_lock(tmp_path: Path) -> None:
    exported = tmp_path / "requirements.lock"  # never requirements.txt: Heroku would use it
    run(
        [
            tool("uv"),
            "export",
            "--frozen",
            "--no-dev",
            "--no-emit-project",
            "--extra",
            "otel",
            "--quiet",
            "-o",
            str(exported),
        ],
        timeout=60,
    )
    # Resolves and verifies every hash against pip's cache or the index; installs nothing.
    run(
        [
            sys.executable,
            "-m",
            "pip",
            "install",
            "--dry-run",
            "--quiet",
            "--ignore-installed",
            "--no-deps",
            "--require-hashes",
            "-r",
            str(exported),
        ],
        timeout=600,
    )


def test_heroku_finds_exactly_one_package_manager_file() -> None:
    # heroku-buildpack-python refuses a root holding more than one of these.
    present = [
        name
        for name in ("requirements.txt", "Pipfile.lock", "poetry.lock", "uv.lock")
        if (ROOT / name).exists()
    ]
    assert present == ["uv.lock"], present


def test_python_version_agrees_everywhere() -> None:
    version = (ROOT / ".python-version").read_text(encoding="utf-8").strip()
    assert re.fullmatch(r"3\.\d+", version), f".python-version {version!r}: want a minor, 3.x"
    project = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    assert SpecifierSet(project["requires-python"]).contains(f"{version}.0")
    assert f"FROM python:{version}-" in (ROOT / "deploy" / "Dockerfile").read_text("utf-8")
    assert f"{sys.version_info.major}.{sys.version_info.minor}" == version, (
        "CI runs another Python minor than the image and Heroku"
    )

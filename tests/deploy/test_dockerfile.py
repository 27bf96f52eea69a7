"""deploy/Dockerfile, checked without a Docker daemon: hadolint, its shape (two stages of one
base, non-root numeric user, tini, exec form), every path it copies exists and is in the build
context, and its two `uv sync` steps, run as the build runs them, give a venv of exactly the
locked runtime packages in which pipebot starts, migrates, passes `doctor` and serves."""

from __future__ import annotations

import itertools
import json
import os
import re
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import time
import tomllib
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path

import pytest
from packaging.requirements import Requirement

from tests.deploy.deployfiles import (
    DOCKERFILE,
    ROOT,
    Instruction,
    command_of,
    context_files,
    env_of,
    ignore_rules,
    in_context,
    instructions,
    mounts_of,
    run,
    split_flags,
    tool,
)

PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
VERSION = PYPROJECT["project"]["version"]


def stage_instructions(stage: int) -> list[Instruction]:
    return [i for i in instructions() if i.stage == stage]


def copied_sources() -> list[tuple[Instruction, str]]:
    """(instruction, source) for every COPY/ADD from the context and every bind mount."""
    found = []
    for instruction in instructions():
        if instruction.keyword in ("COPY", "ADD"):
            flags, words = split_flags(instruction.args)
            if "from" in flags:
                continue
            found += [(instruction, source) for source in words[:-1]]
        if instruction.keyword == "RUN":
            for mount in mounts_of(instruction):
                if mount.get("type") == "bind" and "from" not in mount:
                    found.append((instruction, mount.get("source", ".")))
    return found


def test_hadolint_finds_nothing() -> None:
    done = run([tool("hadolint"), "--no-color", str(DOCKERFILE)], timeout=60, check=False)
    assert done.returncode == 0, f"hadolint findings in deploy/Dockerfile:\n{done.stdout}"


def test_two_stages_of_the_same_slim_python_base() -> None:
    bases = [split_flags(i.args)[1][0] for i in instructions() if i.keyword == "FROM"]
    assert len(bases) == 2, f"expected a build and a runtime stage, got FROM {bases}"
    assert bases[0] == bases[1], "the venv links to the base's python: both stages need one base"
    minor = (ROOT / ".python-version").read_text(encoding="utf-8").strip()
    assert bases[1].startswith(f"python:{minor}-slim"), (
        f"base {bases[1]} is not python:{minor}-slim… (the minor of .python-version)"
    )


def test_runtime_stage_runs_pipebot_as_a_numeric_non_root_user_behind_tini() -> None:
    runtime = stage_instructions(1)
    users = [i.args for i in runtime if i.keyword == "USER"]
    assert users, "the runtime stage sets no USER: it would run as root"
    user, _, group = users[-1].partition(":")
    # The kubelet can only check runAsNonRoot against a numeric user.
    assert user.isdigit() and int(user) != 0, f"USER {users[-1]} is not a numeric non-root id"
    assert not group or (group.isdigit() and int(group) != 0), f"USER {users[-1]}: group"
    (entrypoint,) = [i.args for i in runtime if i.keyword == "ENTRYPOINT"]
    assert json.loads(entrypoint) == ["tini", "--", "pipebot"], (
        f"ENTRYPOINT {entrypoint}: want the exec form behind tini, so SIGTERM reaches pipebot"
    )
    (cmd,) = [i.args for i in runtime if i.keyword == "CMD"]
    assert json.loads(cmd) == ["serve"]
    assert any("tini" in i.args for i in runtime if i.keyword == "RUN"), "tini is not installed"
    assert not any(i.keyword == "HEALTHCHECK" for i in instructions()), (
        "no HEALTHCHECK: worker and clock serve no HTTP; compose and Kubernetes probe web"
    )


def test_runtime_stage_takes_only_the_venv_from_the_build() -> None:
    copies = [split_flags(i.args) for i in stage_instructions(1) if i.keyword == "COPY"]
    assert copies == [({"from": ["build"]}, ["/opt/venv", "/opt/venv"])], copies


def test_every_copied_path_exists_and_is_in_the_build_context() -> None:
    rules = ignore_rules()
    problems = []
    for instruction, source in copied_sources():
        path = ROOT / source
        where = f"Dockerfile line {instruction.line}: {source}"
        if not path.exists():
            problems.append(f"{where} does not exist")
        elif source.strip("/") not in ("", ".") and not in_context(source.strip("/"), rules):
            problems.append(f"{where} is excluded by .dockerignore")
        elif path.is_dir() and not any(context_files(path, rules)):
            problems.append(f"{where}: .dockerignore leaves none of its files in the context")
    assert not problems, "\n".join(problems)


def test_uv_in_the_image_is_the_locked_uv() -> None:
    lock = tomllib.loads((ROOT / "uv.lock").read_text(encoding="utf-8"))
    (locked,) = [p["version"] for p in lock["package"] if p["name"] == "uv"]
    images = [
        split_flags(i.args)[0]["from"][0]
        for i in instructions()
        if i.keyword == "COPY" and "from" in split_flags(i.args)[0]
    ]
    assert f"ghcr.io/astral-sh/uv:{locked}" in images, (
        f"the build copies uv from {images}; uv.lock pins uv {locked} for the dev extra"
    )


# --- the build, replayed into a fresh venv ---------------------------------------------------


@dataclass(frozen=True)
class Built:
    venv: Path
    home: Path  # a working directory and HOME for the commands run in it


def _uv_syncs() -> list[Instruction]:
    syncs = [i for i in stage_instructions(0) if i.keyword == "RUN" and "uv sync" in i.args]
    assert len(syncs) == 2, "expected the dependencies step and the project step"
    return syncs


def _build_env(venv: Path) -> dict[str, str]:
    """The build stage's ENV, with the venv and the interpreter of this machine."""
    env = {k: v for k, v in os.environ.items() if k not in ("VIRTUAL_ENV", "PYTHONPATH")}
    for instruction in stage_instructions(0):
        if instruction.keyword == "ENV":
            env.update(env_of(instruction))
    env["UV_PROJECT_ENVIRONMENT"] = str(venv)
    env["UV_PYTHON"] = getattr(sys, "_base_executable", sys.executable)
    return env


def _build_args() -> dict[str, str]:
    """The build stage's ARGs at their defaults (a `docker build` without --build-arg)."""
    found = {}
    for instruction in stage_instructions(0):
        if instruction.keyword == "ARG":
            name, _, default = instruction.args.partition("=")
            found[name] = "".join(shlex.split(default))
    return found


def _shell_of(instruction: Instruction) -> str:
    """A RUN's command as /bin/sh gets it: the text after its --flags."""
    return re.sub(r"^(?:--\S+\s+)*", "", instruction.args)


def _sync(instruction: Instruction, cwd: Path, env: dict[str, str]) -> None:
    words = command_of(instruction)
    assert words[:2] == ["uv", "sync"], f"Dockerfile line {instruction.line}: {words}"
    # Run by /bin/sh as the build runs it, the build args (PIPEBOT_EXTRAS) at their defaults in
    # its environment, and with the dev venv's uv. A cold cache downloads ~90 wheels from PyPI;
    # a warm one links them in seconds.
    shell_env = {**env, **_build_args(), "PATH": f"{Path(tool('uv')).parent}:{env['PATH']}"}
    run(["/bin/sh", "-c", _shell_of(instruction)], cwd=cwd, env=shell_env, timeout=600)


def test_warehouse_drivers_are_extras_chosen_by_a_build_arg() -> None:
    """Both `uv sync` steps take PIPEBOT_EXTRAS (empty by default) as --extra flags, each a
    pipebot extra: a sync leaves out what it is not asked for, so they must agree."""
    assert _build_args() == {"PIPEBOT_EXTRAS": ""}
    extras = PYPROJECT["project"]["optional-dependencies"]
    assert {"snowflake", "bigquery", "redshift", "databricks", "all"} <= set(extras)
    for instruction in _uv_syncs():
        shown = run(
            ["/bin/sh", "-c", _shell_of(instruction).replace("uv sync", "echo uv sync", 1)],
            env={"PATH": "/usr/bin:/bin", "PIPEBOT_EXTRAS": "snowflake bigquery"},
            timeout=30,
        ).stdout.split()
        assert shown[-4:] == ["--extra", "otel", "--extra=snowflake", "--extra=bigquery"], shown
        default = run(
            ["/bin/sh", "-c", _shell_of(instruction).replace("uv sync", "echo uv sync", 1)],
            env={"PATH": "/usr/bin:/bin", **_build_args()},
            timeout=30,
        ).stdout.split()
        assert default[-2:] == ["--extra", "otel"], default


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> Built:
    root = tmp_path_factory.mktemp("image")
    context, venv, home = root / "src", root / "venv", root / "home"
    context.mkdir()
    home.mkdir()
    env = _build_env(venv)
    deps, project = _uv_syncs()
    # Step 1 sees only its bind mounts, as in the build.
    for mount in mounts_of(deps):
        if mount.get("type") != "bind":
            continue
        shutil.copy2(ROOT / mount["source"], context / mount["target"])
    _sync(deps, context, env)
    for path in context.iterdir():
        path.unlink()
    # Step 2 sees what the COPY lines before it put in the context (minus .dockerignore).
    rules = ignore_rules()
    for instruction in stage_instructions(0):
        if instruction.keyword != "COPY" or "from" in split_flags(instruction.args)[0]:
            continue
        for source in split_flags(instruction.args)[1][:-1]:
            for path in context_files(ROOT / source, rules):
                target = context / path.relative_to(ROOT)
                target.parent.mkdir(parents=True, exist_ok=True)
                shutil.copy2(path, target)
    _sync(project, context, env)
    return Built(venv=venv, home=home)


def _runtime_env(built: Built, **extra: str) -> dict[str, str]:
    """The image's runtime environment: its ENV, PATH into the venv, nothing of this shell's
    PIPEBOT_* settings, a SQLite database in the working directory."""
    env = {"HOME": str(built.home), "LANG": "C.UTF-8"}
    for instruction in stage_instructions(1):
        if instruction.keyword == "ENV":
            env.update(env_of(instruction))
    env["PATH"] = f"{built.venv / 'bin'}:/usr/bin:/bin"
    env["PIPEBOT_DATABASE_URL"] = f"sqlite:///{built.home / 'pipebot.db'}"
    env.update(extra)
    return env


def _pipebot(built: Built, *args: str, **extra: str) -> subprocess.CompletedProcess[str]:
    return run(
        [str(built.venv / "bin" / "pipebot"), *args],
        cwd=built.home,
        env=_runtime_env(built, **extra),
        timeout=120,
    )


def test_the_venv_holds_exactly_the_locked_runtime_packages(built: Built) -> None:
    words = command_of(_uv_syncs()[1])
    extras = [f"--extra={w}" for flag, w in itertools.pairwise(words) if flag == "--extra"]
    exported = run(
        [
            tool("uv"),
            "export",
            "--frozen",
            "--no-dev",
            "--no-emit-project",
            "--no-hashes",
            "--no-header",
            "--no-annotate",
            *extras,
        ],
        timeout=60,
    ).stdout
    # The export is universal; keep what applies to this interpreter and platform.
    locked = set()
    for line in exported.splitlines():
        if "==" not in line or line.startswith("#"):
            continue
        requirement = Requirement(line)
        if requirement.marker is None or requirement.marker.evaluate():
            locked.add(f"{requirement.name}{requirement.specifier}".lower())
    frozen = run(
        [tool("uv"), "pip", "freeze", "--python", str(built.venv / "bin" / "python")],
        timeout=60,
    ).stdout
    installed = {line.strip().lower() for line in frozen.splitlines() if "==" in line}
    installed.discard(f"pipebot=={VERSION}")
    assert installed == locked, (
        f"not in the lock: {sorted(installed - locked)}; locked but missing: "
        f"{sorted(locked - installed)}"
    )
    run([tool("uv"), "pip", "check", "--python", str(built.venv / "bin" / "python")], timeout=60)


def test_pipebot_is_installed_as_a_wheel_not_a_link_to_the_source(built: Built) -> None:
    done = run(
        [str(built.venv / "bin" / "python"), "-c", "import bot; print(bot.__file__)"],
        cwd=built.home,
        env=_runtime_env(built),
        timeout=60,
    )
    assert str(built.venv) in done.stdout, f"bot is imported from {done.stdout.strip()}"


def test_version_runs(built: Built) -> None:
    assert _pipebot(built, "--version").stdout.strip() == f"pipebot, version {VERSION}"


def test_db_upgrade_and_doctor_run(built: Built) -> None:
    assert "revision" in _pipebot(built, "db", "upgrade").stdout
    # The demo's dbt artifacts ship as package data: doctor has something real to check.
    demo = run(
        [
            str(built.venv / "bin" / "python"),
            "-c",
            "import integrations.demo, pathlib; "
            "print(pathlib.Path(integrations.demo.__file__).parent / 'dbt')",
        ],
        cwd=built.home,
        env=_runtime_env(built),
        timeout=60,
    ).stdout.strip()
    _pipebot(built, "doctor", PIPEBOT_DBT__ARTIFACTS_DIR=demo)  # exit 0: every check passed


def test_every_module_imports_with_runtime_dependencies_only(built: Built) -> None:
    # A module importing a dev-only package (httpx, pytest …) would fail here, not in prod.
    script = """
import importlib, pkgutil
failed = []
for top in ("bot", "handlers", "integrations"):
    for module in pkgutil.walk_packages(importlib.import_module(top).__path__, top + "."):
        name = module.name
        if name.endswith(".__main__") or name.startswith("bot.store.migrations."):
            continue  # a CLI entry point; Alembic's env needs Alembic's context
        try:
            importlib.import_module(name)
        except Exception as exc:
            failed.append(f"{name}: {exc!r}")
print("\\n".join(failed))
"""
    done = run(
        [str(built.venv / "bin" / "python"), "-c", script],
        cwd=built.home,
        env=_runtime_env(built),
        timeout=180,
    )
    assert not done.stdout.strip(), f"modules that fail to import:\n{done.stdout}"


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def test_serve_answers_and_stops_on_sigterm(built: Built) -> None:
    port = _free_port()
    log = built.home / "serve.log"
    with log.open("w") as out:
        process = subprocess.Popen(
            [
                str(built.venv / "bin" / "pipebot"),
                "serve",
                "--host",
                "127.0.0.1",
                "--port",
                str(port),
            ],
            cwd=built.home,
            env=_runtime_env(built),
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    try:
        status = _wait_for(f"http://127.0.0.1:{port}/healthz", process, log, deadline_s=60)
        assert status == 200, f"/healthz answered {status}; log:\n{log.read_text()}"
        process.send_signal(signal.SIGTERM)
        code = process.wait(timeout=30)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait(timeout=10)
    # uvicorn re-raises SIGTERM after its graceful shutdown (so -15 as a child, not PID 1).
    assert code in (0, -signal.SIGTERM), f"exit {code} after SIGTERM; log:\n{log.read_text()}"


def _wait_for(url: str, process: subprocess.Popen[bytes], log: Path, *, deadline_s: float) -> int:
    """Poll `url` until it answers or the process exits; the wait between polls is a wait on
    the process, so a crash ends it at once."""
    deadline = time.monotonic() + deadline_s
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(url, timeout=2) as response:
                return int(response.status)
        except urllib.error.HTTPError as exc:
            return int(exc.code)
        except OSError:
            pass
        try:
            process.wait(timeout=0.2)
        except subprocess.TimeoutExpired:
            continue
        pytest.fail(f"pipebot serve exited {process.returncode}; log:\n{log.read_text()}")
    pytest.fail(f"{url} did not answer within {deadline_s:g} s; log:\n{log.read_text()}")

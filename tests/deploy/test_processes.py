"""The Procfile, the compose file and the Kubernetes manifests run the same processes, and each
command they run is one the pipebot CLI accepts."""

from __future__ import annotations

import shlex
from typing import Any

from click.testing import CliRunner

from bot.main import cli
from tests.deploy.deployfiles import (
    PROCFILE,
    k8s_documents,
    load_compose,
    pod_specs,
    render_kustomize,
)

PROCESSES = {
    "web": ["serve", "--role", "web"],
    "worker": ["serve", "--role", "worker"],
    "clock": ["clock"],
    "release": ["db", "upgrade"],
}


def procfile() -> dict[str, list[str]]:
    entries = {}
    for raw in PROCFILE.read_text(encoding="utf-8").splitlines():
        if not raw.strip() or raw.lstrip().startswith("#"):
            continue
        name, _, command = raw.partition(":")
        entries[name.strip()] = shlex.split(command)
    return entries


def test_procfile_runs_web_worker_one_clock_and_migrates_on_release() -> None:
    entries = procfile()
    assert set(entries) == {"web", "worker", "clock", "release"}
    for name, words in entries.items():
        assert words[0] == "pipebot", f"Procfile {name}: {words}"
    # One web dyno alone is a complete bot: its role is `all` until workers are scaled up.
    assert entries["web"][:2] == ["pipebot", "serve"] and "--role" not in entries["web"]
    assert entries["worker"][1:] == PROCESSES["worker"]
    assert entries["clock"][1:] == PROCESSES["clock"]
    assert entries["release"][1:] == PROCESSES["release"]


def every_command() -> list[tuple[str, list[str]]]:
    commands = [(f"Procfile {name}", words[1:]) for name, words in procfile().items()]
    for name, service in load_compose()["services"].items():
        if "command" in service and "env_file" in service:
            commands.append((f"compose {name}", list(service["command"])))
    documents: list[dict[str, Any]] = k8s_documents(render_kustomize())
    for workload, spec in pod_specs(documents).items():
        for container in spec["containers"]:
            commands.append((workload, list(container["args"])))
    return commands


def test_each_command_is_one_the_cli_accepts() -> None:
    # `--help` after the arguments: click parses them first, so an unknown command, option or
    # choice exits 2 with its usage error; nothing runs.
    problems = []
    for where, args in every_command():
        result = CliRunner().invoke(cli, [*args, "--help"])
        if result.exit_code != 0:
            problems.append(f"{where}: `pipebot {shlex.join(args)}`:\n{result.output}")
    assert not problems, "\n".join(problems)

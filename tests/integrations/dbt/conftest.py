"""Fixtures for the dbt connector tests: the real build's artifacts and the fake dbt Cloud."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from integrations.dbt.cloud import DbtCloudClient
from integrations.dbt.project import ArtifactsProject
from tests.fakes.dbt_cloud import FakeDbtCloud
from tests.stack.dbt_stack import DbtBuild


@pytest.fixture(scope="session")
def built_project(dbt_build: DbtBuild) -> ArtifactsProject:
    return ArtifactsProject(dbt_build.target_dir)


@pytest.fixture
def fake_cloud(dbt_build: DbtBuild) -> Iterator[FakeDbtCloud]:
    """The fake dbt Cloud serving the real build's artifacts as its newest daily run."""
    with FakeDbtCloud(build=dbt_build) as fake:
        yield fake
        assert fake.writes == [], "a write request reached the fake dbt Cloud"


@pytest.fixture
def empty_cloud() -> Iterator[FakeDbtCloud]:
    """The fake dbt Cloud without artifacts (for API behaviour that needs no dbt build)."""
    with FakeDbtCloud() as fake:
        yield fake
        assert fake.writes == [], "a write request reached the fake dbt Cloud"


def client_for(fake: FakeDbtCloud, *, token: str | None = None) -> DbtCloudClient:
    return DbtCloudClient(
        base_url=fake.base_url,
        account_id=fake.account_id,
        token=fake.token if token is None else token,
        backoff=0.01,
        discovery_url=fake.base_url + "/graphql",
    )

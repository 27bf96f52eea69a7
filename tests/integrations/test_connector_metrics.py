"""Connector metrics from the real clients: calls, errors by reason and latency, labelled by
connector and client method — against the fake Airflow, the fake dbt Cloud and a SQLite
warehouse."""

from __future__ import annotations

import socket
import sqlite3
from collections.abc import Iterator
from pathlib import Path

import pytest

from bot import metrics
from bot.errors import NotFound, SourceAuthError, SourceUnavailable
from integrations._http import Operations
from integrations.airflow import AirflowClient
from integrations.airflow.client import OPERATIONS as AIRFLOW
from integrations.dbt import DbtCloudClient
from integrations.dbt.cloud import OPERATIONS as DBT_CLOUD
from integrations.warehouse.catalog import Catalog
from tests.fakes.airflow_server import GatedAirflow
from tests.fakes.dbt_cloud import FakeDbtCloud


class Counts:
    """The connector series of the process registry, read before and after."""

    def __init__(self, connector: str) -> None:
        self.connector = connector
        self.before = self._read()

    def _read(self) -> dict[tuple[str, str, str], float]:
        found: dict[tuple[str, str, str], float] = {}
        for family in metrics.REGISTRY.collect():
            for sample in family.samples:
                if sample.labels.get("connector") != self.connector:
                    continue
                key = (sample.name, sample.labels["operation"], sample.labels.get("reason", ""))
                found[key] = sample.value
        return found

    def delta(self) -> dict[tuple[str, str, str], float]:
        after = self._read()
        changed = {k: v - self.before.get(k, 0.0) for k, v in after.items()}
        return {k: v for k, v in changed.items() if v}


@pytest.fixture
def airflow() -> Iterator[GatedAirflow]:
    with GatedAirflow() as running:
        yield running


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def test_airflow_calls_errors_and_latency_by_operation(airflow: GatedAirflow) -> None:
    counts = Counts("airflow")
    client = AirflowClient(airflow.url, username="admin", password="admin")
    assert client.dags()
    with pytest.raises(NotFound):
        client.dag("no_such_dag")
    with pytest.raises(SourceAuthError):
        AirflowClient(airflow.url, token="not-the-token", api_version="v2").dags()
    slow = AirflowClient(airflow.url, username="admin", password="admin", timeout=0.3)
    assert slow.dags()  # the version detected and the token fetched before the gate closes
    airflow.close_gate()
    try:
        with pytest.raises(SourceUnavailable, match="timed out"):
            slow.import_errors()
    finally:
        airflow.open_gate()
    with pytest.raises(SourceUnavailable, match="cannot connect"):
        AirflowClient(f"http://127.0.0.1:{free_port()}", api_version="v2").dags()

    delta = counts.delta()
    requests = {op: n for (name, op, _), n in delta.items() if name.endswith("requests_total")}
    errors = {(op, why): n for (name, op, why), n in delta.items() if name.endswith("errors_total")}
    assert errors == {
        ("dag", "not_found"): 1,
        ("dags", "auth"): 1,
        ("import_errors", "timeout"): 1,
        ("dags", "connection"): 1,
    }
    assert requests["token"] == 2 and requests["import_errors"] == 1
    assert requests["dags"] >= 4 and requests["dag"] >= 1
    assert "other" not in requests
    # Every call went out (the unreachable one aside): the fake saw as many as were counted.
    assert sum(requests.values()) == len(airflow.requests) + 1
    timed = {op: n for (name, op, _), n in delta.items() if name.endswith("seconds_sum")}
    assert 0.3 <= timed["import_errors"] < 5  # the timeout, waited out


def test_dbt_cloud_calls_by_operation() -> None:
    with FakeDbtCloud() as fake:
        counts = Counts("dbt_cloud")
        client = DbtCloudClient(
            base_url=fake.base_url, account_id=fake.account_id, token=fake.token
        )
        assert client.jobs()
        with pytest.raises(NotFound):
            client.run(987654321)
        with pytest.raises(SourceAuthError):
            DbtCloudClient(base_url=fake.base_url, account_id=fake.account_id, token="bad").jobs()
    delta = counts.delta()
    assert delta[("pipebot_connector_requests_total", "jobs", "")] == 2
    assert delta[("pipebot_connector_requests_total", "run", "")] == 1
    assert delta[("pipebot_connector_errors_total", "run", "not_found")] == 1
    assert delta[("pipebot_connector_errors_total", "jobs", "auth")] == 1


def test_warehouse_statements_are_counted(tmp_path: Path) -> None:
    path = tmp_path / "wh.sqlite"
    with sqlite3.connect(path) as connection:
        connection.execute("create table orders (id integer primary key, amount real)")
    counts = Counts("warehouse")
    with Catalog(f"sqlite:///{path}") as catalog:
        assert [t.name for t in catalog.tables()] == ["orders"]
        with pytest.raises(NotFound):
            catalog.tables("nope")
    delta = counts.delta()
    assert delta[("pipebot_connector_requests_total", "schemas", "")] == 2
    assert delta[("pipebot_connector_requests_total", "relations", "")] == 1
    assert not [key for key in delta if key[0] == "pipebot_connector_errors_total"]


@pytest.mark.parametrize(
    ("table", "path", "operation"),
    [
        (AIRFLOW, "/api/v2/dags", "dags"),
        (AIRFLOW, "/base/api/v1/dags/a%2Fb", "dag"),
        (AIRFLOW, "/api/v2/dags/~/dagRuns", "runs"),
        (AIRFLOW, "/api/v2/dags/d/dagRuns/manual__2026-01-01T00%3A00%3A00%2B00%3A00", "run"),
        (AIRFLOW, "/api/v2/dags/d/dagRuns/r/taskInstances", "task_instances"),
        (AIRFLOW, "/api/v2/dags/d/dagRuns/r/taskInstances/t/3/tries", "tries"),
        (AIRFLOW, "/api/v2/dags/d/dagRuns/r/taskInstances/t", "tries"),
        (AIRFLOW, "/api/v2/dags/d/dagRuns/r/taskInstances/t/logs/2", "task_log"),
        (AIRFLOW, "/api/v2/importErrors", "import_errors"),
        (AIRFLOW, "/api/v2/monitor/health", "health"),
        (AIRFLOW, "/api/v1/health", "health"),
        (AIRFLOW, "/auth/token", "token"),
        (AIRFLOW, "/api/v2/something/new", "other"),
        (DBT_CLOUD, "/api/v2/accounts/1/", "account"),
        (DBT_CLOUD, "/api/v2/accounts/1/runs/", "runs"),
        (DBT_CLOUD, "/api/v2/accounts/1/runs/42/", "run"),
        (DBT_CLOUD, "/api/v2/accounts/1/runs/42/retry/", "failure_details"),
        (DBT_CLOUD, "/api/v2/accounts/1/runs/42/artifacts/", "run_artifacts"),
        (DBT_CLOUD, "/api/v2/accounts/1/runs/42/artifacts/manifest.json", "run_artifact"),
        (DBT_CLOUD, "/api/v2/accounts/1/jobs/7/artifacts/run_results.json", "job_artifact"),
        (DBT_CLOUD, "/api/v2/accounts/1/steps/9/", "step"),
    ],
)
def test_paths_are_named_after_the_client_method(
    table: Operations, path: str, operation: str
) -> None:
    assert table.name(path) == operation

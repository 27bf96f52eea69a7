"""AirflowClient against the real Airflow 3.3.2 of the harness (tests/stack)."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import quote, urlsplit

import pytest
import requests
from requests.adapters import HTTPAdapter

from bot.errors import NotFound, SourceAuthError
from bot.ports import Orchestrator
from integrations.airflow import AirflowClient
from tests.stack.airflow_fixtures import AirflowEnv
from tests.stack.airflow_stack import JWT_SECRET, free_port

pytestmark = pytest.mark.integration


@pytest.fixture(params=["admin", "viewer"])
def client(request: pytest.FixtureRequest, airflow_stack: AirflowEnv) -> AirflowClient:
    user = getattr(airflow_stack, request.param)
    return AirflowClient(airflow_stack.base_url, username=user.username, password=user.password)


def test_is_an_orchestrator(client: AirflowClient) -> None:
    orchestrator: Orchestrator = client
    assert orchestrator.system == "Airflow"


def test_health_and_version(client: AirflowClient) -> None:
    health = client.health()
    assert health.healthy
    assert health.dag_processor == "healthy"
    assert health.scheduler_heartbeat is not None
    assert client.version() == "3.3.2"
    assert client.api_version == "v2"  # detected: the client was built with "auto"


def test_dags(client: AirflowClient) -> None:
    dags = {d.dag_id: d for d in client.dags()}
    assert set(dags) == {"shop_ingest", "orders_daily", "payments_sync"}
    assert dags["orders_daily"].owners == ("dana",)
    assert "dbt" in dags["orders_daily"].tags
    assert dags["orders_daily"].schedule == "0 0 * * *"
    assert dags["orders_daily"].fileloc == "orders_daily.py"
    assert client.dag("payments_sync").description == "Sync settled payments into raw.payments"


def test_unknown_dag_suggests_close_ids(client: AirflowClient) -> None:
    with pytest.raises(NotFound) as caught:
        client.dag("orders_dialy")
    assert caught.value.suggestions == ("orders_daily",)


def test_failing_dag(client: AirflowClient, airflow_stack: AirflowEnv) -> None:
    run_id = airflow_stack.run_ids["orders_daily"]
    assert ":" in run_id and "+" in run_id  # manual__2026-…T19:59:59.52+00:00
    run = client.run("orders_daily", run_id)
    assert run.state == "failed"
    assert run.run_type == "manual"
    assert run.triggered_by == "rest_api"
    tasks = {t.task_id: t for t in client.task_instances("orders_daily", run_id)}
    assert tasks["transform"].state == "failed"
    assert tasks["transform"].max_tries == 0
    assert tasks["publish_dashboard"].state == "upstream_failed"
    assert tasks["notify"].state == "upstream_failed"
    broken = client.task_instances("orders_daily", run_id, states=("failed", "upstream_failed"))
    assert {t.task_id for t in broken} == {"transform", "publish_dashboard", "notify"}

    log = client.task_log("orders_daily", run_id, "transform", tasks["transform"].try_number)
    assert log.errors[0].exc_type == "KeyError"
    assert "column 'amount' missing from raw.orders" in log.errors[0].message
    assert "upstream schema changed" in log.errors[0].message
    assert any(frame.endswith("in transform") for frame in log.errors[0].frames)
    assert any(line.endswith("ERROR Task failed with exception") for line in log.lines)
    assert "attempt=1.log" in log.source


def test_flaky_dag_has_two_tries(client: AirflowClient, airflow_stack: AirflowEnv) -> None:
    run_id = airflow_stack.run_ids["payments_sync"]
    assert client.run("payments_sync", run_id).state == "success"
    tries = client.tries("payments_sync", run_id, "sync_payments")
    assert [(t.try_number, t.state) for t in tries] == [(1, "failed"), (2, "success")]
    first = client.task_log("payments_sync", run_id, "sync_payments", 1)
    assert first.errors[0].exc_type == "ConnectionError"
    assert "refused the connection (attempt 1)" in first.errors[0].message
    second = client.task_log("payments_sync", run_id, "sync_payments", 2)
    assert second.errors == ()
    assert any("synced 121 settled payments" in line for line in second.lines)


def test_runs_newest_first_across_dags(client: AirflowClient, airflow_stack: AirflowEnv) -> None:
    runs = client.runs(limit=50)
    assert {r.run_id for r in runs} >= set(airflow_stack.run_ids.values())
    # Newest first by when they ran: the late shop_ingest run (dated 2026-01-05) leads.
    started = [r.start_date for r in runs if r.start_date]
    assert started == sorted(started, reverse=True)
    assert runs[0].run_id == airflow_stack.late_run_id
    assert len(client.runs(limit=2)) == 2

    since = datetime.now(UTC) - timedelta(hours=24)
    failed = client.runs(states=("failed",), since=since, limit=100)
    assert {r.dag_id for r in failed} == {"orders_daily"}
    assert airflow_stack.run_ids["orders_daily"] in {r.run_id for r in failed}
    assert client.runs(states=("failed",), since=datetime.now(UTC) + timedelta(hours=1)) == []
    mine = client.runs("shop_ingest", states=("success",))
    assert mine and {r.dag_id for r in mine} == {"shop_ingest"}
    assert {r.state for r in client.runs(None, states=("queued",), since=since)} <= {"queued"}


def test_import_errors(client: AirflowClient) -> None:
    errors = client.import_errors()
    assert [e.filename for e in errors] == ["broken_dag.py"]
    assert "ModuleNotFoundError: No module named 'shop_refunds_sdk'" in errors[0].stack_trace
    assert errors[0].timestamp is not None


def test_check_ok(client: AirflowClient) -> None:
    check = client.check()
    assert check.ok, check.detail
    assert check.version == "3.3.2"
    assert "can read DAGs" in check.detail


def test_viewer_cannot_trigger_outside_our_client(airflow_stack: AirflowEnv) -> None:
    token = requests.post(
        f"{airflow_stack.base_url}/auth/token",
        json={"username": "viewer", "password": "viewer"},
        timeout=10,
    ).json()["access_token"]
    answer = requests.post(
        f"{airflow_stack.base_url}/api/v2/dags/shop_ingest/dagRuns",
        json={"logical_date": None},
        headers={"Authorization": f"Bearer {token}"},
        timeout=10,
    )
    assert answer.status_code == 403


def test_only_gets_and_the_token_exchange_reach_the_server(airflow_stack: AirflowEnv) -> None:
    seen: list[tuple[str, str]] = []

    class Spy(HTTPAdapter):
        def send(self, request: requests.PreparedRequest, **kwargs: Any) -> requests.Response:  # type: ignore[override]
            seen.append((request.method or "", urlsplit(request.url or "").path))
            return super().send(request, **kwargs)

    run_id = airflow_stack.run_ids["orders_daily"]
    client = AirflowClient(
        airflow_stack.base_url, username="viewer", password="viewer", adapter=Spy()
    )
    client.health()
    client.version()
    client.dags()
    client.dag("orders_daily")
    client.runs()
    client.runs("orders_daily", states=("failed",), since=datetime.now(UTC) - timedelta(days=1))
    client.run("orders_daily", run_id)
    client.task_instances("orders_daily", run_id)
    client.tries("orders_daily", run_id, "transform")
    client.task_log("orders_daily", run_id, "transform", 1)
    client.import_errors()
    client.check()
    assert {m for m, _ in seen} == {"GET", "POST"}
    assert {p for m, p in seen if m == "POST"} == {"/auth/token"}
    assert sum(1 for m, _ in seen if m == "POST") == 1  # token cached


def _expired(token: str) -> str:
    """The same JWT with its lifetime moved into the past, re-signed with the stack's key."""
    header, payload, _ = token.split(".")
    claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    now = int(time.time())
    claims.update(iat=now - 7200, nbf=now - 7200, exp=now - 3600)

    def b64(data: bytes) -> str:
        return base64.urlsafe_b64encode(data).rstrip(b"=").decode()

    body = b64(json.dumps(claims).encode())
    signature = hmac.new(JWT_SECRET.encode(), f"{header}.{body}".encode(), hashlib.sha512)
    return f"{header}.{body}.{b64(signature.digest())}"


def test_expired_token_is_renewed_once(airflow_stack: AirflowEnv) -> None:
    fresh = airflow_stack.stack.token("viewer")
    stale = _expired(fresh)
    alone = AirflowClient(airflow_stack.base_url, token=stale)
    with pytest.raises(SourceAuthError, match="Token Expired"):
        alone.dags()

    client = AirflowClient(
        airflow_stack.base_url, token=stale, username="viewer", password="viewer"
    )
    assert {d.dag_id for d in client.dags()} >= {"orders_daily"}
    recent = client.session.recent()
    assert recent.count("POST /auth/token") == 1
    assert recent.index("POST /auth/token") > 0  # after the rejected call
    client.dags()
    assert client.session.recent().count("POST /auth/token") == 1


def test_garbage_token_and_wrong_password(airflow_stack: AirflowEnv) -> None:
    with pytest.raises(SourceAuthError, match="403"):
        AirflowClient(airflow_stack.base_url, token="not-a-jwt").dags()
    check = AirflowClient(airflow_stack.base_url, username="viewer", password="wrong").check()
    assert not check.ok
    assert check.detail.startswith("not authenticated")
    assert "wrong" not in check.detail


def test_run_ids_with_colon_and_plus_are_encoded(airflow_stack: AirflowEnv) -> None:
    client = AirflowClient(airflow_stack.base_url, username="viewer", password="viewer")
    run_id = airflow_stack.run_ids["shop_ingest"]
    assert client.api_version == "v2"  # detection first, so only the run call is captured
    with client.calls() as made:
        run = client.run("shop_ingest", run_id)
    assert run.run_id == run_id
    assert made == [f"GET /api/v2/dags/shop_ingest/dagRuns/{quote(run_id, safe='')}"]


def test_doctor_on_a_stopped_server_is_fast_and_readable() -> None:
    client = AirflowClient(f"http://127.0.0.1:{free_port()}", username="viewer", password="x")
    started = time.monotonic()
    check = client.check()
    elapsed = time.monotonic() - started
    assert not check.ok
    assert "connection refused" in check.detail
    assert check.detail.startswith("not reachable")
    assert elapsed < 10, f"doctor took {elapsed:.1f} s"
    print(f"doctor against a stopped server: {elapsed:.2f} s — {check.detail}")

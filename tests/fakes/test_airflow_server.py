"""`GatedAirflow` answers like the demo recordings do in-process, holds requests at its gate,
survives clients that die while held, and serves the real `pipebot` CLI."""

from __future__ import annotations

import contextlib
import json
import os
import socket
import struct
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from bot.settings import AirflowSettings
from integrations.airflow import AirflowClient
from integrations.demo import DEMO_AIRFLOW_URL, data_dir, demo_sources
from integrations.replay import ReplayAdapter
from tests.fakes.airflow_server import GatedAirflow

DAG = "orders_daily"
BIN = Path(sys.executable).parent
# Settings pipebot reads from the environment under names other tools use (bot/settings.py).
_ECOSYSTEM = {"DATABASE_URL", "PORT", "DISCORD_TOKEN"}


@pytest.fixture
def airflow() -> Iterator[GatedAirflow]:
    with GatedAirflow() as server:
        yield server
        assert server.errors == []


def served_client(airflow: GatedAirflow) -> AirflowClient:
    """The client `pipebot serve` builds from PIPEBOT_AIRFLOW__* (api_version auto)."""
    settings = AirflowSettings(base_url=airflow.url, username="admin", password="admin")
    return AirflowClient.from_settings(settings)


def replay_client() -> AirflowClient:
    """The client `pipebot demo` builds: the same recordings, in-process."""
    return AirflowClient(
        DEMO_AIRFLOW_URL,
        username="viewer",
        password="demo",
        api_version="v2",
        adapter=ReplayAdapter(data_dir() / "airflow"),
    )


def in_thread(call: Any) -> tuple[threading.Thread, dict[str, Any]]:
    out: dict[str, Any] = {}

    def run() -> None:
        try:
            out["value"] = call()
        except Exception as exc:
            out["error"] = exc

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    return thread, out


def test_answers_the_same_facts_as_the_in_process_replay(airflow: GatedAirflow) -> None:
    served, replayed = served_client(airflow), replay_client()

    dag = served.dag(DAG)
    assert dag == replayed.dag(DAG)
    assert dag.dag_id == DAG and dag.owners

    runs = served.runs(DAG, limit=25)
    assert runs == replayed.runs(DAG, limit=25)
    assert [r.state for r in runs] == ["failed", "failed"]
    assert runs[0].run_id == "manual__2026-11-25T20:42:42.032326+00:00"

    health = served.health()
    assert health == replayed.health()
    assert health.healthy

    # A real Airflow 3 conversation: detection, then the token exchange, then bearer calls.
    assert served.api_version == "v2"
    assert airflow.requests[:2] == [("GET", "/api/v2/version"), ("POST", "/auth/token")]
    assert ("GET", f"/api/v2/dags/{DAG}/dagRuns") in airflow.requests


def test_calls_without_the_token_are_refused_like_airflow_3(airflow: GatedAirflow) -> None:
    anonymous = AirflowClient(airflow.url, api_version="v2")
    assert anonymous.health().healthy  # public, as on Airflow 3
    check = anonymous.check()
    assert not check.ok and "not authenticated" in check.detail


def test_the_gate_holds_a_call_until_it_opens(airflow: GatedAirflow) -> None:
    client = served_client(airflow)
    client.runs(DAG, limit=1)  # detection and token done: the next call is one request
    airflow.close_gate()

    thread, out = in_thread(lambda: client.dag(DAG))
    airflow.wait_blocked()
    assert airflow.blocked == 1
    assert airflow.held == [("GET", f"/api/v2/dags/{DAG}")]
    assert thread.is_alive() and out == {}

    airflow.open_gate()
    thread.join(timeout=10)
    assert not thread.is_alive()
    assert "error" not in out
    assert out["value"] == replay_client().dag(DAG)
    assert airflow.blocked == 0
    airflow.wait_idle()


def test_wait_blocked_fails_when_nothing_arrives(airflow: GatedAirflow) -> None:
    airflow.close_gate()
    with pytest.raises(AssertionError, match="held at the gate"):
        airflow.wait_blocked(timeout=0.05)


def _killed_process(url: str) -> Iterator[None]:
    """A client process SIGKILLed while its request is held (the crash tests' case)."""
    script = "import sys, urllib.request; urllib.request.urlopen(sys.argv[1], timeout=60)"
    victim = subprocess.Popen([sys.executable, "-c", script, url])
    try:
        yield
    finally:
        victim.kill()
        victim.wait(timeout=10)


def _reset_socket(url: str) -> Iterator[None]:
    """A client that aborts with a TCP reset: the held answer's write fails for sure."""
    host, port = url.removeprefix("http://").split("/", 1)[0].split(":")
    sock = socket.create_connection((host, int(port)), timeout=10)
    try:
        sock.sendall(b"GET /api/v2/monitor/health HTTP/1.1\r\nHost: airflow\r\n\r\n")
        yield
    finally:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        sock.close()


@pytest.mark.parametrize("client", [_killed_process, _reset_socket], ids=["sigkill", "reset"])
def test_a_client_gone_while_held_does_not_break_the_server(
    airflow: GatedAirflow, client: Any
) -> None:
    airflow.close_gate()
    with contextlib.contextmanager(client)(f"{airflow.url}/api/v2/monitor/health"):
        airflow.wait_blocked()
    assert airflow.held == [("GET", "/api/v2/monitor/health")]

    airflow.open_gate()
    airflow.wait_idle()
    assert airflow.errors == []
    assert served_client(airflow).health().healthy  # still serving


def clean_env(**extra: str) -> dict[str, str]:
    env = {
        name: value
        for name, value in os.environ.items()
        if not name.startswith(("PIPEBOT_", "SLACK_", "ANTHROPIC_")) and name not in _ECOSYSTEM
    }
    return {**env, **extra}


def test_the_real_cli_triages_the_recorded_failure(airflow: GatedAirflow, tmp_path: Path) -> None:
    from bot.playbooks.triage import TriageReport, triage_airflow

    expected = triage_airflow(demo_sources(), dag_id=DAG)  # what `triage --demo` reports
    assert isinstance(expected, TriageReport) and expected.failed

    env = clean_env(
        PIPEBOT_AIRFLOW__BASE_URL=airflow.url,
        PIPEBOT_AIRFLOW__USERNAME="admin",
        PIPEBOT_AIRFLOW__PASSWORD="admin",
        PIPEBOT_DATABASE_URL=f"sqlite:///{tmp_path}/x.db",
    )
    done = subprocess.run(
        [str(BIN / "pipebot"), "triage", "--dag-id", DAG, "--format", "json"],
        env=env,
        cwd=tmp_path,  # no stray .env
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    assert report["run_id"] == expected.run_id == "manual__2026-11-25T20:42:42.032326+00:00"
    assert report["run_state"] == "failed"
    assert [f["task_id"] for f in report["failed"]] == [f.task_id for f in expected.failed]
    assert report["failed"][0]["task_id"] == "transform"
    assert report["failed"][0]["error_type"] == "KeyError"
    assert report["upstream_failed"] == list(expected.upstream_failed)
    assert report["unavailable"] == []
    assert ("POST", "/auth/token") in airflow.requests

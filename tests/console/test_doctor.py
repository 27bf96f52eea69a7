"""`pipebot doctor` and chat commands when a source is down: named, fast, and the others still
answer."""

from __future__ import annotations

import socket
import subprocess
import sys
import time
from pathlib import Path

from integrations.demo import data_dir


def stopped_port() -> int:
    with socket.socket() as probe:  # bound, then closed: nothing listens there
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def run(
    args: list[str], tmp_path: Path, stdin: str = ""
) -> tuple[subprocess.CompletedProcess[str], float]:
    env = {
        "PATH": "/usr/bin:/bin",
        "HOME": str(tmp_path),
        "PIPEBOT_AIRFLOW__BASE_URL": f"http://127.0.0.1:{stopped_port()}",
        "PIPEBOT_AIRFLOW__USERNAME": "viewer",
        "PIPEBOT_AIRFLOW__PASSWORD": "not-used-secret",
        "PIPEBOT_DBT__ARTIFACTS_DIR": str(data_dir() / "dbt"),
        "PIPEBOT_DATABASE_URL": f"sqlite:///{tmp_path}/bot.db",
    }
    started = time.monotonic()
    done = subprocess.run(
        [sys.executable, "-m", "bot", *args],
        input=stdin,
        capture_output=True,
        text=True,
        timeout=60,
        cwd=tmp_path,
        env=env,
        check=False,
    )
    return done, time.monotonic() - started


def test_doctor_names_the_stopped_airflow_fast_and_exits_1(tmp_path: Path) -> None:
    done, seconds = run(["doctor"], tmp_path)
    assert done.returncode == 1, done.stdout + done.stderr
    assert seconds < 10
    out = done.stdout
    assert "Airflow" in out and "connection refused" in out
    assert "dbt" in out and "manifest v12" in out  # the healthy source is still checked
    assert "some checks failed" in out
    assert "not-used-secret" not in out + done.stderr


def test_status_says_which_source_is_unreachable_and_answers_from_the_others(
    tmp_path: Path,
) -> None:
    done, _ = run(["chat", "--format", "text"], tmp_path, stdin="status\nlineage fct_orders\n")
    assert done.returncode == 0, done.stderr
    out = done.stdout
    assert "Airflow unreachable" in out and "connection refused" in out
    assert "customer_ltv" in out  # the dbt part of status still answered
    assert "revenue_dashboard" in out  # and dbt-only commands work

"""`pipebot serve` as an operator runs it: the real CLI in a subprocess, configured only through
the environment, answering a signed slash command through the fake Slack API."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx

from tests.fakes.slack_api import BOT_TOKEN, FakeSlack
from tests.slack.conftest import SIGNING_SECRET, command_body, posted_text, sign

PIPEBOT = Path(sys.executable).with_name("pipebot")


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def test_pipebot_serve_answers_slack_on_port_from_the_environment(
    fake_slack: FakeSlack, tmp_path: Path
) -> None:
    port = free_port()
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "HOME": str(tmp_path),
        "PORT": str(port),  # as Heroku-style platforms set it; no --port given
        "PIPEBOT_DATABASE_URL": f"sqlite:///{tmp_path}/serve.db",
        "PIPEBOT_LOG_FORMAT": "json",
        "SLACK_BOT_TOKEN": BOT_TOKEN,
        "SLACK_SIGNING_SECRET": SIGNING_SECRET,
        "PIPEBOT_SLACK__API_URL": fake_slack.api_url,
        "PIPEBOT_WORK__CONCURRENCY": "4",
    }
    process = subprocess.Popen(
        [str(PIPEBOT), "serve", "--host", "127.0.0.1"],
        cwd=tmp_path,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        with httpx.Client(base_url=base, timeout=5) as http:
            deadline = time.monotonic() + 30
            while True:
                assert process.poll() is None, process.stdout.read() if process.stdout else ""
                try:
                    if http.get("/readyz").status_code == 200:
                        break
                except httpx.TransportError:
                    pass
                assert time.monotonic() < deadline, "pipebot serve did not become ready"
                time.sleep(0.05)
            body = command_body("help")
            headers = {"Content-Type": "application/x-www-form-urlencoded", **sign(body)}
            response = http.post("/slack/events", content=body, headers=headers)
            assert response.status_code == 200
            answer = fake_slack.wait_for(
                "chat.update", where=lambda c: "read-only" in posted_text(c), timeout=15
            )
            assert answer[0].token == BOT_TOKEN
            assert 'pipebot_events_received_total{source="slack"} 1.0' in http.get("/metrics").text
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            output, _ = process.communicate(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
            output, _ = process.communicate()
    # uvicorn shuts down gracefully, then re-raises the signal so the exit status says why.
    assert process.returncode in (0, -signal.SIGTERM), output
    assert "Application shutdown complete" in output
    assert "`token` will be unused" not in output
    assert BOT_TOKEN not in output and SIGNING_SECRET not in output  # secrets never logged

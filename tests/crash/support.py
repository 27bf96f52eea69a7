"""`pipebot serve` as real processes for crash tests: started with a clean environment, killed
with SIGKILL, restarted on the same store; a fake Slack (or Discord) in the test process counts
the posts."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path
from typing import Any

import httpx

from tests.fakes.slack_api import BOT_TOKEN, FakeSlack
from tests.slack.conftest import SIGNING_SECRET, command_body, sign

WEBHOOK_TOKEN = "crash-test-webhook-token"
ALERT_CHANNEL = "CALERTS"
# Variables a developer's shell may hold that would change what the process under test does.
_FOREIGN = ("PIPEBOT_", "SLACK_", "ANTHROPIC_", "DISCORD_", "DATABASE_URL", "PORT")


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


class Serve:
    """One `pipebot serve` process (restartable: each `start` is a new process)."""

    def __init__(
        self,
        tmp_path: Path,
        *,
        database_url: str,
        fake: FakeSlack | None,
        airflow_url: str | None = None,
        role: str = "all",
        port: int | None = None,
        extra_env: dict[str, str] | None = None,
        name: str = "serve",
    ) -> None:
        self.port = port or free_port()
        self.role = role
        self.name = name
        self._tmp = tmp_path
        self._generation = 0
        self.process: subprocess.Popen[bytes] | None = None
        env = {k: v for k, v in os.environ.items() if not k.startswith(_FOREIGN)}
        env.update(
            {
                "HOME": str(tmp_path),
                "PIPEBOT_DATABASE_URL": database_url,
                "PIPEBOT_LOG_FORMAT": "json",
                "PIPEBOT_WEBHOOKS__TOKEN": WEBHOOK_TOKEN,
                "PIPEBOT_ALERTS__CHANNEL": ALERT_CHANNEL,
                "PIPEBOT_ALERTS__WORKSPACE": "T1",
            }
        )
        if fake is not None:  # None: a process without Slack (Discord's crash tests)
            env.update(
                {
                    "PIPEBOT_SLACK__BOT_TOKEN": BOT_TOKEN,
                    "PIPEBOT_SLACK__SIGNING_SECRET": SIGNING_SECRET,
                    "PIPEBOT_SLACK__API_URL": fake.api_url,
                    "PIPEBOT_SLACK__MODE": "http",
                    "PIPEBOT_SLACK__PROGRESS_INTERVAL": "0.2",
                }
            )
        if airflow_url is not None:
            env.update(
                {
                    "PIPEBOT_AIRFLOW__BASE_URL": airflow_url,
                    "PIPEBOT_AIRFLOW__USERNAME": "admin",
                    "PIPEBOT_AIRFLOW__PASSWORD": "admin",
                }
            )
        env.update(extra_env or {})
        self.env = env

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def log(self) -> Path:
        return self._tmp / f"{self.name}-{self._generation}.log"

    def start(self, *, ready: bool = True) -> Serve:
        self._generation += 1
        args = [sys.executable, "-m", "bot", "serve", "--role", self.role]
        if self.role != "worker":
            args += ["--host", "127.0.0.1", "--port", str(self.port)]
        with self.log.open("wb") as out:
            self.process = subprocess.Popen(
                args, cwd=self._tmp, env=self.env, stdout=out, stderr=subprocess.STDOUT
            )
        if ready and self.role != "worker":
            self.wait_ready()
        return self

    def wait_ready(self, timeout: float = 60) -> None:
        deadline = time.monotonic() + timeout
        with httpx.Client(base_url=self.url, timeout=2) as http:
            while True:
                assert self.process is not None and self.process.poll() is None, self.tail()
                try:
                    if http.get("/readyz").status_code == 200:
                        return
                except httpx.TransportError:
                    pass
                assert time.monotonic() < deadline, f"not ready in {timeout} s\n{self.tail()}"
                time.sleep(0.05)

    def kill(self) -> None:
        """SIGKILL: no handler runs, nothing is flushed or released."""
        assert self.process is not None
        self.process.send_signal(signal.SIGKILL)
        self.process.wait(30)

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(10)

    def tail(self, lines: int = 40) -> str:
        text = self.log.read_text(errors="replace") if self.log.exists() else ""
        return "\n".join(text.splitlines()[-lines:])

    # --- what Slack and Airflow send -----------------------------------------------------------

    def command(self, text: str, http: httpx.Client | None = None) -> tuple[int, float]:
        """A signed `/pipebot <text>`; (status, seconds to the acknowledgement)."""
        body = command_body(text)
        headers = {"Content-Type": "application/x-www-form-urlencoded", **sign(body)}
        client = http or httpx.Client(base_url=self.url, timeout=10)
        started = time.perf_counter()
        try:
            response = client.post("/slack/events", content=body.encode(), headers=headers)
        finally:
            if http is None:
                client.close()
        return response.status_code, time.perf_counter() - started

    def airflow_alert(self, body: dict[str, Any]) -> httpx.Response:
        with httpx.Client(base_url=self.url, timeout=10) as http:
            return http.post(
                "/webhooks/airflow",
                content=json.dumps(body).encode(),
                headers={
                    "Content-Type": "application/json",
                    "Authorization": f"Bearer {WEBHOOK_TOKEN}",
                },
            )


def post_keys(fake: FakeSlack) -> Counter[str]:
    """How many messages in Slack carry each of pipebot's post keys."""
    keys: Counter[str] = Counter()
    for message in fake.messages():
        metadata = message.get("metadata") or {}
        key = (metadata.get("event_payload") or {}).get("key")
        if key:
            keys[str(key)] += 1
    return keys


def text_of(message: dict[str, Any]) -> str:
    return json.dumps(message.get("blocks") or []) + str(message.get("text") or "")

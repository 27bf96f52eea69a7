"""The Slack channel end to end: real Bolt and slack_sdk, the real store and core, a fake Slack.

`SlackStack` builds what ``pipebot serve`` builds (a `Server` with the `SlackChannel` installed)
and runs it with uvicorn on 127.0.0.1 (a real socket); requests are signed exactly as Slack
signs them.
"""

from __future__ import annotations

import json
import time
import urllib.parse
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from slack_sdk.signature import SignatureVerifier

from bot.access import AccessPolicy
from bot.commands import Command, Commands, Request
from bot.conversation import Conversation
from bot.messages import Reply
from bot.playbooks import default_commands
from bot.ports import Sources
from bot.redaction import Redactor
from bot.settings import AccessSettings, SlackSettings
from bot.store import Store
from bot.work import Engine
from bot.work.local import LocalEngine
from handlers.server import Server, ServerThread
from handlers.slack import SlackChannel
from tests.fakes.slack_api import APP_TOKEN, BOT_TOKEN, Call, FakeSlack

SIGNING_SECRET = "fake-signing-secret-123"


def sign(
    body: str, *, secret: str = SIGNING_SECRET, timestamp: int | None = None
) -> dict[str, str]:
    timestamp = int(time.time()) if timestamp is None else timestamp
    signature = SignatureVerifier(secret).generate_signature(timestamp=str(timestamp), body=body)
    return {
        "X-Slack-Request-Timestamp": str(timestamp),
        "X-Slack-Signature": signature,
    }


def command_body(text: str, **fields: str) -> str:
    form = {
        "token": "legacy-verification-token",
        "team_id": "T1",
        "team_domain": "fake",
        "channel_id": "C1",
        "channel_name": "data",
        "user_id": "U1",
        "user_name": "ada",
        "command": "/pipebot",
        "text": text,
        "response_url": "http://127.0.0.1:9/unused",
        "trigger_id": f"trig-{uuid.uuid4().hex[:8]}",
        "api_app_id": "A1",
        **fields,
    }
    return urllib.parse.urlencode(form)


def event_envelope(event: dict[str, Any], *, event_id: str | None = None) -> dict[str, Any]:
    return {
        "token": "legacy-verification-token",
        "team_id": "T1",
        "api_app_id": "A1",
        "event": event,
        "type": "event_callback",
        "event_id": event_id or f"Ev{uuid.uuid4().hex[:10]}",
        "event_time": int(time.time()),
        "authorizations": [
            {"team_id": "T1", "user_id": "UBOT", "is_bot": True, "is_enterprise_install": False}
        ],
    }


def mention(text: str, *, ts: str, thread_ts: str | None = None, channel: str = "C1") -> dict:
    event = {
        "type": "app_mention",
        "user": "U1",
        "text": f"<@UBOT> {text}",
        "ts": ts,
        "channel": channel,
        "event_ts": ts,
    }
    if thread_ts:
        event["thread_ts"] = thread_ts
    return event


def actions_body(value: str, *, message_ts: str, thread_ts: str | None = None) -> str:
    message: dict[str, Any] = {"type": "message", "ts": message_ts, "text": "…"}
    if thread_ts:
        message["thread_ts"] = thread_ts
    payload = {
        "type": "block_actions",
        "user": {"id": "U2", "username": "grace", "team_id": "T1"},
        "api_app_id": "A1",
        "token": "legacy-verification-token",
        "trigger_id": f"trig-{uuid.uuid4().hex[:8]}",
        "team": {"id": "T1", "domain": "fake"},
        "channel": {"id": "C1", "name": "data"},
        "container": {"type": "message", "message_ts": message_ts, "channel_id": "C1"},
        "message": message,
        "response_url": "http://127.0.0.1:9/unused",
        "actions": [
            {
                "action_id": "pipebot:0:triage",
                "block_id": "b1",
                "type": "button",
                "text": {"type": "plain_text", "text": "Triage"},
                "value": value,
                "action_ts": str(time.time()),
            }
        ],
    }
    return urllib.parse.urlencode({"payload": json.dumps(payload)})


@dataclass
class SlackStack:
    fake: FakeSlack
    store: Store
    server: Server
    channel: SlackChannel
    running: ServerThread | None
    http: httpx.Client

    def post(
        self,
        body: str,
        *,
        content_type: str = "application/x-www-form-urlencoded",
        headers: dict[str, str] | None = None,
        signed: bool = True,
    ) -> httpx.Response:
        sent = {"Content-Type": content_type, **(sign(body) if signed else {}), **(headers or {})}
        return self.http.post("/slack/events", content=body.encode(), headers=sent)

    def command(self, text: str, **fields: str) -> httpx.Response:
        return self.post(command_body(text, **fields))

    def event(
        self, event: dict[str, Any], *, event_id: str | None = None, retry: int = 0
    ) -> httpx.Response:
        body = json.dumps(event_envelope(event, event_id=event_id))
        headers = {"X-Slack-Retry-Num": str(retry), "X-Slack-Retry-Reason": "timeout"}
        return self.post(body, content_type="application/json", headers=headers if retry else None)

    def settle(self, timeout: float = 15.0) -> None:
        """Wait until every job ran (its posts are sent within the job)."""
        if not self.server.engine.wait_idle(timeout):
            raise AssertionError(
                f"not settled: jobs {self.server.engine.counts()}, "
                f"outbox {self.store.outbox.counts()}"
            )


def slack_settings(fake: FakeSlack, **overrides: Any) -> SlackSettings:
    values: dict[str, Any] = {
        "bot_token": BOT_TOKEN,
        "signing_secret": SIGNING_SECRET,
        "api_url": fake.api_url,
        "mode": "http",
        "progress_interval": 0.2,
    }
    values.update(overrides)
    return SlackSettings(**values)


@contextmanager
def slack_stack(
    fake: FakeSlack,
    tmp_path: Path,
    *,
    commands: Commands | None = None,
    access: AccessSettings | None = None,
    serve_http: bool = True,
    store_url: str = "",
    engine_options: dict[str, Any] | None = None,
    **settings: Any,
) -> Iterator[SlackStack]:
    store = Store.open(store_url or f"sqlite:///{tmp_path}/pipebot-{uuid.uuid4().hex[:6]}.db")
    conversation = Conversation(
        store=store,
        commands=commands or default_commands(),
        sources=Sources(),
        access=AccessPolicy.from_settings(access) if access else None,
    )
    server = Server(store=store, engine=engine_for(store, **(engine_options or {})))
    channel = SlackChannel.build(
        slack_settings(fake, **settings),
        handle=conversation.handle,
        commands=conversation.commands,
        store=store,
        server=server,
        redact=Redactor.build([BOT_TOKEN, SIGNING_SECRET, APP_TOKEN]),
    )
    channel.install()
    running = ServerThread(server).start() if serve_http else None
    if running is None:
        server.start()
    http = httpx.Client(base_url=running.url if running else "http://unused", timeout=10)
    try:
        yield SlackStack(fake, store, server, channel, running, http)
    finally:
        http.close()
        if running is not None:
            running.stop()
        else:
            server.stop()
        store.close()


def engine_for(store: Store, **options: Any) -> Engine:
    """The engine `pipebot serve` would use for `store`, polling fast for tests."""
    if store.backend == "postgresql":
        from bot.work.postgres import ProcrastinateEngine

        return ProcrastinateEngine(store, concurrency=4, **options)
    return LocalEngine(store, concurrency=4, poll=0.05, **options)


@pytest.fixture(scope="session")
def fake_slack_server() -> Iterator[FakeSlack]:
    with FakeSlack() as fake:
        yield fake


@pytest.fixture
def fake_slack(fake_slack_server: FakeSlack) -> FakeSlack:
    fake_slack_server.reset()
    return fake_slack_server


@pytest.fixture
def stack(fake_slack: FakeSlack, tmp_path: Path) -> Iterator[SlackStack]:
    with slack_stack(fake_slack, tmp_path) as running:
        yield running


def posted_text(call: Call) -> str:
    """Everything a person would read in a posted/updated message."""
    return json.dumps(call.params.get("blocks") or []) + str(call.params.get("text") or "")


def answers(fake: FakeSlack) -> list[Call]:
    """Calls that carried an answer (not the "working…" message or its progress edits)."""
    return [
        c
        for c in fake.calls
        if c.method in ("chat.postMessage", "chat.update", "chat.postEphemeral")
        and "⏳" not in str(c.params.get("text"))
    ]


def with_command(
    name: str, reply: Reply, *, steps: tuple[str, ...] = (), pause: float = 0.0
) -> Commands:
    """The default commands plus `name`, which reports `steps` as progress and returns `reply`
    (the real core routes to it like to any playbook)."""

    def run(request: Request) -> Reply:
        for step in steps:
            request.progress(step)
            if pause:
                time.sleep(pause)
        return reply

    return Commands([*default_commands(), Command(name=name, usage=name, summary=name, run=run)])

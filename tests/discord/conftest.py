"""A pipebot Discord stack against the fake Discord: the real discord.py client, the real
store, work engine and core; only Discord itself is a local fake server."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import discord
import httpx
import pytest
from discord.gateway import DiscordWebSocket

from bot.access import AccessPolicy
from bot.alerts import ALERT_JOB, AlertDesk
from bot.conversation import Conversation
from bot.names import Names
from bot.owners import OwnerDirectory
from bot.playbooks import default_commands, digest
from bot.ports import Sources
from bot.redaction import Redactor
from bot.settings import AccessSettings, AlertSettings, DiscordSettings, OwnerSettings
from bot.store import Store
from handlers import webhooks
from handlers.deliveries import Deliveries
from handlers.discord import DiscordChannel
from handlers.server import Server, ServerThread
from tests.fakes.discord_api import ALERTS_CHANNEL_ID, BOT_TOKEN, FakeDiscord
from tests.slack.conftest import engine_for

WEBHOOK_TOKEN = "discord-test-webhook-token"


@dataclass
class DiscordStack:
    fake: FakeDiscord
    store: Store
    server: Server
    channel: DiscordChannel
    deliveries: Deliveries
    url: str  # the HTTP server (webhooks, /readyz)

    def webhook(self, path: str, body: dict[str, Any]) -> httpx.Response:
        return httpx.post(
            self.url + path,
            json=body,
            headers={"Authorization": f"Bearer {WEBHOOK_TOKEN}"},
            timeout=10,
        )

    def settle(self, timeout: float = 20.0) -> None:
        """Until every job ran (its posts are sent within the job)."""
        if not self.server.engine.wait_idle(timeout):
            raise AssertionError(
                f"not settled: jobs {self.server.engine.counts()}, "
                f"outbox {self.store.outbox.counts()}"
            )


@contextmanager
def discord_stack(
    fake: FakeDiscord,
    tmp_path: Path,
    *,
    sources: Sources | None = None,
    access: AccessSettings | None = None,
    owners: OwnerSettings | None = None,
    store_url: str = "",
    role: str = "all",
    **settings: Any,
) -> Iterator[DiscordStack]:
    store = Store.open(store_url or f"sqlite:///{tmp_path}/pipebot-{uuid.uuid4().hex[:6]}.db")
    sources = sources or Sources()
    owner_directory = OwnerDirectory.from_settings(owners or OwnerSettings())
    conversation = Conversation(
        store=store,
        commands=default_commands(
            owners=owner_directory, incident_store=store.incidents, digest_store=store.digests
        ),
        sources=sources,
        access=AccessPolicy.from_settings(access) if access else None,
    )
    server = Server(store=store, engine=engine_for(store), role=role)
    desk = AlertDesk(
        store=store,
        sources=sources,
        settings=AlertSettings(channel=ALERTS_CHANNEL_ID, platform="discord"),
        owners=owner_directory,
        platform="discord",
    )
    deliveries = Deliveries(
        desk=desk,
        alert_platform="discord",
        alert_channel=ALERTS_CHANNEL_ID,
        digest=lambda payload: digest.scheduled(payload, sources=sources, store=store),
    )
    server.add_jobs(deliveries.jobs())
    server.add_routes(
        webhooks.routes(
            submit=lambda alert: server.submit(alert.key, ALERT_JOB, alert),
            token=WEBHOOK_TOKEN,
            dbt_secret=None,
        )
    )
    values: dict[str, Any] = {
        "token": BOT_TOKEN,
        "api_url": fake.api_url,
        "progress_interval": 0.2,
    }
    values.update(settings)
    channel = DiscordChannel(
        settings=DiscordSettings(**values),
        handle=conversation.handle,
        refusal=conversation.refusal,
        names=Names(sources),
        store=store,
        server=server,
        redact=Redactor.build([BOT_TOKEN]),
        deliveries=deliveries,
    )
    channel.install()
    base, gateway = discord.http.Route.BASE, DiscordWebSocket.DEFAULT_GATEWAY
    running = ServerThread(server).start()
    try:
        if role != "worker":
            fake.wait_ready()
        yield DiscordStack(fake, store, server, channel, deliveries, running.url)
    finally:
        running.stop()
        store.close()
        discord.http.Route.BASE, DiscordWebSocket.DEFAULT_GATEWAY = base, gateway


@pytest.fixture
def fake_discord() -> Iterator[FakeDiscord]:
    with FakeDiscord() as fake:
        yield fake


@pytest.fixture
def stack(fake_discord: FakeDiscord, tmp_path: Path) -> Iterator[DiscordStack]:
    with discord_stack(fake_discord, tmp_path) as running:
        yield running


def subcommand(name: str, **options: Any) -> list[dict[str, Any]]:
    """The options of ``/pipebot <name> key:value …``."""
    return [
        {
            "type": 1,
            "name": name,
            "options": [
                {"type": 4 if isinstance(v, int) else 3, "name": k, "value": v}
                for k, v in options.items()
            ],
        }
    ]


def embed_text(message: dict[str, Any]) -> str:
    """Everything a person reads in a message: content, embeds, fields, footers."""
    parts = [str(message.get("content") or "")]
    for embed in message.get("embeds") or []:
        parts += [str(embed.get("title") or ""), str(embed.get("description") or "")]
        for field in embed.get("fields") or []:
            parts += [str(field.get("name")), str(field.get("value"))]
        parts.append(str((embed.get("footer") or {}).get("text") or ""))
    return "\n".join(p for p in parts if p)

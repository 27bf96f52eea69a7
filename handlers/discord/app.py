"""Discord wired to the core: the discord.py client, its events, and its place in the server.

Accepting (the gateway, in the web and all roles) — persist, then acknowledge:

1. An app command or a button press becomes a `DiscordTurn` (`handlers.discord.inbound`). If
   the core would refuse it (`Conversation.refusal`: the asker's channel, server or roles are not
   allowed), the explanation is sent at once, visible to the asker only, and nothing is queued.
2. Otherwise the turn is persisted as a job keyed by the interaction (`Server.submit`, off the
   event loop), then the interaction is deferred ("pipebot is thinking…"), well within Discord's
   3 seconds. A replayed event finds its key taken and is not deferred twice.
3. A message that mentions pipebot, a DM, or (with the message-content intent) a message in a
   thread pipebot takes part in is persisted the same way.

The answer is built by `DiscordWorker` on the work engine and posted by `DiscordPoster`;
alerts and digests are posted by `DiscordAlerts` for `handlers.deliveries`.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from typing import Any

import discord
import yarl
from discord import app_commands
from discord.gateway import DiscordWebSocket

from bot import metrics
from bot.errors import ConfigError
from bot.messages import InboundMessage, Reply, ThreadRef
from bot.names import Names
from bot.settings import DiscordSettings
from bot.store import Store
from handlers.deliveries import Deliveries
from handlers.discord.alerts import DiscordAlerts
from handlers.discord.commands import pipebot_group
from handlers.discord.embeds import render_embeds
from handlers.discord.inbound import (
    PLATFORM,
    DiscordTurn,
    from_interaction,
    from_message,
    to_inbound,
)
from handlers.discord.poster import ActionButton, DiscordPoster
from handlers.discord.runtime import Runtime
from handlers.discord.worker import TURN_JOB, DiscordWorker, Handle
from handlers.server import Server

log = logging.getLogger(__name__)

# What pipebot may do in a server: the invite link asks for exactly these (docs/discord.md).
PERMISSIONS = discord.Permissions(
    view_channel=True,
    send_messages=True,
    send_messages_in_threads=True,
    create_public_threads=True,
    embed_links=True,
    attach_files=True,
    read_message_history=True,
)
SCOPES = ("bot", "applications.commands")
# A rate limit longer than this fails the call (the job retries later) instead of blocking
# the loop every Discord call shares.
MAX_RATELIMIT_WAIT_S = 30.0

# The `source` of Discord's events in metrics.
SOURCE = "discord"


class _QuietVoiceWarning(logging.Filter):
    """discord.py warns at every client start that its voice extras are missing; pipebot never
    speaks."""

    def filter(self, record: logging.LogRecord) -> bool:
        return "voice will NOT be supported" not in record.getMessage()


logging.getLogger("discord.client").addFilter(_QuietVoiceWarning())


def intents(settings: DiscordSettings) -> discord.Intents:
    """The gateway intents pipebot asks for: no privileged one unless message content is on."""
    wanted = discord.Intents.none()
    wanted.guilds = True
    wanted.guild_messages = True
    wanted.dm_messages = True
    wanted.message_content = settings.message_content
    return wanted


def invite_url(application_id: int | str) -> str:
    return discord.utils.oauth_url(
        int(application_id), permissions=PERMISSIONS, scopes=list(SCOPES)
    )


def point_at(api_url: str | None) -> None:
    """Send discord.py's REST calls (interactions and webhooks included) to `api_url`; the
    gateway's address comes from that API (``GET /gateway/bot``)."""
    if api_url:
        discord.http.Route.BASE = api_url.rstrip("/")


class _Client(discord.Client):
    def __init__(self, *, custom_api: bool, **options: Any) -> None:
        super().__init__(**options)
        self._custom_api = custom_api

    async def setup_hook(self) -> None:
        # discord.py connects a plain client to Discord's default gateway; an API elsewhere (a
        # proxy, a test server) names its own gateway in GET /gateway/bot.
        if self._custom_api:
            _shards, url, _limits = await self.http.get_bot_gateway()
            DiscordWebSocket.DEFAULT_GATEWAY = yarl.URL(url)


class DiscordChannel:
    """Everything Discord needs in `pipebot serve`; `install` plugs it into a `Server`."""

    def __init__(
        self,
        *,
        settings: DiscordSettings,
        handle: Handle,
        refusal: Callable[[InboundMessage], Reply | None],
        names: Names,
        store: Store,
        server: Server,
        redact: Callable[[str], str],
        deliveries: Deliveries | None = None,
    ) -> None:
        if settings.token is None:
            raise ConfigError("Discord needs PIPEBOT_DISCORD__TOKEN (or DISCORD_TOKEN)")
        point_at(settings.api_url)
        self.settings = settings
        self._refusal = refusal
        self._names = names
        self._store = store
        self._server = server
        self._deliveries = deliveries
        self.runtime = Runtime(
            self.make_client,
            settings.token.get_secret_value(),
            gateway=server.role != "worker",
        )
        self.poster = DiscordPoster(store, self.runtime)
        self.worker = DiscordWorker(
            handle=handle,
            poster=self.poster,
            redact=redact,
            progress_interval=settings.progress_interval,
        )
        self.alerts = DiscordAlerts(poster=self.poster, redact=redact)

    def install(self) -> None:
        metrics.declare_source(SOURCE)
        metrics.declare_platform(PLATFORM)
        self._server.add_jobs(self.worker.jobs())
        if self._deliveries is not None:
            self._deliveries.add(self.alerts)
        self._server.add_service(self.runtime, roles=("all", "web", "worker"))

    # --- the client --------------------------------------------------------------------------

    def make_client(self) -> discord.Client:
        client = _Client(
            intents=intents(self.settings),
            max_ratelimit_timeout=MAX_RATELIMIT_WAIT_S,
            custom_api=self.settings.api_url is not None,
        )
        tree = app_commands.CommandTree(client)
        tree.add_command(pipebot_group(self.accept_command, self._names))
        channel = self

        class Pressed(ActionButton, template=r"pipebot:(?P<c>.+)"):
            async def callback(self, interaction: discord.Interaction) -> None:
                await channel.accept_command(interaction, self.command, source="button")

        client.add_dynamic_items(Pressed)

        @client.event
        async def on_message(message: discord.Message) -> None:
            await self.accept_message(client, message)

        @client.event
        async def on_ready() -> None:
            log.info(
                "discord gateway ready",
                extra={"guilds": len(client.guilds), "user": str(client.user)},
            )

        return client

    # --- accepting -------------------------------------------------------------------------------

    async def accept_command(
        self, interaction: discord.Interaction, line: str, *, source: str = "command"
    ) -> None:
        started = time.perf_counter()
        turn = from_interaction(interaction, line, source=source)
        refused = self._refusal(to_inbound(turn))
        if refused is not None:
            metrics.EVENTS_RECEIVED.labels(SOURCE).inc()
            await self.poster.reply_now(interaction, render_embeds(refused)[0])
            metrics.ACK_LATENCY.labels(SOURCE).observe(time.perf_counter() - started)
            return
        accepted = await self._submit(turn)
        if not accepted:
            return  # a replay: the first delivery was deferred (or its worker defers it)
        try:
            await interaction.response.defer(thinking=True)
        except discord.InteractionResponded:
            pass
        except discord.HTTPException as exc:
            # The worker got there first ("already acknowledged"), or the 3 seconds are gone:
            # the worker answers either way (in the channel when the token is dead).
            log.info(
                "interaction not deferred here", extra={"status": exc.status, "code": exc.code}
            )
        # Discord's 3 seconds end with the deferral (a late one shows here as well).
        metrics.ACK_LATENCY.labels(SOURCE).observe(time.perf_counter() - started)

    async def accept_message(self, client: discord.Client, message: discord.Message) -> None:
        if client.user is None:
            return
        turn = from_message(
            message, bot_id=client.user.id, follow_threads=self.settings.message_content
        )
        if turn is None:
            return
        if turn.source == "message" and not await asyncio.to_thread(self._known_thread, turn):
            return  # a thread pipebot takes no part in
        await self._submit(turn)

    async def _submit(self, turn: DiscordTurn) -> bool:
        accepted = await asyncio.to_thread(self._server.submit, turn.job_key, TURN_JOB, turn)
        metrics.EVENTS_RECEIVED.labels(SOURCE).inc()
        if not accepted:
            metrics.EVENTS_DEDUPLICATED.labels(SOURCE).inc()
            log.info("duplicate Discord delivery", extra={"key": turn.job_key})
        return accepted

    def _known_thread(self, turn: DiscordTurn) -> bool:
        ref = ThreadRef(
            platform=PLATFORM,
            workspace=turn.workspace,
            channel=turn.channel,
            thread=turn.conversation,
        )
        return self._store.threads.find(ref) is not None


# --- the explicit steps: sync, check -------------------------------------------------------------


async def sync(
    settings: DiscordSettings, names: Names, *, guild: int | None = None
) -> tuple[int, str]:
    """Register the ``/pipebot`` commands with Discord: in one server (instant; for trying
    them out) or globally. Returns how many top-level commands and the application id."""
    if settings.token is None:
        raise ConfigError("Discord needs PIPEBOT_DISCORD__TOKEN (or DISCORD_TOKEN)")
    point_at(settings.api_url)
    client = discord.Client(intents=discord.Intents(guilds=True))
    tree = app_commands.CommandTree(client)

    async def unused(_interaction: discord.Interaction, _line: str) -> None:
        return None

    tree.add_command(pipebot_group(unused, names))
    try:
        await client.login(settings.token.get_secret_value())
        target = discord.Object(id=guild) if guild is not None else None
        if target is not None:
            tree.copy_global_to(guild=target)
        synced = await tree.sync(guild=target)
        return len(synced), str(client.application_id)
    except discord.LoginFailure:
        raise ConfigError(
            "Discord refused the bot token (PIPEBOT_DISCORD__TOKEN or DISCORD_TOKEN)"
        ) from None
    except discord.Forbidden:
        raise ConfigError(
            f"Discord refused: pipebot is not in server {guild} with the applications.commands "
            "scope; invite it with the link `pipebot discord invite` prints"
        ) from None
    finally:
        await client.close()


async def check(settings: DiscordSettings) -> tuple[bool, str]:
    """`pipebot doctor`'s Discord line: the token works (``users/@me``) and the intents pipebot
    asks for are enabled for the application."""
    if settings.token is None:
        return False, "no token"
    point_at(settings.api_url)
    client = discord.Client(intents=discord.Intents(guilds=True))
    try:
        await client.login(settings.token.get_secret_value())
        user = client.user
        app = await client.application_info()
    except discord.LoginFailure:
        return False, "Discord refused the bot token: copy it again (Developer Portal, Bot tab)"
    except (discord.HTTPException, OSError) as exc:
        return False, f"cannot reach Discord: {type(exc).__name__}"
    finally:
        await client.close()
    content = app.flags.gateway_message_content or app.flags.gateway_message_content_limited
    detail = f"logged in as {user}"
    if settings.message_content and not content:
        return False, (
            f"{detail}, but the message-content intent is not enabled for the application: "
            "enable it (Developer Portal, Bot tab) or unset PIPEBOT_DISCORD__MESSAGE_CONTENT"
        )
    intent = "with message content" if settings.message_content else "mentions and DMs"
    return True, f"{detail}; intents: {intent}"


def run_check(settings: DiscordSettings) -> tuple[bool, str]:
    return asyncio.run(check(settings))


__all__ = [
    "DiscordChannel",
    "check",
    "intents",
    "invite_url",
    "point_at",
    "run_check",
    "sync",
]

"""A local stand-in for Discord: the REST API (v10) over HTTP and the gateway over a WebSocket.

The real discord.py 2.7 client talks to it unchanged once `pointed_at(fake)` (or the bot's own
settings) has pointed ``discord.http.Route.BASE`` at `FakeDiscord.api_url` and the gateway at
`FakeDiscord.gateway_url`. Note that a plain `discord.Client` / `commands.Bot` never asks
``GET /gateway/bot``: it connects to ``DiscordWebSocket.DEFAULT_GATEWAY``, so that class attribute
must be pointed here too (only the AutoSharded clients read the URL from ``/gateway/bot``).

Everything runs on one aiohttp server in its own thread and event loop, bound to 127.0.0.1 on a
free port. Every REST call is recorded (`calls`, `calls_to`, `wait_call`) and answered the way
Discord answers — messages, threads, DM channels, app command registration, interaction
callbacks, follow-ups and ``@original`` edits — with Discord's error codes (10003, 10008, 10062,
40060, 50027, 160004 …) and its length limits (2,000 characters of content, 10 embeds,
6,000 characters of embed text). The messages kept per channel feed ``GET …/messages`` and
`messages_in`.

The gateway speaks plain JSON text frames whatever ``compress`` the client asks for (discord.py
parses text frames without decompressing): HELLO, heartbeat ACKs, IDENTIFY (a wrong token is
closed with 4004) → READY + one GUILD_CREATE per guild, RESUME (missed events are replayed, an
unknown session gets INVALID_SESSION), and REQUEST_GUILD_MEMBERS. Test code pushes events with
`dispatch` or the builders (`mention`, `message`, `dm`, `slash`, `autocomplete`, `press`).
Like Discord, the fake also sends the gateway events its REST calls cause (MESSAGE_CREATE for
the bot's own posts, MESSAGE_UPDATE/DELETE, THREAD_CREATE), filtered by the session's intents;
without the MESSAGE_CONTENT intent a guild message that does not mention the bot arrives with
empty content, as on Discord.

Interactions behave as on Discord: one initial callback (a second is 40060), a token that dies
after `interaction_ttl` or `expire_interactions()` (callback 10062, webhooks 401 50027), and after a
deferred (type 5) response the first follow-up fills the "thinking…" message instead of posting
a new one. Ephemeral messages are kept (flag 64, in `messages_in`) but never listed by
``GET …/messages`` nor echoed on the gateway.

Payload shapes follow discord.py 2.7.1's parsers (``state.py``, ``guild.py``, ``message.py``,
``interactions.py``, ``threads.py``, ``appinfo.py``) and the Discord API docs.
"""

from __future__ import annotations

import asyncio
import contextlib
import copy
import hashlib
import json
import re
import secrets
import socket
import threading
import time
import uuid
from collections import deque
from collections.abc import Callable, Coroutine, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, TypeVar

import discord
import yarl
from aiohttp import BodyPartReader, WSMsgType, web
from discord.gateway import DiscordWebSocket
from discord.http import Route

BOT_TOKEN = "bot-token"
BOT_ID = "900000000000000001"
APPLICATION_ID = "900000000000000002"
OWNER_ID = "700000000000000999"
USER_ID = "700000000000000001"
GUILD_ID = "800000000000000001"
DATA_CHANNEL_ID = "810000000000000001"
ALERTS_CHANNEL_ID = "810000000000000002"
DATA_ENG_ROLE_ID = "820000000000000001"

API_PREFIX = "/api/v10"
GATEWAY_PATH = "/gateway"

INTENT_GUILDS = 1 << 0
INTENT_GUILD_MEMBERS = 1 << 1
INTENT_GUILD_MESSAGES = 1 << 9
INTENT_DIRECT_MESSAGES = 1 << 12
INTENT_MESSAGE_CONTENT = 1 << 15

FLAG_SUPPRESS_EMBEDS = 1 << 2
FLAG_HAS_THREAD = 1 << 5
FLAG_EPHEMERAL = 1 << 6
FLAG_LOADING = 1 << 7
FLAG_SUPPRESS_NOTIFICATIONS = 1 << 12

# Discord's defaults for @everyone, which include all a text bot needs (view, send, embed, attach,
# history, reactions, app commands, create and send in threads).
EVERYONE_PERMISSIONS = sum(
    1 << bit for bit in (0, 6, 10, 11, 14, 15, 16, 18, 20, 21, 26, 31, 35, 36, 38)
)
ALL_PERMISSIONS = (1 << 51) - 1
ADMINISTRATOR = 1 << 3

HEARTBEAT_INTERVAL_MS = 41_250
ATTACHMENT_SIZE_LIMIT = 10 * 1024 * 1024

_EPOCH_MS = 1_420_070_400_000
_CONTENT_MAX = 2000
_EMBEDS_MAX = 10
_EMBED_TEXT_MAX = 6000
_EMBED_LIMITS = {"title": 256, "description": 4096}
_FIELDS_MAX = 25
_FIELD_NAME_MAX = 256
_FIELD_VALUE_MAX = 1024
_FOOTER_MAX = 2048
_AUTHOR_NAME_MAX = 256
_HISTORY_MAX = 1000  # gateway frames kept per session for RESUME
_TEXT_TYPES = (0, 5)  # guild text and announcement channels: where threads and messages start
_THREAD_TYPES = (10, 11, 12)
_MESSAGEABLE = (0, 1, 2, 3, 5, 10, 11, 12, 13, 15)
_CLIENT_CLOSES = (1000, 1001)  # a client closing with these ends its session (no RESUME)

JSON = dict[str, Any]
T = TypeVar("T")


# --- public value types ------------------------------------------------------------------------


@dataclass(frozen=True)
class FakeGuild:
    """A guild as the fake serves it; channel and role dicts may be partial (defaults fill in)."""

    id: str
    name: str
    channels: list[JSON] = field(default_factory=list)
    roles: list[JSON] = field(default_factory=list)


def default_guild() -> FakeGuild:
    """ "data-team": #data, #alerts, @everyone and "data-eng"."""
    return FakeGuild(
        id=GUILD_ID,
        name="data-team",
        channels=[
            {"id": DATA_CHANNEL_ID, "name": "data", "type": 0},
            {"id": ALERTS_CHANNEL_ID, "name": "alerts", "type": 0},
        ],
        roles=[
            {"id": GUILD_ID, "name": "@everyone", "permissions": str(EVERYONE_PERMISSIONS)},
            {"id": DATA_ENG_ROLE_ID, "name": "data-eng", "permissions": "0", "position": 1},
        ],
    )


@dataclass(frozen=True)
class Call:
    """One REST call: ``path`` is relative to ``/api/v10``; ``json`` is the JSON body or the
    ``payload_json`` of a multipart body; ``files`` are the uploaded file names."""

    method: str
    path: str
    json: Any
    query: dict[str, str]
    at: float
    files: list[str]
    status: int = 200
    response: Any = None


@dataclass(frozen=True)
class FakeInteraction:
    id: str
    token: str
    application_id: str
    channel_id: str
    payload: JSON
    dispatched_at: float = 0.0  # time.monotonic() as INTERACTION_CREATE went out (cf. Call.at)

    @property
    def callback_path(self) -> str:
        """The path discord.py posts the initial response to (for `FakeDiscord.wait_call`)."""
        return f"/interactions/{self.id}/{self.token}/callback"

    @property
    def webhook_path(self) -> str:
        """The prefix of follow-up and ``@original`` paths."""
        return f"/webhooks/{self.application_id}/{self.token}"


@dataclass(frozen=True)
class FakeMessage:
    id: str
    channel_id: str
    payload: JSON

    @property
    def content(self) -> str:
        return str(self.payload.get("content", ""))


# --- internals -------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Upload:
    index: int
    filename: str
    size: int
    content_type: str | None


@dataclass(frozen=True)
class _Request:
    method: str
    path: str
    query: dict[str, str]
    json: Any
    uploads: tuple[_Upload, ...]
    authorization: str

    @property
    def body(self) -> JSON:
        return self.json if isinstance(self.json, dict) else {}


@dataclass(frozen=True)
class _Reply:
    status: int
    body: Any = None  # None: no body (204)
    headers: dict[str, str] = field(default_factory=dict)
    events: tuple[tuple[str, JSON], ...] = ()


@dataclass(frozen=True)
class _Failure:
    method: str
    pattern: str
    status: int
    body: Any
    headers: dict[str, str]


class _Session:
    """A gateway session: it outlives its socket so that a RESUME can replay what was missed."""

    def __init__(self, session_id: str, intents: int, shard: list[int], socket_: _Socket) -> None:
        self.id = session_id
        self.intents = intents
        self.shard = shard
        self.socket: _Socket | None = socket_
        self.seq = 0
        self.history: deque[JSON] = deque(maxlen=_HISTORY_MAX)
        self.ready = False
        self.resumable = True
        self.send_lock = asyncio.Lock()


class _Socket:
    def __init__(self, ws: web.WebSocketResponse) -> None:
        self.ws = ws
        self.dropped = False

    async def send(self, frame: JSON) -> None:
        # A socket closing under us is not an error here: the frame stays in the session history.
        with contextlib.suppress(ConnectionError, RuntimeError):
            await self.ws.send_str(json.dumps(frame))


class _Interaction:
    """What the fake tracks about one interaction: its token, acknowledgement and messages."""

    def __init__(self, payload: JSON, created: float) -> None:
        self.id: str = payload["id"]
        self.token: str = payload["token"]
        self.kind: int = payload["type"]
        self.channel_id: str = payload["channel_id"]
        self.guild_id: str | None = payload.get("guild_id")
        self.payload = payload
        self.created = created
        self.expired = False
        self.acked: int | None = None
        self.loading = False
        self.original: str | None = None
        self.messages: list[str] = []
        self.component_message: str | None = payload.get("message", {}).get("id")
        self.response_data: JSON | None = None


# --- the fake --------------------------------------------------------------------------------


class FakeDiscord:
    """Start with `start()` (or use it as a context manager); aim discord.py with `pointed_at`."""

    def __init__(
        self,
        *,
        token: str = BOT_TOKEN,
        bot_id: str = BOT_ID,
        application_id: str = APPLICATION_ID,
        app_flags: int = 0,
        guilds: list[FakeGuild] | None = None,
        interaction_ttl: float = 900.0,
        ack_deadline: float | None = None,
    ) -> None:
        self.token = token
        self.bot_id = bot_id
        self.application_id = application_id
        self.app_flags = app_flags
        self.interaction_ttl = interaction_ttl
        # Discord kills an interaction not acknowledged within 3 s; off unless a test asks for it.
        self.ack_deadline = ack_deadline
        self.guilds = list(guilds) if guilds is not None else [default_guild()]
        if not self.guilds:
            raise ValueError("FakeDiscord needs at least one guild")

        self._lock = threading.Condition(threading.RLock())
        self._calls: list[Call] = []
        self._answered: set[int] = set()  # id() of the calls whose answer has been written
        self._identifies: list[JSON] = []
        self._resumes: list[JSON] = []
        self._failures: list[list[Any]] = []  # [_Failure, remaining times]
        self._last_id = 0
        self._users: dict[str, JSON] = {}
        self._channels: dict[str, JSON] = {}
        self._messages: dict[str, list[JSON]] = {}
        self._member_roles: dict[tuple[str, str], list[str]] = {}
        self._nonces: dict[tuple[str, str, str], str] = {}
        self._dms: dict[str, str] = {}  # user id -> DM channel id
        self._interactions: dict[str, _Interaction] = {}
        self._by_token: dict[str, _Interaction] = {}
        self._commands: dict[str | None, list[JSON]] = {}
        self._sessions: dict[str, _Session] = {}
        self._sockets: set[_Socket] = set()
        self._joined_at = _iso_now()
        self._reset_state()

        self._sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._sock.bind(("127.0.0.1", 0))
        self.port: int = self._sock.getsockname()[1]
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._runner: web.AppRunner | None = None
        self._started = threading.Event()
        self._start_error: BaseException | None = None

    # --- lifecycle ---------------------------------------------------------------------------

    def start(self) -> FakeDiscord:
        self._thread = threading.Thread(target=self._serve, name="fake-discord", daemon=True)
        self._thread.start()
        if not self._started.wait(10):
            raise RuntimeError("the fake Discord server did not start within 10 s")
        if self._start_error is not None:
            raise RuntimeError("the fake Discord server failed to start") from self._start_error
        return self

    def stop(self) -> None:
        loop, thread = self._loop, self._thread
        if loop is None or thread is None or not thread.is_alive():
            return
        with contextlib.suppress(Exception):
            asyncio.run_coroutine_threadsafe(self._shutdown(), loop).result(10)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(10)

    def __enter__(self) -> FakeDiscord:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def reset(self) -> None:
        """Forget calls, messages, threads, DMs, interactions, commands and scripted failures.

        Gateway sessions stay connected; guilds are back to how they were constructed.
        """
        with self._lock:
            self._reset_state()

    def _reset_state(self) -> None:
        self._calls.clear()
        self._answered.clear()
        self._identifies.clear()
        self._resumes.clear()
        self._failures.clear()
        self._users.clear()
        self._channels.clear()
        self._messages.clear()
        self._member_roles.clear()
        self._nonces.clear()
        self._dms.clear()
        self._interactions.clear()
        self._by_token.clear()
        self._commands.clear()
        self._users[self.bot_id] = self._bot_user()
        self._users[OWNER_ID] = _user_payload(OWNER_ID, "owner")
        for guild in self.guilds:
            for position, raw in enumerate(guild.channels):
                channel = _guild_channel(raw, guild.id, position)
                self._channels[channel["id"]] = channel

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def api_url(self) -> str:
        return self.base_url + API_PREFIX

    @property
    def gateway_url(self) -> str:
        return f"ws://127.0.0.1:{self.port}{GATEWAY_PATH}"

    # --- inspection ------------------------------------------------------------------------------

    @property
    def calls(self) -> list[Call]:
        with self._lock:
            return list(self._calls)

    @property
    def identifies(self) -> list[JSON]:
        with self._lock:
            return copy.deepcopy(self._identifies)

    @property
    def resumes(self) -> list[JSON]:
        with self._lock:
            return copy.deepcopy(self._resumes)

    def calls_to(self, method: str, pattern: str) -> list[Call]:
        return [c for c in self.calls if _matches(c.method, c.path, method, pattern)]

    def wait_call(
        self, method: str, pattern: str, *, count: int = 1, timeout: float = 10.0
    ) -> list[Call]:
        """Block until `count` calls to `method` with a path fully matching `pattern` have been
        answered; returns those calls (the answer is written, though the client may still be
        reading it)."""
        deadline = time.monotonic() + timeout
        with self._lock:
            while True:
                found = [
                    c
                    for c in self._calls
                    if id(c) in self._answered and _matches(c.method, c.path, method, pattern)
                ]
                if len(found) >= count:
                    return found
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    seen = [f"{c.method} {c.path} -> {c.status}" for c in self._calls]
                    raise AssertionError(
                        f"expected {count} call(s) to {method} {pattern} within {timeout} s, "
                        f"got {len(found)}; calls seen: {seen}"
                    )
                self._lock.wait(remaining)

    def wait_until(self, condition: Callable[[], T], timeout: float = 15.0, what: str = "") -> T:
        """Block until `condition()` is truthy (and return it): checked now and again after
        each REST call the fake answers, which is when what a test waits for can change."""
        deadline = time.monotonic() + timeout
        with self._lock:
            while True:
                found = condition()
                if found:
                    return found
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise AssertionError(f"not within {timeout} s: {what or condition}")
                self._lock.wait(remaining)

    def wait_ready(self, timeout: float = 15.0) -> None:
        """Block until a connected client has IDENTIFIED and been sent READY + its GUILD_CREATEs."""
        deadline = time.monotonic() + timeout
        with self._lock:
            while not any(s.ready and s.socket is not None for s in self._sessions.values()):
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise AssertionError(
                        f"no client became ready within {timeout} s; "
                        f"{len(self._identifies)} IDENTIFY received, "
                        f"calls: {[f'{c.method} {c.path}' for c in self._calls]}"
                    )
                self._lock.wait(remaining)

    def messages_in(self, channel_id: str) -> list[JSON]:
        """The messages of a channel or thread, oldest first, ephemeral ones included (flag 64)."""
        with self._lock:
            return copy.deepcopy(self._messages.get(channel_id, []))

    def channel(self, channel_id: str) -> JSON | None:
        """A channel, thread or DM channel as ``GET /channels/{id}`` would answer."""
        with self._lock:
            found = self._channels.get(channel_id)
            return copy.deepcopy(found) if found is not None else None

    def commands(self, guild_id: str | None = None) -> list[JSON]:
        """The application commands registered globally (None) or in a guild."""
        with self._lock:
            return copy.deepcopy(self._commands.get(guild_id, []))

    # --- scripting -------------------------------------------------------------------------------

    def fail_next(
        self,
        method: str,
        pattern: str,
        *,
        status: int,
        body: JSON | None = None,
        headers: dict[str, str] | None = None,
        times: int = 1,
    ) -> None:
        """Answer the next `times` matching calls with this error instead (without effect).

        A 429 gets what discord.py needs to treat it as a rate limit rather than a Cloudflare ban:
        a ``Via`` header and a JSON body with ``retry_after`` (0.1 s unless `body` says otherwise).
        """
        extra: dict[str, str] = {}
        if status == 429:
            if body is None:
                body = {
                    "message": "You are being rate limited.",
                    "retry_after": 0.1,
                    "global": False,
                }
            retry_after = str(body.get("retry_after", 0.1))
            extra = {"Via": "1.1 google", "Retry-After": retry_after, "X-RateLimit-Scope": "user"}
        elif body is None:
            body = {"message": f"{status}: scripted failure", "code": 0}
        failure = _Failure(method.upper(), pattern, status, body, {**extra, **(headers or {})})
        with self._lock:
            self._failures.append([failure, times])

    def expire_interactions(self) -> None:
        """Make every interaction token seen so far invalid, as 15 minutes would."""
        with self._lock:
            for interaction in self._interactions.values():
                interaction.expired = True

    def drop_connections(self, timeout: float = 5.0) -> None:
        """Close every gateway socket (code 4000): clients reconnect and RESUME their session.

        Returns once the sockets are gone, so events dispatched next are held for the RESUME.
        """
        self._run(self._drop_all())
        deadline = time.monotonic() + timeout
        with self._lock:
            while any(s.dropped for s in self._sockets):
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise AssertionError(f"gateway sockets still open {timeout} s after the drop")
                self._lock.wait(remaining)

    def invalidate_sessions(self) -> None:
        """End every session and drop its socket: a RESUME gets INVALID_SESSION, and the client
        IDENTIFIES again (to ``DiscordWebSocket.DEFAULT_GATEWAY``, which must point here)."""
        with self._lock:
            for session in self._sessions.values():
                session.resumable = False
        self.drop_connections()

    # --- gateway events from tests ---------------------------------------------------------------

    def dispatch(self, event: str, data: JSON) -> None:
        """Send DISPATCH `event` with the next sequence number to every ready session, as is."""
        if self._run(self._broadcast(event, data, raw=True)) == 0:
            raise AssertionError(f"no gateway session to dispatch {event} to (see wait_ready)")

    def mention(
        self,
        text: str,
        *,
        channel_id: str = "",
        author_id: str = USER_ID,
        guild_id: str = "",
        roles: tuple[str, ...] | list[str] = (),
    ) -> FakeMessage:
        """A person's message ``<@bot> text`` in a guild channel ("": the default guild/channel)."""
        return self.message(
            text,
            channel_id=channel_id,
            author_id=author_id,
            guild_id=guild_id,
            mentions_bot=True,
            roles=roles,
        )

    def message(
        self,
        text: str,
        *,
        channel_id: str,
        author_id: str,
        guild_id: str | None,
        mentions_bot: bool = False,
        author_bot: bool = False,
        roles: tuple[str, ...] | list[str] = (),
    ) -> FakeMessage:
        """A MESSAGE_CREATE from someone else. ``guild_id=None`` is a DM; ``""`` means the guild of
        `channel_id` (or the default guild). The message is kept, so threads can start from it."""
        with self._lock:
            if guild_id is None:
                channel = self._channels.get(channel_id) if channel_id else None
                if channel is None:
                    channel = self._dm_channel(author_id, channel_id or None)
            else:
                channel = self._resolve_channel(channel_id, guild_id)
            author = self._user(author_id, bot=author_bot)
            mention = f"<@{self.bot_id}>"
            content = f"{mention} {text}" if mentions_bot and mention not in text else text
            message = self._compose(channel, {"content": content}, (), author=author)
            if channel.get("guild_id"):
                self._member_roles[(channel["guild_id"], author_id)] = list(roles)
            self._store(message)
            event = self._gateway_message(message)
        self._run(self._broadcast("MESSAGE_CREATE", event), expect_session=True)
        return FakeMessage(message["id"], message["channel_id"], copy.deepcopy(message))

    def dm(self, text: str, *, author_id: str = USER_ID) -> FakeMessage:
        """A direct message to the bot, in a DM channel (type 1) that REST calls also find."""
        return self.message(text, channel_id="", author_id=author_id, guild_id=None)

    def slash(
        self,
        *,
        options: list[JSON],
        user_id: str = USER_ID,
        roles: tuple[str, ...] | list[str] = (),
        channel_id: str = "",
        guild_id: str | None = "",
        name: str = "pipebot",
    ) -> FakeInteraction:
        """An APPLICATION_COMMAND interaction for chat command `name` (``guild_id=None``: in a DM).

        For a subcommand: ``options=[{"type": 1, "name": "status", "options": [...]}]``.
        """
        data = self._command_data(name, options, guild_id)
        return self._interact(
            2, data, user_id=user_id, roles=roles, channel_id=channel_id, guild_id=guild_id
        )

    def autocomplete(
        self,
        *,
        options: list[JSON],
        user_id: str = USER_ID,
        roles: tuple[str, ...] | list[str] = (),
        channel_id: str = "",
        guild_id: str | None = "",
        name: str = "pipebot",
        focused: str | None = None,
    ) -> FakeInteraction:
        """An APPLICATION_COMMAND_AUTOCOMPLETE interaction; the option named `focused` (default: an
        option already marked ``focused``, else the last leaf option) is the one being typed."""
        options = copy.deepcopy(options)
        _mark_focused(options, focused)
        data = self._command_data(name, options, guild_id)
        return self._interact(
            4, data, user_id=user_id, roles=roles, channel_id=channel_id, guild_id=guild_id
        )

    def press(
        self,
        *,
        custom_id: str,
        message_id: str,
        channel_id: str = "",
        user_id: str = USER_ID,
        roles: tuple[str, ...] | list[str] = (),
        guild_id: str | None = "",
    ) -> FakeInteraction:
        """A MESSAGE_COMPONENT interaction: button `custom_id` pressed on message `message_id`."""
        with self._lock:
            found = self._find_anywhere(message_id)
            if found is not None and not channel_id:
                channel_id = found["channel_id"]
        data = {"custom_id": custom_id, "component_type": 2}
        return self._interact(
            3,
            data,
            user_id=user_id,
            roles=roles,
            channel_id=channel_id,
            guild_id=guild_id,
            message_id=message_id,
        )

    # --- threading helpers ---------------------------------------------------------------------

    def _run(self, coro: Coroutine[Any, Any, T], *, expect_session: bool = False) -> T:
        loop = self._loop
        if loop is None:
            coro.close()
            raise RuntimeError("start() the fake first")
        if threading.current_thread() is self._thread:
            coro.close()
            raise RuntimeError("call the fake's public methods from the test thread")
        result = asyncio.run_coroutine_threadsafe(coro, loop).result(10)
        if expect_session and result == 0:
            raise AssertionError("no gateway session is connected (see wait_ready)")
        return result

    def _serve(self) -> None:
        loop = asyncio.new_event_loop()
        asyncio.set_event_loop(loop)
        self._loop = loop
        try:
            loop.run_until_complete(self._open())
        except BaseException as exc:
            self._start_error = exc
            self._started.set()
            loop.close()
            return
        self._started.set()
        try:
            loop.run_forever()
        finally:
            loop.run_until_complete(loop.shutdown_asyncgens())
            loop.close()

    async def _open(self) -> None:
        app = web.Application(client_max_size=64 * 1024 * 1024)
        app.router.add_get(GATEWAY_PATH, self._gateway)
        app.router.add_route("*", API_PREFIX + "/{tail:.*}", self._rest)
        app.router.add_route("*", "/{tail:.*}", self._outside_api)
        self._runner = web.AppRunner(app, access_log=None, handle_signals=False)
        await self._runner.setup()
        await web.SockSite(self._runner, self._sock).start()

    async def _shutdown(self) -> None:
        with self._lock:
            sockets = list(self._sockets)
        for sock in sockets:
            with contextlib.suppress(Exception):
                await sock.ws.close(code=1001, message=b"fake Discord stopped")
        if self._runner is not None:
            await self._runner.cleanup()

    # --- gateway -----------------------------------------------------------------------------

    async def _gateway(self, request: web.Request) -> web.StreamResponse:
        # The client's ?compress=zlib-stream|zstd-stream is ignored on purpose: text frames are
        # parsed by discord.py without decompression.
        ws = web.WebSocketResponse(max_msg_size=0)
        await ws.prepare(request)
        sock = _Socket(ws)
        with self._lock:
            self._sockets.add(sock)
        session: _Session | None = None
        await sock.send(
            {"op": 10, "d": {"heartbeat_interval": HEARTBEAT_INTERVAL_MS}, "s": None, "t": None}
        )
        try:
            async for msg in ws:
                if msg.type is not WSMsgType.TEXT:
                    continue
                frame = json.loads(msg.data)
                op, data = frame.get("op"), frame.get("d")
                if op == 1:
                    await sock.send({"op": 11, "d": None, "s": None, "t": None})
                elif op == 2:
                    session = await self._identify(sock, data or {})
                elif op == 6:
                    session = await self._resume(sock, data or {})
                elif op == 8 and session is not None:
                    await self._request_members(session, data or {})
        finally:
            with self._lock:
                self._sockets.discard(sock)
                if session is not None and session.socket is sock:
                    session.socket = None
                    if not sock.dropped and ws.close_code in _CLIENT_CLOSES:
                        session.resumable = False
                self._lock.notify_all()
        return ws

    async def _identify(self, sock: _Socket, data: JSON) -> _Session | None:
        with self._lock:
            self._identifies.append(copy.deepcopy(data))
            self._lock.notify_all()
        if data.get("token") != self.token:
            await sock.ws.close(code=4004, message=b"Authentication failed.")
            return None
        shard = data.get("shard") or [0, 1]
        session = _Session(uuid.uuid4().hex, int(data.get("intents") or 0), shard, sock)
        with self._lock:
            self._sessions[session.id] = session
            ready = self._ready_payload(session)
            guilds = [self._guild_create(guild) for guild in self.guilds]
        await self._emit(session, "READY", ready)
        for guild_payload in guilds:
            await self._emit(session, "GUILD_CREATE", guild_payload)
        with self._lock:
            session.ready = True
            self._lock.notify_all()
        return session

    async def _resume(self, sock: _Socket, data: JSON) -> _Session | None:
        with self._lock:
            self._resumes.append(copy.deepcopy(data))
            session = self._sessions.get(str(data.get("session_id")))
            valid = session is not None and session.resumable and data.get("token") == self.token
        if session is None or not valid:
            await sock.send({"op": 9, "d": False, "s": None, "t": None})
            return None
        async with session.send_lock:
            with self._lock:
                previous, session.socket = session.socket, sock
                last_seen = int(data.get("seq") or 0)
                missed = [f for f in session.history if f["s"] > last_seen]
                session.seq += 1
                resumed = {"op": 0, "t": "RESUMED", "s": session.seq, "d": {}}
                session.history.append(resumed)
            for frame in missed:
                await sock.send(frame)
            await sock.send(resumed)
        if previous is not None and previous is not sock:
            with contextlib.suppress(Exception):
                await previous.ws.close(code=4000, message=b"session resumed elsewhere")
        with self._lock:
            self._lock.notify_all()
        return session

    async def _request_members(self, session: _Session, data: JSON) -> None:
        guild_id = str(data.get("guild_id"))
        with self._lock:
            members = [self._member(guild_id, self.bot_id)]
            wanted = {str(u) for u in data.get("user_ids") or []}
            for (gid, uid), _roles in self._member_roles.items():
                if gid == guild_id and (not wanted or uid in wanted):
                    members.append(self._member(guild_id, uid))
        chunk: JSON = {
            "guild_id": guild_id,
            "members": members,
            "chunk_index": 0,
            "chunk_count": 1,
            "not_found": [],
        }
        if data.get("nonce"):
            chunk["nonce"] = data["nonce"]
        await self._emit(session, "GUILD_MEMBERS_CHUNK", chunk)

    async def _emit(self, session: _Session, event: str, data: JSON) -> None:
        async with session.send_lock:
            with self._lock:
                session.seq += 1
                frame = {"op": 0, "t": event, "s": session.seq, "d": data}
                session.history.append(frame)
                sock = session.socket
            if sock is not None:
                await sock.send(frame)

    async def _broadcast(self, event: str, data: JSON, *, raw: bool = False) -> int:
        """Send to every ready session (a dropped one keeps it for its RESUME); returns how many."""
        with self._lock:
            targets = [s for s in self._sessions.values() if s.ready and s.resumable]
        for session in targets:
            seen = copy.deepcopy(data) if raw else self._as_seen_by(session, event, data)
            if seen is not None:
                await self._emit(session, event, seen)
        return len(targets)

    async def _drop_all(self) -> None:
        with self._lock:
            sockets = list(self._sockets)
            for sock in sockets:
                sock.dropped = True
        for sock in sockets:
            with contextlib.suppress(Exception):
                await sock.ws.close(code=4000, message=b"dropped by the test")

    def _as_seen_by(self, session: _Session, event: str, data: JSON) -> JSON | None:
        """`data` as Discord would deliver it to `session`, given its intents (None: not at all)."""
        if event not in ("MESSAGE_CREATE", "MESSAGE_UPDATE"):
            return copy.deepcopy(data)
        in_guild = "guild_id" in data
        needed = INTENT_GUILD_MESSAGES if in_guild else INTENT_DIRECT_MESSAGES
        if not session.intents & needed:
            return None
        seen = copy.deepcopy(data)
        mentioned = any(m.get("id") == self.bot_id for m in data.get("mentions", []))
        own = data.get("author", {}).get("id") == self.bot_id
        if in_guild and not session.intents & INTENT_MESSAGE_CONTENT and not (mentioned or own):
            seen.update(content="", embeds=[], attachments=[], components=[])
            seen.pop("poll", None)
        return seen

    def _ready_payload(self, session: _Session) -> JSON:
        user = {**self._bot_user(), "verified": True, "mfa_enabled": False, "flags": 0}
        return {
            "v": 10,
            "user": user,
            "guilds": [{"id": g.id, "unavailable": True} for g in self.guilds],
            "session_id": session.id,
            "session_type": "normal",
            "resume_gateway_url": self.gateway_url,
            "application": {"id": self.application_id, "flags": self.app_flags},
            "shard": session.shard,
            "private_channels": [],
            "relationships": [],
            "presences": [],
            "guild_join_requests": [],
            "geo_ordered_rtc_regions": [],
            "user_settings": {},
            "auth": {},
        }

    def _guild_create(self, guild: FakeGuild) -> JSON:
        channels = [
            copy.deepcopy(c)
            for c in self._channels.values()
            if c.get("guild_id") == guild.id and c["type"] not in _THREAD_TYPES
        ]
        threads = [
            copy.deepcopy(c)
            for c in self._channels.values()
            if c.get("guild_id") == guild.id
            and c["type"] in _THREAD_TYPES
            and not c["thread_metadata"]["archived"]
        ]
        members = [self._member(guild.id, self.bot_id)]
        return {
            "id": guild.id,
            "name": guild.name,
            "icon": None,
            "icon_hash": None,
            "splash": None,
            "discovery_splash": None,
            "banner": None,
            "description": None,
            "owner_id": OWNER_ID,
            "application_id": None,
            "afk_channel_id": None,
            "afk_timeout": 300,
            "widget_enabled": False,
            "widget_channel_id": None,
            "verification_level": 0,
            "default_message_notifications": 0,
            "explicit_content_filter": 0,
            "mfa_level": 0,
            "nsfw_level": 0,
            "system_channel_id": None,
            "system_channel_flags": 0,
            "rules_channel_id": None,
            "public_updates_channel_id": None,
            "safety_alerts_channel_id": None,
            "max_members": 500_000,
            "max_presences": None,
            "max_video_channel_users": 25,
            "max_stage_video_channel_users": 50,
            "vanity_url_code": None,
            "premium_tier": 0,
            "premium_subscription_count": 0,
            "premium_progress_bar_enabled": False,
            "preferred_locale": "en-US",
            "incidents_data": None,
            "features": [],
            "roles": _roles(guild),
            "emojis": [],
            "stickers": [],
            "joined_at": self._joined_at,
            "large": False,
            "unavailable": False,
            "lazy": True,
            "member_count": len(members),
            "members": members,
            "channels": channels,
            "threads": threads,
            "presences": [],
            "voice_states": [],
            "stage_instances": [],
            "guild_scheduled_events": [],
            "soundboard_sounds": [],
            "embedded_activities": [],
        }

    # --- HTTP --------------------------------------------------------------------------------

    async def _outside_api(self, request: web.Request) -> web.StreamResponse:
        return _response(_error(404, "404: Not Found", 0))

    async def _rest(self, request: web.Request) -> web.StreamResponse:
        path = "/" + request.match_info["tail"]
        body, uploads, invalid = await _read_body(request)
        req = _Request(
            method=request.method.upper(),
            path=path,
            query=dict(request.query),
            json=body,
            uploads=tuple(uploads),
            authorization=request.headers.get("Authorization", ""),
        )
        at = time.monotonic()
        reply = self._answer(req, invalid)
        # Recorded before answering, so `calls` already holds what the client has been told;
        # `wait_call` also waits for the answer to be written (`_answered`), so a test may stop
        # the fake at once without cutting the client off mid-response.
        call = Call(
            method=req.method,
            path=path,
            json=copy.deepcopy(body),
            query=req.query,
            at=at,
            files=[u.filename for u in uploads],
            status=reply.status,
            response=copy.deepcopy(reply.body),
        )
        with self._lock:
            self._calls.append(call)
            self._lock.notify_all()
        response = _response(reply)
        try:
            for event, data in reply.events:
                # Discord fans the change out on the gateway as it answers; sending first makes
                # the order deterministic (the echo is on the wire before the answer).
                await self._broadcast(event, data)
            await response.prepare(request)
            await response.write_eof()
        finally:
            with self._lock:
                self._answered.add(id(call))
                self._lock.notify_all()
        return response

    def _answer(self, req: _Request, invalid_body: bool) -> _Reply:
        with self._lock:
            for entry in self._failures:
                failure, remaining = entry
                if remaining > 0 and _matches(
                    req.method, req.path, failure.method, failure.pattern
                ):
                    entry[1] -= 1
                    self._failures[:] = [e for e in self._failures if e[1] > 0]
                    return _Reply(failure.status, copy.deepcopy(failure.body), failure.headers)
            if invalid_body:
                return _error(400, "The request body contains invalid JSON.", 50109)
            public = req.path.startswith(("/webhooks/", "/interactions/")) or req.path == "/gateway"
            if not public and req.authorization != f"Bot {self.token}":
                return _error(401, "401: Unauthorized", 0)
            for method, pattern, handler in _ROUTES:
                if method != req.method:
                    continue
                match = pattern.fullmatch(req.path)
                if match is not None:
                    reply = handler(self, req, *match.groups())
                    return _Reply(
                        reply.status,
                        reply.body,
                        {**_ratelimit_headers(req.method, req.path), **reply.headers},
                        reply.events,
                    )
            return _error(404, "404: Not Found", 0)

    # --- REST handlers (run under self._lock) ----------------------------------------------------

    def _get_gateway(self, req: _Request) -> _Reply:
        return _Reply(200, {"url": self.gateway_url})

    def _get_gateway_bot(self, req: _Request) -> _Reply:
        limit = {"total": 1000, "remaining": 1000, "reset_after": 0, "max_concurrency": 1}
        return _Reply(200, {"url": self.gateway_url, "shards": 1, "session_start_limit": limit})

    def _get_me(self, req: _Request) -> _Reply:
        return _Reply(200, {**self._bot_user(), "verified": True, "mfa_enabled": False, "flags": 0})

    def _get_user(self, req: _Request, user_id: str) -> _Reply:
        # Discord knows every user; a test wanting 10013 scripts it with `fail_next`.
        return _Reply(200, self._user(user_id))

    def _get_application(self, req: _Request) -> _Reply:
        return _Reply(
            200,
            {
                "id": self.application_id,
                "name": "pipebot",
                "icon": None,
                "description": "",
                "summary": "",
                "rpc_origins": [],
                "bot_public": False,
                "bot_require_code_grant": False,
                "verify_key": "0" * 64,
                "flags": self.app_flags,
                "owner": copy.deepcopy(self._users[OWNER_ID]),
                "team": None,
                "bot": self._bot_user(),
                "tags": [],
                "redirect_uris": [],
                "interactions_endpoint_url": None,
                "approximate_guild_count": len(self.guilds),
                "integration_types_config": {"0": {}},
            },
        )

    def _get_channel(self, req: _Request, channel_id: str) -> _Reply:
        channel = self._channels.get(channel_id)
        if channel is None:
            return _unknown_channel()
        return _Reply(200, copy.deepcopy(channel))

    def _create_dm(self, req: _Request) -> _Reply:
        recipient = str(req.body.get("recipient_id") or "")
        if not recipient.isdigit():
            return _invalid_form("recipient_id", "NUMBER_TYPE_COERCE", "Value is not snowflake.")
        return _Reply(200, copy.deepcopy(self._dm_channel(recipient, None)))

    def _typing(self, req: _Request, channel_id: str) -> _Reply:
        if channel_id not in self._channels:
            return _unknown_channel()
        return _Reply(204)

    def _post_message(self, req: _Request, channel_id: str) -> _Reply:
        channel = self._channels.get(channel_id)
        if channel is None:
            return _unknown_channel()
        if channel["type"] not in _MESSAGEABLE:
            return _error(400, "Cannot send messages in a non-text channel", 50008)
        payload = req.body
        key: tuple[str, str, str] | None = None
        if payload.get("nonce") is not None and payload.get("enforce_nonce"):
            # Discord answers a repeated nonce with the first message (for a few minutes; here:
            # always), which is what makes a retried post safe.
            key = (channel_id, self.bot_id, str(payload["nonce"]))
            existing = self._find(channel_id, self._nonces.get(key, ""))
            if existing is not None:
                return _Reply(200, copy.deepcopy(existing))
        problem = _validate_message(payload, req.uploads)
        if problem is not None:
            return problem
        reference = payload.get("message_reference")
        if isinstance(reference, dict) and reference.get("message_id"):
            ref_channel = str(reference.get("channel_id") or channel_id)
            if self._find(ref_channel, str(reference["message_id"])) is None and reference.get(
                "fail_if_not_exists", True
            ):
                return _invalid_form(
                    "message_reference", "MESSAGE_REFERENCE_UNKNOWN_MESSAGE", "Unknown message"
                )
        message = self._compose(channel, payload, req.uploads, author=self._bot_user())
        if key is not None:
            self._nonces[key] = message["id"]
        self._store(message)
        return _Reply(
            200,
            copy.deepcopy(message),
            events=(("MESSAGE_CREATE", self._gateway_message(message)),),
        )

    def _list_messages(self, req: _Request, channel_id: str) -> _Reply:
        if channel_id not in self._channels:
            return _unknown_channel()
        try:
            limit = max(1, min(100, int(req.query.get("limit", "50"))))
        except ValueError:
            return _invalid_form("limit", "NUMBER_TYPE_COERCE", "Value is not int.")
        visible = [m for m in self._messages.get(channel_id, []) if not m["flags"] & FLAG_EPHEMERAL]
        before, after, around = (req.query.get(k) for k in ("before", "after", "around"))
        if around:
            pivot = int(around)
            older = (
                [m for m in visible if int(m["id"]) < pivot][-(limit // 2) :] if limit > 1 else []
            )
            newer = [m for m in visible if int(m["id"]) >= pivot][: limit - len(older)]
            page = older + newer
        else:
            if before:
                visible = [m for m in visible if int(m["id"]) < int(before)]
            if after:
                visible = [m for m in visible if int(m["id"]) > int(after)]
                page = visible[:limit]  # the ones right after `after`
            else:
                page = visible[-limit:]
        return _Reply(200, copy.deepcopy(list(reversed(page))))

    def _get_message(self, req: _Request, channel_id: str, message_id: str) -> _Reply:
        if channel_id not in self._channels:
            return _unknown_channel()
        message = self._find(channel_id, message_id)
        if message is None or message["flags"] & FLAG_EPHEMERAL:
            return _unknown_message()
        return _Reply(200, copy.deepcopy(message))

    def _edit_message(self, req: _Request, channel_id: str, message_id: str) -> _Reply:
        if channel_id not in self._channels:
            return _unknown_channel()
        message = self._find(channel_id, message_id)
        if message is None or message["flags"] & FLAG_EPHEMERAL:
            return _unknown_message()
        if message["author"]["id"] != self.bot_id or message.get("webhook_id"):
            return _error(403, "Cannot edit a message authored by another user", 50005)
        return self._apply_edit(message, req)

    def _delete_message(self, req: _Request, channel_id: str, message_id: str) -> _Reply:
        channel = self._channels.get(channel_id)
        if channel is None:
            return _unknown_channel()
        message = self._find(channel_id, message_id)
        if message is None or message["flags"] & FLAG_EPHEMERAL:
            return _unknown_message()
        if channel["type"] == 1 and message["author"]["id"] != self.bot_id:
            return _error(403, "Cannot execute action on a DM channel", 50003)
        return self._remove(message)

    def _react(self, req: _Request, channel_id: str, message_id: str, emoji: str) -> _Reply:
        if channel_id not in self._channels:
            return _unknown_channel()
        message = self._find(channel_id, message_id)
        if message is None:
            return _unknown_message()
        reactions = message.setdefault("reactions", [])
        name, _, emoji_id = emoji.partition(":")
        key = {"id": emoji_id or None, "name": name}
        if not any(r["emoji"] == key and r["me"] for r in reactions):
            reactions.append(
                {
                    "emoji": key,
                    "count": 1,
                    "me": True,
                    "me_burst": False,
                    "burst_colors": [],
                    "count_details": {"burst": 0, "normal": 1},
                }
            )
        return _Reply(204)

    def _unreact(self, req: _Request, channel_id: str, message_id: str, emoji: str) -> _Reply:
        message = self._find(channel_id, message_id)
        if message is None:
            return _unknown_message()
        name, _, emoji_id = emoji.partition(":")
        key = {"id": emoji_id or None, "name": name}
        message["reactions"] = [r for r in message.get("reactions", []) if r["emoji"] != key]
        return _Reply(204)

    def _thread_from_message(self, req: _Request, channel_id: str, message_id: str) -> _Reply:
        channel = self._channels.get(channel_id)
        if channel is None:
            return _unknown_channel()
        if channel["type"] not in _TEXT_TYPES:
            return _error(400, "Cannot execute action on this channel type", 50024)
        message = self._find(channel_id, message_id)
        if message is None:
            return _unknown_message()
        if message_id in self._channels:
            return _error(400, "A thread has already been created for this message", 160004)
        problem = _thread_name_problem(req.body)
        if problem is not None:
            return problem
        kind = 10 if channel["type"] == 5 else 11
        thread = self._new_thread(channel, message_id, kind, req.body)
        message["thread"] = copy.deepcopy(thread)
        message["flags"] |= FLAG_HAS_THREAD
        created = {**copy.deepcopy(thread), "newly_created": True}
        return _Reply(200, copy.deepcopy(thread), events=(("THREAD_CREATE", created),))

    def _thread_without_message(self, req: _Request, channel_id: str) -> _Reply:
        channel = self._channels.get(channel_id)
        if channel is None:
            return _unknown_channel()
        if channel["type"] not in _TEXT_TYPES:
            return _error(400, "Cannot execute action on this channel type", 50024)
        problem = _thread_name_problem(req.body)
        if problem is not None:
            return problem
        kind = int(req.body.get("type") or 12)
        if kind not in _THREAD_TYPES:
            return _invalid_form("type", "BASE_TYPE_CHOICES", "Value must be one of (10, 11, 12).")
        thread = self._new_thread(channel, self._next_id(), kind, req.body)
        created = {**copy.deepcopy(thread), "newly_created": True}
        return _Reply(201, copy.deepcopy(thread), events=(("THREAD_CREATE", created),))

    def _join_thread(self, req: _Request, channel_id: str) -> _Reply:
        channel = self._channels.get(channel_id)
        if channel is None:
            return _unknown_channel()
        if channel["type"] not in _THREAD_TYPES:
            return _error(400, "Cannot execute action on this channel type", 50024)
        return _Reply(204)

    def _interaction_callback(self, req: _Request, interaction_id: str, token: str) -> _Reply:
        interaction = self._interactions.get(interaction_id)
        if interaction is None or interaction.token != token or self._expired(interaction):
            return _error(404, "Unknown interaction", 10062)
        if self.ack_deadline is not None and time.monotonic() - interaction.created > (
            self.ack_deadline
        ):
            return _error(404, "Unknown interaction", 10062)
        if interaction.acked is not None:
            return _error(400, "Interaction has already been acknowledged.", 40060)
        kind = req.body.get("type")
        data = req.body.get("data") or {}
        allowed = {2: (4, 5, 9), 3: (4, 5, 6, 7, 9), 4: (8,), 5: (4, 5, 6, 7)}[interaction.kind]
        if kind not in allowed:
            return _error(400, "Interaction callback type is not valid here", 50035)
        problem = _validate_message(data, req.uploads, allow_empty=True) if kind in (4, 7) else None
        if problem is not None:
            return problem
        if kind == 4 and not _has_body(data, req.uploads):
            return _error(400, "Cannot send an empty message", 50006)

        interaction.acked = kind
        interaction.response_data = copy.deepcopy(data)
        ephemeral = bool(int(data.get("flags") or 0) & FLAG_EPHEMERAL)
        summary: JSON = {"id": interaction.id, "type": interaction.kind}
        resource: JSON | None = None
        events: list[tuple[str, JSON]] = []
        if kind in (4, 5):
            body = data if kind == 4 else {"content": ""}
            flags = (int(data.get("flags") or 0) & (FLAG_EPHEMERAL | FLAG_SUPPRESS_EMBEDS)) | (
                FLAG_LOADING if kind == 5 else 0
            )
            message = self._interaction_message(interaction, body, req.uploads, flags, True)
            interaction.original = message["id"]
            interaction.loading = kind == 5
            resource = {"type": kind, "message": copy.deepcopy(message)}
            summary.update(
                response_message_id=message["id"],
                response_message_loading=kind == 5,
                response_message_ephemeral=ephemeral,
            )
            if not ephemeral:
                events.append(("MESSAGE_CREATE", self._gateway_message(message)))
        elif kind in (6, 7):
            interaction.original = interaction.component_message
            target = self._find_anywhere(interaction.original or "")
            summary.update(response_message_loading=False, response_message_ephemeral=False)
            if target is not None:
                summary["response_message_id"] = target["id"]
            if kind == 7 and target is not None:
                self._edit_fields(target, data, req.uploads)
                resource = {"type": 7, "message": copy.deepcopy(target)}
                if not target["flags"] & FLAG_EPHEMERAL:
                    events.append(("MESSAGE_UPDATE", self._gateway_message(target)))
        if req.query.get("with_response", "").lower() not in ("1", "true"):
            return _Reply(204, events=tuple(events))
        answer: JSON = {"interaction": summary}
        if resource is not None:
            answer["resource"] = resource
        return _Reply(200, answer, events=tuple(events))

    def _followup(self, req: _Request, app_id: str, token: str) -> _Reply:
        interaction, problem = self._webhook_interaction(app_id, token)
        if interaction is None:
            return problem or _unknown_webhook()
        if interaction.acked is None:
            return _unknown_webhook()
        problem = _validate_message(req.body, req.uploads)
        if problem is not None:
            return problem
        wait = req.query.get("wait", "").lower() in ("1", "true")
        events: list[tuple[str, JSON]] = []
        original = self._find_anywhere(interaction.original or "")
        if interaction.loading and original is not None:
            # After a deferred (type 5) response the first follow-up replaces the "thinking…"
            # message, keeping the defer's ephemerality (Discord API docs, Create Followup Message).
            self._edit_fields(original, req.body, req.uploads, first_fill=True)
            interaction.loading = False
            message = original
            if not message["flags"] & FLAG_EPHEMERAL:
                events.append(("MESSAGE_UPDATE", self._gateway_message(message)))
        else:
            flags = int(req.body.get("flags") or 0) & (
                FLAG_EPHEMERAL | FLAG_SUPPRESS_EMBEDS | FLAG_SUPPRESS_NOTIFICATIONS
            )
            message = self._interaction_message(interaction, req.body, req.uploads, flags, False)
            if not message["flags"] & FLAG_EPHEMERAL:
                events.append(("MESSAGE_CREATE", self._gateway_message(message)))
        return _Reply(
            200 if wait else 204, copy.deepcopy(message) if wait else None, events=tuple(events)
        )

    def _webhook_message(self, req: _Request, app_id: str, token: str, message_id: str) -> _Reply:
        interaction, problem = self._webhook_interaction(app_id, token)
        if interaction is None:
            return problem or _unknown_webhook()
        target_id = interaction.original if message_id == "@original" else message_id
        owned = {interaction.original, *interaction.messages} - {None}
        message = self._find_anywhere(target_id or "") if target_id in owned else None
        if message is None:
            return _unknown_message()
        if req.method == "GET":
            return _Reply(200, copy.deepcopy(message))
        if req.method == "DELETE":
            if message_id == "@original" or target_id == interaction.original:
                interaction.loading = False
            return self._remove(message)
        problem = _validate_message(req.body, req.uploads, allow_empty=True)
        if problem is not None:
            return problem
        was_loading = bool(message["flags"] & FLAG_LOADING)
        self._edit_fields(message, req.body, req.uploads, first_fill=was_loading)
        if target_id == interaction.original:
            interaction.loading = False
        if not _has_body(message, ()):
            return _error(400, "Cannot send an empty message", 50006)
        events: tuple[tuple[str, JSON], ...] = ()
        if not message["flags"] & FLAG_EPHEMERAL:
            events = (("MESSAGE_UPDATE", self._gateway_message(message)),)
        return _Reply(200, copy.deepcopy(message), events=events)

    def _get_commands(self, req: _Request, app_id: str, guild_id: str | None = None) -> _Reply:
        if app_id != self.application_id:
            return _error(404, "Unknown Application", 10002)
        return _Reply(200, copy.deepcopy(self._commands.get(guild_id, [])))

    def _put_commands(self, req: _Request, app_id: str, guild_id: str | None = None) -> _Reply:
        if app_id != self.application_id:
            return _error(404, "Unknown Application", 10002)
        if guild_id is not None and not any(g.id == guild_id for g in self.guilds):
            return _error(403, "Missing Access", 50001)
        if not isinstance(req.json, list):
            return _invalid_form(
                "_errors", "LIST_TYPE_CONVERT", "Only iterables may be used in a ListType"
            )
        existing = {(c["name"], c.get("type", 1)): c for c in self._commands.get(guild_id, [])}
        stored = [self._command(raw, guild_id, existing) for raw in req.json]
        self._commands[guild_id] = stored
        return _Reply(200, copy.deepcopy(stored))

    def _post_command(self, req: _Request, app_id: str, guild_id: str | None = None) -> _Reply:
        if app_id != self.application_id:
            return _error(404, "Unknown Application", 10002)
        commands = self._commands.setdefault(guild_id, [])
        existing = {(c["name"], c.get("type", 1)): c for c in commands}
        command = self._command(req.body, guild_id, existing)
        commands[:] = [c for c in commands if c["id"] != command["id"]] + [command]
        return _Reply(201, copy.deepcopy(command))

    def _get_guild_commands(self, req: _Request, app_id: str, guild_id: str) -> _Reply:
        return self._get_commands(req, app_id, guild_id)

    def _put_guild_commands(self, req: _Request, app_id: str, guild_id: str) -> _Reply:
        return self._put_commands(req, app_id, guild_id)

    def _post_guild_command(self, req: _Request, app_id: str, guild_id: str) -> _Reply:
        return self._post_command(req, app_id, guild_id)

    # --- state helpers (under self._lock) --------------------------------------------------------

    def _next_id(self) -> str:
        with self._lock:
            now = (int(time.time() * 1000) - _EPOCH_MS) << 22
            self._last_id = max(self._last_id + 1, now)
            return str(self._last_id)

    def _bot_user(self) -> JSON:
        return {
            "id": self.bot_id,
            "username": "pipebot",
            "discriminator": "0",
            "global_name": None,
            "avatar": None,
            "bot": True,
            "public_flags": 0,
        }

    def _user(self, user_id: str, *, bot: bool = False) -> JSON:
        user = self._users.get(user_id)
        if user is None:
            user = _user_payload(user_id, f"user{user_id[-4:]}", bot=bot)
            self._users[user_id] = user
        return copy.deepcopy(user)

    def _member(self, guild_id: str, user_id: str, *, with_user: bool = True) -> JSON:
        roles = self._member_roles.get((guild_id, user_id), [])
        member: JSON = {
            "roles": list(roles),
            "joined_at": self._joined_at,
            "premium_since": None,
            "deaf": False,
            "mute": False,
            "flags": 0,
            "pending": False,
            "nick": None,
            "avatar": None,
            "communication_disabled_until": None,
        }
        if with_user:
            member["user"] = self._user(user_id)
        return member

    def _guild(self, guild_id: str) -> FakeGuild:
        for guild in self.guilds:
            if guild.id == guild_id:
                return guild
        raise AssertionError(f"the fake has no guild {guild_id}")

    def _resolve_channel(self, channel_id: str, guild_id: str) -> JSON:
        if channel_id:
            channel = self._channels.get(channel_id)
            if channel is None:
                raise AssertionError(f"the fake has no channel {channel_id}")
            return channel
        guild = self._guild(guild_id) if guild_id else self.guilds[0]
        for candidate in self._channels.values():
            if candidate.get("guild_id") == guild.id and candidate["type"] in _TEXT_TYPES:
                return candidate
        raise AssertionError(f"guild {guild.id} has no text channel")

    def _dm_channel(self, user_id: str, channel_id: str | None) -> JSON:
        existing = self._dms.get(user_id)
        if existing is not None:
            return self._channels[existing]
        channel: JSON = {
            "id": channel_id or self._next_id(),
            "type": 1,
            "last_message_id": None,
            "flags": 0,
            "recipients": [self._user(user_id)],
        }
        self._channels[channel["id"]] = channel
        self._dms[user_id] = channel["id"]
        return channel

    def _new_thread(self, parent: JSON, thread_id: str, kind: int, body: JSON) -> JSON:
        now = _iso_now()
        metadata: JSON = {
            "archived": False,
            "auto_archive_duration": int(body.get("auto_archive_duration") or 1440),
            "archive_timestamp": now,
            "locked": False,
            "create_timestamp": now,
        }
        if kind == 12:
            metadata["invitable"] = bool(body.get("invitable", True))
        thread = {
            "id": thread_id,
            "guild_id": parent["guild_id"],
            "parent_id": parent["id"],
            "owner_id": self.bot_id,
            "name": str(body["name"]),
            "type": kind,
            "last_message_id": None,
            "rate_limit_per_user": int(body.get("rate_limit_per_user") or 0),
            "message_count": 0,
            "member_count": 1,
            "total_message_sent": 0,
            "flags": 0,
            "applied_tags": [],
            "thread_metadata": metadata,
            "member": {"id": thread_id, "user_id": self.bot_id, "join_timestamp": now, "flags": 1},
        }
        self._channels[thread_id] = thread
        return thread

    def _compose(
        self,
        channel: JSON,
        body: JSON,
        uploads: tuple[_Upload, ...] | list[_Upload],
        *,
        author: JSON,
        flags: int = 0,
        extra: JSON | None = None,
    ) -> JSON:
        message_id = self._next_id()
        content = str(body.get("content") or "")
        message: JSON = {
            "id": message_id,
            "channel_id": channel["id"],
            "author": author,
            "content": content,
            "timestamp": _snowflake_iso(message_id),
            "edited_timestamp": None,
            "tts": bool(body.get("tts")),
            "mention_everyone": False,
            "mentions": self._mentions(content),
            "mention_roles": [],
            "attachments": _attachments(channel["id"], body, uploads, [], self._next_id),
            "embeds": copy.deepcopy(body.get("embeds") or []),
            "components": copy.deepcopy(body.get("components") or []),
            "pinned": False,
            "type": 0,
            "flags": flags,
        }
        if channel.get("guild_id"):
            message["guild_id"] = channel["guild_id"]
        if body.get("nonce") is not None:
            message["nonce"] = body["nonce"]
        reference = body.get("message_reference")
        if isinstance(reference, dict) and reference.get("message_id"):
            ref_channel = str(reference.get("channel_id") or channel["id"])
            message["type"] = 19
            message["message_reference"] = {
                "type": 0,
                "message_id": str(reference["message_id"]),
                "channel_id": ref_channel,
                **({"guild_id": channel["guild_id"]} if channel.get("guild_id") else {}),
            }
            referenced = self._find(ref_channel, str(reference["message_id"]))
            message["referenced_message"] = copy.deepcopy(referenced)
        if extra:
            message.update(extra)
        return message

    def _interaction_message(
        self,
        interaction: _Interaction,
        body: JSON,
        uploads: tuple[_Upload, ...],
        flags: int,
        original: bool,
    ) -> JSON:
        channel = self._channels[interaction.channel_id]
        user = interaction.payload.get("member", {}).get("user") or interaction.payload.get("user")
        metadata: JSON = {
            "id": interaction.id,
            "type": interaction.kind,
            "user": copy.deepcopy(user),
            "authorizing_integration_owners": copy.deepcopy(
                interaction.payload.get("authorizing_integration_owners", {})
            ),
        }
        if interaction.kind == 2:
            metadata["name"] = interaction.payload["data"]["name"]
        if not original and interaction.original:
            metadata["original_response_message_id"] = interaction.original
        if interaction.kind == 3 and interaction.component_message:
            metadata["interacted_message_id"] = interaction.component_message
        extra = {
            "webhook_id": self.application_id,
            "application_id": self.application_id,
            "interaction_metadata": metadata,
            "type": 20 if original and interaction.kind == 2 else 0,
        }
        message = self._compose(
            channel, body, uploads, author=self._bot_user(), flags=flags, extra=extra
        )
        interaction.messages.append(message["id"])
        self._store(message)
        return message

    def _mentions(self, content: str) -> list[JSON]:
        ids = dict.fromkeys(re.findall(r"<@!?(\d+)>", content))
        return [copy.deepcopy(self._users[i]) for i in ids if i in self._users]

    def _store(self, message: JSON) -> None:
        channel_id = message["channel_id"]
        self._messages.setdefault(channel_id, []).append(message)
        channel = self._channels.get(channel_id)
        if channel is not None and not message["flags"] & FLAG_EPHEMERAL:
            channel["last_message_id"] = message["id"]
            if channel["type"] in _THREAD_TYPES:
                channel["message_count"] += 1
                channel["total_message_sent"] += 1
                message["position"] = channel["total_message_sent"] - 1

    def _remove(self, message: JSON) -> _Reply:
        channel_id = message["channel_id"]
        self._messages[channel_id] = [
            m for m in self._messages.get(channel_id, []) if m["id"] != message["id"]
        ]
        channel = self._channels.get(channel_id)
        if channel is not None and channel["type"] in _THREAD_TYPES:
            channel["message_count"] = max(0, channel["message_count"] - 1)
        if message["flags"] & FLAG_EPHEMERAL:
            return _Reply(204)
        deleted: JSON = {"id": message["id"], "channel_id": channel_id}
        if message.get("guild_id"):
            deleted["guild_id"] = message["guild_id"]
        return _Reply(204, events=(("MESSAGE_DELETE", deleted),))

    def _apply_edit(self, message: JSON, req: _Request) -> _Reply:
        problem = _validate_message(req.body, req.uploads, allow_empty=True)
        if problem is not None:
            return problem
        before = copy.deepcopy(message)
        self._edit_fields(message, req.body, req.uploads)
        if not _has_body(message, ()):
            message.clear()
            message.update(before)
            return _error(400, "Cannot send an empty message", 50006)
        return _Reply(
            200,
            copy.deepcopy(message),
            events=(("MESSAGE_UPDATE", self._gateway_message(message)),),
        )

    def _edit_fields(
        self, message: JSON, body: JSON, uploads: tuple[_Upload, ...], *, first_fill: bool = False
    ) -> None:
        if "content" in body:
            message["content"] = str(body["content"] or "")
            message["mentions"] = self._mentions(message["content"])
        if "embeds" in body:
            message["embeds"] = copy.deepcopy(body["embeds"] or [])
        if "components" in body:
            message["components"] = copy.deepcopy(body["components"] or [])
        if "attachments" in body or uploads:
            message["attachments"] = _attachments(
                message["channel_id"], body, uploads, message["attachments"], self._next_id
            )
        if "flags" in body and body["flags"] is not None:
            suppress = int(body["flags"]) & FLAG_SUPPRESS_EMBEDS
            message["flags"] = (message["flags"] & ~FLAG_SUPPRESS_EMBEDS) | suppress
        # Filling a "thinking…" message is not an edit on Discord's side.
        if message["flags"] & FLAG_LOADING or first_fill:
            message["flags"] &= ~FLAG_LOADING
        else:
            message["edited_timestamp"] = _iso_now()

    def _gateway_message(self, message: JSON) -> JSON:
        event = copy.deepcopy(message)
        guild_id = message.get("guild_id")
        if guild_id and not message.get("webhook_id"):
            event["member"] = self._member(guild_id, message["author"]["id"], with_user=False)
        return event

    def _find(self, channel_id: str, message_id: str) -> JSON | None:
        for message in self._messages.get(channel_id, []):
            if message["id"] == message_id:
                return message
        return None

    def _find_anywhere(self, message_id: str) -> JSON | None:
        for messages in self._messages.values():
            for message in messages:
                if message["id"] == message_id:
                    return message
        return None

    def _expired(self, interaction: _Interaction) -> bool:
        too_old = time.monotonic() - interaction.created > self.interaction_ttl
        return interaction.expired or too_old

    def _webhook_interaction(
        self, app_id: str, token: str
    ) -> tuple[_Interaction | None, _Reply | None]:
        if app_id != self.application_id:
            return None, _unknown_webhook()
        interaction = self._by_token.get(token)
        if interaction is None or self._expired(interaction):
            return None, _error(401, "Invalid Webhook Token", 50027)
        return interaction, None

    def _command(
        self, raw: JSON, guild_id: str | None, existing: dict[tuple[str, int], JSON]
    ) -> JSON:
        kind = int(raw.get("type") or 1)
        previous = existing.get((str(raw.get("name")), kind))
        command = copy.deepcopy(raw)
        command.update(
            id=previous["id"] if previous else self._next_id(),
            application_id=self.application_id,
            version=self._next_id(),
            type=kind,
            description=raw.get("description") or "",
            default_member_permissions=raw.get("default_member_permissions"),
            nsfw=bool(raw.get("nsfw", False)),
        )
        command.setdefault("dm_permission", True)
        command.setdefault("contexts", None)
        command.setdefault("integration_types", [0])
        if guild_id is not None:
            command["guild_id"] = guild_id
        return command

    def _command_data(self, name: str, options: list[JSON], guild_id: str | None) -> JSON:
        with self._lock:
            resolved_guild = (guild_id or self.guilds[0].id) if guild_id is not None else None
            in_guild = next(
                (c for c in self._commands.get(resolved_guild, []) if c["name"] == name), None
            )
            global_ = next((c for c in self._commands.get(None, []) if c["name"] == name), None)
            command = in_guild or global_
            data: JSON = {
                "id": command["id"] if command else self._next_id(),
                "name": name,
                "type": 1,
                "options": copy.deepcopy(options),
            }
            if in_guild is not None and resolved_guild is not None:
                data["guild_id"] = resolved_guild
            return data

    def _interact(
        self,
        kind: int,
        data: JSON,
        *,
        user_id: str,
        roles: tuple[str, ...] | list[str],
        channel_id: str,
        guild_id: str | None,
        message_id: str | None = None,
    ) -> FakeInteraction:
        with self._lock:
            if guild_id is None:
                channel = self._channels.get(channel_id) if channel_id else None
                channel = channel or self._dm_channel(user_id, channel_id or None)
            else:
                channel = self._resolve_channel(channel_id, guild_id)
            real_guild = channel.get("guild_id")
            interaction_id = self._next_id()
            token = "aW50ZXJhY3Rpb246" + secrets.token_urlsafe(48)
            payload: JSON = {
                "id": interaction_id,
                "application_id": self.application_id,
                "type": kind,
                "data": data,
                "token": token,
                "version": 1,
                "channel_id": channel["id"],
                "channel": copy.deepcopy(channel),
                "locale": "en-US",
                "entitlements": [],
                "entitlement_sku_ids": [],
                "attachment_size_limit": ATTACHMENT_SIZE_LIMIT,
            }
            if real_guild:
                guild = self._guild(real_guild)
                self._member_roles[(real_guild, user_id)] = list(roles)
                member = self._member(real_guild, user_id)
                member["permissions"] = str(_permissions(guild, list(roles)))
                payload.update(
                    guild_id=real_guild,
                    guild={"id": real_guild, "locale": "en-US", "features": []},
                    guild_locale="en-US",
                    member=member,
                    app_permissions=str(_permissions(guild, [])),
                    authorizing_integration_owners={"0": real_guild},
                    context=0,
                )
            else:
                payload.update(
                    user=self._user(user_id),
                    app_permissions=str(EVERYONE_PERMISSIONS),
                    authorizing_integration_owners={"0": "0"},
                    context=1,
                )
            if message_id is not None:
                target = self._find_anywhere(message_id)
                if target is None:
                    target = self._compose(channel, {"content": ""}, (), author=self._bot_user())
                    target["id"] = message_id
                    target["timestamp"] = _snowflake_iso(message_id)
                payload["message"] = copy.deepcopy(target)
            interaction = _Interaction(payload, time.monotonic())
            if message_id is not None:
                interaction.component_message = message_id
            self._interactions[interaction_id] = interaction
            self._by_token[token] = interaction
        dispatched_at = time.monotonic()
        self._run(self._broadcast("INTERACTION_CREATE", payload), expect_session=True)
        return FakeInteraction(
            interaction_id,
            token,
            self.application_id,
            channel["id"],
            copy.deepcopy(payload),
            dispatched_at,
        )


# --- routing ---------------------------------------------------------------------------------

_Handler = Callable[..., _Reply]
_ID = r"(\d+)"
_TOKEN = r"([^/]+)"
_ROUTES: list[tuple[str, re.Pattern[str], _Handler]] = [
    (method, re.compile(pattern), handler)
    for method, pattern, handler in (
        ("GET", r"/gateway", FakeDiscord._get_gateway),
        ("GET", r"/gateway/bot", FakeDiscord._get_gateway_bot),
        ("GET", r"/users/@me", FakeDiscord._get_me),
        ("GET", rf"/users/{_ID}", FakeDiscord._get_user),
        ("POST", r"/users/@me/channels", FakeDiscord._create_dm),
        ("GET", r"/applications/@me", FakeDiscord._get_application),
        ("GET", r"/oauth2/applications/@me", FakeDiscord._get_application),
        ("GET", rf"/channels/{_ID}", FakeDiscord._get_channel),
        ("POST", rf"/channels/{_ID}/typing", FakeDiscord._typing),
        ("POST", rf"/channels/{_ID}/messages", FakeDiscord._post_message),
        ("GET", rf"/channels/{_ID}/messages", FakeDiscord._list_messages),
        ("GET", rf"/channels/{_ID}/messages/{_ID}", FakeDiscord._get_message),
        ("PATCH", rf"/channels/{_ID}/messages/{_ID}", FakeDiscord._edit_message),
        ("DELETE", rf"/channels/{_ID}/messages/{_ID}", FakeDiscord._delete_message),
        ("PUT", rf"/channels/{_ID}/messages/{_ID}/reactions/([^/]+)/@me", FakeDiscord._react),
        ("DELETE", rf"/channels/{_ID}/messages/{_ID}/reactions/([^/]+)/@me", FakeDiscord._unreact),
        ("POST", rf"/channels/{_ID}/messages/{_ID}/threads", FakeDiscord._thread_from_message),
        ("POST", rf"/channels/{_ID}/threads", FakeDiscord._thread_without_message),
        ("PUT", rf"/channels/{_ID}/thread-members/@me", FakeDiscord._join_thread),
        ("POST", rf"/interactions/{_ID}/{_TOKEN}/callback", FakeDiscord._interaction_callback),
        ("POST", rf"/webhooks/{_ID}/{_TOKEN}", FakeDiscord._followup),
        (
            "GET",
            rf"/webhooks/{_ID}/{_TOKEN}/messages/(@original|\d+)",
            FakeDiscord._webhook_message,
        ),
        (
            "PATCH",
            rf"/webhooks/{_ID}/{_TOKEN}/messages/(@original|\d+)",
            FakeDiscord._webhook_message,
        ),
        (
            "DELETE",
            rf"/webhooks/{_ID}/{_TOKEN}/messages/(@original|\d+)",
            FakeDiscord._webhook_message,
        ),
        ("GET", rf"/applications/{_ID}/commands", FakeDiscord._get_commands),
        ("PUT", rf"/applications/{_ID}/commands", FakeDiscord._put_commands),
        ("POST", rf"/applications/{_ID}/commands", FakeDiscord._post_command),
        ("GET", rf"/applications/{_ID}/guilds/{_ID}/commands", FakeDiscord._get_guild_commands),
        ("PUT", rf"/applications/{_ID}/guilds/{_ID}/commands", FakeDiscord._put_guild_commands),
        ("POST", rf"/applications/{_ID}/guilds/{_ID}/commands", FakeDiscord._post_guild_command),
    )
]


# --- pointing discord.py here ----------------------------------------------------------------


@contextlib.contextmanager
def pointed_at(fake: FakeDiscord) -> Iterator[FakeDiscord]:
    """Point discord.py's REST base and default gateway at `fake`; restore both afterwards."""
    old_base, old_gateway = Route.BASE, DiscordWebSocket.DEFAULT_GATEWAY
    Route.BASE = fake.api_url
    DiscordWebSocket.DEFAULT_GATEWAY = yarl.URL(fake.gateway_url)
    try:
        yield fake
    finally:
        Route.BASE = old_base
        DiscordWebSocket.DEFAULT_GATEWAY = old_gateway


class ClientThread:
    """Runs a discord.py client (``client.start(token)``) on its own event loop in a thread.

    `run` executes a coroutine on that loop from the test thread; `error` is what ``start``
    raised, if it ended with an exception.
    """

    def __init__(self, client: discord.Client, token: str = BOT_TOKEN) -> None:
        self.client = client
        self.token = token
        self.error: BaseException | None = None
        self.loop: asyncio.AbstractEventLoop | None = None
        self._ready = threading.Event()
        self._looping = threading.Event()
        self._done = threading.Event()
        self._thread = threading.Thread(target=self._main, name="discord-client", daemon=True)

    def start(self, *, ready_timeout: float | None = 15.0) -> ClientThread:
        self._thread.start()
        if not self._looping.wait(10):
            raise RuntimeError("the client's event loop did not start")
        if ready_timeout is not None:
            self.wait_ready(ready_timeout)
        return self

    def wait_ready(self, timeout: float = 15.0) -> None:
        """Block until the client's ``on_ready`` (fails early if the client stopped instead)."""
        deadline = time.monotonic() + timeout
        while not self._ready.wait(0.05):
            if self._done.is_set():
                raise AssertionError(f"the client stopped before it was ready: {self.error!r}")
            if time.monotonic() > deadline:
                raise AssertionError(f"the client was not ready within {timeout} s")

    def run(self, coro: Coroutine[Any, Any, T], timeout: float = 10.0) -> T:
        if self.loop is None:
            coro.close()
            raise RuntimeError("start() the client first")
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout)

    def wait_stopped(self, timeout: float = 10.0) -> BaseException | None:
        if not self._done.wait(timeout):
            raise AssertionError(f"the client did not stop within {timeout} s")
        return self.error

    def stop(self, timeout: float = 10.0) -> None:
        if self.loop is not None and not self._done.is_set():
            with contextlib.suppress(Exception):
                self.run(self.client.close(), timeout)
        self._thread.join(timeout)

    def __enter__(self) -> ClientThread:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def _main(self) -> None:
        loop = asyncio.new_event_loop()
        asyncio.set_event_loop(loop)
        self.loop = loop
        try:
            loop.run_until_complete(self._session())
        except BaseException as exc:
            self.error = exc
        finally:
            with contextlib.suppress(Exception):
                pending = [t for t in asyncio.all_tasks(loop) if not t.done()]
                for task in pending:
                    task.cancel()
                loop.run_until_complete(asyncio.gather(*pending, return_exceptions=True))
                loop.run_until_complete(loop.shutdown_asyncgens())
            loop.close()
            self._done.set()

    async def _session(self) -> None:
        self._looping.set()
        async with self.client:
            watcher = asyncio.create_task(self._watch_ready())
            try:
                await self.client.start(self.token)
            finally:
                watcher.cancel()

    async def _watch_ready(self) -> None:
        await self.client.wait_until_ready()
        self._ready.set()


# --- module helpers --------------------------------------------------------------------------


def _matches(method: str, path: str, want_method: str, pattern: str) -> bool:
    return method.upper() == want_method.upper() and re.fullmatch(pattern, path) is not None


def _iso_now() -> str:
    return datetime.now(UTC).isoformat()


def _snowflake_iso(snowflake: str) -> str:
    millis = (int(snowflake) >> 22) + _EPOCH_MS
    return datetime.fromtimestamp(millis / 1000, UTC).isoformat()


def _user_payload(user_id: str, username: str, *, bot: bool = False) -> JSON:
    return {
        "id": user_id,
        "username": username,
        "discriminator": "0",
        "global_name": None,
        "avatar": None,
        "bot": bot,
        "public_flags": 0,
    }


def _guild_channel(raw: JSON, guild_id: str, position: int) -> JSON:
    channel: JSON = {
        "type": 0,
        "position": position,
        "permission_overwrites": [],
        "parent_id": None,
        "nsfw": False,
        "topic": None,
        "last_message_id": None,
        "rate_limit_per_user": 0,
        "flags": 0,
    }
    channel.update(copy.deepcopy(raw))
    channel["id"] = str(channel["id"])
    channel["guild_id"] = guild_id
    return channel


def _roles(guild: FakeGuild) -> list[JSON]:
    roles: list[JSON] = []
    raws = list(guild.roles)
    if not any(str(r.get("id")) == guild.id for r in raws):
        raws.insert(
            0, {"id": guild.id, "name": "@everyone", "permissions": str(EVERYONE_PERMISSIONS)}
        )
    for raw in raws:
        role: JSON = {
            "name": "role",
            "permissions": "0",
            "position": 0,
            "color": 0,
            "colors": {"primary_color": 0, "secondary_color": None, "tertiary_color": None},
            "hoist": False,
            "icon": None,
            "unicode_emoji": None,
            "managed": False,
            "mentionable": False,
            "flags": 0,
        }
        role.update(copy.deepcopy(raw))
        role["id"] = str(role["id"])
        role["permissions"] = str(role["permissions"])
        roles.append(role)
    return roles


def _permissions(guild: FakeGuild, role_ids: list[str]) -> int:
    total = 0
    for role in _roles(guild):
        if role["id"] == guild.id or role["id"] in role_ids:
            total |= int(role["permissions"])
    return ALL_PERMISSIONS if total & ADMINISTRATOR else total


def _mark_focused(options: list[JSON], name: str | None) -> None:
    leaves: list[JSON] = []

    def walk(items: list[JSON]) -> None:
        for option in items:
            if option.get("type") in (1, 2):
                walk(option.get("options") or [])
            else:
                leaves.append(option)

    walk(options)
    if name is not None:
        for leaf in leaves:
            if leaf.get("name") == name:
                leaf["focused"] = True
                return
        raise AssertionError(f"no option {name!r} to focus in {options}")
    if leaves and not any(leaf.get("focused") for leaf in leaves):
        leaves[-1]["focused"] = True


async def _read_body(request: web.Request) -> tuple[Any, list[_Upload], bool]:
    """The JSON body (or multipart ``payload_json``), the uploads, and whether the JSON was bad."""
    if request.content_type == "multipart/form-data":
        reader = await request.multipart()
        payload: Any = None
        uploads: list[_Upload] = []
        while True:
            part = await reader.next()
            if part is None:
                break
            if not isinstance(part, BodyPartReader):
                continue
            if part.name == "payload_json":
                try:
                    payload = json.loads(await part.text())
                except ValueError:
                    return None, [], True
            elif part.filename is not None:
                data = await part.read()
                index_match = re.fullmatch(r"files\[(\d+)\]", part.name or "")
                index = int(index_match.group(1)) if index_match else len(uploads)
                content_type = part.headers.get("Content-Type")
                uploads.append(_Upload(index, part.filename, len(data), content_type))
            else:
                await part.read()
        return payload, uploads, False
    raw = await request.read()
    if not raw:
        return None, [], False
    try:
        return json.loads(raw), [], False
    except ValueError:
        return None, [], True


def _attachments(
    channel_id: str,
    body: JSON,
    uploads: tuple[_Upload, ...] | list[_Upload],
    existing: list[JSON],
    next_id: Callable[[], str],
) -> list[JSON]:
    """The attachments after a create or edit: declared uploads are new, declared ids are kept."""

    def uploaded(upload: _Upload, description: Any = None) -> JSON:
        attachment_id = next_id()
        url = (
            f"https://cdn.discordapp.com/attachments/{channel_id}/{attachment_id}/{upload.filename}"
        )
        attachment: JSON = {
            "id": attachment_id,
            "filename": upload.filename,
            "size": upload.size,
            "url": url,
            "proxy_url": url.replace("cdn.discordapp.com", "media.discordapp.net"),
        }
        if upload.content_type:
            attachment["content_type"] = upload.content_type
        if description:
            attachment["description"] = description
        return attachment

    declared = body.get("attachments")
    if declared is None:
        return copy.deepcopy(existing) + [uploaded(u) for u in uploads]
    by_index = {u.index: u for u in uploads}
    kept = {a["id"]: a for a in existing}
    result: list[JSON] = []
    for item in declared:
        ref = str(item.get("id"))
        if ref.isdigit() and int(ref) in by_index and ref not in kept:
            result.append(uploaded(by_index[int(ref)], item.get("description")))
        elif ref in kept:
            result.append(copy.deepcopy(kept[ref]))
    return result


def _has_body(body: JSON, uploads: tuple[_Upload, ...] | list[_Upload]) -> bool:
    return bool(
        body.get("content")
        or body.get("embeds")
        or body.get("components")
        or body.get("attachments")
        or body.get("sticker_ids")
        or body.get("poll")
        or uploads
    )


def _validate_message(
    body: JSON, uploads: tuple[_Upload, ...] | list[_Upload], *, allow_empty: bool = False
) -> _Reply | None:
    """Discord's 400s for a message body: empty, or over a content or embed limit."""
    if not allow_empty and not _has_body(body, uploads):
        return _error(400, "Cannot send an empty message", 50006)
    content = body.get("content")
    if isinstance(content, str) and len(content) > _CONTENT_MAX:
        return _invalid_form(
            "content", "BASE_TYPE_MAX_LENGTH", f"Must be {_CONTENT_MAX} or fewer in length."
        )
    embeds = body.get("embeds") or []
    if len(embeds) > _EMBEDS_MAX:
        return _invalid_form(
            "embeds", "BASE_TYPE_MAX_LENGTH", f"Must be {_EMBEDS_MAX} or fewer in length."
        )
    total = 0
    for index, embed in enumerate(embeds):
        where = f"embeds.{index}"
        for key, limit in _EMBED_LIMITS.items():
            text = str(embed.get(key) or "")
            total += len(text)
            if len(text) > limit:
                return _invalid_form(
                    f"{where}.{key}", "BASE_TYPE_MAX_LENGTH", f"Must be {limit} or fewer in length."
                )
        fields = embed.get("fields") or []
        if len(fields) > _FIELDS_MAX:
            return _invalid_form(
                f"{where}.fields",
                "BASE_TYPE_MAX_LENGTH",
                f"Must be {_FIELDS_MAX} or fewer in length.",
            )
        for number, item in enumerate(fields):
            name, value = str(item.get("name") or ""), str(item.get("value") or "")
            total += len(name) + len(value)
            for key, text, limit in (
                ("name", name, _FIELD_NAME_MAX),
                ("value", value, _FIELD_VALUE_MAX),
            ):
                if len(text) > limit:
                    return _invalid_form(
                        f"{where}.fields.{number}.{key}",
                        "BASE_TYPE_MAX_LENGTH",
                        f"Must be {limit} or fewer in length.",
                    )
        footer = str((embed.get("footer") or {}).get("text") or "")
        author = str((embed.get("author") or {}).get("name") or "")
        total += len(footer) + len(author)
        if len(footer) > _FOOTER_MAX:
            return _invalid_form(
                f"{where}.footer.text",
                "BASE_TYPE_MAX_LENGTH",
                f"Must be {_FOOTER_MAX} or fewer in length.",
            )
        if len(author) > _AUTHOR_NAME_MAX:
            return _invalid_form(
                f"{where}.author.name",
                "BASE_TYPE_MAX_LENGTH",
                f"Must be {_AUTHOR_NAME_MAX} or fewer in length.",
            )
    if total > _EMBED_TEXT_MAX:
        return _invalid_form(
            "embeds",
            "BASE_TYPE_MAX_LENGTH",
            f"Embed size exceeds maximum size of {_EMBED_TEXT_MAX}",
        )
    return None


def _thread_name_problem(body: JSON) -> _Reply | None:
    name = body.get("name")
    if not isinstance(name, str) or not 1 <= len(name) <= 100:
        return _invalid_form("name", "BASE_TYPE_BAD_LENGTH", "Must be between 1 and 100 in length.")
    return None


def _error(status: int, message: str, code: int, errors: JSON | None = None) -> _Reply:
    body: JSON = {"message": message, "code": code}
    if errors is not None:
        body["errors"] = errors
    return _Reply(status, body)


def _invalid_form(where: str, code: str, message: str) -> _Reply:
    errors: JSON = {"_errors": [{"code": code, "message": message}]}
    for part in reversed(where.split(".")):
        if part == "_errors":
            continue
        errors = {part: errors}
    return _error(400, "Invalid Form Body", 50035, errors)


def _unknown_channel() -> _Reply:
    return _error(404, "Unknown Channel", 10003)


def _unknown_message() -> _Reply:
    return _error(404, "Unknown Message", 10008)


def _unknown_webhook() -> _Reply:
    return _error(404, "Unknown Webhook", 10015)


def _ratelimit_headers(method: str, path: str) -> dict[str, str]:
    """Headers of a roomy bucket, so discord.py never waits pre-emptively."""
    shape = re.sub(r"\d{15,}", "{id}", path)
    shape = re.sub(r"(/(?:webhooks|interactions)/\{id\})/[^/]+", r"\1/{token}", shape)
    bucket = hashlib.sha1(f"{method} {shape}".encode()).hexdigest()[:16]
    return {
        "X-RateLimit-Limit": "50",
        "X-RateLimit-Remaining": "49",
        "X-RateLimit-Reset": f"{time.time() + 1:.3f}",
        "X-RateLimit-Reset-After": "1.000",
        "X-RateLimit-Bucket": bucket,
    }


def _response(reply: _Reply) -> web.Response:
    # discord.py parses a body as JSON only when Content-Type is exactly "application/json",
    # so aiohttp's json_response (which appends a charset) must not be used.
    if reply.body is None:
        return web.Response(status=reply.status, headers=reply.headers)
    headers = {**reply.headers, "Content-Type": "application/json"}
    return web.Response(status=reply.status, body=json.dumps(reply.body).encode(), headers=headers)

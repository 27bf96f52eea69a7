"""The discord.py client in its own asyncio loop and thread, for a process whose other parts
(the HTTP server, the job threads) are not async.

In the web and all roles the runtime connects the gateway — events arrive, app commands and
button presses are acknowledged there; in the worker role it only logs in, for the REST calls
that deliver answers. Job threads run their Discord calls on the runtime's loop with `call`,
which waits for the login and bounds every call in time.
"""

from __future__ import annotations

import asyncio
import logging
import threading
from collections.abc import Awaitable, Callable
from typing import TypeVar

import discord

from bot.errors import ConfigError

log = logging.getLogger(__name__)

T = TypeVar("T")

LOGIN_TIMEOUT_S = 30.0


class NotReady(Exception):
    """The client is not logged in (yet, or any more): try again later."""


class Runtime:
    name = "discord"

    def __init__(
        self, make_client: Callable[[], discord.Client], token: str, *, gateway: bool
    ) -> None:
        self._make_client = make_client
        self._token = token
        self.gateway = gateway
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._client: discord.Client | None = None
        self._logged_in = threading.Event()
        self._failed: BaseException | None = None
        self._connection: asyncio.Task[None] | None = None

    @property
    def client(self) -> discord.Client:
        if self._client is None:
            raise NotReady("the Discord client has not started")
        return self._client

    # --- lifecycle (the `Service` protocol) -----------------------------------------------------

    def start(self) -> None:
        """Log in (and connect the gateway); returns once logged in — the gateway's READY
        follows on its own. A refused token stops start-up with a `ConfigError`."""
        loop = asyncio.new_event_loop()
        self._loop = loop
        self._thread = threading.Thread(target=loop.run_forever, name="discord", daemon=True)
        self._thread.start()
        future = asyncio.run_coroutine_threadsafe(self._login(), loop)
        try:
            future.result(timeout=LOGIN_TIMEOUT_S)
        except discord.LoginFailure:
            self.stop()
            raise ConfigError(
                "Discord refused the bot token (PIPEBOT_DISCORD__TOKEN or DISCORD_TOKEN): "
                "copy it again from the Developer Portal, Bot tab"
            ) from None
        except (TimeoutError, OSError, discord.HTTPException) as exc:
            self.stop()
            raise ConfigError(f"cannot log in to Discord: {type(exc).__name__}: {exc}") from None

    async def _login(self) -> None:
        client = self._make_client()
        self._client = client
        await client.login(self._token)
        self._logged_in.set()
        if self.gateway:
            self._connection = asyncio.get_running_loop().create_task(self._connect(client))

    async def _connect(self, client: discord.Client) -> None:
        try:
            await client.connect(reconnect=True)
        except discord.PrivilegedIntentsRequired:
            log.error(
                "Discord refused the gateway: the message-content intent is requested "
                "(PIPEBOT_DISCORD__MESSAGE_CONTENT=true) but not enabled for the application "
                "in the Developer Portal (Bot tab, Privileged Gateway Intents)"
            )
        except (discord.ClientException, discord.HTTPException, OSError) as exc:
            log.error("the Discord gateway stopped", extra={"error": f"{type(exc).__name__}"})

    def stop(self, timeout: float = 10.0) -> None:
        loop, thread, client = self._loop, self._thread, self._client
        if loop is None or thread is None:
            return
        if client is not None and not client.is_closed():
            try:
                asyncio.run_coroutine_threadsafe(client.close(), loop).result(timeout)
            except (TimeoutError, RuntimeError, OSError):
                log.warning("the Discord client did not close in time")
        try:
            asyncio.run_coroutine_threadsafe(_cancel_tasks(), loop).result(timeout)
        except (TimeoutError, RuntimeError):
            log.warning("Discord tasks did not end in time")
        loop.call_soon_threadsafe(loop.stop)
        thread.join(timeout)
        if not thread.is_alive():
            loop.close()
        self._logged_in.clear()
        self._loop = self._thread = None

    def alive(self) -> bool:
        client = self._client
        if self._thread is None or not self._thread.is_alive() or client is None:
            return False
        if not self.gateway:
            return self._logged_in.is_set()
        return client.is_ready() and not client.is_closed()

    # --- calls from other threads ---------------------------------------------------------------

    def call(self, work: Callable[[discord.Client], Awaitable[T]], *, timeout: float = 60.0) -> T:
        """Run `work(client)` on the runtime's loop and wait for its result (at most
        `timeout` seconds; its exceptions are raised here)."""
        if not self._logged_in.wait(LOGIN_TIMEOUT_S) or self._loop is None:
            raise NotReady("not logged in to Discord")
        client = self.client

        async def run() -> T:
            return await work(client)

        future = asyncio.run_coroutine_threadsafe(run(), self._loop)
        try:
            return future.result(timeout)
        except TimeoutError:
            future.cancel()
            raise

    def wait_ready(self, timeout: float) -> bool:
        """Until the gateway is READY (tests, `pipebot discord run`)."""
        if not self._logged_in.wait(timeout) or self._loop is None:
            return False
        client = self.client
        try:
            asyncio.run_coroutine_threadsafe(client.wait_until_ready(), self._loop).result(timeout)
        except TimeoutError:
            return False
        return True


async def _cancel_tasks() -> None:
    """End what discord.py left running (its ready waiter, a reconnect) before the loop stops."""
    current = asyncio.current_task()
    tasks = [task for task in asyncio.all_tasks() if task is not current]
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)

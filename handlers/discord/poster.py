"""The one send path to Discord: answers, "working…" messages, threads, alerts, digests.

Every message pipebot sends has an idempotency key (``discord:reply:{guild}:{event}:{part}``,
``discord:incident:{id}:opened:{part}``, a digest's slot …) and an outbox row
(`bot.store.outbox`). A send goes:

1. The row says ``sent``: return the message id it recorded — nothing is sent again.
2. Write the row as ``sending`` (attempts + 1) before the request leaves; the first attempt
   stores the rendered message, later attempts send exactly that.
3. A channel message carries a ``nonce`` derived from its key with ``enforce_nonce``: for a few
   minutes Discord answers a resend with the message it already has instead of a second one.
4. Past that, an earlier attempt may still have arrived (the process died mid-request): before
   it resends, a later attempt looks through the channel's newest messages for pipebot's own
   message with the same content and embeds, posted after the row was first written.
5. Send. Discord's answer decides: ok → ``sent``; a rate limit discord.py would wait out for
   too long, a 5xx or a dropped connection → `RetryLater` (the job runs again and comes back
   here); 403/404 (no access, the channel is gone) and 400 are permanent → the row is ``dead``
   and `PostRefused` says why.

Edits (progress, an interaction's original response) are idempotent and need no reconciling.
Follow-up messages of an interaction cannot carry a nonce, so only step 4 protects them.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import os
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import aiohttp
import discord
from discord.webhook.async_ import async_context

from bot.store import Store
from bot.store.outbox import DEAD, SENT, OutboxItem
from bot.work import RetryLater, describe
from handlers.discord.embeds import DiscordMessage
from handlers.discord.inbound import BUTTON_PREFIX, PLATFORM, DiscordTurn, button_id
from handlers.discord.runtime import NotReady, Runtime

log = logging.getLogger(__name__)

# How many of a channel's newest messages a reconcile looks through.
RECONCILE_LIMIT = 50
# A message found while reconciling was posted at most this long before its row was written
# (clock skew between this host and Discord).
RECONCILE_SKEW = timedelta(seconds=5)
# Discord keeps an interaction's token for 15 minutes; past this age pipebot stops using it.
INTERACTION_TTL = timedelta(minutes=14)
CALL_TIMEOUT_S = 60.0
# "Thread already created for this message": a retry of `start_thread` found its thread.
THREAD_EXISTS = 160004
# "Interaction has already been acknowledged".
ALREADY_ACKNOWLEDGED = 40060
ALLOWED_MENTIONS = discord.AllowedMentions(everyone=False, users=True, roles=True)
_STYLES = {
    "primary": discord.ButtonStyle.primary,
    "danger": discord.ButtonStyle.danger,
    "": discord.ButtonStyle.secondary,
}


class PostRefused(Exception):
    """Discord refused the message for good (the reason is Discord's), or it was given up."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class MaybeSent(RetryLater):
    """The request failed in a way that does not tell whether Discord got it: the next attempt
    looks for the message before it sends."""


class ActionButton(discord.ui.DynamicItem[discord.ui.Button[Any]], template=r"pipebot:(?P<c>.+)"):
    """A button that sends a command line; its custom id carries the line, so a press is
    understood after a restart, by any process (registered with `Client.add_dynamic_items`)."""

    def __init__(self, command: str, *, label: str = "", style: str = "") -> None:
        super().__init__(
            discord.ui.Button(
                label=label or command,
                custom_id=button_id(command),
                style=_STYLES.get(style, discord.ButtonStyle.secondary),
            )
        )
        self.command = command

    @classmethod
    async def from_custom_id(
        cls,
        interaction: discord.Interaction,
        item: discord.ui.Item[Any],
        match: Any,
        /,
    ) -> ActionButton:
        return cls(str(match["c"]))


class DiscordPoster:
    def __init__(self, store: Store, runtime: Runtime) -> None:
        self._store = store
        self._runtime = runtime

    # --- channel messages ----------------------------------------------------------------------

    def post(self, key: str, *, workspace: str, channel: str, message: DiscordMessage) -> str:
        """Post `message` once in `channel` (a thread is a channel too); its message id."""
        body = _body(message, nonce=_nonce(key))

        async def send(client: discord.Client, item: OutboxItem) -> str:
            target = client.get_partial_messageable(int(item.channel))
            sent = await target.send(
                nonce=item.body["nonce"], allowed_mentions=ALLOWED_MENTIONS, **_kwargs(item.body)
            )
            return str(sent.id)

        return self._send(key, workspace=workspace, channel=channel, body=body, call=send)

    def edit(self, *, channel: str, message_id: str, message: DiscordMessage) -> None:
        """Replace a message pipebot posted (a "working…" message by its answer)."""

        async def edit(client: discord.Client) -> None:
            target = client.get_partial_messageable(int(channel)).get_partial_message(
                int(message_id)
            )
            kwargs = _kwargs(_body(message))
            await target.edit(
                content=kwargs["content"] or None,
                embeds=kwargs["embeds"],
                view=kwargs.get("view"),
                attachments=kwargs.get("files", []),
                allowed_mentions=ALLOWED_MENTIONS,
            )

        self._call(edit, what="edit")

    def progress(self, *, channel: str, message_id: str, text: str) -> None:
        """Show progress in a "working…" message; a failure only loses the decoration."""

        async def edit(client: discord.Client) -> None:
            target = client.get_partial_messageable(int(channel)).get_partial_message(
                int(message_id)
            )
            await target.edit(content=text[:2000])

        try:
            self._runtime.call(edit, timeout=10.0)
        except (discord.DiscordException, aiohttp.ClientError, OSError, TimeoutError, NotReady):
            log.info("progress not shown", extra={"channel": channel})

    def start_thread(self, *, channel: str, message_id: str, name: str) -> str:
        """Start the thread of `message_id` (idempotent: Discord gives a message one thread,
        whose id is the message's)."""

        async def start(client: discord.Client) -> str:
            # The HTTP call itself: a partial message (all a job has) carries no server.
            thread = await client.http.start_thread_with_message(
                int(channel), int(message_id), name=name[:100], auto_archive_duration=1440
            )
            return str(thread["id"])

        try:
            return str(self._call(start, what="start thread"))
        except PostRefused as refused:
            if str(THREAD_EXISTS) in refused.reason:
                return message_id
            raise

    # --- interactions --------------------------------------------------------------------------

    def interaction_alive(self, turn: DiscordTurn) -> bool:
        created = datetime.fromtimestamp(turn.created_at, UTC)
        return turn.interaction and datetime.now(UTC) - created < INTERACTION_TTL

    def defer(self, turn: DiscordTurn) -> bool:
        """Make sure the interaction is acknowledged; False when its token is no longer valid
        (missed the 3 seconds, or expired) and the answer must go to the channel instead."""

        async def defer(client: discord.Client) -> bool:
            adapter = async_context.get()
            try:
                await adapter.create_interaction_response(
                    int(turn.interaction_id),
                    turn.interaction_token,
                    session=_session(client),
                    proxy=None,
                    proxy_auth=None,
                    params=discord.http.MultipartParameters(
                        payload={"type": 5}, multipart=None, files=None
                    ),
                )
            except discord.NotFound:
                return False
            except discord.HTTPException as exc:
                if exc.code != ALREADY_ACKNOWLEDGED:
                    raise
            return True

        if not self.interaction_alive(turn):
            return False
        try:
            return bool(self._call(defer, what="defer"))
        except PostRefused:
            return False

    def respond(self, key: str, turn: DiscordTurn, message: DiscordMessage) -> str:
        """The interaction's answer in its original (deferred) response; idempotent."""

        async def edit(client: discord.Client, item: OutboxItem) -> str:
            adapter = async_context.get()
            kwargs = _kwargs(item.body)
            with discord.http.handle_message_parameters(
                content=kwargs["content"] or None,
                embeds=kwargs["embeds"],
                view=kwargs.get("view", discord.utils.MISSING),
                attachments=kwargs.get("files", discord.utils.MISSING),
                allowed_mentions=ALLOWED_MENTIONS,
            ) as params:
                data = await adapter.edit_original_interaction_response(
                    int(turn.application_id),
                    turn.interaction_token,
                    session=_session(client),
                    proxy=None,
                    proxy_auth=None,
                    payload=params.payload,
                    multipart=params.multipart,
                    files=params.files,
                )
            return str(data["id"])

        return self._send(
            key,
            workspace=turn.workspace,
            channel=turn.channel,
            body=_body(message),
            call=edit,
            reconcile=False,
        )

    def followup(self, key: str, turn: DiscordTurn, message: DiscordMessage) -> str:
        """A further message of an interaction's answer."""

        async def send(client: discord.Client, item: OutboxItem) -> str:
            sent = await _webhook(client, turn).send(
                wait=True, allowed_mentions=ALLOWED_MENTIONS, **_kwargs(item.body)
            )
            return str(sent.id)

        return self._send(
            key,
            workspace=turn.workspace,
            channel=turn.channel,
            body=_body(message),
            call=send,
            reconcile=True,
        )

    def reply_now(
        self, interaction: discord.Interaction, message: DiscordMessage
    ) -> Awaitable[Any]:
        """An immediate private answer to an interaction (a refusal), on the gateway's loop."""
        kwargs = _kwargs(_body(message))
        return interaction.response.send_message(
            content=kwargs["content"] or None,
            embeds=kwargs["embeds"],
            ephemeral=True,
            allowed_mentions=ALLOWED_MENTIONS,
        )

    # --- one send --------------------------------------------------------------------------

    def _send(
        self,
        key: str,
        *,
        workspace: str,
        channel: str,
        body: dict[str, Any],
        call: Callable[[discord.Client, OutboxItem], Awaitable[str]],
        reconcile: bool = True,
    ) -> str:
        existing = self._store.outbox.get(key)
        if existing is not None and existing.status == SENT:
            return existing.remote_ref or ""
        if existing is not None and existing.status == DEAD:
            raise PostRefused(existing.last_error or "given up earlier")
        item = self._store.outbox.attempt(
            key,
            platform=PLATFORM,
            workspace=workspace,
            channel=channel,
            thread=None,
            kind="message",
            body=body,
        )
        if reconcile and item.attempts > 1:
            found = self._find(item)
            if found is not None:
                log.info("post found in Discord; not sent again", extra={"key": key})
                self._store.outbox.sent(item.id, found)
                return found

        async def run(client: discord.Client) -> str:
            return await call(client, item)

        try:
            ref = self._runtime.call(run, timeout=CALL_TIMEOUT_S)
        except discord.RateLimited as exc:
            self._store.outbox.failed(item.id, "rate limited")
            raise RetryLater("Discord rate limit", exc.retry_after) from None
        except discord.HTTPException as exc:
            reason = _reason(exc)
            if exc.status >= 500:
                self._store.outbox.failed(item.id, reason)
                raise MaybeSent(reason, _backoff(item.attempts)) from None
            self._refuse(item, reason)
            raise  # unreachable: _refuse raises
        except NotReady as exc:
            self._store.outbox.failed(item.id, str(exc))
            raise RetryLater(str(exc), 5.0) from None
        except (aiohttp.ClientError, OSError, TimeoutError, asyncio.CancelledError) as exc:
            self._store.outbox.failed(item.id, describe(exc))
            raise MaybeSent(describe(exc), _backoff(item.attempts)) from None
        self._store.outbox.sent(item.id, ref)
        return ref

    def _call(self, work: Callable[[discord.Client], Awaitable[Any]], *, what: str) -> Any:
        """An idempotent call: retried by the job when it fails for a passing reason."""
        try:
            return self._runtime.call(work, timeout=CALL_TIMEOUT_S)
        except discord.RateLimited as exc:
            raise RetryLater(f"Discord rate limit ({what})", exc.retry_after) from None
        except discord.HTTPException as exc:
            if exc.status >= 500:
                raise RetryLater(f"{what}: {_reason(exc)}", 5.0) from None
            log.warning("discord refused", extra={"what": what, "reason": _reason(exc)})
            raise PostRefused(_reason(exc)) from None
        except NotReady as exc:
            raise RetryLater(str(exc), 5.0) from None
        except (aiohttp.ClientError, OSError, TimeoutError) as exc:
            raise RetryLater(f"{what}: {describe(exc)}", 5.0) from None

    def _find(self, item: OutboxItem) -> str | None:
        """The id of pipebot's message carrying `item`'s body, if an earlier attempt posted it."""
        since = discord.Object(
            id=discord.utils.time_snowflake(item.created_at.replace(tzinfo=UTC) - RECONCILE_SKEW)
        )
        want = _fingerprint(item.body)

        async def look(client: discord.Client) -> str | None:
            channel = client.get_partial_messageable(int(item.channel))
            me = client.user.id if client.user else None
            async for message in channel.history(limit=RECONCILE_LIMIT, after=since):
                if message.author.id == me and _fingerprint(_as_body(message)) == want:
                    return str(message.id)
            return None

        try:
            found: str | None = self._runtime.call(look, timeout=CALL_TIMEOUT_S)
            return found
        except discord.Forbidden:
            # No history permission here: the post is sent again (it may show twice).
            log.warning(
                "cannot check whether a post arrived; sending it again", extra={"key": item.key}
            )
        except (discord.HTTPException, aiohttp.ClientError, OSError, TimeoutError, NotReady) as exc:
            raise RetryLater(f"looking for an earlier post: {describe(exc)}", 5.0) from None
        return None

    def _refuse(self, item: OutboxItem, reason: str) -> None:
        self._store.outbox.dead(item.id, reason)
        log.warning(
            "discord post refused",
            extra={"key": item.key, "channel": item.channel, "reason": reason},
        )
        raise PostRefused(reason)


# --- bodies: what the outbox stores, and back ---------------------------------------------------


def _body(message: DiscordMessage, *, nonce: str = "") -> dict[str, Any]:
    body: dict[str, Any] = {
        "content": message.content,
        "embeds": [embed.to_dict() for embed in message.embeds],
        "buttons": [
            {"label": b.label, "command": b.command, "style": b.style, "url": b.url}
            for b in message.buttons
        ],
        "files": list(message.files),
    }
    if nonce:
        body["nonce"] = nonce
    return body


def _kwargs(body: dict[str, Any]) -> dict[str, Any]:
    """discord.py keyword arguments of a stored body."""
    kwargs: dict[str, Any] = {
        "content": body.get("content") or None,
        "embeds": [discord.Embed.from_dict(e) for e in body.get("embeds", [])],
    }
    buttons = body.get("buttons") or []
    if buttons:
        view = discord.ui.View(timeout=None)
        for spec in buttons:
            if spec.get("url"):
                view.add_item(discord.ui.Button(label=spec["label"], url=spec["url"]))
            else:
                view.add_item(
                    ActionButton(spec["command"], label=spec["label"], style=spec.get("style", ""))
                )
        # Presses are dispatched to `ActionButton` by its custom id, not to this view.
        view.stop()
        kwargs["view"] = view
    files = [path for path in body.get("files") or [] if os.path.isfile(path)]
    if files:
        kwargs["files"] = [discord.File(path) for path in files]
    return kwargs


def _as_body(message: discord.Message) -> dict[str, Any]:
    return {"content": message.content, "embeds": [e.to_dict() for e in message.embeds]}


def _fingerprint(body: dict[str, Any]) -> tuple[str, tuple[tuple[str, str], ...]]:
    """What identifies a posted message: its content and its embeds' titles and descriptions
    (Discord adds fields of its own to what it stores, e.g. an embed's type)."""
    embeds = tuple(
        (str(e.get("title") or ""), str(e.get("description") or "")) for e in body.get("embeds", [])
    )
    return (str(body.get("content") or ""), embeds)


def _nonce(key: str) -> str:
    # Discord takes a nonce of up to 25 characters.
    return hashlib.sha256(key.encode()).hexdigest()[:25]


_NO_TURN = DiscordTurn(
    source="",
    guild="",
    channel="",
    user="",
    text="",
    event_id="",
    conversation="",
    application_id="0",
    interaction_token="-",
)


def _webhook(client: discord.Client, turn: DiscordTurn) -> discord.Webhook:
    """The follow-up webhook of an interaction, as `Interaction.followup` builds it (an
    application webhook, so it may send private messages and buttons)."""
    payload: Any = {"id": turn.application_id, "type": 3, "token": turn.interaction_token}
    return discord.Webhook.from_state(data=payload, state=client._connection)


def _session(client: discord.Client) -> aiohttp.ClientSession:
    """The HTTP session of `client`, which interaction calls share."""
    return _webhook(client, _NO_TURN).session


def _reason(exc: discord.HTTPException) -> str:
    return f"HTTP {exc.status} (code {exc.code}): {exc.text[:200]}"


def _backoff(attempts: int) -> float:
    return float(min(300, 2 ** min(attempts, 8)))


__all__ = ["BUTTON_PREFIX", "ActionButton", "DiscordPoster", "MaybeSent", "PostRefused"]

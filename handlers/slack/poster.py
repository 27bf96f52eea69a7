"""The one send path to Slack: answers, "working…" messages, alert threads, digests, fallbacks.

Every message pipebot sends has an idempotency key (``slack:open:{team}:{event}``,
``slack:reply:{team}:{event}:{part}``, ``slack:incident:{id}:opened:{part}``, a digest's slot …)
and an outbox row (`bot.store.outbox`). A send goes:

1. The row says ``sent``: return the message id it recorded — nothing is sent again.
2. Write the row as ``sending`` (attempts + 1) before the request leaves; the first attempt
   stores the rendered message, later attempts send exactly that.
3. An earlier attempt may have reached Slack (the connection dropped after Slack got the post,
   the process died mid-request): look for the message first. Posts carry the key in their
   message ``metadata`` (event type ``pipebot_post``), found with ``conversations.history`` /
   ``conversations.replies``; a found message is recorded as sent, not posted again.
4. Send. Slack's answer decides: ok → ``sent``; 429 → `RetryLater` with ``Retry-After``; 5xx,
   Slack's transient errors and connection errors → `RetryLater` with backoff (the job runs
   again and reconciles); any other error (``channel_not_found``, ``not_in_channel``,
   ``invalid_blocks`` …) is permanent → the row is ``dead`` and `PostRefused` says why.

The client this module uses never resends in place after a request may have arrived (no
connection-error or 5xx retry handlers): resending is this module's decision, after step 3.
Updates and deletes are idempotent and need no reconciling; ephemeral messages and
``response_url`` answers cannot be looked up, so in the rare case above they may be shown twice
(docs/operations.md).
"""

from __future__ import annotations

import hashlib
import logging
import os
import random
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any
from urllib.error import URLError

from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError, SlackClientError
from slack_sdk.webhook import WebhookClient

from bot.store import Store
from bot.store.outbox import DEAD, SENT, OutboxItem
from bot.work import RetryLater, describe
from handlers.slack.blocks import ALT_TEXT_MAX, SlackMessage
from handlers.slack.clients import Clients, ShortRateLimitRetry, retry_after

log = logging.getLogger(__name__)

PLATFORM = "slack"
METADATA_EVENT = "pipebot_post"
# Slack's own "try again later" answers; every other error means the request itself is wrong.
TRANSIENT_ERRORS = frozenset(
    {"ratelimited", "internal_error", "fatal_error", "service_unavailable", "request_timeout"}
)
# The message to update is gone or may no longer be edited: post the answer instead.
UPDATE_GONE = frozenset({"message_not_found", "cant_update_message", "edit_window_closed"})
# How many pages (of 200 messages) a reconcile looks through.
RECONCILE_PAGES = 5
STREAM_CHUNK_CHARS = 1_000


ABANDONED = "abandoned"


class PostRefused(Exception):
    """Slack refused the message for good (the reason is Slack's error code), or pipebot
    abandoned it (`SlackPoster.abandon`)."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason

    @property
    def abandoned(self) -> bool:
        return self.reason.startswith(ABANDONED)


class MaybeSent(RetryLater):
    """The request failed in a way that does not tell whether Slack got it (a dropped
    connection, a 5xx): the next attempt looks for the message before it sends."""


@dataclass(frozen=True, kw_only=True)
class Workspace:
    """Whose token a message is sent with."""

    team: str
    enterprise: str | None = None
    enterprise_install: bool = False


@dataclass(frozen=True, kw_only=True)
class Streamed:
    ts: str | None  # the streamed message, once started
    complete: bool  # False: post the answer as messages instead (updating `ts` when set)


Call = Callable[[WebClient, OutboxItem], str | None]


class SlackPoster:
    def __init__(self, store: Store, clients: Clients) -> None:
        self._store = store
        self._clients = clients

    # --- the kinds of message ------------------------------------------------------------------

    def post(
        self,
        key: str,
        workspace: Workspace,
        *,
        channel: str,
        message: SlackMessage,
        thread: str | None = None,
    ) -> str:
        """Post `message` once (in `thread` when given); the message's ts."""

        def call(client: WebClient, item: OutboxItem) -> str:
            response = client.chat_postMessage(
                channel=item.channel,
                thread_ts=item.thread,
                text=item.body["text"],
                blocks=item.body["blocks"],
                metadata={"event_type": METADATA_EVENT, "event_payload": {"key": item.key}},
                unfurl_links=False,
                unfurl_media=False,
            )
            return str(response["ts"])

        ts = self._send(
            key,
            workspace,
            kind="post",
            channel=channel,
            thread=thread,
            body=_body(message),
            call=call,
            reconcile=True,
        )
        assert ts is not None  # a post always has a ts
        return ts

    def update(
        self,
        key: str,
        workspace: Workspace,
        *,
        channel: str,
        ts: str,
        message: SlackMessage,
        thread: str | None = None,
    ) -> str:
        """Replace message `ts` with `message` (posting it instead if `ts` is gone)."""

        def call(client: WebClient, item: OutboxItem) -> str:
            try:
                response = client.chat_update(
                    channel=item.channel,
                    ts=str(item.body["ts"]),
                    text=item.body["text"],
                    blocks=item.body["blocks"],
                )
                return str(response.get("ts") or item.body["ts"])
            except SlackApiError as exc:
                if _error(exc) not in UPDATE_GONE:
                    raise
            log.info("message to update is gone; posting instead", extra={"key": item.key})
            return self.post(
                f"{item.key}:instead",
                workspace,
                channel=item.channel,
                message=message,
                thread=thread,
            )

        body = {**_body(message), "ts": ts}
        found = self._send(
            key, workspace, kind="update", channel=channel, thread=thread, body=body, call=call
        )
        return found or ts

    def ephemeral(
        self,
        key: str,
        workspace: Workspace,
        *,
        channel: str,
        user: str,
        message: SlackMessage,
        thread: str | None = None,
    ) -> None:
        """Show `message` to `user` only."""

        def call(client: WebClient, item: OutboxItem) -> str | None:
            response = client.chat_postEphemeral(
                channel=item.channel,
                user=str(item.body["user"]),
                text=item.body["text"],
                blocks=item.body["blocks"],
                thread_ts=item.thread,
            )
            return str(response.get("message_ts") or "") or None

        body = {**_body(message), "user": user}
        self._send(
            key, workspace, kind="ephemeral", channel=channel, thread=thread, body=body, call=call
        )

    def delete(self, key: str, workspace: Workspace, *, channel: str, ts: str) -> None:
        def call(client: WebClient, item: OutboxItem) -> None:
            try:
                client.chat_delete(channel=item.channel, ts=str(item.body["ts"]))
            except SlackApiError as exc:
                if _error(exc) != "message_not_found":
                    raise

        self._send(
            key, workspace, kind="delete", channel=channel, thread=None, body={"ts": ts}, call=call
        )

    def respond(self, key: str, *, response_url: str, channel: str, message: SlackMessage) -> None:
        """Answer through a slash command's ``response_url`` (visible to the asker only): for a
        channel pipebot may not post to."""
        if self._done(key):
            return
        item = self._store.outbox.attempt(
            key,
            platform=PLATFORM,
            workspace="",
            channel=channel,
            thread=None,
            kind="respond",
            body={**_body(message), "response_url": response_url},
        )
        hook = WebhookClient(
            str(item.body["response_url"]),
            timeout=15,
            retry_handlers=[ShortRateLimitRetry(max_retry_count=2)],
        )
        try:
            response = hook.send(
                text=item.body["text"],
                blocks=item.body["blocks"],
                response_type="ephemeral",
                replace_original=False,
            )
        except (URLError, OSError) as exc:
            self._store.outbox.failed(item.id, describe(exc))
            raise RetryLater(describe(exc), _backoff(item.attempts)) from None
        if response.status_code == 429:
            self._store.outbox.failed(item.id, "ratelimited")
            raise RetryLater("ratelimited", retry_after(response.headers))
        if response.status_code >= 500:
            reason = f"response_url answered {response.status_code}"
            self._store.outbox.failed(item.id, reason)
            raise RetryLater(reason, _backoff(item.attempts))
        if response.status_code != 200:
            # Expired, or used five times already: nothing will make this URL work again.
            reason = f"response_url answered {response.status_code}: {response.body[:200]}"
            self._refuse(item, reason)
        self._store.outbox.sent(item.id, None)

    def stream(
        self,
        key: str,
        workspace: Workspace,
        *,
        channel: str,
        thread: str,
        user: str,
        markdown: str,
        blocks: list[dict[str, Any]],
    ) -> Streamed:
        """Stream `markdown` into an assistant thread (``chat.startStream`` …)."""
        existing = self._store.outbox.get(key)
        if existing is not None and existing.status == SENT:
            return Streamed(ts=existing.remote_ref, complete=True)
        item = self._store.outbox.attempt(
            key,
            platform=PLATFORM,
            workspace=workspace.team,
            channel=channel,
            thread=thread,
            kind="stream",
            body={"markdown": markdown, "blocks": blocks, "user": user},
        )
        if item.status == DEAD or (item.attempts > 1 and item.remote_ref):
            # An earlier attempt started the stream: finish with messages over it.
            return Streamed(ts=item.remote_ref, complete=False)
        client = self._client(workspace, item)
        streamer = client.chat_stream(
            channel=channel,
            thread_ts=thread,
            recipient_team_id=workspace.team,
            recipient_user_id=user,
            buffer_size=STREAM_CHUNK_CHARS,
        )
        try:
            for start in range(0, len(markdown), STREAM_CHUNK_CHARS):
                streamer.append(markdown_text=markdown[start : start + STREAM_CHUNK_CHARS])
                if streamer.ts is not None and item.remote_ref is None:
                    self._store.outbox.started(item.id, streamer.ts)
                    item = _with_ref(item, streamer.ts)
            streamer.stop(blocks=blocks or None)
        except SlackApiError as exc:
            if streamer.ts is None and _retryable(exc):
                self._store.outbox.failed(item.id, _error(exc) or describe(exc))
                raise RetryLater(_error(exc), _delay(exc, item.attempts)) from None
            log.info(
                "streaming refused; answering with messages",
                extra={"key": key, "error": _error(exc), "started": streamer.ts is not None},
            )
            self._store.outbox.dead(item.id, f"streaming refused: {_error(exc)}")
            return Streamed(ts=streamer.ts, complete=False)
        except (SlackClientError, URLError, OSError) as exc:
            self._store.outbox.failed(item.id, describe(exc))
            raise RetryLater(describe(exc), _backoff(item.attempts)) from None
        self._store.outbox.sent(item.id, streamer.ts)
        return Streamed(ts=streamer.ts, complete=True)

    def upload(
        self,
        key: str,
        workspace: Workspace,
        *,
        channel: str,
        path: str,
        title: str,
        alt: str,
        thread: str | None = None,
    ) -> str | None:
        """Upload the local file `path` (a chart pipebot drew) once, shared in `channel` (in
        `thread` when given), with ``files_upload_v2``; the file's id. A file that is gone (the
        job ran again on another host) is skipped with a log line, never an error: the message
        it belongs with stands without it.

        An upload carries no message metadata, so an earlier attempt is recognised by the file
        name, which is unique to the key."""
        path = path.removeprefix("file://")
        existing = self._store.outbox.get(key)
        if existing is None and not os.path.isfile(path):
            log.warning("a file to upload is gone; not uploaded", extra={"key": key})
            return None
        suffix = os.path.splitext(path)[1] or ".png"
        filename = "pipebot-" + hashlib.sha256(key.encode()).hexdigest()[:16] + suffix

        def call(client: WebClient, item: OutboxItem) -> str | None:
            if not os.path.isfile(str(item.body["path"])):
                log.warning("a file to upload is gone; not uploaded", extra={"key": item.key})
                return None
            response = client.files_upload_v2(
                channel=item.channel,
                thread_ts=item.thread,
                file=str(item.body["path"]),
                filename=str(item.body["filename"]),
                title=str(item.body["title"]),
                alt_txt=str(item.body["alt"]),
            )
            uploaded = response.get("file") or {}
            return str(uploaded.get("id") or "") or None

        body = {
            "path": path,
            "filename": filename,
            "title": title[:250],
            "alt": alt[:ALT_TEXT_MAX],
        }
        return self._send(
            key,
            workspace,
            kind="upload",
            channel=channel,
            thread=thread,
            body=body,
            call=call,
            reconcile=True,
        )

    def abandon(self, key: str, reason: str) -> None:
        """Give up a message that is no longer wanted (a "working…" message Slack kept
        rate-limiting while the answer was ready), so no retry sends it late."""
        item = self._store.outbox.get(key)
        if item is not None and item.status not in (SENT, DEAD):
            self._store.outbox.dead(item.id, f"{ABANDONED}: {reason}")

    # --- one send --------------------------------------------------------------------------

    def _send(
        self,
        key: str,
        workspace: Workspace,
        *,
        kind: str,
        channel: str,
        thread: str | None,
        body: dict[str, Any],
        call: Call,
        reconcile: bool = False,
    ) -> str | None:
        existing = self._store.outbox.get(key)
        if existing is not None and existing.status == SENT:
            return existing.remote_ref
        if existing is not None and existing.status == DEAD:
            raise PostRefused(existing.last_error or "given up earlier")
        item = self._store.outbox.attempt(
            key,
            platform=PLATFORM,
            workspace=workspace.team,
            channel=channel,
            thread=thread,
            kind=kind,
            body=body,
        )
        client = self._client(workspace, item)
        if reconcile and item.attempts > 1:
            found = self._find(client, item)
            if found is not None:
                log.info("post found in Slack; not sent again", extra={"key": key})
                self._store.outbox.sent(item.id, found)
                return found
        try:
            ref = call(client, item)
        except SlackApiError as exc:
            error = _error(exc) or f"HTTP {_status(exc)}"
            if not _retryable(exc):
                self._refuse(item, error)
            self._store.outbox.failed(item.id, error)
            if _status(exc) == 429 or error == "ratelimited":
                raise RetryLater(error, _delay(exc, item.attempts)) from None
            raise MaybeSent(error, _delay(exc, item.attempts)) from None
        except (SlackClientError, URLError, OSError) as exc:
            # The request may have reached Slack: the next attempt looks before it resends.
            self._store.outbox.failed(item.id, describe(exc))
            raise MaybeSent(describe(exc), _backoff(item.attempts)) from None
        self._store.outbox.sent(item.id, ref)
        return ref

    def _client(self, workspace: Workspace, item: OutboxItem) -> WebClient:
        client = self._clients.for_team(
            workspace.team, workspace.enterprise, workspace.enterprise_install
        )
        if client is None:
            self._refuse(item, f"pipebot is not installed in workspace {workspace.team}")
        assert client is not None
        return client

    def _find(self, client: WebClient, item: OutboxItem) -> str | None:
        """The ts of the message carrying `item`'s key, if an earlier attempt posted it."""
        # The newest pages of the channel, not a time window: Slack's clock and ours may differ,
        # and the post looked for was made moments (at most minutes) ago.
        cursor: str | None = None
        try:
            for _ in range(RECONCILE_PAGES):
                if item.thread:
                    response = client.conversations_replies(
                        channel=item.channel,
                        ts=item.thread,
                        include_all_metadata=True,
                        limit=200,
                        cursor=cursor,
                    )
                else:
                    response = client.conversations_history(
                        channel=item.channel,
                        include_all_metadata=True,
                        limit=200,
                        cursor=cursor,
                    )
                for message in response.get("messages") or []:
                    if item.kind == "upload":
                        for shared in message.get("files") or []:
                            if shared.get("name") == item.body.get("filename"):
                                return str(shared.get("id") or message["ts"])
                        continue
                    metadata = message.get("metadata") or {}
                    payload = metadata.get("event_payload") or {}
                    if metadata.get("event_type") == METADATA_EVENT and payload.get("key") == (
                        item.key
                    ):
                        return str(message["ts"])
                cursor = (response.get("response_metadata") or {}).get("next_cursor") or None
                if not cursor:
                    return None
        except SlackApiError as exc:
            if _retryable(exc):
                raise RetryLater(f"looking for an earlier post: {_error(exc)}", 5.0) from None
            # No history scope in this channel: the post is sent again (it may show twice).
            log.warning(
                "cannot check whether a post arrived; sending it again",
                extra={"key": item.key, "error": _error(exc)},
            )
        except (SlackClientError, URLError, OSError) as exc:
            raise RetryLater(f"looking for an earlier post: {describe(exc)}", 5.0) from None
        return None

    def _done(self, key: str) -> bool:
        existing = self._store.outbox.get(key)
        if existing is None:
            return False
        if existing.status == DEAD:
            raise PostRefused(existing.last_error or "given up earlier")
        return existing.status == SENT

    def _refuse(self, item: OutboxItem, reason: str) -> None:
        self._store.outbox.dead(item.id, reason)
        log.warning(
            "slack post refused", extra={"key": item.key, "channel": item.channel, "reason": reason}
        )
        raise PostRefused(reason)


def _body(message: SlackMessage) -> dict[str, Any]:
    return {"text": message.text, "blocks": message.blocks}


def _with_ref(item: OutboxItem, ref: str) -> OutboxItem:
    return replace(item, remote_ref=ref)


def _error(exc: SlackApiError) -> str:
    try:
        return str(exc.response.get("error") or "")
    except (AttributeError, TypeError):
        return ""


def _status(exc: SlackApiError) -> int:
    return int(getattr(exc.response, "status_code", 200) or 200)


def _retryable(exc: SlackApiError) -> bool:
    return _status(exc) == 429 or _status(exc) >= 500 or _error(exc) in TRANSIENT_ERRORS


def _delay(exc: SlackApiError, attempts: int) -> float:
    if _status(exc) == 429 or _error(exc) == "ratelimited":
        headers = getattr(exc.response, "headers", {})
        return retry_after(headers) + random.random()
    return _backoff(attempts)


def _backoff(attempts: int) -> float:
    return float(min(300, 2 ** min(attempts, 8))) + random.random()

"""The Slack side of the outbox: sender threads that drain due posts to the Web API.

Every message pipebot sends to Slack is an outbox row first (`bot.store.outbox`), keyed so one
logical post has one row: ``slack:open:{team}:{event}`` (the "working…" message),
``slack:reply:{team}:{event}:{part}`` (the answer, one row per rendered message),
``slack:close:{team}:{event}`` (removing a "working…" message when the answer is private).
A sender claims a due row (leased, so a crashed sender's row comes back), sends it and marks it
sent with the message ``ts``; a failure is retried, never posted twice.

Row kinds and their ``body`` (JSON; a reply is stored as ``bot.rendering.to_dict`` output and
rendered with `render_blocks` when sent):

- ``post`` / ``update``: ``reply`` + ``part`` (or ``working`` status text), optional
  ``caption``; an update edits ``update_ref`` and falls back to a new post if that message is gone;
- ``ephemeral``: the same, plus ``user`` (``chat.postEphemeral``);
- ``delete``: removes ``update_ref``;
- ``stream``: ``reply`` + ``user``: streamed with ``chat.startStream``/``appendStream``/
  ``stopStream``; if Slack refuses streaming the answer is queued again as ordinary messages
  (``{key}:fallback:{part}``), updating the streamed message when one was started;
- ``respond``: ``reply`` + ``part`` + ``response_url`` (a slash command in a channel pipebot
  cannot post to; the answer is shown to the person who asked).

Every body also names its workspace (``team``, ``enterprise``, ``enterprise_install``) for the
token, may name an ``after`` key (a reply's second part waits for its first) and carries
``queued_at`` (epoch seconds) so transient failures give up after `GIVE_UP_AFTER_S`.

Failures: HTTP 429 waits ``Retry-After``; 5xx, connection errors and Slack's transient errors
back off exponentially; any other API error (``channel_not_found``, ``not_in_channel``,
``invalid_auth``, ``invalid_blocks`` …) is permanent: the row is marked dead and the reason
logged.
"""

from __future__ import annotations

import logging
import random
import threading
import time
from collections import OrderedDict
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.error import URLError

from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError, SlackClientError
from slack_sdk.http_retry import ConnectionErrorRetryHandler
from slack_sdk.http_retry.builtin_handlers import ServerErrorRetryHandler
from slack_sdk.webhook import WebhookClient

from bot.rendering import from_dict
from bot.store import Store
from bot.store.outbox import DEAD, SENT, OutboxItem
from bot.work import background_priority
from handlers.slack.blocks import (
    SlackMessage,
    render_actions,
    render_blocks,
    render_markdown,
    render_working,
)
from handlers.slack.clients import Clients, ShortRateLimitRetry, retry_after
from handlers.slack.inbound import PLATFORM

log = logging.getLogger(__name__)

POST, UPDATE, EPHEMERAL, DELETE, STREAM, RESPOND = (
    "post",
    "update",
    "ephemeral",
    "delete",
    "stream",
    "respond",
)
# Slack's own "try again later" answers; every other error means the request itself is wrong.
TRANSIENT_ERRORS = frozenset(
    {"ratelimited", "internal_error", "fatal_error", "service_unavailable", "request_timeout"}
)
# The message to update is gone or may no longer be edited: post the answer instead.
UPDATE_GONE = frozenset({"message_not_found", "cant_update_message", "edit_window_closed"})
GIVE_UP_AFTER_S = 3600.0
# Longer than the worst single attempt (3 tries × 15 s timeout + short rate-limit waits), so a
# post being sent is never claimed by a second sender.
LEASE = timedelta(seconds=120)
# Streamed answers are for conversational replies; longer ones are posted as messages.
STREAM_MAX_CHARS = 11_000
STREAM_CHUNK_CHARS = 1_000
# How many finished rows a process remembers for workers waiting on them (a few minutes' worth).
FINISHED_REMEMBERED = 2_000


class _Retry(Exception):
    def __init__(self, reason: str, delay: float, *, quiet: bool = False) -> None:
        super().__init__(reason)
        self.reason = reason
        self.delay = delay
        self.quiet = quiet  # an expected wait (ordering), not a failure worth a log line


class _Dead(Exception):
    pass


class SlackDelivery:
    """Sender threads for ``platform="slack"`` outbox rows.

    >>> delivery = SlackDelivery(store, clients)      # doctest: +SKIP
    >>> delivery.start()
    >>> delivery.enqueue("slack:reply:T1:msg:C1:1.2:0", team="T1", channel="C1", body={...})
    """

    def __init__(
        self,
        store: Store,
        clients: Clients,
        *,
        senders: int = 4,
        poll_interval: float = 0.5,
    ) -> None:
        self._store = store
        self._clients = clients
        self._poll = poll_interval
        self._wake = threading.Event()
        self._stopping = threading.Event()
        self._dispatcher: threading.Thread | None = None
        self._free = senders  # sender threads not busy; guarded by _changed
        # Background work: the scheduler should prefer the threads that acknowledge events.
        self._pool = ThreadPoolExecutor(
            max_workers=senders, thread_name_prefix="slack-sender", initializer=background_priority
        )
        self._changed = threading.Condition()
        # Rows this process finished (sent or dead), so waiting workers need not poll the store.
        self._finished: OrderedDict[str, OutboxItem] = OrderedDict()

    # --- producers -------------------------------------------------------------------------

    def enqueue(
        self,
        key: str,
        *,
        team: str,
        channel: str,
        body: dict[str, Any],
        thread: str | None = None,
        kind: str = POST,
        update_ref: str | None = None,
    ) -> bool:
        """Record a post and wake a sender; False when `key` was already recorded."""
        added = self._store.outbox.enqueue(
            key,
            platform=PLATFORM,
            workspace=team,
            channel=channel,
            body={"queued_at": time.time(), **body},
            thread=thread,
            kind=kind,
            update_ref=update_ref,
        )
        self._wake.set()
        return added

    def wait_sent(self, key: str, timeout: float) -> OutboxItem | None:
        """Block until `key` is sent or dead; None when still pending after `timeout` s."""
        deadline = time.monotonic() + timeout
        while True:
            item = self._store.outbox.get(key)
            if item is not None and item.status in (SENT, DEAD):
                return item
            with self._changed:
                # This process's senders say when a row is done; the store is asked again once
                # a second in case another replica's sender took the row.
                next_poll = min(deadline, time.monotonic() + 1.0)
                while key not in self._finished and time.monotonic() < next_poll:
                    self._changed.wait(next_poll - time.monotonic())
                if key in self._finished:
                    return self._finished[key]
            if time.monotonic() >= deadline:
                return None

    def wait_idle(self, timeout: float) -> bool:
        """Block until nothing is pending or being sent (tests, benchmarks, shutdown)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            counts = self._store.outbox.counts()
            if not counts.get("pending") and not counts.get("sending"):
                return True
            with self._changed:
                self._changed.wait(0.05)
        return False

    # --- lifecycle -------------------------------------------------------------------------

    def start(self) -> None:
        if self._dispatcher is not None:
            return
        self._dispatcher = threading.Thread(
            target=self._dispatch, name="slack-outbox-dispatcher", daemon=True
        )
        self._dispatcher.start()

    def stop(self, timeout: float = 10.0) -> None:
        self._stopping.set()
        self._wake.set()
        if self._dispatcher is not None:
            self._dispatcher.join(timeout)
        # Posts in flight finish (each call is bounded by the client's timeout).
        self._pool.shutdown(wait=True, cancel_futures=True)

    def alive(self) -> bool:
        return self._dispatcher is not None and self._dispatcher.is_alive()

    def _dispatch(self) -> None:
        # One claimer per process: on SQLite, FOR UPDATE SKIP LOCKED is a no-op, so two threads
        # claiming at once could both take the same row. Sending happens on the pool.
        while not self._stopping.is_set():
            with self._changed:
                if self._free == 0:
                    self._changed.wait(self._poll)
                    continue
                free = self._free
            try:
                # As many rows as there are idle senders, in one transaction.
                items = self._store.outbox.claim_due(platform=PLATFORM, limit=free, lease=LEASE)
            except Exception:
                # A database hiccup must not kill the dispatcher; the next poll retries.
                log.exception("claiming outbox rows failed")
                items = []
            if not items:
                self._wake.wait(self._poll)
                self._wake.clear()
                continue
            with self._changed:
                self._free -= len(items)
            for item in items:
                self._pool.submit(self._run, item)

    def _run(self, item: OutboxItem) -> None:
        try:
            self.deliver(item)
        except Exception:
            # Sender boundary: the row stays leased and becomes due again when the lease ends.
            log.exception("delivering a slack post failed", extra={"key": item.key})
        finally:
            with self._changed:
                self._free += 1
                self._changed.notify_all()

    # --- one row -----------------------------------------------------------------------------

    def deliver(self, item: OutboxItem) -> None:
        """Send one claimed row and record the outcome."""
        try:
            remote_ref = self._send(item)
        except _Retry as retry:
            queued_at = float(item.body.get("queued_at") or time.time())
            if time.time() - queued_at > GIVE_UP_AFTER_S:
                self._dead(item, f"gave up after {item.attempts} attempts: {retry.reason}")
            else:
                at = datetime.now(UTC) + timedelta(seconds=retry.delay)
                self._store.outbox.mark_retry(item.id, retry.reason, at=at)
                log.log(
                    logging.DEBUG if retry.quiet else logging.INFO,
                    "slack post postponed",
                    extra={
                        "key": item.key,
                        "reason": retry.reason,
                        "delay_s": round(retry.delay, 2),
                    },
                )
        except _Dead as dead:
            self._dead(item, str(dead))
        else:
            self._store.outbox.mark_sent(item.id, remote_ref)
            self._finish(item, SENT, remote_ref)
        self._wake.set()  # a row waiting for this one may be due now

    def _finish(self, item: OutboxItem, status: str, remote_ref: str | None) -> None:
        with self._changed:
            self._finished[item.key] = replace(item, status=status, remote_ref=remote_ref)
            while len(self._finished) > FINISHED_REMEMBERED:
                self._finished.popitem(last=False)
            self._changed.notify_all()

    def _dead(self, item: OutboxItem, reason: str) -> None:
        self._store.outbox.mark_dead(item.id, reason)
        self._finish(item, DEAD, None)
        log.warning(
            "slack post given up",
            extra={"key": item.key, "channel": item.channel, "reason": reason},
        )

    def _send(self, item: OutboxItem) -> str | None:
        body = item.body
        after = body.get("after")
        if after:
            previous = self._store.outbox.get(str(after))
            if previous is not None and previous.status not in (SENT, DEAD):
                raise _Retry(f"waiting for {after}", min(2.0, 0.1 * item.attempts), quiet=True)
        superseded = body.get("superseded_by")
        if superseded and self._store.outbox.get(str(superseded)) is not None:
            log.info(
                "working message skipped: the answer is already queued", extra={"key": item.key}
            )
            return None
        if item.kind == RESPOND:
            return self._respond(item)
        client = self._clients.for_team(
            item.workspace, body.get("enterprise"), bool(body.get("enterprise_install"))
        )
        if client is None:
            raise _Dead(f"pipebot is not installed in workspace {item.workspace}")
        try:
            return self._call(client, item)
        except SlackApiError as exc:
            raise _classify(exc, item.attempts) from None
        except (SlackClientError, URLError, OSError) as exc:
            # Connection refused/reset, timeouts: the client already retried in place.
            raise _Retry(f"{type(exc).__name__}: {exc}", _backoff(item.attempts)) from None

    def _call(self, client: WebClient, item: OutboxItem) -> str | None:
        kind, channel, thread = item.kind, item.channel, item.thread
        if kind == DELETE:
            try:
                client.chat_delete(channel=channel, ts=str(item.update_ref))
            except SlackApiError as exc:
                if _error(exc) != "message_not_found":
                    raise
            return None
        if kind == STREAM:
            return self._stream(client, item)
        message = _message(item.body)
        if message is None:
            return None  # the reply renders into fewer parts now; nothing left to send
        if kind == EPHEMERAL:
            response = client.chat_postEphemeral(
                channel=channel,
                user=str(item.body["user"]),
                text=message.text,
                blocks=message.blocks,
                thread_ts=thread,
            )
            return str(response.get("message_ts") or "") or None
        if kind == UPDATE and item.update_ref:
            try:
                response = client.chat_update(
                    channel=channel, ts=item.update_ref, text=message.text, blocks=message.blocks
                )
                return str(response.get("ts") or item.update_ref)
            except SlackApiError as exc:
                if _error(exc) not in UPDATE_GONE:
                    raise
                log.info("message to update is gone; posting instead", extra={"key": item.key})
        response = client.chat_postMessage(
            channel=channel,
            text=message.text,
            blocks=message.blocks,
            thread_ts=thread,
            unfurl_links=False,
            unfurl_media=False,
        )
        return str(response["ts"])

    def _stream(self, client: WebClient, item: OutboxItem) -> str | None:
        reply = from_dict(item.body["reply"])
        markdown = render_markdown(reply)
        if len(markdown) > STREAM_MAX_CHARS:
            self._fall_back(item, streamed_ts=None)
            return None
        streamer = client.chat_stream(
            channel=item.channel,
            thread_ts=str(item.thread),
            recipient_team_id=item.workspace,
            recipient_user_id=str(item.body["user"]),
            buffer_size=STREAM_CHUNK_CHARS,
        )
        try:
            for start in range(0, len(markdown), STREAM_CHUNK_CHARS):
                streamer.append(markdown_text=markdown[start : start + STREAM_CHUNK_CHARS])
            streamer.stop(blocks=render_actions(reply) or None)
        except SlackApiError as exc:
            if streamer.ts is None and isinstance(_classify(exc, item.attempts), _Retry):
                raise  # nothing was posted: try streaming again later
            log.info(
                "streaming refused; answering with messages",
                extra={"key": item.key, "error": _error(exc), "started": streamer.ts is not None},
            )
            self._fall_back(item, streamed_ts=streamer.ts)
        return streamer.ts

    def _fall_back(self, item: OutboxItem, *, streamed_ts: str | None) -> None:
        """Queue the streamed answer as ordinary messages (editing the stream's message)."""
        reply = from_dict(item.body["reply"])
        meta = {k: item.body.get(k) for k in ("team", "enterprise", "enterprise_install")}
        previous: str | None = None
        for part in range(len(render_blocks(reply))):
            key = f"{item.key}:fallback:{part}"
            update = part == 0 and streamed_ts is not None
            self.enqueue(
                key,
                team=item.workspace,
                channel=item.channel,
                thread=item.thread,
                kind=UPDATE if update else POST,
                update_ref=streamed_ts if update else None,
                body={**meta, "reply": item.body["reply"], "part": part, "after": previous},
            )
            previous = key

    def _respond(self, item: OutboxItem) -> str | None:
        message = _message(item.body)
        if message is None:
            return None
        hook = WebhookClient(
            str(item.body["response_url"]),
            timeout=15,
            retry_handlers=[
                ConnectionErrorRetryHandler(max_retry_count=2),
                ShortRateLimitRetry(max_retry_count=2),
                ServerErrorRetryHandler(max_retry_count=2),
            ],
        )
        try:
            response = hook.send(
                text=message.text,
                blocks=message.blocks,
                response_type="ephemeral",
                replace_original=False,
            )
        except (URLError, OSError) as exc:
            raise _Retry(f"{type(exc).__name__}: {exc}", _backoff(item.attempts)) from None
        if response.status_code == 429:
            raise _Retry("ratelimited", retry_after(response.headers))
        if response.status_code >= 500:
            raise _Retry(f"response_url answered {response.status_code}", _backoff(item.attempts))
        if response.status_code != 200:
            # Expired or already used five times: nothing will make this URL work again.
            raise _Dead(f"response_url answered {response.status_code}: {response.body[:200]}")
        return None


def _message(body: dict[str, Any]) -> SlackMessage | None:
    caption = str(body.get("caption") or "")
    if "working" in body:
        return render_working(str(body["working"]), caption=caption)
    messages = render_blocks(from_dict(body["reply"]), caption=caption)
    part = int(body.get("part") or 0)
    return messages[part] if part < len(messages) else None


def _error(exc: SlackApiError) -> str:
    try:
        return str(exc.response.get("error") or "")
    except (AttributeError, TypeError):
        return ""


def _classify(exc: SlackApiError, attempts: int) -> _Retry | _Dead:
    status = int(getattr(exc.response, "status_code", 200) or 200)
    error = _error(exc) or f"HTTP {status}"
    if status == 429 or error == "ratelimited":
        headers = getattr(exc.response, "headers", {})
        return _Retry("ratelimited", retry_after(headers) + random.random())
    if status >= 500 or error in TRANSIENT_ERRORS:
        return _Retry(error, _backoff(attempts))
    return _Dead(error)


def _backoff(attempts: int) -> float:
    return float(min(300, 2 ** min(attempts, 8))) + random.random()

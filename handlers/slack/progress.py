"""Showing the core's progress on Slack while an answer is being built.

The core reports what it is doing through a `Progress` callback ("Checking Airflow and dbt");
here that becomes either an edit of pipebot's "working…" message (`WorkingMessage`) or, in a
Slack assistant thread, the thread's status line (`AssistantStatus`). Both are wrapped in
`Throttled`: at most one Slack call per interval, the newest text wins, and nothing is sent
after `close()` — so a late progress edit can never overwrite the answer.

Progress edits are direct, best-effort Web API calls rather than outbox rows: a lost or repeated
edit is harmless, while a retried one arriving after the answer would not be.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable

from slack_sdk import WebClient
from slack_sdk.errors import SlackClientError

from handlers.slack.blocks import render_working

log = logging.getLogger(__name__)

# What a "working…" message and an assistant thread's status line say before any progress.
WORKING = "working"
ASSISTANT_WORKING = "is working on it…"


class Throttled:
    """A `Progress` callback that forwards at most one text per `interval` seconds.

    A text arriving too early is held and sent when the interval ends (only the newest one);
    `close()` drops what is held and waits for a send in flight.
    """

    def __init__(self, send: Callable[[str], None], *, interval: float) -> None:
        self._send = send
        self._interval = interval
        self._lock = threading.Lock()
        self._sending = threading.Lock()  # keeps edits in order; close() waits on it
        self._last = float("-inf")
        self._held: str | None = None
        self._timer: threading.Timer | None = None
        self._closed = False

    def __call__(self, text: str) -> None:
        with self._lock:
            if self._closed:
                return
            wait = self._last + self._interval - time.monotonic()
            if wait > 0 or self._timer is not None:
                self._held = text
                if self._timer is None:
                    self._timer = threading.Timer(max(wait, 0.0), self._flush)
                    self._timer.daemon = True
                    self._timer.start()
                return
            self._last = time.monotonic()
        self._forward(text)

    def close(self, timeout: float = 10.0) -> None:
        with self._lock:
            self._closed = True
            self._held = None
            if self._timer is not None:
                self._timer.cancel()
                self._timer = None
        if self._sending.acquire(timeout=timeout):
            self._sending.release()

    def _flush(self) -> None:
        with self._lock:
            text, self._held, self._timer = self._held, None, None
            if self._closed or text is None:
                return
            self._last = time.monotonic()
        self._forward(text)

    def _forward(self, text: str) -> None:
        with self._sending:
            if self._closed:
                return
            try:
                self._send(text)
            except (SlackClientError, OSError) as exc:
                # Progress is decoration: a failed edit is logged and the answer still comes.
                log.info("progress update failed", extra={"error": type(exc).__name__})


class WorkingMessage:
    """Edits pipebot's "working…" message (``chat.update``) to show the current step."""

    def __init__(self, client: WebClient, *, channel: str, ts: str, caption: str = "") -> None:
        self._client = client
        self._channel = channel
        self._ts = ts
        self._caption = caption

    def __call__(self, text: str) -> None:
        message = render_working(text, caption=self._caption)
        self._client.chat_update(
            channel=self._channel, ts=self._ts, text=message.text, blocks=message.blocks
        )


class AssistantStatus:
    """Sets the status line of a Slack assistant thread (``assistant.threads.setStatus``)."""

    def __init__(self, client: WebClient, *, channel: str, thread_ts: str) -> None:
        self._client = client
        self._channel = channel
        self._thread_ts = thread_ts

    def __call__(self, text: str) -> None:
        self._client.assistant_threads_setStatus(
            channel_id=self._channel, thread_ts=self._thread_ts, status=text
        )


def silent(text: str) -> None:
    """The progress callback when there is nothing to show progress on."""

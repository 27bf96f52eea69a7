"""Showing the core's progress on Slack while an answer is being built.

The core reports what it is doing through a `Progress` callback ("Checking Airflow and dbt");
here that becomes either an edit of pipebot's "working…" message (`WorkingMessage`) or, in a
Slack assistant thread, the thread's status line (`AssistantStatus`). Both are wrapped in
`Throttled` (`handlers.progress`): at most one Slack call per interval, the newest text wins,
and nothing is sent after `close()` — so a late progress edit can never overwrite the answer.

Progress edits are direct, best-effort Web API calls rather than outbox rows: a lost or repeated
edit is harmless, while a retried one arriving after the answer would not be.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

from slack_sdk import WebClient
from slack_sdk.errors import SlackClientError

from handlers.progress import Throttled
from handlers.slack.blocks import render_working

log = logging.getLogger(__name__)

# What a "working…" message and an assistant thread's status line say before any progress.
WORKING = "working"
ASSISTANT_WORKING = "is working on it…"


def throttled(send: Callable[[str], None], *, interval: float) -> Throttled:
    """`Throttled` for Slack calls: a failed Slack call loses only the decoration."""
    return Throttled(send, interval=interval, errors=(SlackClientError, OSError))


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

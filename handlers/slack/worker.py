"""Answering one accepted Slack turn, off the request path (a `StoreQueue` job).

1. Show that pipebot is on it: a "working…" message through the outbox (in the turn's thread,
   or top-level for a slash command, whose thread it then opens), or — in a Slack assistant
   thread — the thread's status line.
2. Ask the core (`Conversation.handle`) with a progress callback that edits that message or
   status, throttled.
3. Queue the answer in the outbox: the first rendered message replaces the "working…" message
   (an ``update``), further ones follow in the thread; a private (ephemeral) answer goes to the
   asker only and the "working…" message is removed; in an assistant thread the answer is
   streamed. A slash command in a channel pipebot cannot post to is answered through the
   command's ``response_url``, visible to the asker only.

Everything queued carries keys derived from the turn's event id, so a retried job never posts
twice.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from typing import Any

from slack_sdk.errors import SlackClientError

from bot.commands import Command
from bot.messages import InboundMessage, Progress, Reply
from bot.rendering import from_dict, to_dict
from bot.store.outbox import SENT
from handlers.slack.blocks import escape, render_blocks
from handlers.slack.clients import Clients
from handlers.slack.delivery import DELETE, EPHEMERAL, POST, RESPOND, STREAM, UPDATE, SlackDelivery
from handlers.slack.inbound import SlackTurn, to_inbound
from handlers.slack.progress import (
    ASSISTANT_WORKING,
    WORKING,
    AssistantStatus,
    Throttled,
    WorkingMessage,
    silent,
)

log = logging.getLogger(__name__)

Handle = Callable[[InboundMessage, Progress], Reply | None]

TURN_JOB = "slack.turn"
THREAD_STARTED_JOB = "slack.thread_started"
# How long a worker waits for its "working…" message before answering without it (a long
# rate limit); the answer is queued either way.
OPENER_WAIT_S = 20.0
SUGGESTED_PROMPTS = 4


class SlackWorker:
    """The job handlers of the Slack channel (`jobs()` maps job kinds to them)."""

    def __init__(
        self,
        *,
        handle: Handle,
        commands: Iterable[Command],
        clients: Clients,
        delivery: SlackDelivery,
        redact: Callable[[str], str],
        progress_interval: float = 1.0,
        stream: bool = True,
        opener_wait: float = OPENER_WAIT_S,
    ) -> None:
        self._handle = handle
        self._commands = list(commands)
        self._clients = clients
        self._delivery = delivery
        self._redact = redact
        self._interval = progress_interval
        self._stream = stream
        self._opener_wait = opener_wait

    def jobs(self) -> dict[str, Callable[[dict[str, Any]], None]]:
        return {TURN_JOB: self.answer, THREAD_STARTED_JOB: self.thread_started}

    # --- a turn --------------------------------------------------------------------------------

    def answer(self, payload: dict[str, Any]) -> None:
        turn = SlackTurn.from_dict(payload)
        # Progress edits use a client that gives up on rate limits: they are only decoration.
        quick = self._clients.for_team(
            turn.team, turn.enterprise, turn.enterprise_install, patient=False
        )
        if quick is None:
            log.warning("no Slack installation for this workspace", extra={"team": turn.team})
            return
        caption = self._caption(turn)
        opened_ts: str | None = None
        opener_dead = False
        progress: Throttled | None = None
        if turn.source == "assistant":
            status = AssistantStatus(quick, channel=turn.channel, thread_ts=str(turn.reply_thread))
            progress = Throttled(status, interval=self._interval)
            progress(ASSISTANT_WORKING)
        else:
            # A retried job finds its row already there and simply waits for it.
            self._delivery.enqueue(
                _key("open", turn),
                team=turn.team,
                channel=turn.channel,
                thread=turn.reply_thread,
                body={
                    **_workspace(turn),
                    "working": WORKING,
                    "caption": caption,
                    "superseded_by": _key("reply", turn, 0),
                },
            )
            item = self._delivery.wait_sent(_key("open", turn), self._opener_wait)
            if item is not None and item.status == SENT and item.remote_ref:
                opened_ts = item.remote_ref
                message = WorkingMessage(quick, channel=turn.channel, ts=opened_ts, caption=caption)
                progress = Throttled(message, interval=self._interval)
            elif item is not None:
                opener_dead = True
        inbound = to_inbound(turn, opened_ts=opened_ts)
        show = progress or silent
        try:
            # Progress texts are posted too, so they pass the redactor like the answer.
            reply = self._handle(inbound, lambda text: show(self._redact(text)))
        finally:
            if progress is not None:
                progress.close()
        if reply is None:
            log.info("already answered", extra={"event": inbound.dedupe_key})
            return
        self._queue_answer(turn, self._redacted(reply), opened_ts, opener_dead, caption)

    def _queue_answer(
        self,
        turn: SlackTurn,
        reply: Reply,
        opened_ts: str | None,
        opener_dead: bool,
        caption: str,
    ) -> None:
        meta = _workspace(turn)
        body = {**meta, "reply": to_dict(reply), "caption": caption}
        parts = len(render_blocks(reply, caption=caption))
        # A command's answer opens a thread (its "working…" message); later parts go there.
        thread = turn.reply_thread or (opened_ts if turn.source == "command" else None)
        if turn.source == "command" and opener_dead and turn.response_url:
            kinds = [RESPOND] * parts
        elif reply.ephemeral:
            kinds = [EPHEMERAL] * parts
        elif turn.source == "assistant" and self._stream:
            kinds = [STREAM]
        else:
            kinds = [UPDATE if opened_ts else POST] + [POST] * (parts - 1)
        previous: str | None = None
        for part, kind in enumerate(kinds):
            key = _key("reply", turn, part)
            self._delivery.enqueue(
                key,
                team=turn.team,
                channel=turn.channel,
                thread=thread,
                kind=kind,
                update_ref=opened_ts if kind == UPDATE else None,
                body={
                    **body,
                    "part": part,
                    "after": previous,
                    "user": turn.user,
                    "response_url": turn.response_url,
                },
            )
            previous = key
        if opened_ts and kinds[0] in (EPHEMERAL, RESPOND):
            # The answer is private; the public "working…" message would stay behind.
            self._delivery.enqueue(
                _key("close", turn),
                team=turn.team,
                channel=turn.channel,
                kind=DELETE,
                update_ref=opened_ts,
                body=meta,
            )

    def _caption(self, turn: SlackTurn) -> str:
        """Who ran a slash command: Slack shows nobody the command itself."""
        if turn.source != "command":
            return ""
        typed = f"{turn.command} {turn.text}".strip().replace("`", "'")
        return f"<@{turn.user}> used `{escape(self._redact(typed))}`"

    def _redacted(self, reply: Reply) -> Reply:
        # Everything posted passes the redactor; doing it on the document keeps the renderer's
        # limits honest (a mask can be longer than the secret it hides).
        return from_dict(redact_strings(to_dict(reply), self._redact))

    # --- an assistant thread opens ---------------------------------------------------------------

    def thread_started(self, payload: dict[str, Any]) -> None:
        """Offer the core's argument-free commands as the thread's suggested prompts."""
        client = self._clients.for_team(
            str(payload["team"]), payload.get("enterprise"), bool(payload.get("enterprise_install"))
        )
        if client is None:
            return
        prompts = [
            {"title": command.name.capitalize(), "message": command.name}
            for command in self._commands
            if command.usage == command.name
        ][:SUGGESTED_PROMPTS]
        if not prompts:
            return
        try:
            client.assistant_threads_setSuggestedPrompts(
                channel_id=str(payload["channel"]),
                thread_ts=str(payload["thread"]),
                prompts=prompts,
            )
        except SlackClientError as exc:
            # Suggestions are a convenience; the thread works without them.
            log.info("suggested prompts not set", extra={"error": type(exc).__name__})


def _key(what: str, turn: SlackTurn, part: int | None = None) -> str:
    key = f"slack:{what}:{turn.team}:{turn.event_id}"
    return key if part is None else f"{key}:{part}"


def _workspace(turn: SlackTurn) -> dict[str, Any]:
    return {
        "team": turn.team,
        "enterprise": turn.enterprise,
        "enterprise_install": turn.enterprise_install,
    }


def redact_strings(value: Any, redact: Callable[[str], str]) -> Any:
    if isinstance(value, str):
        return redact(value)
    if isinstance(value, dict):
        return {k: v if k == "schema" else redact_strings(v, redact) for k, v in value.items()}
    if isinstance(value, list):
        return [redact_strings(v, redact) for v in value]
    return value

"""Answering one accepted Discord turn, off the gateway (a job of the work engine).

1. Where the answer goes. An app command or a button press is answered in its interaction's
   original response — deferred when it was accepted (a worker that got there first defers it
   itself; Discord says "already acknowledged" to the second) — while the interaction's token
   lives (15 minutes). Past that, or when the deferral came too late, the answer is posted to the
   channel, under a line saying who asked what. A mention in a channel is answered in a thread
   started from the mention; a message in a thread, or a DM, where it was said.
2. Outside an interaction, a "working…" message shows progress (throttled edits) and is then
   replaced by the answer's first message.
3. Ask the core (`Conversation.handle`). A retried job gets the stored answer back.
4. Post the answer through the one send path (`DiscordPoster`), rendered once
   (`render_embeds`): every message keyed by the turn's event, so a job that runs again after a
   crash finishes the answer without posting anything twice.

On the job's last attempt a failure still ends in a visible answer.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Callable
from typing import Any

from bot.messages import Reply
from bot.rendering import redacted
from bot.work import Attempt, JobKind, RetryLater
from handlers.discord.embeds import DiscordMessage, render_embeds
from handlers.discord.inbound import DiscordTurn, to_inbound
from handlers.discord.poster import DiscordPoster, PostRefused
from handlers.progress import Throttled

log = logging.getLogger(__name__)

Handle = Callable[..., Reply]

TURN_JOB = "discord.turn"
WORKING = "⏳ working…"
THREAD_NAME_MAX = 90


class DiscordWorker:
    def __init__(
        self,
        *,
        handle: Handle,
        poster: DiscordPoster,
        redact: Callable[[str], str],
        progress_interval: float = 1.0,
    ) -> None:
        self._handle = handle
        self._poster = poster
        self._redact = redact
        self._interval = progress_interval

    def jobs(self) -> list[JobKind[Any]]:
        return [JobKind(TURN_JOB, self.answer, DiscordTurn)]

    def answer(self, turn: DiscordTurn, attempt: Attempt) -> None:
        live = turn.interaction and self._poster.defer(turn)
        channel = turn.reply_channel
        if turn.thread_from:
            try:
                self._poster.start_thread(
                    channel=turn.channel, message_id=turn.thread_from, name=thread_name(turn.text)
                )
            except PostRefused as refused:
                # No permission to create threads here: answer in the channel itself.
                log.warning("no thread; answering in the channel", extra={"reason": refused.reason})
                channel = turn.channel
        opened: str | None = None
        if not live:
            try:
                opened = self._poster.post(
                    _key("open", turn),
                    workspace=turn.workspace,
                    channel=channel,
                    message=DiscordMessage(content=self._caption(turn) + WORKING),
                )
            except PostRefused:
                return  # for good (no access to the channel …); the poster logged why
        progress = (
            Throttled(
                lambda text: self._poster.progress(
                    channel=channel,
                    message_id=str(opened),
                    text=self._caption(turn) + f"⏳ {self._redact(text)}",
                ),
                interval=self._interval,
            )
            if opened is not None
            else None
        )
        try:
            reply = self._handle(
                to_inbound(turn),
                progress or (lambda _text: None),
                retryable=not attempt.final,
            )
        finally:
            if progress is not None:
                progress.close()
        messages = render_embeds(redacted(reply, self._redact))
        if opened is not None and self._caption(turn):
            messages[0] = DiscordMessage(
                content=(self._caption(turn) + messages[0].content)[:2000],
                embeds=messages[0].embeds,
                buttons=messages[0].buttons,
                files=messages[0].files,
            )
        try:
            self._deliver(turn, messages, channel=channel, live=live, opened=opened)
        except PostRefused:
            return
        except RetryLater:
            raise
        except Exception:
            if attempt.final:
                self._fail_visibly(turn, channel=channel, live=live, opened=opened)
            raise

    def _deliver(
        self,
        turn: DiscordTurn,
        messages: list[DiscordMessage],
        *,
        channel: str,
        live: bool,
        opened: str | None,
    ) -> None:
        for part, message in enumerate(messages):
            key = _key("reply", turn, part)
            if part == 0 and live:
                self._poster.respond(key, turn, message)
            elif part == 0 and opened is not None:
                self._poster.edit(channel=channel, message_id=opened, message=message)
            elif live:
                self._poster.followup(key, turn, message)
            else:
                self._poster.post(key, workspace=turn.workspace, channel=channel, message=message)

    def _fail_visibly(
        self, turn: DiscordTurn, *, channel: str, live: bool, opened: str | None
    ) -> None:
        ref = uuid.uuid4().hex[:8]
        log.exception("answer could not be delivered", extra={"ref": ref, "key": turn.job_key})
        reply = Reply.failed(ref)
        message = render_embeds(reply)[0]
        try:
            if live:
                self._poster.respond(_key("failed", turn), turn, message)
            elif opened is not None:
                self._poster.edit(channel=channel, message_id=opened, message=message)
        except (RetryLater, PostRefused, OSError):
            log.warning("the failure could not be shown either", extra={"ref": ref})

    def _caption(self, turn: DiscordTurn) -> str:
        """Who asked what, above an interaction's answer that lands in the channel (where
        Discord would otherwise show nobody the command)."""
        if not turn.interaction:
            return ""
        typed = self._redact(turn.text).replace("`", "'")[:200]
        return f"<@{turn.user}> used `/pipebot {typed}`\n"


def thread_name(text: str) -> str:
    """A thread's name from the question that opened it."""
    name = " ".join(text.split()) or "pipebot"
    return name if len(name) <= THREAD_NAME_MAX else name[: THREAD_NAME_MAX - 1] + "…"


def _key(what: str, turn: DiscordTurn, part: int | None = None) -> str:
    key = f"discord:{what}:{turn.workspace}:{turn.event_id}"
    return key if part is None else f"{key}:{part}"

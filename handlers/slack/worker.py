"""Answering one accepted Slack turn, off the request path (a job of the work engine).

1. Show that pipebot is on it: post a "working…" message directly (in the turn's thread, or
   top-level for a slash command, whose thread it then opens), or — in a Slack assistant
   thread — set the thread's status line.
2. Ask the core (`Conversation.handle`) with a progress callback that edits that message or
   status, throttled. A retried job gets the stored answer back instead of a second one.
3. Post the answer through the one send path (`SlackPoster`), rendered once: the first message
   replaces the "working…" message, further ones follow in the thread; a private (ephemeral)
   answer goes to the asker only and the "working…" message is removed; in an assistant thread
   the answer is streamed. A slash command in a channel pipebot cannot post to is answered
   through the command's ``response_url``, visible to the asker only.

Every message carries a key derived from the turn's event id, so a job that runs again after a
crash finishes the answer without posting anything twice. On the job's last attempt a failure
still ends in a visible answer: the "working…" message becomes an error reply.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Callable, Iterable
from typing import Any

from slack_sdk.errors import SlackClientError

from bot.commands import Command
from bot.messages import InboundMessage, Progress, Reply
from bot.rendering import redacted
from bot.work import Attempt, JobKind, RetryLater
from handlers.progress import Throttled
from handlers.slack.blocks import (
    SlackMessage,
    escape,
    local_images,
    render_actions,
    render_blocks,
    render_markdown,
    render_working,
)
from handlers.slack.clients import Clients
from handlers.slack.inbound import SlackTurn, to_inbound
from handlers.slack.poster import MaybeSent, PostRefused, SlackPoster, Workspace
from handlers.slack.progress import (
    ASSISTANT_WORKING,
    WORKING,
    AssistantStatus,
    WorkingMessage,
    silent,
    throttled,
)

log = logging.getLogger(__name__)

Handle = Callable[..., Reply]

TURN_JOB = "slack.turn"
THREAD_STARTED_JOB = "slack.thread_started"
SUGGESTED_PROMPTS = 4
# Streamed answers are for conversational replies; longer ones are posted as messages.
STREAM_MAX_CHARS = 11_000


class SlackWorker:
    """The job handlers of the Slack channel (`jobs()` lists them)."""

    def __init__(
        self,
        *,
        handle: Handle,
        commands: Iterable[Command],
        clients: Clients,
        poster: SlackPoster,
        redact: Callable[[str], str],
        progress_interval: float = 1.0,
        stream: bool = True,
    ) -> None:
        self._handle = handle
        self._commands = list(commands)
        self._clients = clients
        self._poster = poster
        self._redact = redact
        self._interval = progress_interval
        self._stream = stream

    def jobs(self) -> list[JobKind[Any]]:
        return [
            JobKind(TURN_JOB, self.answer, SlackTurn),
            JobKind(THREAD_STARTED_JOB, self.thread_started, dict),
        ]

    # --- a turn --------------------------------------------------------------------------------

    def answer(self, turn: SlackTurn, attempt: Attempt) -> None:
        workspace = Workspace(
            team=turn.team, enterprise=turn.enterprise, enterprise_install=turn.enterprise_install
        )
        # Progress edits use a client that gives up on rate limits: they are only decoration.
        quick = self._clients.for_team(
            turn.team, turn.enterprise, turn.enterprise_install, patient=False
        )
        if quick is None:
            log.warning("no Slack installation for this workspace", extra={"team": turn.team})
            return
        caption = self._caption(turn)
        opened: str | None = None
        refused = False
        progress: Throttled | None = None
        if turn.source == "assistant":
            status = AssistantStatus(quick, channel=turn.channel, thread_ts=str(turn.reply_thread))
            progress = throttled(status, interval=self._interval)
            progress(ASSISTANT_WORKING)
        else:
            opened, refused = self._open(turn, workspace, caption)
            if opened is not None:
                message = WorkingMessage(quick, channel=turn.channel, ts=opened, caption=caption)
                progress = throttled(message, interval=self._interval)
        inbound = to_inbound(turn, opened_ts=opened)
        show = progress or silent
        try:
            reply = self._ask(inbound, lambda text: show(self._redact(text)), attempt)
        finally:
            if progress is not None:
                progress.close()
        try:
            self._deliver(
                turn,
                workspace,
                reply=self._redacted(reply),
                opened=opened,
                refused=refused,
                caption=caption,
            )
        except PostRefused:
            return  # for good (the channel is gone …); the poster logged why
        except RetryLater:
            raise
        except Exception:
            if attempt.final:
                self._fail_visibly(turn, workspace, opened, caption)
            raise

    def _open(self, turn: SlackTurn, workspace: Workspace, caption: str) -> tuple[str | None, bool]:
        """Post the "working…" message; (its ts, whether Slack refused it for good)."""
        key = _key("open", turn)
        try:
            return (
                self._poster.post(
                    key,
                    workspace,
                    channel=turn.channel,
                    thread=turn.reply_thread,
                    message=render_working(WORKING, caption=caption),
                ),
                False,
            )
        except PostRefused as refused:
            return None, not refused.abandoned
        except MaybeSent:
            raise  # it may be in the channel: the next attempt finds it and carries on
        except RetryLater as later:
            # Slack is rate-limiting: answer without the "working…" message rather than keep
            # the person waiting for it (and never post it late).
            log.info("working message skipped", extra={"key": key, "reason": later.reason})
            self._poster.abandon(key, f"skipped: {later.reason}")
            return None, False

    def _ask(self, inbound: InboundMessage, progress: Progress, attempt: Attempt) -> Reply:
        return self._handle(inbound, progress, retryable=not attempt.final)

    def _deliver(
        self,
        turn: SlackTurn,
        workspace: Workspace,
        *,
        reply: Reply,
        opened: str | None,
        refused: bool,
        caption: str,
    ) -> None:
        messages = render_blocks(reply, caption=caption)  # rendered once, for every part
        # A command's answer opens a thread (its "working…" message); later parts go there.
        thread = turn.reply_thread or (opened if turn.source == "command" else None)
        if turn.source == "command" and refused and turn.response_url:
            for part, message in enumerate(messages):
                self._poster.respond(
                    _key("reply", turn, part),
                    response_url=turn.response_url,
                    channel=turn.channel,
                    message=message,
                )
            return
        if reply.ephemeral:
            for part, message in enumerate(messages):
                self._poster.ephemeral(
                    _key("reply", turn, part),
                    workspace,
                    channel=turn.channel,
                    user=turn.user,
                    thread=turn.reply_thread,
                    message=message,
                )
            if opened is not None:
                # The answer is private; the public "working…" message would stay behind.
                self._poster.delete(_key("close", turn), workspace, channel=turn.channel, ts=opened)
            return
        if turn.source == "assistant" and self._stream and turn.reply_thread:
            markdown = render_markdown(reply)
            if len(markdown) <= STREAM_MAX_CHARS:
                streamed = self._poster.stream(
                    _key("reply", turn, 0),
                    workspace,
                    channel=turn.channel,
                    thread=turn.reply_thread,
                    user=turn.user,
                    markdown=markdown,
                    blocks=render_actions(reply),
                )
                if not streamed.complete:
                    # Slack refused streaming (or an earlier attempt was cut off): messages it
                    # is, the first one over the streamed message when one was started.
                    self._post_parts(
                        turn, workspace, messages, streamed.ts, thread, prefix="reply-fallback"
                    )
                self._upload_images(turn, workspace, reply, thread)
                return
        self._post_parts(turn, workspace, messages, opened, thread, prefix="reply")
        self._upload_images(turn, workspace, reply, thread)

    def _upload_images(
        self, turn: SlackTurn, workspace: Workspace, reply: Reply, thread: str | None
    ) -> None:
        """Charts pipebot drew (local files) go up beside the answer, in its thread."""
        for index, image in enumerate(local_images(reply)):
            self._poster.upload(
                _key("file", turn, index),
                workspace,
                channel=turn.channel,
                thread=thread,
                path=image.url,
                title=reply.title or "pipebot chart",
                alt=image.alt,
            )

    def _post_parts(
        self,
        turn: SlackTurn,
        workspace: Workspace,
        messages: list[SlackMessage],
        replace: str | None,
        thread: str | None,
        *,
        prefix: str,
    ) -> None:
        for part, message in enumerate(messages):
            key = _key(prefix, turn, part)
            if part == 0 and replace is not None:
                self._poster.update(
                    key, workspace, channel=turn.channel, ts=replace, message=message, thread=thread
                )
            else:
                self._poster.post(
                    key, workspace, channel=turn.channel, thread=thread, message=message
                )

    def _fail_visibly(
        self, turn: SlackTurn, workspace: Workspace, opened: str | None, caption: str
    ) -> None:
        """The last attempt failed after the question was answered: say so where the person
        is looking, instead of leaving "working…" behind."""
        ref = uuid.uuid4().hex[:8]
        log.exception("answer could not be delivered", extra={"ref": ref, "key": turn.job_key})
        reply = Reply.failed(ref)
        message = render_blocks(reply, caption=caption)[0]
        try:
            if opened is not None:
                self._poster.update(
                    _key("failed", turn),
                    workspace,
                    channel=turn.channel,
                    ts=opened,
                    message=message,
                )
            elif turn.response_url:
                self._poster.respond(
                    _key("failed", turn),
                    response_url=turn.response_url,
                    channel=turn.channel,
                    message=message,
                )
        except (RetryLater, PostRefused, SlackClientError, OSError):
            log.warning("the failure could not be shown either", extra={"ref": ref})

    def _caption(self, turn: SlackTurn) -> str:
        """Who ran a slash command: Slack shows nobody the command itself."""
        if turn.source != "command":
            return ""
        typed = f"{turn.command} {turn.text}".strip().replace("`", "'")
        return f"<@{turn.user}> used `{escape(self._redact(typed))}`"

    def _redacted(self, reply: Reply) -> Reply:
        return redacted(reply, self._redact)

    # --- an assistant thread opens ---------------------------------------------------------------

    def thread_started(self, payload: dict[str, Any], attempt: Attempt) -> None:
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

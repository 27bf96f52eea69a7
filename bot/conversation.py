"""`Conversation.handle`: the one entry point every channel calls.

It de-duplicates deliveries, records the thread, routes commands to playbooks and free text to
the agent, and returns a `Reply` — it never posts.
"""

from __future__ import annotations

import logging
import uuid

from bot import phrases
from bot.access import AccessPolicy
from bot.agent import Agent
from bot.answer import AgentReply
from bot.commands import Commands, Request
from bot.messages import InboundMessage, Progress, Reply, Section, Tone, no_progress
from bot.ports import Sources
from bot.rendering import from_dict, to_dict, to_text
from bot.store import Store
from bot.transcript import MEMORY_KEY

log = logging.getLogger(__name__)


class Conversation:
    def __init__(
        self,
        *,
        store: Store,
        commands: Commands,
        sources: Sources,
        agent: Agent | None = None,
        access: AccessPolicy | None = None,
    ) -> None:
        self._access = access or AccessPolicy.open()
        self._store = store
        self._commands = commands
        self._sources = sources
        self._agent = agent

    @property
    def commands(self) -> Commands:
        return self._commands

    def handle(self, message: InboundMessage, progress: Progress = no_progress) -> Reply | None:
        """Answer `message`; None when this delivery is already being handled.

        A delivery that was answered before gets the same answer back (not a new one), so a
        job retried after a crash between answering and posting still posts it; channels key
        their posts by event id, so nothing is posted twice.
        """
        if not self._store.events.claim(message.dedupe_key):
            stored = self._store.threads.reply_for(message.thread_ref, message.event_id)
            log.info(
                "duplicate delivery", extra={"event": message.dedupe_key, "replayed": bool(stored)}
            )
            return from_dict(stored) if stored else None
        conversation_id = self._store.threads.touch(message.thread_ref)
        self._store.threads.add(
            conversation_id,
            role="user",
            author=message.user,
            text=message.text,
            event_id=message.event_id,
        )
        try:
            reply = self._answer(message, conversation_id, progress)
        except Exception:
            # The one broad catch of the core: whatever broke, the person gets an answer with
            # a reference the operator can find in the logs; exception text is never shown.
            ref = uuid.uuid4().hex[:8]
            log.exception("failed to answer", extra={"ref": ref, "event": message.dedupe_key})
            reply = Reply(
                title="Sorry — that failed",
                tone=Tone.ERROR,
                text=phrases.INTERNAL_ERROR.format(ref=ref),
            )
        payload = to_dict(reply if not isinstance(reply, AgentReply) else reply.plain())
        if isinstance(reply, AgentReply):
            # The agent's memory of this answer stays in the thread, never in what is posted.
            payload[MEMORY_KEY] = reply.memory
            reply = reply.plain()
        self._store.threads.add(
            conversation_id,
            role="bot",
            text=to_text(reply),
            event_id=message.event_id,
            payload=payload,
        )
        return reply

    def _answer(self, message: InboundMessage, conversation_id: int, progress: Progress) -> Reply:
        routed = self._commands.route(message.text)
        request = Request(
            message=message,
            args=routed.args,
            sources=self._sources,
            progress=progress,
            conversation_id=conversation_id,
        )
        if routed.command is not None:
            group = routed.command.group_for(routed.args)
            what = f"`{routed.command.name}`"
            if group != routed.command.group:
                what = f"`{routed.command.name} {routed.args[0]}`"
        elif routed.unknown:
            return self._unknown(routed.unknown, routed.suggestions)
        else:
            group, what = "ask", "Asking the agent"
        if not self._access.allows(group, user=message.user, channel=message.channel):
            log.info("access denied", extra={"group": group, "event": message.dedupe_key})
            return self._access.denial(group, what)
        if routed.command is not None:
            return routed.command.run(request)
        if self._agent is None:
            return Reply(
                title="The agent is not configured", tone=Tone.WARNING, text=phrases.NO_AGENT
            )
        history = self._store.threads.history(conversation_id)[:-1]  # without this question
        return self._agent.answer(routed.question, history=history, request=request)

    def _unknown(self, word: str, suggestions: tuple[str, ...]) -> Reply:
        text = f"I don't know the command `{word}`."
        if suggestions:
            text += " Did you mean " + " or ".join(f"`{s}`" for s in suggestions) + "?"
        return Reply(
            title="Unknown command",
            tone=Tone.WARNING,
            text=text,
            sections=(
                Section(
                    heading="Commands",
                    bullets=tuple(f"`{c.usage}` — {c.summary}" for c in self._commands),
                ),
            ),
            notes=("Anything longer than a command is treated as a question for the agent.",),
        )

"""`Conversation.handle`: the one entry point every channel calls.

It routes commands to playbooks and free text to the agent, records the turn in the thread,
and returns a `Reply` — it never posts.

**Once, with its effect.** The mark "this event is answered" commits in the same transaction
as the question and the answer stored in the thread. A run that crashes or fails before that
commit leaves nothing behind, and a retry answers afresh; a run after it (a redelivery, a job
retried after a crash between answering and posting) gets the stored answer back, so the
channel can finish posting it — its posts are keyed by the event, so nothing is posted twice.
"""

from __future__ import annotations

import logging
import uuid

from bot import logs, phrases
from bot.access import AccessPolicy
from bot.agent import Agent
from bot.agent.answer import AgentReply
from bot.agent.transcript import MEMORY_KEY
from bot.commands import Commands, Request
from bot.messages import InboundMessage, Progress, Reply, Section, Tone, no_progress
from bot.ports import Sources
from bot.rendering import from_dict, to_dict, to_text
from bot.store import Store

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

    def handle(
        self, message: InboundMessage, progress: Progress = no_progress, *, retryable: bool = False
    ) -> Reply:
        """Answer `message` (or return the answer stored for it earlier).

        `retryable` (a job that will run again if this raises): a failure propagates, so the
        retry can still give a real answer. Otherwise — the last attempt, or a channel without
        retries — the person gets an error reply with a reference for the logs.
        """
        key = message.dedupe_key
        handled, stored = self._store.events.result(key)
        if handled:
            log.info("already answered; the stored answer is returned", extra={"event": key})
            return from_dict(stored)
        conversation_id = self._store.threads.touch(message.thread_ref)
        with logs.context(conversation=conversation_id):
            try:
                reply = self._answer(message, conversation_id, progress)
            except Exception:
                if retryable:
                    raise
                # The one broad catch of the core: whatever broke, the person gets an answer
                # with a reference the operator can find in the logs; exception text is never
                # shown.
                ref = uuid.uuid4().hex[:8]
                log.exception("failed to answer", extra={"ref": ref, "event": key})
                reply = Reply.failed(ref)
        memory = reply.memory if isinstance(reply, AgentReply) else None
        if isinstance(reply, AgentReply):
            reply = reply.plain()
        answer = to_dict(reply)
        # The agent's memory of this answer stays in the thread, never in what is posted.
        payload = answer if memory is None else {**answer, MEMORY_KEY: memory}
        with self._store.sessions.begin() as session:
            if not self._store.events.mark(session, key, result=answer):
                # Another run of this event committed first (a redelivery raced this one).
                session.rollback()
                return from_dict(self._store.events.result(key)[1])
            self._store.threads.add(
                conversation_id,
                role="user",
                author=message.user,
                text=message.text,
                event_id=message.event_id,
                session=session,
            )
            self._store.threads.add(
                conversation_id,
                role="bot",
                text=to_text(reply),
                event_id=message.event_id,
                payload=payload,
                session=session,
            )
        return reply

    def refusal(self, message: InboundMessage) -> Reply | None:
        """The explanation `message`'s sender gets when its command group is closed to them,
        else None. Pure and quick: a channel that must choose between a public and a private
        answer before the work starts (Discord's deferral) asks here first."""
        routed = self._commands.route(message.text)
        if routed.command is not None:
            group = routed.command.group_for(routed.args)
            what = f"`{routed.command.name}`"
            if group != routed.command.group:
                what = f"`{routed.command.name} {routed.args[0]}`"
        elif routed.unknown:
            return None
        else:
            group, what = "ask", "Asking the agent"
        if self._access.allows_message(group, message):
            return None
        log.info("access denied", extra={"group": group, "event": message.dedupe_key})
        return self._access.denial(group, what)

    def _answer(self, message: InboundMessage, conversation_id: int, progress: Progress) -> Reply:
        routed = self._commands.route(message.text)
        request = Request(
            message=message,
            args=routed.args,
            sources=self._sources,
            progress=progress,
            conversation_id=conversation_id,
        )
        if routed.unknown:
            return self._unknown(routed.unknown, routed.suggestions)
        refused = self.refusal(message)
        if refused is not None:
            return refused
        if routed.command is not None:
            return routed.command.run(request)
        if self._agent is None:
            return Reply(
                title="The agent is not configured", tone=Tone.WARNING, text=phrases.NO_AGENT
            )
        history = self._store.threads.history(conversation_id)
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

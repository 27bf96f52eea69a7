"""`Conversation.handle` with the real store: dedupe, thread memory, routing, error boundary."""

from __future__ import annotations

import json
import logging
from collections.abc import Sequence

import msgspec
import pytest

from bot.commands import Command, Commands, Request
from bot.conversation import Conversation
from bot.messages import InboundMessage, Reply, Tone
from bot.playbooks import default_commands
from bot.ports import Sources
from bot.store import Store
from bot.store.threads import StoredMessage
from bot.work import JobKind, encode


def message(text: str, event_id: str, thread: str = "t1") -> InboundMessage:
    return InboundMessage(
        platform="console",
        workspace="local",
        channel="c",
        thread=thread,
        user="dana",
        text=text,
        event_id=event_id,
    )


@pytest.fixture
def conversation(sqlite_store: Store) -> Conversation:
    return Conversation(store=sqlite_store, commands=default_commands(), sources=Sources())


def test_help_lists_every_command(conversation: Conversation) -> None:
    reply = conversation.handle(message("help", "e1"))
    assert reply is not None
    listed = " ".join(reply.sections[0].bullets)
    for name in ("status", "dag <dag_id>", "runs [dag_id]", "lineage <model>", "freshness"):
        assert f"`{name}" in listed
    assert "no sources yet" in reply.notes[0]


def test_same_event_is_answered_once(conversation: Conversation, sqlite_store: Store) -> None:
    first = conversation.handle(message("help", "dup"))
    assert first is not None
    # A redelivery gets the recorded answer back, without a second turn in the thread.
    assert conversation.handle(message("help", "dup")) == first
    with sqlite_store.engine.connect() as connection:
        from sqlalchemy import text

        assert connection.execute(text("select count(*) from messages")).scalar() == 2


def test_status_without_sources_says_what_to_configure(conversation: Conversation) -> None:
    reply = conversation.handle(message("status", "e2"))
    assert reply is not None and reply.tone is Tone.WARNING
    assert any("PIPEBOT_AIRFLOW__BASE_URL" in note for note in reply.notes)


def test_unknown_command_suggests_and_lists(conversation: Conversation) -> None:
    reply = conversation.handle(message("stauts", "e3"))
    assert reply is not None
    assert "Did you mean `status`" in reply.text
    assert any("`help`" in b for b in reply.sections[0].bullets)


def test_free_text_without_agent_is_explained_not_answered(conversation: Conversation) -> None:
    reply = conversation.handle(message("why did orders_daily fail?", "e4"))
    assert reply is not None
    assert "ANTHROPIC_API_KEY" in reply.text and reply.tone is Tone.WARNING


def test_thread_history_reaches_the_agent(sqlite_store: Store) -> None:
    seen: list[tuple[str, list[str]]] = []

    class RecordingAgent:
        def answer(
            self, question: str, *, history: Sequence[StoredMessage], request: Request
        ) -> Reply:
            seen.append((question, [m.text for m in history]))
            return Reply(text=f"answer to {question}")

    conversation = Conversation(
        store=sqlite_store, commands=default_commands(), sources=Sources(), agent=RecordingAgent()
    )
    conversation.handle(message("why did it fail?", "q1"))
    conversation.handle(message("and who owns it?", "q2"))
    conversation.handle(message("unrelated question here", "q3", thread="other"))
    assert seen[0] == ("why did it fail?", [])
    assert seen[1][0] == "and who owns it?"
    assert seen[1][1][0] == "why did it fail?" and "answer to why did it fail?" in seen[1][1][1]
    assert seen[2][1] == []


def test_unexpected_failure_gets_a_reference_not_a_traceback(
    sqlite_store: Store, caplog: pytest.LogCaptureFixture
) -> None:
    def explode(request: Request) -> Reply:
        raise RuntimeError("secret internals")

    commands = Commands([Command(name="boom", usage="boom", summary="fails", run=explode)])
    conversation = Conversation(store=sqlite_store, commands=commands, sources=Sources())
    with caplog.at_level(logging.ERROR):
        reply = conversation.handle(message("boom", "e5"))
    assert reply is not None and reply.tone is Tone.ERROR
    assert "secret internals" not in reply.text
    ref = reply.text.split("reference ")[1][:8]
    assert any(getattr(r, "ref", None) == ref for r in caplog.records)


def test_access_control_explains_ephemerally(sqlite_store: Store) -> None:
    from bot.access import AccessPolicy
    from bot.settings import AccessSettings

    policy = AccessPolicy.from_settings(
        AccessSettings(read_channels=["C-ops"], ask_users=["U-lead"])  # type: ignore[call-arg]
    )
    conversation = Conversation(
        store=sqlite_store, commands=default_commands(), sources=Sources(), access=policy
    )
    denied = conversation.handle(message("status", "a1"))  # channel "c" is not C-ops
    assert denied is not None and denied.ephemeral and "`read`" in denied.text
    allowed = conversation.handle(
        InboundMessage(
            platform="slack",
            workspace="T",
            channel="C-ops",
            thread="1",
            user="U9",
            text="status",
            event_id="a2",
        )
    )
    assert allowed is not None and not allowed.ephemeral
    question = conversation.handle(message("why did it break?", "a3"))
    assert question is not None and question.ephemeral and "`ask`" in question.text


def test_inbound_message_round_trips_through_a_job_payload() -> None:
    original = message("dag orders_daily", "rt")
    stored = json.loads(json.dumps(encode(original)))  # what a job row holds
    assert JobKind("x", lambda m, a: None, InboundMessage).payload is InboundMessage
    assert msgspec.convert(stored, InboundMessage) == original


def test_scheduling_digests_is_its_own_access_group(sqlite_store: Store) -> None:
    from bot.access import AccessPolicy
    from bot.settings import AccessSettings

    policy = AccessPolicy.from_settings(
        AccessSettings(digest_users=["U-lead"])  # type: ignore[call-arg]
    )
    conversation = Conversation(
        store=sqlite_store,
        commands=default_commands(digest_store=sqlite_store.digests),
        sources=Sources(),
        access=policy,
    )
    denied = conversation.handle(message("digest schedule daily 09:00", "d1"))
    assert denied is not None and denied.ephemeral and "`digest`" in denied.text
    assert "`digest schedule`" in denied.text
    listed = conversation.handle(message("digest list", "d2"))  # reading stays open
    assert listed is not None and listed.title == "No digests scheduled here"

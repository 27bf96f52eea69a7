"""Discord end to end through the real discord.py client and the fake Discord: app commands are
deferred at once and answered by the work engine, mentions open threads that remember, DMs are
answered, refusals are private, alerts open incident threads with working buttons."""

from __future__ import annotations

import re
from datetime import timedelta
from pathlib import Path

from bot.messages import ThreadRef
from bot.settings import AccessSettings
from handlers.discord.embeds import CONTENT_MAX, EMBED_TEXT_PER_MESSAGE, EMBEDS_PER_MESSAGE
from integrations.demo import demo_sources
from tests.discord.conftest import (
    DiscordStack,
    discord_stack,
    embed_text,
    subcommand,
)
from tests.fakes.discord_api import (
    ALERTS_CHANNEL_ID,
    DATA_CHANNEL_ID,
    DATA_ENG_ROLE_ID,
    GUILD_ID,
    USER_ID,
    FakeDiscord,
)

FLAG_EPHEMERAL = 1 << 6


def original(fake: FakeDiscord, interaction_path: str) -> list[dict]:
    return [
        c.json
        for c in fake.calls_to("PATCH", re.escape(interaction_path) + "/messages/@original")
        if c.status < 300
    ]


def test_status_is_deferred_within_3_seconds_and_answered_with_the_same_facts(
    fake_discord: FakeDiscord, tmp_path: Path
) -> None:
    with discord_stack(fake_discord, tmp_path, sources=demo_sources()) as stack:
        interaction = fake_discord.slash(options=subcommand("status"))
        callback = fake_discord.wait_call("POST", re.escape(interaction.callback_path))[0]
        answered = fake_discord.wait_until(
            lambda: original(fake_discord, interaction.webhook_path), what="the answer"
        )
        stack.settle()
    assert callback.json == {"type": 5}
    deferred_after = callback.at - interaction.dispatched_at
    assert 0 <= deferred_after < 3.0
    print(f"\ndeferred {deferred_after * 1000:.0f} ms after the interaction was dispatched")
    text = embed_text(answered[-1])
    # The facts the console and Slack show for the same command (tests/discord/test_embeds.py).
    for fact in ("orders_daily", "customer_ltv", "raw.customers", "broken_dag.py"):
        assert fact in text, fact
    # Answered once: in the original response, which is the one message in the channel.
    posted = [m for m in fake_discord.messages_in(DATA_CHANNEL_ID) if "orders_daily" in str(m)]
    assert len(posted) == 1


def test_a_mention_opens_a_thread_and_a_follow_up_continues_the_conversation(
    stack: DiscordStack,
) -> None:
    fake = stack.fake
    asked = fake.mention("help")
    thread = fake.wait_until(lambda: fake.channel(asked.id), what="a thread from the mention")
    assert thread["parent_id"] == DATA_CHANNEL_ID
    fake.wait_until(
        lambda: any("status" in embed_text(m) for m in fake.messages_in(asked.id)),
        what="the answer in the thread",
    )
    fake.mention("freshness", channel_id=asked.id)
    fake.wait_until(lambda: len(fake.messages_in(asked.id)) >= 3, what="the follow-up's answer")
    stack.settle()
    # One thread, one conversation with both questions in it.
    assert len(fake.calls_to("POST", r"/channels/\d+/messages/\d+/threads")) == 1
    conversation = stack.store.threads.find(
        ThreadRef(platform="discord", workspace=GUILD_ID, channel=asked.id, thread=asked.id)
    )
    assert conversation is not None
    history = stack.store.threads.history(conversation)
    assert [t.text for t in history if t.role == "user"] == ["help", "freshness"]


def test_a_dm_is_answered_in_the_dm(stack: DiscordStack) -> None:
    fake = stack.fake
    asked = fake.dm("help")
    fake.wait_until(
        lambda: any("status" in embed_text(m) for m in fake.messages_in(asked.channel_id)),
        what="an answer in the DM",
    )
    stack.settle()
    mine = [m for m in fake.messages_in(asked.channel_id) if m["author"]["id"] != USER_ID]
    assert len(mine) == 1, "the working message became the answer"
    assert "status" in embed_text(mine[0])


def test_an_unauthorised_role_is_refused_privately_and_nothing_is_queued(
    fake_discord: FakeDiscord, tmp_path: Path
) -> None:
    access = AccessSettings(incidents_roles=[DATA_ENG_ROLE_ID])
    with discord_stack(fake_discord, tmp_path, access=access) as stack:
        refused = fake_discord.slash(options=subcommand("incident", action="ack", incident=1))
        callback = fake_discord.wait_call("POST", re.escape(refused.callback_path))[0]
        allowed = fake_discord.slash(
            options=subcommand("incident", action="ack", incident=1), roles=[DATA_ENG_ROLE_ID]
        )
        fake_discord.wait_call("POST", re.escape(allowed.callback_path))
        fake_discord.wait_until(
            lambda: original(fake_discord, allowed.webhook_path), what="the answer"
        )
        stack.settle()
    assert callback.json["type"] == 4
    assert callback.json["data"]["flags"] & FLAG_EPHEMERAL
    assert "Not allowed here" in embed_text(callback.json["data"])
    assert "roles" in embed_text(callback.json["data"])
    # The member with the role got an answer from the core (there is no incident #1).
    assert "No such incident" in embed_text(original(fake_discord, allowed.webhook_path)[-1])


def test_an_oversized_answer_is_split_into_valid_messages(stack: DiscordStack) -> None:
    fake = stack.fake
    for index in range(120):  # `incidents` lists them all: a long answer
        stack.store.incidents.record_failure(
            fingerprint=f"fp-{index}",
            system="airflow",
            subject=f"dag_with_a_rather_long_name_number_{index:03d}",
            node="transform_" + "x" * 60,
            title=f"dag {index} failed",
            run_id=f"run-{index}",
            window=timedelta(hours=24),
        )
    interaction = fake.slash(options=subcommand("incidents"))
    fake.wait_until(lambda: original(fake, interaction.webhook_path), what="the answer")
    stack.settle()
    followups = [
        c.json for c in fake.calls_to("POST", re.escape(interaction.webhook_path)) if c.status < 300
    ]
    messages = [original(fake, interaction.webhook_path)[-1], *followups]
    assert len(messages) > 1
    text = "".join(embed_text(m) for m in messages)
    assert "dag_with_a_rather_long_name_number_119" in text or "not shown" in text
    for message in messages:
        assert len(message.get("content") or "") <= CONTENT_MAX
        assert len(message["embeds"]) <= EMBEDS_PER_MESSAGE
        size = sum(len(embed_text({"embeds": [e]})) for e in message["embeds"])
        assert size <= EMBED_TEXT_PER_MESSAGE + 50  # embed_text joins with newlines


def test_an_alert_opens_one_incident_thread_a_repeat_is_grouped_and_ack_records_who(
    stack: DiscordStack,
) -> None:
    fake = stack.fake
    failed = {"dag_id": "orders_daily", "run_id": "r1", "task_id": "transform", "state": "failed"}
    assert stack.webhook("/webhooks/airflow", failed).status_code == 200
    stack.settle()
    top = fake.messages_in(ALERTS_CHANNEL_ID)
    assert len(top) == 1, top
    incident_message = top[0]
    assert "orders_daily" in embed_text(incident_message)
    thread_id = incident_message["id"]
    assert fake.channel(thread_id) is not None, "the incident has its thread"
    buttons = [
        component
        for row in incident_message.get("components") or []
        for component in row.get("components") or []
    ]
    labels = [b.get("label") for b in buttons]
    assert {"Acknowledge", "Resolve", "Triage again"} <= set(labels)

    again = {**failed, "run_id": "r2"}
    assert stack.webhook("/webhooks/airflow", again).status_code == 200
    stack.settle()
    assert len(fake.messages_in(ALERTS_CHANNEL_ID)) == 1, "a repeat opens nothing new"
    assert any("failed again" in embed_text(m) for m in fake.messages_in(thread_id))

    ack = next(b for b in buttons if b.get("label") == "Acknowledge")
    pressed = fake.press(custom_id=ack["custom_id"], message_id=incident_message["id"])
    fake.wait_until(lambda: original(fake, pressed.webhook_path), what="the ack's answer")
    stack.settle()
    incident = stack.store.incidents.open_incidents()[0]
    assert incident.acknowledged_by
    assert incident.status == "acknowledged"
    assert incident.acknowledged_by in embed_text(original(fake, pressed.webhook_path)[-1])

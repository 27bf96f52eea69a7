"""Discord on the work engine: a web process only accepts and defers, a worker answers; a
scheduled digest goes to the Discord channel it was scheduled in; images are attached; the
message-content intent decides whether un-mentioned follow-ups are answered; DAG ids
autocomplete from the connectors."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from pathlib import Path

import pytest

from bot.alerts import Post
from bot.messages import Image, Reply, Section
from bot.playbooks.schedules import DIGEST_JOB, job_payload
from integrations.demo import demo_sources
from tests.discord.conftest import DiscordStack, discord_stack, embed_text, subcommand
from tests.fakes.discord_api import ALERTS_CHANNEL_ID, DATA_CHANNEL_ID, GUILD_ID, FakeDiscord


def original(fake: FakeDiscord, webhook_path: str) -> list[str]:
    return [
        embed_text(c.json)
        for c in fake.calls_to("PATCH", re.escape(webhook_path) + "/messages/@original")
        if c.status < 300
    ]


def test_the_web_role_defers_and_a_worker_answers(
    fake_discord: FakeDiscord, tmp_path: Path, pg_url: str
) -> None:
    with discord_stack(fake_discord, tmp_path, store_url=pg_url, role="web") as web:
        asked = fake_discord.slash(options=subcommand("help"))
        # The job is stored before the interaction is deferred.
        fake_discord.wait_call("POST", re.escape(asked.callback_path))
        assert web.server.engine.counts().get("todo", 0) >= 1, "a queued job"
        assert original(fake_discord, asked.webhook_path) == [], "the web role does not answer"
        with discord_stack(fake_discord, tmp_path, store_url=pg_url, role="worker") as worker:
            fake_discord.wait_until(
                lambda: original(fake_discord, asked.webhook_path), what="the answer"
            )
            worker.settle()
    assert "status" in original(fake_discord, asked.webhook_path)[-1]


def test_a_scheduled_digest_is_posted_to_the_discord_channel_it_was_scheduled_in(
    stack: DiscordStack,
) -> None:
    fake = stack.fake
    # `/pipebot digest schedule`: a subcommand of the `digest` group.
    scheduled = fake.slash(
        options=[
            {
                "type": 2,
                "name": "digest",
                "options": subcommand("schedule", when="daily", at="09:00"),
            }
        ]
    )
    fake.wait_until(lambda: original(fake, scheduled.webhook_path), what="the schedule's answer")
    assert "Digest scheduled" in original(fake, scheduled.webhook_path)[-1]
    (schedule,) = stack.store.digests.schedules()
    assert (schedule.platform, schedule.workspace, schedule.channel) == (
        "discord",
        GUILD_ID,
        DATA_CHANNEL_ID,
    )
    slot = datetime(2026, 12, 3, 8, 0, tzinfo=UTC)
    payload = job_payload(schedule, slot)
    assert stack.server.submit(f"digest:{schedule.id}:{slot.isoformat()}", DIGEST_JOB, payload)
    stack.settle()
    posted = [
        m for m in fake.messages_in(DATA_CHANNEL_ID) if "Digest scheduled" not in embed_text(m)
    ]
    assert len(posted) == 1, [embed_text(m)[:300] for m in fake.messages_in(DATA_CHANNEL_ID)]
    assert "digest" in embed_text(posted[0]).lower()


def test_an_image_that_is_a_local_file_is_attached(stack: DiscordStack, tmp_path: Path) -> None:
    chart = tmp_path / "chart.png"
    chart.write_bytes(b"\x89PNG\r\n\x1a\n" + b"\x00" * 64)
    reply = Reply(
        title="Runs per day",
        sections=(Section(text="The last 14 days.", image=Image(url=str(chart), alt="chart")),),
    )
    for sender in stack.deliveries._senders.values():
        sender.send(
            Post(reply=reply, key="chart-test", thread=None),
            workspace=GUILD_ID,
            channel=ALERTS_CHANNEL_ID,
            thread=None,
        )
    (call,) = stack.fake.calls_to("POST", rf"/channels/{ALERTS_CHANNEL_ID}/messages")
    assert call.files == ["chart.png"]
    assert call.json["embeds"][-1]["image"]["url"] == "attachment://chart.png"


@pytest.mark.parametrize("message_content", [False, True])
def test_follow_ups_without_a_mention_need_the_message_content_intent(
    fake_discord: FakeDiscord, tmp_path: Path, message_content: bool
) -> None:
    with discord_stack(fake_discord, tmp_path, message_content=message_content) as stack:
        asked = fake_discord.mention("help")
        fake_discord.wait_until(
            lambda: len(fake_discord.messages_in(asked.id)) >= 1, what="the answer"
        )
        stack.settle()
        fake_discord.message(
            "freshness", channel_id=asked.id, author_id="700000000000000001", guild_id=""
        )
        # A mention afterwards proves the gateway delivered the earlier message first.
        fake_discord.mention("incidents", channel_id=asked.id)
        fake_discord.wait_until(
            lambda: any(
                "No open incidents" in embed_text(m) for m in fake_discord.messages_in(asked.id)
            ),
            what="the mention's answer",
        )
        stack.settle()
        texts = [
            embed_text(m) for m in fake_discord.messages_in(asked.id) if m["author"].get("bot")
        ]
    # help, (freshness,) incidents
    assert len(texts) == (3 if message_content else 2), texts
    intents = fake_discord.identifies[-1]["intents"]
    assert bool(intents & (1 << 15)) is message_content


def test_dag_ids_autocomplete_from_airflow(fake_discord: FakeDiscord, tmp_path: Path) -> None:
    with discord_stack(fake_discord, tmp_path, sources=demo_sources()):
        typing = fake_discord.autocomplete(
            options=[
                {
                    "type": 1,
                    "name": "dag",
                    "options": [{"type": 3, "name": "dag_id", "value": "ord", "focused": True}],
                }
            ]
        )
        (callback,) = fake_discord.wait_call("POST", re.escape(typing.callback_path))
    assert callback.json["type"] == 8
    choices = [c["value"] for c in callback.json["data"]["choices"]]
    assert choices and choices[0].startswith("ord")
    assert "orders_daily" in choices

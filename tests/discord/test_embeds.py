"""`Reply` → Discord embeds: every limit Discord enforces holds, nothing is lost, code blocks
are never cut open, and a command's reply carries the same facts as in Slack and the console."""

from __future__ import annotations

import re

import discord
import pytest

from bot.commands import Request
from bot.messages import Action, Code, Field, Reply, Section, Tone
from bot.playbooks import status
from bot.rendering import to_text
from handlers.discord.embeds import (
    CONTENT_MAX,
    DESCRIPTION_MAX,
    EMBED_TEXT_PER_MESSAGE,
    EMBEDS_PER_MESSAGE,
    FIELD_NAME_MAX,
    FIELD_VALUE_MAX,
    FIELDS_PER_EMBED,
    FOOTER_MAX,
    MAX_MESSAGES,
    TITLE_MAX,
    DiscordMessage,
    render_embeds,
    split_content,
)
from handlers.slack.blocks import render_blocks
from integrations.demo import demo_sources
from tests.agent.support import ProgressLog, inbound


def assert_within_limits(messages: list[DiscordMessage]) -> None:
    assert messages
    for message in messages:
        assert len(message.content) <= CONTENT_MAX
        assert 1 <= len(message.embeds) <= EMBEDS_PER_MESSAGE
        assert sum(len(e) for e in message.embeds) <= EMBED_TEXT_PER_MESSAGE
        for embed in message.embeds:
            data = embed.to_dict()
            assert len(data.get("title", "")) <= TITLE_MAX
            assert len(data.get("description", "")) <= DESCRIPTION_MAX
            assert len(data.get("footer", {}).get("text", "")) <= FOOTER_MAX
            assert len(data.get("fields", [])) <= FIELDS_PER_EMBED
            for field in data.get("fields", []):
                assert 0 < len(field["name"]) <= FIELD_NAME_MAX
                assert 0 < len(field["value"]) <= FIELD_VALUE_MAX
            assert (
                data.get("title")
                or data.get("description")
                or data.get("fields")
                or (data.get("footer") or data.get("image"))
            ), "an empty embed is refused by Discord"
            # every code block opened in a description is closed in it
            assert data.get("description", "").count("```") % 2 == 0


def everything(messages: list[DiscordMessage]) -> str:
    parts: list[str] = []
    for message in messages:
        for embed in message.embeds:
            data = embed.to_dict()
            parts += [data.get("title", ""), data.get("description", "")]
            parts += [f"{f['name']}: {f['value']}" for f in data.get("fields", [])]
            parts.append(data.get("footer", {}).get("text", ""))
    return "\n".join(parts)


def test_an_ordinary_reply_is_one_message() -> None:
    reply = Reply(
        title="orders_daily failed: transform — KeyError",
        tone=Tone.ERROR,
        text="The input changed shape.",
        sections=(
            Section(
                heading="Failed: transform",
                fields=(Field("Error", "`KeyError`: column 'amount' missing"), Field("Tries", "1")),
                bullets=("owner @dana",),
            ),
        ),
        actions=(
            Action(label="Open in Airflow", action_id="open", url="https://airflow.example.com"),
            Action(label="Re-run triage", action_id="pipebot:triage", value="orders_daily"),
        ),
        sources=("Airflow: runs",),
        notes=("demo environment",),
    )
    messages = render_embeds(reply)
    assert_within_limits(messages)
    assert len(messages) == 1
    head = messages[0].embeds[0]
    assert head.title == reply.title and head.colour == discord.Colour.red()
    text = everything(messages)
    assert "`KeyError`: column 'amount' missing" in text  # code spans kept as code
    assert "[Open in Airflow](https://airflow.example.com)" in text
    assert "Re-run triage" not in text  # a component, not text
    assert "Sources: Airflow: runs" in text and "Note: demo environment" in text


def test_markdown_outside_code_is_escaped() -> None:
    reply = Reply(title="t", text="revenue *dropped* to __0__ in `fct_orders_v2`")
    description = render_embeds(reply)[0].embeds[0].description or ""
    assert "\\*dropped" in description and "`fct_orders_v2`" in description


def test_terminal_escapes_never_reach_discord() -> None:
    reply = Reply(
        title="\x1b[31mfailed\x1b[0m",
        sections=(Section(code=Code(text="\x1b[32mactual\x1b[0m differs")),),
    )
    assert "\x1b" not in everything(render_embeds(reply))


@pytest.mark.parametrize("lines", [10, 400, 3000])
def test_oversized_replies_stay_within_every_limit(lines: int) -> None:
    bullets = tuple(f"model `m_{i:04d}` — error: went wrong on line {i}" for i in range(lines))
    reply = Reply(
        title="x" * 400,
        text="y" * 9000,
        sections=(
            Section(heading="h" * 300, bullets=bullets),
            Section(
                heading="Fields",
                fields=tuple(Field(f"label {i} " + "n" * 300, "v" * 2500) for i in range(60)),
            ),
        ),
        sources=("the sources " + "s" * 3000,),
    )
    messages = render_embeds(reply)
    assert_within_limits(messages)
    assert len(messages) == MAX_MESSAGES  # cut, not flooding the channel
    assert messages[-1].content.startswith("… ") and "more characters" in messages[-1].content
    assert "Sources: the sources" in everything(messages)  # never cut


def test_a_long_reply_that_fits_loses_nothing() -> None:
    bullets = tuple(f"model `m_{i:04d}` — error: went wrong on line {i}" for i in range(300))
    reply = Reply(title="t", sections=(Section(heading="Failures", bullets=bullets),))
    messages = render_embeds(reply)
    assert_within_limits(messages)
    assert len(messages[0].embeds) > 1 and not messages[-1].content
    text = everything(messages) + "\n"
    for i in range(300):  # no bullet lost or cut
        assert f"`m_{i:04d}` — error: went wrong on line {i}\n" in text


def test_a_code_block_split_across_embeds_is_closed_and_reopened() -> None:
    log = "\n".join(f"20:42:{i % 60:02d} INFO step {i}" for i in range(900))
    reply = Reply(
        title="log", sections=(Section(heading="log", code=Code(text=log, language="text")),)
    )
    messages = render_embeds(reply)
    assert_within_limits(messages)
    descriptions = [e.description or "" for m in messages for e in m.embeds if e.description]
    assert len(descriptions) > 1
    for description in descriptions:
        assert description.startswith("```text") and description.rstrip().endswith("```")
    assert "20:42:59 INFO step 899" in everything(messages)


def test_split_content_keeps_each_part_under_2000_and_fences_balanced() -> None:
    text = "intro\n```sql\n" + "\n".join(f"select {i};" for i in range(500)) + "\n```\noutro"
    parts = split_content(text)
    assert len(parts) > 1
    for part in parts:
        assert len(part) <= CONTENT_MAX and part.count("```") % 2 == 0
    joined = "\n".join(parts)
    assert "select 499;" in joined and joined.endswith("outro")


def test_status_carries_the_same_facts_as_slack_and_the_console() -> None:
    reply = status.run(
        Request(message=inbound("status"), args=(), sources=demo_sources(), progress=ProgressLog())
    )
    discord_text = everything(render_embeds(reply))
    slack_text = str([m.blocks for m in render_blocks(reply)])
    console_text = to_text(reply)
    facts = re.findall(r"`([^`]+)`", console_text)
    assert facts, "the status reply names DAGs, models and sources"
    for fact in [*facts, "orders_daily", "customer_ltv", "raw.customers", "broken_dag.py"]:
        assert fact in console_text
        assert fact in discord_text, fact
        assert fact in slack_text, fact


def test_owner_mentions_are_repeated_in_the_content_where_they_notify() -> None:
    from bot.messages import Action, Field, Section
    from bot.owners import OwnerDirectory
    from bot.settings import OwnerSettings

    owners = OwnerDirectory.from_settings(
        OwnerSettings(discord=["dana=123456789012345678", "data-platform=role:876543210987654321"])
    )
    who = owners.mentions(["dana", "data-platform", "nobody"], "discord")
    reply = Reply(
        title="orders_daily failed",
        sections=(Section(fields=(Field("Owners", who),)),),
        actions=(Action(label="Acknowledge", action_id="command", value="incident ack 1"),),
    )
    messages = render_embeds(reply)
    assert messages[0].content == "cc <@123456789012345678> <@&876543210987654321>"
    assert "<@123456789012345678>" in everything(messages)  # shown in the embed too
    assert [b.command for b in messages[-1].buttons] == ["incident ack 1"]


def test_a_local_image_is_attached_and_shown_from_the_attachment() -> None:
    from bot.messages import Image, Section

    reply = Reply(
        title="Runs", sections=(Section(text="chart", image=Image("file:///tmp/x/chart.png", "c")),)
    )
    (message,) = render_embeds(reply)
    assert message.files == ("/tmp/x/chart.png",)
    assert message.embeds[-1].image.url == "attachment://chart.png"

"""The digest in each channel: the top lines in the first message, the details in messages of
their own (posted in the thread), the chart as a file — Slack blocks, Discord embeds, Markdown,
plain text and the Rich console, rendered from one reply of the demo environment."""

from __future__ import annotations

import json

import pytest
from rich.console import Console

from bot.commands import Request
from bot.messages import Reply
from bot.playbooks import digest
from bot.rendering import to_markdown, to_text
from handlers.console import render_rich
from handlers.discord.embeds import render_embeds
from handlers.slack.blocks import local_images, render_blocks
from integrations.demo import demo_sources
from tests.agent.support import ProgressLog, inbound


@pytest.fixture(scope="module")
def reply() -> Reply:
    request = Request(
        message=inbound("digest"), args=(), sources=demo_sources(), progress=ProgressLog()
    )
    made = digest.run(request)
    assert made.details and made.sections[-1].image is not None
    return made


def test_slack_top_lines_first_details_in_later_messages_chart_as_a_file(reply: Reply) -> None:
    messages = render_blocks(reply)
    first = json.dumps(messages[0].blocks)
    assert "Needs attention" in first and "orders_daily" in first
    assert "Details" not in first and "Source freshness" not in first
    later = json.dumps([m.blocks for m in messages[1:]])
    assert "*Details* \\u2014 " in later and "Source freshness" in later
    # The chart is no block (a block can only show a web URL): it is uploaded beside.
    assert "/pipebot-charts/" not in first + later
    (image,) = local_images(reply)
    assert image.url.endswith(".png") and image.alt.startswith("Bar and line chart")


def test_discord_details_in_a_message_of_their_own_chart_attached(reply: Reply) -> None:
    messages = render_embeds(reply)
    head = [e.to_dict() for e in messages[0].embeds]
    assert messages[0].files and messages[0].files[0].endswith(".png")
    assert any(e.get("image", {}).get("url", "").startswith("attachment://") for e in head)
    assert not any("Details" in str(e.get("title")) for e in head)
    rest = [e.to_dict() for m in messages[1:] for e in m.embeds]
    assert str(rest[0].get("title")).startswith("Details — Pipeline digest")


def test_markdown_collapses_the_details_and_text_prints_them_after(reply: Reply) -> None:
    markdown = to_markdown(reply)
    top, _, rest = markdown.partition("<details><summary>Details</summary>")
    assert "Needs attention" in top and "Source freshness" in rest and "</details>" in rest
    text = to_text(reply)
    assert text.index("Needs attention") < text.index("Source freshness")


def test_the_console_prints_the_charts_path(reply: Reply) -> None:
    console = Console(width=200, record=True, color_system=None)
    console.print(render_rich(reply))
    out = console.export_text()
    assert "/pipebot-charts/digest-" in out and "Source freshness" in out

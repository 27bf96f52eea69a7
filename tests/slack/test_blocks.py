"""`render_blocks`: every reply, however large or odd, becomes valid Block Kit within Slack's
limits — checked by slack_sdk's own block models and by the limits they do not check."""

from __future__ import annotations

import json
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from slack_sdk.models.blocks import Block

from bot.messages import Action, Code, Field, Image, Link, Reply, Section, Tone
from handlers.slack.blocks import (
    MAX_MESSAGES,
    SlackMessage,
    render_actions,
    render_blocks,
    render_markdown,
    render_working,
)


def text_objects(value: Any) -> list[str]:
    if isinstance(value, dict):
        if value.get("type") in ("mrkdwn", "plain_text"):
            return [value["text"]]
        return [t for v in value.values() for t in text_objects(v)]
    if isinstance(value, list):
        return [t for v in value for t in text_objects(v)]
    return []


def assert_valid(message: SlackMessage) -> None:
    """Slack's documented limits (docs.slack.dev/reference/block-kit)."""
    assert message.text.strip()
    assert 1 <= len(message.blocks) <= 50
    assert sum(len(t) for t in text_objects(message.blocks)) <= 10_000  # well under ~12k
    for raw in message.blocks:
        block = Block.parse(raw)
        assert block is not None
        assert block.to_dict() == raw  # slack_sdk validates its limits in to_dict()
        kind = raw["type"]
        if kind == "header":
            assert 0 < len(raw["text"]["text"]) <= 150
        elif kind == "section":
            assert "text" in raw or "fields" in raw
            if "text" in raw:
                assert 0 < len(raw["text"]["text"]) <= 3000
            fields = raw.get("fields", [])
            assert len(fields) <= 10
            assert all(0 < len(f["text"]) <= 2000 for f in fields)
        elif kind == "context":
            assert 1 <= len(raw["elements"]) <= 10
        elif kind == "actions":
            assert 1 <= len(raw["elements"]) <= 25
            ids = [e["action_id"] for e in raw["elements"]]
            assert len(ids) == len(set(ids))
            for element in raw["elements"]:
                assert len(element["text"]["text"]) <= 75
                assert len(element["action_id"]) <= 255
                assert len(element.get("value", "")) <= 2000
        elif kind == "image":
            assert len(raw["alt_text"]) <= 2000
        else:
            raise AssertionError(f"unexpected block type {kind}")


def test_a_reply_with_200_facts_renders_within_limits() -> None:
    facts = tuple(Field(f"Model {n}", f"`fct_orders_{n}` stale for {n}h") for n in range(200))
    reply = Reply(title="Freshness", sections=(Section(heading="Stale", fields=facts),))
    messages = render_blocks(reply)
    for message in messages:
        assert_valid(message)
    rendered = json.dumps([m.blocks for m in messages])
    assert all(f"fct_orders_{n}" in rendered for n in range(200))  # nothing was dropped
    sections = [b for m in messages for b in m.blocks if b["type"] == "section"]
    assert sum(len(b.get("fields", [])) for b in sections) == 200


def test_a_huge_reply_is_split_then_cut_with_a_notice() -> None:
    reply = Reply(
        title="Logs",
        text="word " * 5000,
        sections=(Section(code=Code(text="line\n" * 20_000, title="task log")),),
        actions=(Action(label="Triage", action_id="triage", value="triage orders_daily r1"),),
        sources=("Airflow · GET /api/v2/dags/orders_daily/dagRuns",),
    )
    messages = render_blocks(reply)
    assert len(messages) == MAX_MESSAGES
    for message in messages:
        assert_valid(message)
    last = json.dumps(messages[-1].blocks)
    assert "more lines not shown" in last
    assert "triage orders_daily r1" in last and "Sources:" in last  # never cut


def test_code_is_preformatted_escaped_and_keeps_its_block_closed() -> None:
    code = 'if a < b && c > d:\n    print("```nested```")\n'
    (message,) = render_blocks(Reply(sections=(Section(code=Code(text=code, title="x.py")),)))
    assert_valid(message)
    body = message.blocks[0]["text"]["text"]
    assert body.startswith("_x.py_\n```\n") and body.endswith("\n```")
    inner = body.removeprefix("_x.py_\n```\n").removesuffix("\n```")
    assert "&lt; b &amp;&amp; c &gt; d" in inner
    assert "```" not in inner  # the excerpt's own fences are defused


def test_text_is_escaped_for_mrkdwn_and_links_are_links() -> None:
    reply = Reply(
        text="rows <0 & >100",
        sections=(Section(links=(Link("Run <1>", "https://airflow.example.com/?a=1&b=2"),)),),
    )
    (message,) = render_blocks(reply)
    assert message.blocks[0]["text"]["text"] == "rows &lt;0 &amp; &gt;100"
    link = message.blocks[1]["text"]["text"]
    assert link == "<https://airflow.example.com/?a=1&amp;b=2|Run &lt;1&gt;>"


def test_buttons_carry_command_lines_and_respect_the_limits() -> None:
    acks = tuple(
        Action(label=f"Acknowledge incident {n} " * 4, action_id="ack", value=f"incident ack {n}")
        for n in range(30)
    )
    actions = (
        *acks,
        Action(label="Too long", action_id="x", value="y" * 2001),
        Action(label="Docs", action_id="docs", url="https://docs.example.com"),
        Action(label="Nothing", action_id="noop"),
    )
    (message,) = render_blocks(Reply(title="Incidents", actions=actions))
    assert_valid(message)
    buttons = [e for b in message.blocks if b["type"] == "actions" for e in b["elements"]]
    assert [b["value"] for b in buttons if "value" in b] == [f"incident ack {n}" for n in range(30)]
    assert [b["url"] for b in buttons if "url" in b] == ["https://docs.example.com"]
    assert all(b["action_id"].startswith("pipebot") for b in buttons)
    assert [len(b["elements"]) for b in message.blocks if b["type"] == "actions"] == [25, 6]
    # Streamed answers carry exactly the same buttons.
    assert render_actions(Reply(actions=actions)) == [
        b for b in message.blocks if b["type"] == "actions"
    ]


def test_header_images_and_small_print() -> None:
    reply = Reply(
        title="A very long title " * 20,
        tone=Tone.ERROR,
        sections=(Section(image=Image("https://x.example.com/chart.png", "alt " * 1000)),),
        notes=tuple(f"note {n}" for n in range(15)),
    )
    (message,) = render_blocks(reply)
    assert_valid(message)
    assert message.blocks[0]["text"]["text"].startswith("🔴 A very long title")
    assert message.blocks[0]["text"]["text"].endswith("…")
    kinds = [b["type"] for b in message.blocks]
    assert kinds == ["header", "image", "context"]


def test_the_first_message_carries_the_caption_and_the_fallback_text() -> None:
    messages = render_blocks(Reply(title="All clear", text="ok"), caption="<@U1> used `/pipebot`")
    assert messages[0].text.startswith("✓ All clear") or "All clear" in messages[0].text
    assert messages[0].blocks[-1] == {
        "type": "context",
        "elements": [{"type": "mrkdwn", "text": "<@U1> used `/pipebot`"}],
    }


def test_an_empty_reply_is_still_a_valid_message() -> None:
    (message,) = render_blocks(Reply())
    assert_valid(message)


def test_working_message_and_markdown() -> None:
    working = render_working("Checking Airflow & dbt", caption="<@U1> used `/pipebot status`")
    assert working.text == "⏳ Checking Airflow &amp; dbt…"
    assert_valid(working)
    markdown = render_markdown(
        Reply(
            title="T",
            sections=(Section(fields=(Field("a", "b"),), code=Code(text="x")),),
        )
    )
    assert markdown.startswith("**T**") and "- **a:** b" in markdown and "```\nx\n```" in markdown


_text = st.text(alphabet=st.characters(codec="utf-8", exclude_categories=("Cs",)), max_size=400)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    title=_text,
    text=st.text(max_size=8000),
    sections=st.lists(
        st.builds(
            Section,
            heading=_text,
            text=st.text(max_size=4000),
            fields=st.lists(st.builds(Field, _text, st.text(max_size=2500)), max_size=25).map(
                tuple
            ),
            bullets=st.lists(_text, max_size=40).map(tuple),
            code=st.none() | st.builds(Code, text=st.text(max_size=5000), title=_text),
        ),
        max_size=6,
    ).map(tuple),
    actions=st.lists(
        st.builds(Action, label=_text, action_id=_text, value=st.text(max_size=2100)),
        max_size=40,
    ).map(tuple),
    notes=st.lists(_text, max_size=14).map(tuple),
)
def test_any_reply_renders_to_valid_messages(
    title: str,
    text: str,
    sections: tuple[Section, ...],
    actions: tuple[Action, ...],
    notes: tuple[str, ...],
) -> None:
    reply = Reply(title=title, text=text, sections=sections, actions=actions, notes=notes)
    messages = render_blocks(reply)
    assert 1 <= len(messages) <= MAX_MESSAGES
    for message in messages:
        assert_valid(message)

"""Text, Markdown and JSON renderings of a Reply."""

from __future__ import annotations

import json

from bot.messages import Action, Code, Field, Image, Link, Reply, Section, Tone
from bot.rendering import JSON_SCHEMA, from_dict, to_dict, to_json, to_markdown, to_text

REPLY = Reply(
    title="orders_daily failed",
    tone=Tone.ERROR,
    text="Task `transform` failed on try 1.",
    sections=(
        Section(heading="Facts", fields=(Field("Owner", "dana"), Field("Try", "1 of 1"))),
        Section(bullets=("publish_dashboard upstream_failed",)),
        Section(
            code=Code(
                text="KeyError: 'amount'", language="python", title="log", truncated_from=52_000_000
            )
        ),
        Section(
            links=(Link("Airflow", "http://airflow/dags/orders_daily"),),
            image=Image("http://x/p.png", "chart"),
        ),
    ),
    actions=(Action(label="Re-run triage", action_id="triage", value="orders_daily"),),
    sources=("Airflow · GET /api/v2/dags/orders_daily/dagRuns",),
    notes=("as of 2026-11-25 10:00 UTC",),
)


def test_text_has_every_part() -> None:
    text = to_text(REPLY)
    for part in (
        "✗ orders_daily failed",
        "Owner  dana",
        "• publish_dashboard upstream_failed",
        "    KeyError: 'amount'",
        "[truncated: excerpt of 52,000,000 characters]",
        "Airflow: http://airflow/dags/orders_daily",
        "Sources: Airflow · GET",
        "Note: as of",
    ):
        assert part in text


def test_text_shows_link_buttons_as_links_and_no_other_buttons() -> None:
    # Plain text has nothing to click: "Actions: Re-run triage" promised a button.
    assert "Re-run triage" not in to_text(REPLY) and "Actions" not in to_text(REPLY)
    linked = Reply(
        title="t",
        actions=(
            Action(label="Open in Airflow", action_id="open", url="http://airflow/dags/x"),
            Action(label="Acknowledge", action_id="command", value="incident ack 3"),
        ),
    )
    text = to_text(linked)
    assert "Open in Airflow: http://airflow/dags/x" in text and "Acknowledge" not in text


def test_markdown_fences_code_and_escapes_titles() -> None:
    md = to_markdown(Reply(title="a_b*c", sections=(Section(code=Code(text="x = ```y```")),)))
    assert "a\\_b\\*c" in md
    assert "````\nx = ```y```\n````" in md


def test_json_is_stable_and_documented() -> None:
    body = json.loads(to_json(REPLY))
    assert body["schema"] == JSON_SCHEMA
    assert list(body) == [
        "schema",
        "title",
        "tone",
        "text",
        "sections",
        "actions",
        "sources",
        "notes",
        "ephemeral",
        "details",  # added with the digest's top lines and details (keys are only ever added)
    ]
    assert body["tone"] == "error"
    assert body["sections"][0]["fields"][0] == {"label": "Owner", "value": "dana"}
    assert set(body["sections"][2]["code"]) == {"text", "language", "title", "truncated_from"}
    assert to_dict(REPLY) == body


def test_json_keys_are_documented() -> None:
    from pathlib import Path

    doc = (Path(__file__).parents[2] / "docs" / "reply-json.md").read_text()
    body = to_dict(REPLY)
    keys = (
        set(body)
        | set(body["sections"][0])
        | set(body["actions"][0])
        | {"label", "value", "url", "alt"}
    )
    missing = [k for k in keys if f"`{k}`" not in doc]
    assert missing == []


def test_dict_round_trip() -> None:
    assert from_dict(to_dict(REPLY)) == REPLY

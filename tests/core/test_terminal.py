"""Terminal escapes never reach a reader: text, Markdown, JSON, Slack blocks, triage JSON."""

from __future__ import annotations

import json

from bot.messages import Code, Field, Reply, Section, Tone
from bot.playbooks.triage.report import DbtFailure, TriageReport
from bot.rendering import to_dict, to_json, to_markdown, to_text
from bot.terminal import strip_escapes, without_escapes
from handlers.slack.blocks import render_blocks, render_markdown

# A failing unit test's message as dbt-core 1.11 wrote it into run_results.json.
UNIT_DIFF = (
    "\n\n\x1b[32mactual\x1b[0m differs from \x1b[31mexpected\x1b[0m:\n\n"
    "\x1b[0;1m@@\x1b[0m\x1b[33m,\x1b[0m\x1b[0;1mstatus\x1b[0m   \x1b[33m,\x1b[0m"
    "\x1b[0;1mrevenue\x1b[0m\r\n\x1b[31;1m\x1b[34;1m\u2192\x1b[32;1m\x1b[0m \x1b[33m,\x1b[0m"
    "completed\x1b[33m,\x1b[0m\x1b[31;1m30.00\x1b[34;1m\u2192\x1b[32;1m42.50\x1b[0m\r\n\n"
)


def test_strip_escapes_keeps_the_words() -> None:
    text = strip_escapes(UNIT_DIFF)
    assert "\x1b" not in text and "\r" not in text and "[0m" not in text
    assert "actual differs from expected:" in text
    assert "@@,status   ,revenue\n→ ,completed,30.00→42.50" in text
    # Hyperlinks (OSC 8), cursor moves and a stray ESC go too; plain text is untouched.
    assert strip_escapes("\x1b]8;;https://x.test\x1b\\link\x1b]8;;\x1b\\ \x1b[2Kdone\x1b") == (
        "link done"
    )
    plain = "no escapes here"
    assert strip_escapes(plain) is plain


def _coloured_reply() -> Reply:
    return Reply(
        title="dbt build: \x1b[31m1 failure\x1b[0m",
        tone=Tone.ERROR,
        text="\x1b[1mbold\x1b[0m",
        sections=(
            Section(
                heading="Failures",
                fields=(Field("Error", "\x1b[33mwarn\x1b[0m"),),
                bullets=("unit test `t` — fail: \x1b[32mactual\x1b[0m differs",),
                code=Code(text=UNIT_DIFF, title="diff"),
            ),
        ),
        notes=("\x1b[2mdim\x1b[0m",),
    )


def test_every_renderer_strips_escapes() -> None:
    reply = _coloured_reply()
    rendered = {
        "text": to_text(reply),
        "markdown": to_markdown(reply),
        "json": to_json(reply),
        "slack blocks": json.dumps([m._asdict() for m in render_blocks(reply)]),
        "slack markdown": render_markdown(reply),
    }
    for name, out in rendered.items():
        assert "\x1b" not in out and "\\u001b" not in out, name
        assert "[0m" not in out and "[31m" not in out, name
        assert "1 failure" in out and "differs" in out, name
    assert to_dict(reply)["title"] == "dbt build: 1 failure"
    clean = Reply(title="fine")
    assert without_escapes(clean) is clean


def test_triage_json_has_no_escapes() -> None:
    failure = DbtFailure(
        unique_id="unit_test.shop.m.t",
        name="t",
        resource_type="unit_test",
        status="fail",
        message=UNIT_DIFF,
        owners=(),
        downstream=0,
    )
    body = TriageReport(
        system="dbt", subject="dbt build", run_id="r", run_state="error", dbt_failures=(failure,)
    ).to_dict()
    text = json.dumps(body)
    assert "\\u001b" not in text and "[0m" not in text
    assert "actual differs from expected" in body["dbt_failures"][0]["message"]

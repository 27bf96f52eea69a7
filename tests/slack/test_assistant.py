"""Slack's AI-app surfaces: assistant threads get a status line while pipebot works and a
streamed answer (chat.startStream / appendStream / stopStream); where Slack refuses streaming
the answer falls back to ordinary messages."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from bot.messages import Action, Reply
from tests.fakes.slack_api import FakeSlack
from tests.slack.conftest import SlackStack, event_envelope, posted_text, slack_stack, with_command

THREAD = "1700002000.000100"


def assistant_message(text: str, ts: str = "1700002001.000100") -> dict[str, Any]:
    return {
        "type": "message",
        "channel_type": "im",
        "channel": "D1",
        "user": "U1",
        "text": text,
        "ts": ts,
        "thread_ts": THREAD,
    }


def test_assistant_thread_shows_status_then_streams_the_answer(stack: SlackStack) -> None:
    assert stack.event(assistant_message("help")).status_code == 200
    stack.settle()
    fake = stack.fake
    status = fake.calls_to("assistant.threads.setStatus")
    assert status and status[0].params["thread_ts"] == THREAD and status[0].params["status"]
    start = fake.calls_to("chat.startStream")
    assert len(start) == 1
    assert start[0].params["thread_ts"] == THREAD
    assert start[0].params["recipient_user_id"] == "U1"
    assert start[0].params["recipient_team_id"] == "T1"
    stop = fake.calls_to("chat.stopStream")
    assert len(stop) == 1 and stop[0].params["ts"] == start[0].ts
    streamed = "".join(
        chunk.get("text", "")
        for call in [*start, *fake.calls_to("chat.appendStream"), *stop]
        for chunk in call.params.get("chunks") or []
    )
    assert "read-only data-engineering colleague" in streamed
    # No "working…" message and no ordinary post in an assistant thread.
    assert fake.calls_to("chat.postMessage") == []
    assert stack.store.outbox.counts() == {"sent": 1}


def test_streaming_refused_falls_back_to_a_posted_answer(stack: SlackStack) -> None:
    stack.fake.fail("chat.startStream", "unknown_method")
    stack.event(assistant_message("help"))
    stack.settle()
    posts = stack.fake.calls_to("chat.postMessage")
    assert len(posts) == 1
    assert posts[0].params["thread_ts"] == THREAD and posts[0].params["channel"] == "D1"
    assert "read-only data-engineering colleague" in posted_text(posts[0])
    assert stack.fake.calls_to("chat.stopStream") == []


def test_a_stream_that_breaks_midway_is_finished_by_updating_its_message(
    fake_slack: FakeSlack, tmp_path: Path
) -> None:
    reply = Reply(
        title="Streamed",
        text="line\n" * 600,  # several chunks: start, appends, stop
        actions=(Action(label="Status", action_id="status", value="status"),),
    )
    with slack_stack(fake_slack, tmp_path, commands=with_command("long", reply)) as stack:
        fake_slack.fail("chat.stopStream", "message_not_in_streaming_state")
        stack.event(assistant_message("long"))
        stack.settle()
        start = fake_slack.calls_to("chat.startStream")[0]
        assert fake_slack.calls_to("chat.appendStream")
        update = fake_slack.wait_for("chat.update")[0]
        assert update.params["ts"] == start.ts
        assert "Streamed" in posted_text(update) and '"actions"' in posted_text(update)
        assert fake_slack.calls_to("chat.postMessage") == []


def test_streaming_can_be_switched_off(fake_slack: FakeSlack, tmp_path: Path) -> None:
    with slack_stack(fake_slack, tmp_path, stream=False) as stack:
        stack.event(assistant_message("help"))
        stack.settle()
        assert fake_slack.calls_to("chat.startStream") == []
        assert len(fake_slack.calls_to("chat.postMessage")) == 1


def test_a_new_assistant_thread_gets_the_core_commands_as_suggested_prompts(
    stack: SlackStack,
) -> None:
    started = {
        "type": "assistant_thread_started",
        "assistant_thread": {
            "user_id": "U1",
            "channel_id": "D1",
            "thread_ts": THREAD,
            "context": {},
        },
        "event_ts": "1700002000.000200",
    }
    envelope = event_envelope(started)
    assert stack.post(json.dumps(envelope), content_type="application/json").status_code == 200
    stack.settle()
    call = stack.fake.wait_for("assistant.threads.setSuggestedPrompts")[0]
    assert call.params["channel_id"] == "D1" and call.params["thread_ts"] == THREAD
    messages = [p["message"] for p in call.params["prompts"]]
    assert messages[:2] == ["help", "status"] and len(messages) <= 4

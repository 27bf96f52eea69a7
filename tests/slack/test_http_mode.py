"""HTTP mode through a real socket: signed requests to ``POST /slack/events`` of the Starlette
app served by uvicorn, real Bolt and slack_sdk, the real store and core, a fake Slack Web API."""

from __future__ import annotations

import itertools
import json
import time
from pathlib import Path

from bot.messages import Action, Reply, Section
from bot.settings import AccessSettings
from tests.fakes.slack_api import FakeSlack
from tests.server.scrape import Scrape
from tests.slack.conftest import (
    SlackStack,
    actions_body,
    answers,
    command_body,
    mention,
    posted_text,
    sign,
    slack_stack,
    with_command,
)


def test_signed_help_command_is_acked_fast_and_answered(stack: SlackStack) -> None:
    started = time.monotonic()
    response = stack.command("help")
    elapsed = time.monotonic() - started
    assert response.status_code == 200
    assert elapsed < 3.0
    fake = stack.fake
    # The "working…" message is posted in the channel, then replaced by the answer.
    working = fake.wait_for("chat.postMessage")[0]
    assert working.params["channel"] == "C1" and "thread_ts" not in working.params
    update = fake.wait_for("chat.update", where=lambda c: "pipebot" in posted_text(c))[0]
    assert update.params["ts"] == working.ts
    body = posted_text(update)
    assert "read-only data-engineering colleague" in body and "status" in body
    assert "&lt;@U1&gt;" not in body and "<@U1> used" in body  # who ran the command
    assert update.token == "xoxb-fake-T1"


def test_bad_or_stale_signature_is_refused_and_nothing_is_processed(stack: SlackStack) -> None:
    body = command_body("help")
    wrong = {
        **sign(body, secret="not-the-secret"),
        "Content-Type": "application/x-www-form-urlencoded",
    }
    assert stack.http.post("/slack/events", content=body, headers=wrong).status_code == 401
    stale = {
        **sign(body, timestamp=int(time.time()) - 600),
        "Content-Type": "application/x-www-form-urlencoded",
    }
    assert stack.http.post("/slack/events", content=body, headers=stale).status_code == 401
    unsigned = stack.post(body, signed=False)
    assert unsigned.status_code == 401
    stack.settle()
    assert stack.store.jobs.counts() == {}
    assert stack.store.outbox.counts() == {}
    # Only the start-up token check reached Slack.
    assert [c.method for c in stack.fake.calls] == ["auth.test"]


def test_mention_in_a_thread_is_answered_in_that_thread(stack: SlackStack) -> None:
    response = stack.event(mention("status", ts="1700000100.000200", thread_ts="1700000000.000100"))
    assert response.status_code == 200
    working = stack.fake.wait_for("chat.postMessage")[0]
    assert working.params["thread_ts"] == "1700000000.000100"
    stack.settle()
    final = answers(stack.fake)
    assert len(final) == 1
    assert final[0].method == "chat.update" and final[0].params["ts"] == working.ts
    assert "Nothing to report yet" in posted_text(final[0])  # the core's status, no sources


def test_a_retried_event_is_answered_once(stack: SlackStack) -> None:
    event = mention("help", ts="1700000200.000100")
    assert stack.event(event, event_id="EvSAME").status_code == 200
    assert stack.event(event, event_id="EvSAME", retry=1).status_code == 200
    assert stack.event(event, event_id="EvSAME", retry=2).status_code == 200
    stack.settle()
    assert len(stack.fake.calls_to("chat.postMessage")) == 1
    assert len(answers(stack.fake)) == 1
    assert stack.store.jobs.counts() == {"done": 1}


def test_app_mention_and_its_message_twin_are_answered_once(stack: SlackStack) -> None:
    ts = "1700000300.000100"
    stack.event(mention("help", ts=ts))
    twin = {
        "type": "message",
        "channel_type": "channel",
        "user": "U1",
        "text": "<@UBOT> help",
        "ts": ts,
        "channel": "C1",
    }
    stack.event(twin)  # a different event id, the same message
    stack.settle()
    assert len(answers(stack.fake)) == 1
    assert stack.store.jobs.counts() == {"done": 1}


def test_follow_ups_in_pipebot_threads_continue_the_conversation(stack: SlackStack) -> None:
    parent = "1700000400.000100"
    stack.event(mention("help", ts=parent))
    stack.settle()
    follow_up = {
        "type": "message",
        "channel_type": "channel",
        "user": "U1",
        "text": "status",
        "ts": "1700000401.000100",
        "thread_ts": parent,
        "channel": "C1",
    }
    stack.event(follow_up)
    elsewhere = {**follow_up, "ts": "1700000402.000100", "thread_ts": "1699999999.000100"}
    stack.event(elsewhere)  # a thread pipebot never spoke in
    stack.event({**follow_up, "ts": "1700000403.000100", "thread_ts": None})  # chatter
    stack.settle()
    final = answers(stack.fake)
    assert len(final) == 2
    working = list(stack.fake.calls_to("chat.postMessage"))
    assert {c.params.get("thread_ts") for c in working} == {parent}
    assert "Nothing to report yet" in posted_text(final[1])
    # One conversation in the store, holding both questions and both answers.
    from bot.messages import ThreadRef

    ref = ThreadRef(platform="slack", workspace="T1", channel="C1", thread=parent)
    conversation = stack.store.threads.find(ref)
    assert conversation is not None
    history = stack.store.threads.history(conversation)
    assert [m.role for m in history] == ["user", "bot", "user", "bot"]
    assert [m.text for m in history if m.role == "user"] == ["help", "status"]


def test_bot_messages_edits_and_deletions_are_ignored(stack: SlackStack) -> None:
    base = {"type": "message", "channel_type": "im", "channel": "D1", "ts": "1700000500.000100"}
    stack.event({**base, "subtype": "bot_message", "bot_id": "BOTHER", "text": "status"})
    stack.event({**base, "subtype": "message_changed", "message": {"text": "status"}})
    stack.event({**base, "subtype": "message_deleted", "previous_message": {"text": "x"}})
    stack.event({**base, "user": "UBOT", "bot_id": "BBOT", "text": "status"})  # our own
    stack.settle()
    assert stack.store.jobs.counts() == {}
    assert stack.fake.calls_to("chat.postMessage") == []


def test_direct_messages_are_answered_top_level(stack: SlackStack) -> None:
    dm = {
        "type": "message",
        "channel_type": "im",
        "channel": "D1",
        "user": "U1",
        "text": "help",
        "ts": "1700000600.000100",
    }
    stack.event(dm)
    stack.settle()
    working = stack.fake.calls_to("chat.postMessage")
    assert len(working) == 1 and working[0].params["channel"] == "D1"
    assert "thread_ts" not in working[0].params
    assert len(answers(stack.fake)) == 1


def test_button_press_runs_its_command_line_as_the_presser_in_the_thread(
    stack: SlackStack,
) -> None:
    response = stack.post(actions_body("status", message_ts="1700000700.000200"))
    assert response.status_code == 200
    stack.settle()
    working = stack.fake.calls_to("chat.postMessage")[0]
    assert working.params["thread_ts"] == "1700000700.000200"
    assert "Nothing to report yet" in posted_text(answers(stack.fake)[0])
    history = stack.store.threads.history(1)
    assert history[0].author == "U2" and history[0].text == "status"


def test_a_denied_command_is_answered_ephemerally(fake_slack: FakeSlack, tmp_path: Path) -> None:
    access = AccessSettings(read_channels=["C-ops"])
    with slack_stack(fake_slack, tmp_path, access=access) as stack:
        stack.command("status")
        stack.settle()
        ephemeral = fake_slack.wait_for("chat.postEphemeral")[0]
        assert ephemeral.params["user"] == "U1" and ephemeral.params["channel"] == "C1"
        assert "Not allowed here" in posted_text(ephemeral)
        # The public "working…" message does not stay behind, and nothing else is public.
        working = fake_slack.calls_to("chat.postMessage")[0]
        deleted = fake_slack.wait_for("chat.delete")[0]
        assert deleted.params["ts"] == working.ts
        assert fake_slack.calls_to("chat.update") == []


def test_rate_limited_post_is_delivered_exactly_once(stack: SlackStack) -> None:
    stack.fake.rate_limit("chat.postMessage", retry_after=1)
    started = time.monotonic()
    stack.event(mention("help", ts="1700000800.000100"))
    stack.settle()
    attempts = stack.fake.calls_to("chat.postMessage")
    assert [c.status for c in attempts] == [429, 200]
    assert attempts[1].at - attempts[0].at >= 1.0  # Retry-After honoured
    assert len(answers(stack.fake)) == 1
    assert stack.store.outbox.counts() == {"sent": 2}  # "working…" + the answer
    assert time.monotonic() - started < 10


def test_a_permanent_error_marks_the_post_dead_with_its_reason(stack: SlackStack) -> None:
    stack.fake.fail("chat.postMessage", "channel_not_found", times=5)
    stack.event(mention("help", ts="1700000900.000100"))
    stack.settle()
    # The "working…" message could not be posted, so the answer is a new post: dead as well.
    rows = [stack.store.outbox.get(k) for k in _keys(stack)]
    assert {r.status for r in rows if r} == {"dead"}
    assert {r.last_error for r in rows if r} == {"channel_not_found"}
    assert len(stack.fake.calls_to("chat.postMessage")) == 2  # one try each, no retries


def test_long_answers_are_split_and_posted_in_order(fake_slack: FakeSlack, tmp_path: Path) -> None:
    from bot.messages import Field

    big = Reply(
        title="Many facts",
        sections=tuple(
            Section(heading=f"Part {n}", text="x " * 1400, fields=(Field("n", str(n)),))
            for n in range(8)
        ),
        actions=(Action(label="Status", action_id="status", value="status"),),
    )
    with slack_stack(fake_slack, tmp_path, commands=with_command("big", big)) as stack:
        stack.event(mention("big", ts="1700001000.000100"))
        stack.settle()
        final = answers(fake_slack)
        assert len(final) >= 3
        assert final[0].method == "chat.update"
        assert all(c.method == "chat.postMessage" for c in final[1:])
        assert all(c.params["thread_ts"] == "1700001000.000100" for c in final[1:])
        assert "Part 0" in posted_text(final[0]) and "Part 7" in posted_text(final[-1])
        assert '"actions"' in posted_text(final[-1])  # buttons close the last message
        for call in final:
            assert len(call.params["blocks"]) <= 50


def test_progress_edits_the_working_message_at_most_once_per_interval(
    fake_slack: FakeSlack, tmp_path: Path
) -> None:
    steps = tuple(f"Step {n}" for n in range(12))
    commands = with_command("slow", Reply(title="Done"), steps=steps, pause=0.05)
    with slack_stack(fake_slack, tmp_path, commands=commands, progress_interval=0.25) as stack:
        started = time.monotonic()
        stack.event(mention("slow", ts="1700001100.000100"))
        stack.settle()
        elapsed = time.monotonic() - started
        updates = fake_slack.calls_to("chat.update")
        progress = [c for c in updates if "⏳" in str(c.params.get("text"))]
        assert 1 <= len(progress) <= elapsed / 0.25 + 1
        assert len(progress) < len(steps)
        gaps = [b.at - a.at for a, b in itertools.pairwise(progress)]
        assert all(gap >= 0.2 for gap in gaps)
        # The answer is the last edit: no progress edit ever lands after it.
        assert "Done" in posted_text(updates[-1]) and "⏳" not in str(updates[-1].params["text"])


def test_url_verification_is_answered(stack: SlackStack) -> None:
    body = json.dumps({"type": "url_verification", "challenge": "c-123", "token": "x"})
    response = stack.post(body, content_type="application/json")
    assert response.status_code == 200 and "c-123" in response.text


def test_health_readiness_and_metrics(stack: SlackStack) -> None:
    assert stack.http.get("/healthz").json() == {"status": "ok"}
    ready = stack.http.get("/readyz")
    assert ready.status_code == 200
    assert ready.json()["checks"] == {"store": "ok", "workers": "ok"}
    before = Scrape.parse(stack.http.get("/metrics").text)
    stack.command("help")
    stack.settle()
    after = Scrape.parse(stack.http.get("/metrics").text)
    assert after.value("pipebot_jobs", status="done") == 1
    assert after.value("pipebot_outbox", status="sent") == 2
    assert after.delta(before, "pipebot_events_received_total", source="slack") == 1
    assert after.delta(before, "pipebot_events_deduplicated_total", source="slack") == 0
    assert after.delta(before, "pipebot_ack_latency_seconds_count", source="slack") == 1


def _keys(stack: SlackStack) -> list[str]:
    from sqlalchemy import text

    with stack.store.engine.connect() as connection:
        return [r[0] for r in connection.execute(text("select idempotency_key from outbox"))]


def test_the_same_on_postgresql(fake_slack: FakeSlack, tmp_path: Path, pg_url: str) -> None:
    """On PostgreSQL the jobs run on procrastinate; the answers are the same."""
    with slack_stack(fake_slack, tmp_path, store_url=pg_url) as stack:
        assert stack.store.backend == "postgresql"
        event = mention("help", ts="1700001200.000100")
        assert stack.event(event, event_id="EvPG").status_code == 200
        assert stack.event(event, event_id="EvPG", retry=1).status_code == 200
        assert stack.command("status").status_code == 200
        stack.settle()
        assert len(answers(fake_slack)) == 2
        assert stack.server.engine.counts() == {"succeeded": 2}
        assert stack.store.outbox.counts() == {"sent": 4}


def test_secrets_never_reach_a_post_or_a_progress_edit(
    fake_slack: FakeSlack, tmp_path: Path
) -> None:
    from tests.fakes.slack_api import BOT_TOKEN

    leak = Reply(title="Config", text=f"the bot token is {BOT_TOKEN}")
    commands = with_command("leak", leak, steps=(f"Reading {BOT_TOKEN}",))
    with slack_stack(fake_slack, tmp_path, commands=commands) as stack:
        stack.event(mention("leak", ts="1700001300.000100"))
        stack.settle()
        edits = fake_slack.calls_to("chat.update")
        assert any("[REDACTED]" in posted_text(c) for c in edits if "⏳" in posted_text(c))
        assert "[REDACTED]" in posted_text(answers(fake_slack)[0])
        assert all(BOT_TOKEN not in json.dumps(c.params) for c in fake_slack.calls)

"""The one send path against the fake Web API (real slack_sdk): once per key, never blindly
resent after a request may have reached Slack, rate limits and refusals as Slack answers them."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from bot.commands import Command, Commands, Request
from bot.messages import Reply
from bot.playbooks import default_commands
from bot.store import Store
from bot.work import Policy, RetryLater
from handlers.slack.blocks import SlackMessage
from handlers.slack.clients import Clients, SingleToken
from handlers.slack.poster import METADATA_EVENT, PostRefused, SlackPoster, Workspace
from tests.fakes.slack_api import BOT_TOKEN, FakeSlack
from tests.slack.conftest import mention, slack_stack

T1 = Workspace(team="T1")


def message(text: str) -> SlackMessage:
    return SlackMessage(text, [{"type": "section", "text": {"type": "mrkdwn", "text": text}}])


@pytest.fixture
def poster(fake_slack: FakeSlack, store: Store) -> SlackPoster:
    return SlackPoster(store, Clients(SingleToken(BOT_TOKEN), api_url=fake_slack.api_url))


def test_a_post_is_sent_once_per_key(fake_slack: FakeSlack, poster: SlackPoster) -> None:
    ts = poster.post("k1", T1, channel="C1", message=message("hello"))
    assert poster.post("k1", T1, channel="C1", message=message("hello")) == ts
    (call,) = fake_slack.calls_to("chat.postMessage")
    assert call.params["metadata"] == {"event_type": METADATA_EVENT, "event_payload": {"key": "k1"}}
    assert [m["text"] for m in fake_slack.messages("C1")] == ["hello"]


@pytest.mark.parametrize("thread", [None, "1700000000.000100"])
def test_a_post_slack_received_before_the_connection_dropped_is_not_sent_again(
    fake_slack: FakeSlack, poster: SlackPoster, thread: str | None
) -> None:
    if thread is not None:
        poster.post("parent", T1, channel="C1", message=message("parent"))
        thread = fake_slack.messages("C1")[0]["ts"]
    fake_slack.drop_after("chat.postMessage")
    with pytest.raises(RetryLater):
        poster.post("k2", T1, channel="C1", thread=thread, message=message("answer"))
    # The job runs again: the post is found by its key, not posted a second time.
    ts = poster.post("k2", T1, channel="C1", thread=thread, message=message("answer"))
    answers = [m for m in fake_slack.messages("C1") if m["text"] == "answer"]
    assert [m["ts"] for m in answers] == [ts]
    looked = "conversations.replies" if thread else "conversations.history"
    assert fake_slack.calls_to(looked)
    assert len(fake_slack.calls_to("chat.postMessage")) == (2 if thread else 1)


def test_a_rate_limit_is_waited_out_as_slack_asks(
    fake_slack: FakeSlack, poster: SlackPoster, store: Store
) -> None:
    fake_slack.rate_limit("chat.postMessage", retry_after=30, times=1)
    with pytest.raises(RetryLater) as later:
        poster.post("k3", T1, channel="C1", message=message("hi"))
    assert 30 <= later.value.delay < 32
    poster.post("k3", T1, channel="C1", message=message("hi"))
    item = store.outbox.get("k3")
    assert item is not None and (item.status, item.attempts) == ("sent", 2)
    assert len(fake_slack.messages("C1")) == 1


def test_a_server_error_is_retried_after_looking(
    fake_slack: FakeSlack, poster: SlackPoster
) -> None:
    fake_slack.script("chat.postMessage", status=503, body="upstream unavailable")
    with pytest.raises(RetryLater):
        poster.post("k4", T1, channel="C1", message=message("hi"))
    poster.post("k4", T1, channel="C1", message=message("hi"))
    assert len(fake_slack.messages("C1")) == 1
    assert fake_slack.calls_to("conversations.history")


@pytest.mark.parametrize("error", ["channel_not_found", "not_in_channel", "invalid_blocks"])
def test_a_refusal_is_final(
    fake_slack: FakeSlack, poster: SlackPoster, store: Store, error: str
) -> None:
    fake_slack.fail("chat.postMessage", error)
    with pytest.raises(PostRefused, match=error):
        poster.post("k5", T1, channel="C1", message=message("hi"))
    with pytest.raises(PostRefused, match=error):  # and Slack is not asked again
        poster.post("k5", T1, channel="C1", message=message("hi"))
    assert len(fake_slack.calls_to("chat.postMessage")) == 1
    item = store.outbox.get("k5")
    assert item is not None and item.status == "dead" and item.last_error == error


def test_a_retry_sends_what_the_first_attempt_rendered(
    fake_slack: FakeSlack, poster: SlackPoster
) -> None:
    fake_slack.rate_limit("chat.postMessage", retry_after=30)
    with pytest.raises(RetryLater):
        poster.post("k6", T1, channel="C1", message=message("first render"))
    poster.post("k6", T1, channel="C1", message=message("a later render"))
    assert [m["text"] for m in fake_slack.messages("C1")] == ["first render"]


def test_without_the_history_scope_the_post_is_sent_again(
    fake_slack: FakeSlack, poster: SlackPoster, caplog: pytest.LogCaptureFixture
) -> None:
    fake_slack.drop_after("chat.postMessage")
    with pytest.raises(RetryLater):
        poster.post("k7", T1, channel="C1", message=message("hi"))
    fake_slack.fail("conversations.history", "missing_scope")
    poster.post("k7", T1, channel="C1", message=message("hi"))
    assert len(fake_slack.messages("C1")) == 2  # the documented rare duplicate
    assert any("cannot check whether a post arrived" in r.getMessage() for r in caplog.records)


def test_an_update_of_a_vanished_message_posts_instead(
    fake_slack: FakeSlack, poster: SlackPoster
) -> None:
    ts = poster.update("k8", T1, channel="C1", ts="1600000000.000001", message=message("answer"))
    assert [m["text"] for m in fake_slack.messages("C1")] == ["answer"]
    assert fake_slack.messages("C1")[0]["ts"] == ts


def test_a_dropped_connection_ends_in_exactly_one_answer(
    fake_slack: FakeSlack, tmp_path: Path
) -> None:
    """End to end: Slack received the answer, then the connection dropped — the retried job
    reconciles and the thread shows one answer (it once became 21 posts)."""
    with slack_stack(fake_slack, tmp_path) as stack:
        stack.server.engine.wait_idle(5)
        fake_slack.drop_after("chat.postMessage", times=2)  # the "working…" message and a retry
        stack.event(mention("help", ts="1700002000.000100"))
        stack.settle(60)
        thread = fake_slack.thread("C1", "1700002000.000100")
        assert len(thread) == 1, json.dumps(thread)[:500]
        assert "Commands" in json.dumps(thread[0]["blocks"])


def test_a_job_that_keeps_failing_is_retried_then_answered_with_the_failure(
    fake_slack: FakeSlack, tmp_path: Path
) -> None:
    """Never silently dropped: the last attempt turns "working…" into a failure message."""
    runs: list[int] = []

    def broken(request: Request) -> Reply:
        runs.append(1)
        raise RuntimeError("a bug in the playbook")

    commands = Commands(
        [*default_commands(), Command(name="broken", usage="broken", summary="", run=broken)]
    )
    options = {"policy": Policy(max_attempts=3)}
    with slack_stack(fake_slack, tmp_path, commands=commands, engine_options=options) as stack:
        stack.command("broken")
        stack.settle(30)
    assert len(runs) == 3  # retried with backoff, then the final attempt
    [shown] = fake_slack.messages("C1")
    assert "Sorry — that failed" in shown["text"] and "reference" in shown["text"]

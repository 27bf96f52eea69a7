"""The outbox senders against the fake Web API: rate limits, server errors, permanent errors,
ordering of a reply's parts, and the response_url fallback of slash commands."""

from __future__ import annotations

import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import text

from bot.messages import Reply
from bot.rendering import to_dict
from bot.store import Store
from handlers.slack.clients import Clients, SingleToken
from handlers.slack.delivery import SlackDelivery
from tests.fakes.slack_api import BOT_TOKEN, FakeSlack
from tests.slack.conftest import answers, posted_text, slack_stack

WORKSPACE = {"team": "T1", "enterprise": None, "enterprise_install": False}


@pytest.fixture
def delivery(fake_slack: FakeSlack, store: Store) -> SlackDelivery:
    # Not started: each test claims and delivers rows itself, so every step is visible.
    clients = Clients(SingleToken(BOT_TOKEN), api_url=fake_slack.api_url)
    return SlackDelivery(store, clients, senders=2)


def reply_body(title: str = "Answer", **extra: Any) -> dict[str, Any]:
    return {**WORKSPACE, "reply": to_dict(Reply(title=title)), "part": 0, **extra}


def send_due(store: Store, delivery: SlackDelivery) -> None:
    for item in store.outbox.claim_due(platform="slack", limit=10):
        delivery.deliver(item)


def next_attempt(store: Store, key: str) -> datetime:
    with store.engine.connect() as connection:
        value = connection.execute(
            text("select next_attempt_at from outbox where idempotency_key = :k"), {"k": key}
        ).scalar_one()
    return datetime.fromisoformat(str(value)).replace(tzinfo=UTC)


def test_a_long_retry_after_is_scheduled_not_slept(
    fake_slack: FakeSlack, store: Store, delivery: SlackDelivery
) -> None:
    fake_slack.rate_limit("chat.postMessage", retry_after=30)
    delivery.enqueue("k1", team="T1", channel="C1", body=reply_body())
    started = time.monotonic()
    send_due(store, delivery)
    assert time.monotonic() - started < 2  # the sender was not held asleep for 30 s
    item = store.outbox.get("k1")
    assert item is not None and item.status == "pending" and item.last_error == "ratelimited"
    wait = (next_attempt(store, "k1") - datetime.now(UTC)).total_seconds()
    assert 28 < wait <= 31
    assert len(fake_slack.calls_to("chat.postMessage")) == 1


def test_server_errors_are_retried_in_place_then_backed_off(
    fake_slack: FakeSlack, store: Store, delivery: SlackDelivery
) -> None:
    fake_slack.script(
        "chat.postMessage", status=500, body={"ok": False, "error": "internal_error"}, times=3
    )
    delivery.enqueue("k2", team="T1", channel="C1", body=reply_body())
    send_due(store, delivery)
    assert [c.status for c in fake_slack.calls_to("chat.postMessage")] == [500, 500, 500]
    item = store.outbox.get("k2")
    assert item is not None and item.status == "pending"
    assert next_attempt(store, "k2") > datetime.now(UTC)


@pytest.mark.parametrize("error", ["not_in_channel", "invalid_auth", "invalid_blocks"])
def test_permanent_errors_give_up_at_once(
    fake_slack: FakeSlack, store: Store, delivery: SlackDelivery, error: str
) -> None:
    fake_slack.fail("chat.postMessage", error)
    delivery.enqueue("k3", team="T1", channel="C1", body=reply_body())
    send_due(store, delivery)
    item = store.outbox.get("k3")
    assert item is not None and item.status == "dead" and item.last_error == error
    send_due(store, delivery)
    assert len(fake_slack.calls_to("chat.postMessage")) == 1


def test_an_update_of_a_vanished_message_becomes_a_post(
    fake_slack: FakeSlack, store: Store, delivery: SlackDelivery
) -> None:
    fake_slack.fail("chat.update", "message_not_found")
    delivery.enqueue(
        "k4",
        team="T1",
        channel="C1",
        thread="1.1",
        kind="update",
        update_ref="9.9",
        body=reply_body(),
    )
    send_due(store, delivery)
    post = fake_slack.calls_to("chat.postMessage")
    assert len(post) == 1 and post[0].params["thread_ts"] == "1.1"
    item = store.outbox.get("k4")
    assert item is not None and item.status == "sent" and item.remote_ref == post[0].ts


def test_a_later_part_waits_for_the_earlier_one(
    fake_slack: FakeSlack, store: Store, delivery: SlackDelivery
) -> None:
    fake_slack.rate_limit("chat.postMessage", retry_after=30)
    delivery.enqueue("p:0", team="T1", channel="C1", body=reply_body("first"))
    delivery.enqueue("p:1", team="T1", channel="C1", body=reply_body("second", after="p:0"))
    send_due(store, delivery)
    first = fake_slack.calls_to("chat.postMessage")
    assert len(first) == 1 and "first" in posted_text(first[0])
    second = store.outbox.get("p:1")
    assert second is not None and second.status == "pending"
    assert second.last_error == "waiting for p:0"
    assert len(fake_slack.calls_to("chat.postMessage")) == 1  # "second" was not sent first


def test_a_workspace_without_installation_is_given_up(fake_slack: FakeSlack, store: Store) -> None:
    class NoTokens:
        def bot_token(self, team: str, enterprise: str | None, enterprise_install: bool) -> None:
            return None

    delivery = SlackDelivery(store, Clients(NoTokens(), api_url=fake_slack.api_url))
    delivery.enqueue("k5", team="T9", channel="C1", body=reply_body())
    send_due(store, delivery)
    item = store.outbox.get("k5")
    assert item is not None and item.status == "dead"
    assert item.last_error == "pipebot is not installed in workspace T9"


def test_a_command_where_pipebot_cannot_post_is_answered_to_the_asker(
    fake_slack: FakeSlack, tmp_path: Path
) -> None:
    with slack_stack(fake_slack, tmp_path) as stack:
        fake_slack.fail("chat.postMessage", "not_in_channel")
        response = stack.command("help", response_url=fake_slack.response_url("c1"))
        assert response.status_code == 200
        stack.settle()
        hooked = fake_slack.wait_for("response_url")
        assert len(hooked) == 1
        assert hooked[0].params["response_type"] == "ephemeral"
        assert "read-only data-engineering colleague" in posted_text(hooked[0])
        assert answers(fake_slack) == []
        assert len(fake_slack.calls_to("chat.postMessage")) == 1  # only the refused opener

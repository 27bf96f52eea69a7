"""The fake Slack keeps the messages the bot's calls create and answers the history APIs,
driven by the real slack_sdk `WebClient` over HTTP."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from http.client import RemoteDisconnected

import pytest
from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError

from tests.fakes.slack_api import BOT_TOKEN, FakeSlack


@pytest.fixture(scope="module")
def server() -> Iterator[FakeSlack]:
    with FakeSlack() as fake:
        yield fake


@pytest.fixture
def fake(server: FakeSlack) -> FakeSlack:
    server.reset()
    return server


@pytest.fixture
def client(fake: FakeSlack) -> WebClient:
    return WebClient(token=BOT_TOKEN, base_url=fake.api_url + "/", timeout=5)


def error_of(exc: pytest.ExceptionInfo[SlackApiError]) -> str:
    return str(exc.value.response["error"])


def test_post_update_delete_change_the_channel(fake: FakeSlack, client: WebClient) -> None:
    posted = client.chat_postMessage(channel="C1", text="working…")
    assert posted["ok"] and posted["channel"] == "C1"
    assert posted["message"]["text"] == "working…" and posted["message"]["bot_id"] == "BBOT"
    ts = posted["ts"]

    blocks = [{"type": "section", "text": {"type": "mrkdwn", "text": "*done*"}}]
    updated = client.chat_update(channel="C1", ts=ts, text="done", blocks=blocks)
    assert updated["message"]["blocks"] == blocks
    [message] = fake.messages("C1")
    assert message == {
        "type": "message",
        "ts": ts,
        "text": "done",
        "blocks": blocks,
        "user": "UBOT",
        "bot_id": "BBOT",
        "team": "T1",
        "channel": "C1",
    }

    client.chat_delete(channel="C1", ts=ts)
    assert fake.messages() == []
    with pytest.raises(SlackApiError) as gone:
        client.chat_update(channel="C1", ts=ts, text="again")
    assert error_of(gone) == "message_not_found"
    with pytest.raises(SlackApiError) as gone_too:
        client.chat_delete(channel="C1", ts=ts)
    assert error_of(gone_too) == "message_not_found"


def test_an_update_in_another_channel_does_not_find_the_message(client: WebClient) -> None:
    ts = client.chat_postMessage(channel="C1", text="here")["ts"]
    with pytest.raises(SlackApiError) as missing:
        client.chat_update(channel="C2", ts=ts, text="there")
    assert error_of(missing) == "message_not_found"


def test_ephemeral_messages_are_not_kept(fake: FakeSlack, client: WebClient) -> None:
    client.chat_postEphemeral(channel="C1", user="U1", text="only you")
    assert fake.messages() == []


def test_replies_thread_under_their_parent(fake: FakeSlack, client: WebClient) -> None:
    parent = client.chat_postMessage(channel="C1", text="alert")["ts"]
    first = client.chat_postMessage(channel="C1", text="one", thread_ts=parent)["ts"]
    second = client.chat_postMessage(channel="C1", text="two", thread_ts=parent)["ts"]
    client.chat_postMessage(channel="C1", text="elsewhere")

    replies = client.conversations_replies(channel="C1", ts=parent)
    assert [m["ts"] for m in replies["messages"]] == [parent, first, second]
    head = replies["messages"][0]
    assert head["thread_ts"] == parent and head["reply_count"] == 2
    assert head["latest_reply"] == second
    assert all(m["thread_ts"] == parent for m in replies["messages"][1:])
    # Any message of the thread finds the whole thread, as on Slack.
    by_reply = client.conversations_replies(channel="C1", ts=first)["messages"]
    assert [m["ts"] for m in by_reply] == [parent, first, second]
    assert [m["text"] for m in fake.thread("C1", parent)] == ["alert", "one", "two"]

    history = client.conversations_history(channel="C1")["messages"]
    assert [m["text"] for m in history] == ["elsewhere", "alert"]  # no replies, newest first
    assert history[1]["reply_count"] == 2


def test_replies_to_a_message_the_fake_never_saw(client: WebClient) -> None:
    # A person's message starts most threads; only the bot's replies are known.
    reply = client.chat_postMessage(channel="C1", text="answer", thread_ts="1600000000.000100")
    replies = client.conversations_replies(channel="C1", ts="1600000000.000100")["messages"]
    assert [m["ts"] for m in replies] == [reply["ts"]]
    with pytest.raises(SlackApiError) as unknown:
        client.conversations_replies(channel="C1", ts="1600000000.999999")
    assert error_of(unknown) == "thread_not_found"


def test_history_pages_newest_first(client: WebClient) -> None:
    posted = [client.chat_postMessage(channel="C1", text=f"m{i}")["ts"] for i in range(7)]

    pages: list[list[str]] = []
    cursors: list[str] = []
    cursor = None
    while True:
        page = client.conversations_history(channel="C1", limit=3, cursor=cursor)
        pages.append([m["ts"] for m in page["messages"]])
        cursor = page["response_metadata"]["next_cursor"]
        assert page["has_more"] is bool(cursor)
        if not cursor:
            break
        cursors.append(cursor)

    newest_first = posted[::-1]
    assert pages == [newest_first[0:3], newest_first[3:6], newest_first[6:7]]
    assert len(set(cursors)) == 2 and not any(ts in c for c in cursors for ts in posted)


def test_slack_sdk_iterates_the_history_pages(client: WebClient) -> None:
    for i in range(5):
        client.chat_postMessage(channel="C1", text=f"m{i}")
    # slack_sdk yields the same response object for every page, mutated: read it as it comes.
    sizes = [len(page["messages"]) for page in client.conversations_history(channel="C1", limit=2)]
    assert sizes == [2, 2, 1]


def test_history_window_and_unknown_channels(client: WebClient) -> None:
    ts = [client.chat_postMessage(channel="C1", text=f"m{i}")["ts"] for i in range(4)]
    window = client.conversations_history(channel="C1", oldest=ts[0], latest=ts[3])
    assert [m["ts"] for m in window["messages"]] == [ts[2], ts[1]]
    both_ends = client.conversations_history(
        channel="C1", oldest=ts[0], latest=ts[3], inclusive=True
    )
    assert [m["ts"] for m in both_ends["messages"]] == ts[::-1]

    empty = client.conversations_history(channel="C9")
    assert empty["messages"] == [] and empty["has_more"] is False
    with pytest.raises(SlackApiError) as bad:
        client.conversations_history(channel="C1", cursor="not-a-cursor")
    assert error_of(bad) == "invalid_cursor"


def test_replies_page_oldest_first(client: WebClient) -> None:
    parent = client.chat_postMessage(channel="C1", text="parent")["ts"]
    replies = [
        client.chat_postMessage(channel="C1", text=f"r{i}", thread_ts=parent)["ts"]
        for i in range(4)
    ]
    first = client.conversations_replies(channel="C1", ts=parent, limit=3)
    assert [m["ts"] for m in first["messages"]] == [parent, *replies[:2]]
    assert first["has_more"] is True
    rest = client.conversations_replies(
        channel="C1", ts=parent, limit=3, cursor=first["response_metadata"]["next_cursor"]
    )
    assert [m["ts"] for m in rest["messages"]] == replies[2:]
    assert rest["has_more"] is False and rest["response_metadata"]["next_cursor"] == ""


def test_metadata_only_when_asked_for(fake: FakeSlack, client: WebClient) -> None:
    metadata = {"event_type": "pipebot_reply", "event_payload": {"key": "k1", "part": 0}}
    ts = client.chat_postMessage(channel="C1", text="answer", metadata=metadata)["ts"]
    client.chat_postMessage(channel="C1", text="reply", thread_ts=ts, metadata=metadata)

    plain = client.conversations_history(channel="C1")["messages"]
    assert "metadata" not in plain[0]
    full = client.conversations_history(channel="C1", include_all_metadata=True)  # sent as "1"
    assert full["messages"][0]["metadata"] == metadata
    spelled = client.api_call(
        "conversations.history", params={"channel": "C1", "include_all_metadata": "true"}
    )
    assert spelled["messages"][0]["metadata"] == metadata
    thread = client.conversations_replies(channel="C1", ts=ts, include_all_metadata=True)
    assert [m["metadata"] for m in thread["messages"]] == [metadata, metadata]
    assert all(
        "metadata" not in m for m in client.conversations_replies(channel="C1", ts=ts)["messages"]
    )

    # chat.update sends its parameters form-encoded: metadata arrives as a JSON string.
    changed = {"event_type": "pipebot_reply", "event_payload": {"key": "k2"}}
    client.chat_update(channel="C1", ts=ts, text="edited", metadata=changed)
    assert fake.messages("C1")[0]["metadata"] == changed


def test_streaming_builds_one_message(fake: FakeSlack, client: WebClient) -> None:
    streamer = client.chat_stream(channel="C1", thread_ts="1600000000.000100", buffer_size=5)
    streamer.append(markdown_text="hello ")
    streamer.append(markdown_text="world")
    blocks = [{"type": "section", "text": {"type": "mrkdwn", "text": "done"}}]
    streamer.stop(markdown_text="!", blocks=blocks)

    [message] = fake.messages("C1")
    assert message["text"] == "hello world!" and message["blocks"] == blocks
    assert message["thread_ts"] == "1600000000.000100"
    with pytest.raises(SlackApiError) as stopped:
        client.chat_appendStream(channel="C1", ts=message["ts"], markdown_text="more")
    assert error_of(stopped) == "message_not_in_streaming_state"


def test_scripted_answers_change_nothing(fake: FakeSlack, client: WebClient) -> None:
    fake.fail("chat.postMessage", "channel_not_found")
    with pytest.raises(SlackApiError):
        client.chat_postMessage(channel="C1", text="refused")
    client.retry_handlers = []  # slack_sdk's rate-limit handler is not installed by default anyway
    fake.rate_limit("chat.postMessage", retry_after=0)
    with pytest.raises(SlackApiError):
        client.chat_postMessage(channel="C1", text="limited")
    assert fake.messages() == []

    ts = client.chat_postMessage(channel="C1", text="kept")["ts"]
    fake.fail("chat.update", "cant_update_message")
    fake.fail("chat.delete", "cant_delete_message")
    with pytest.raises(SlackApiError):
        client.chat_update(channel="C1", ts=ts, text="changed")
    with pytest.raises(SlackApiError):
        client.chat_delete(channel="C1", ts=ts)
    assert [m["text"] for m in fake.messages()] == ["kept"]


def test_a_dropped_connection_still_posts(fake: FakeSlack, client: WebClient) -> None:
    client.retry_handlers = []  # one request: slack_sdk would otherwise re-post in place
    fake.drop_after("chat.postMessage")
    started = time.monotonic()
    with pytest.raises(RemoteDisconnected):
        client.chat_postMessage(channel="C1", text="did it land?")
    assert time.monotonic() - started < 2

    [call] = fake.calls_to("chat.postMessage")
    assert call.dropped
    [message] = fake.messages("C1")
    assert message["text"] == "did it land?" and message["ts"] == call.ts

    after = client.chat_postMessage(channel="C1", text="next")
    assert after["ok"] and len(fake.messages("C1")) == 2
    assert not fake.calls_to("chat.postMessage")[-1].dropped


def test_slack_sdks_connection_retry_posts_twice(fake: FakeSlack, client: WebClient) -> None:
    """The default ConnectionErrorRetryHandler re-sends a dropped post: Slack then has two."""
    fake.drop_after("chat.postMessage")
    client.chat_postMessage(channel="C1", text="once?")
    assert [m["text"] for m in fake.messages("C1")] == ["once?", "once?"]


def test_wait_until_sees_a_post_from_another_thread(fake: FakeSlack, client: WebClient) -> None:
    poster = threading.Thread(target=client.chat_postMessage, kwargs={"channel": "C1", "text": "x"})
    poster.start()
    fake.wait_until(lambda f: len(f.messages("C1")) == 1, timeout=5)
    poster.join()


def test_wait_until_fails_with_what_it_saw(fake: FakeSlack, client: WebClient) -> None:
    client.chat_postMessage(channel="C1", text="only this")

    def two_messages(f: FakeSlack) -> bool:
        return len(f.messages()) >= 2

    with pytest.raises(AssertionError, match=r"two_messages did not hold.*only this"):
        fake.wait_until(two_messages, timeout=0.2)


def test_reset_forgets_the_messages(fake: FakeSlack, client: WebClient) -> None:
    client.chat_postMessage(channel="C1", text="old")
    fake.drop_after("chat.postMessage")
    fake.reset()
    client.chat_postMessage(channel="C2", text="new")
    assert [(m["channel"], m["text"]) for m in fake.messages()] == [("C2", "new")]
    assert not fake.calls[-1].dropped

"""Charts go up with ``files_upload_v2`` through the one send path: the real slack_sdk against
the fake Web API's three upload steps, once per key, found rather than sent again after a
request that may have arrived, skipped when the file is gone."""

from __future__ import annotations

from pathlib import Path

import pytest

from bot.commands import Request
from bot.messages import no_progress
from bot.playbooks import digest
from bot.store import Store
from bot.work import RetryLater
from handlers.slack.clients import Clients, SingleToken
from handlers.slack.poster import SlackPoster, Workspace
from integrations.demo import demo_sources
from tests.agent.support import inbound
from tests.fakes.slack_api import BOT_TOKEN, FakeSlack
from tests.slack.conftest import posted_text, slack_stack, with_command

T1 = Workspace(team="T1")
PNG = b"\x89PNG\r\n\x1a\n" + bytes(range(256)) * 8


@pytest.fixture
def poster(fake_slack: FakeSlack, sqlite_store: Store) -> SlackPoster:
    return SlackPoster(sqlite_store, Clients(SingleToken(BOT_TOKEN), api_url=fake_slack.api_url))


@pytest.fixture
def chart(tmp_path: Path) -> Path:
    path = tmp_path / "chart.png"
    path.write_bytes(PNG)
    return path


def upload(
    poster: SlackPoster, chart: Path, key: str = "k", thread: str | None = None
) -> str | None:
    return poster.upload(
        key,
        T1,
        channel="C1",
        thread=thread,
        path=str(chart),
        title="Pipeline digest",
        alt="Bar chart of failed runs per day",
    )


def test_a_chart_is_uploaded_once_per_key(
    fake_slack: FakeSlack, poster: SlackPoster, chart: Path
) -> None:
    file_id = upload(poster, chart)
    assert file_id is not None and upload(poster, chart) == file_id
    (asked,) = fake_slack.calls_to("files.getUploadURLExternal")
    assert asked.params["length"] == str(len(PNG)) and asked.params["alt_txt"].startswith("Bar")
    assert len(fake_slack.calls_to("upload")) == 1
    (done,) = fake_slack.calls_to("files.completeUploadExternal")
    assert done.params["channel_id"] == "C1"
    assert fake_slack.files[file_id]["data"] == PNG
    assert fake_slack.files[file_id]["title"] == "Pipeline digest"
    (shared,) = fake_slack.messages("C1")
    assert [f["id"] for f in shared["files"]] == [file_id] and "thread_ts" not in shared


def test_a_chart_goes_into_a_thread(
    fake_slack: FakeSlack, poster: SlackPoster, chart: Path
) -> None:
    thread = fake_slack.next_ts()
    upload(poster, chart, thread=thread)
    (shared,) = fake_slack.messages("C1")
    assert shared["thread_ts"] == thread


def test_an_upload_that_may_have_arrived_is_found_not_sent_again(
    fake_slack: FakeSlack, poster: SlackPoster, chart: Path
) -> None:
    fake_slack.drop_after("files.completeUploadExternal")
    with pytest.raises(RetryLater):
        upload(poster, chart)
    # The job runs again: the shared file is found in the channel by its name.
    file_id = upload(poster, chart)
    assert file_id is not None and len(fake_slack.calls_to("files.completeUploadExternal")) == 1
    assert fake_slack.calls_to("conversations.history")
    assert [m["files"][0]["id"] for m in fake_slack.messages("C1")] == [file_id]


def test_a_chart_that_is_gone_is_skipped(
    fake_slack: FakeSlack, poster: SlackPoster, tmp_path: Path
) -> None:
    assert upload(poster, tmp_path / "never-drawn.png") is None
    assert fake_slack.calls == []


def test_a_digest_asked_with_a_slash_command_brings_its_chart_into_its_thread(
    fake_slack: FakeSlack, tmp_path: Path
) -> None:
    request = Request(
        message=inbound("digest"), args=(), sources=demo_sources(), progress=no_progress
    )
    commands = with_command("chartdigest", digest.run(request))
    with slack_stack(fake_slack, tmp_path, commands=commands) as stack:
        assert stack.command("chartdigest").status_code == 200
        stack.settle()
    opened = next(
        c for c in fake_slack.calls_to("chat.postMessage") if "⏳" in str(c.params.get("text"))
    )
    (shared,) = fake_slack.calls_to("files.completeUploadExternal", ok_only=True)
    # The answer replaces the "working…" message, which opened the thread: chart and details
    # follow it there.
    assert shared.params["thread_ts"] == opened.ts
    (chart,) = fake_slack.files.values()
    assert chart["data"][:8] == b"\x89PNG\r\n\x1a\n" and chart["channel"] == "C1"
    details = [
        c
        for c in fake_slack.calls_to("chat.postMessage")
        if c.params.get("thread_ts") == opened.ts and "Details" in posted_text(c)
    ]
    assert details

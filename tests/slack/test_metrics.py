"""``/metrics`` of a real `pipebot serve` with Slack: what Slack traffic counts, and every series
docs/operations.md lists is scraped (and nothing it does not list)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from bot import metrics
from bot.metrics import CONTENT_TYPE
from bot.store import Store
from bot.work import RetryLater
from handlers.slack.clients import Clients, SingleToken
from handlers.slack.poster import PostRefused, SlackPoster, Workspace
from tests.fakes.slack_api import BOT_TOKEN, FakeSlack
from tests.server.scrape import Scrape
from tests.slack.conftest import SlackStack, mention
from tests.slack.test_poster import message

DOCS = Path(__file__).resolve().parents[2] / "docs" / "operations.md"


def scrape(stack: SlackStack) -> Scrape:
    response = stack.http.get("/metrics")
    assert response.status_code == 200
    assert response.headers["content-type"] == CONTENT_TYPE
    return Scrape.parse(response.text)


def test_slack_traffic_counts_events_duplicates_acks_and_jobs(stack: SlackStack) -> None:
    before = scrape(stack)
    assert stack.command("help").status_code == 200
    event = mention("help", ts="1700000300.000100")
    assert stack.event(event, event_id="EvMetrics").status_code == 200
    assert stack.event(event, event_id="EvMetrics", retry=1).status_code == 200  # Slack's retry
    stack.settle()
    after = scrape(stack)

    assert after.delta(before, "pipebot_events_received_total", source="slack") == 3
    assert after.delta(before, "pipebot_events_deduplicated_total", source="slack") == 1
    acks = after.delta(before, "pipebot_ack_latency_seconds_count", source="slack")
    assert acks == 3
    # Plausible: well within Slack's 3 s, and more than nothing.
    assert 0 < after.delta(before, "pipebot_ack_latency_seconds_sum", source="slack") < 3 * acks
    assert after.delta(before, "pipebot_ack_latency_seconds_bucket", source="slack", le="3.0") == 3
    assert after.value("pipebot_jobs", status="done") == 2
    assert after.value("pipebot_jobs", status="queued") == 0
    assert after.value("pipebot_job_oldest_age_seconds") == 0
    assert after.value("pipebot_outbox", status="sent") == 4  # "working…" + answer, twice
    assert (
        after.delta(before, "pipebot_job_duration_seconds_count", kind="slack.turn", outcome="done")
        == 2
    )
    assert after.value("pipebot_store_up") == 1
    (build,) = after.labels("pipebot_build_info")
    assert after.value("pipebot_build_info", **build) == 1


def test_post_retries_and_refusals_are_counted_by_platform(
    fake_slack: FakeSlack, store: Store
) -> None:
    poster = SlackPoster(store, Clients(SingleToken(BOT_TOKEN), api_url=fake_slack.api_url))
    workspace = Workspace(team="T1")

    def count(metric: str) -> float:
        return metrics.REGISTRY.get_sample_value(metric, {"platform": "slack"}) or 0.0

    retried, failed = count("pipebot_posts_retried_total"), count("pipebot_posts_failed_total")
    fake_slack.rate_limit("chat.postMessage", retry_after=30)
    with pytest.raises(RetryLater):
        poster.post("m1", workspace, channel="C1", message=message("hi"))
    poster.post("m1", workspace, channel="C1", message=message("hi"))
    fake_slack.fail("chat.postMessage", "channel_not_found")
    with pytest.raises(PostRefused):
        poster.post("m2", workspace, channel="C1", message=message("hi"))
    with pytest.raises(PostRefused):  # refused before asking Slack: not counted again
        poster.post("m2", workspace, channel="C1", message=message("hi"))
    assert count("pipebot_posts_retried_total") - retried == 1
    assert count("pipebot_posts_failed_total") - failed == 1


def documented() -> dict[str, tuple[str, set[str]]]:
    """docs/operations.md's Metrics table: series name -> (type, label names)."""
    section = DOCS.read_text().split("## Metrics", 1)[1]
    rows = re.findall(r"^\| `(pipebot_\w+)` \| ([^|]+) \|([^|]*)\|", section, re.M)
    return {
        name: (kind.split()[0], set(re.findall(r"`(\w+)`", labels))) for name, kind, labels in rows
    }


def test_every_series_is_documented_and_every_documented_series_is_scraped(
    stack: SlackStack,
) -> None:
    stack.command("help")
    stack.settle()
    scraped = scrape(stack)
    ours = {name: kind for name, kind in scraped.families.items() if name.startswith("pipebot_")}
    docs = documented()
    assert len(docs) >= 20
    assert set(ours) == set(docs)
    for name, (kind, labels) in docs.items():
        assert ours[name] == kind, name
        sample = name if kind != "histogram" else name + "_count"
        for found in scraped.labels(sample):
            assert set(found) == labels, (name, found)

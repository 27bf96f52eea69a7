"""``/metrics`` of a real `pipebot serve` with Discord, webhooks, a digest and a real Airflow
client: every kind of traffic shows in its series with plausible values, and no label takes
a value outside a small fixed set."""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import httpx
import pytest

from bot.playbooks.schedules import DIGEST_JOB, job_payload
from bot.ports import Sources
from integrations.airflow import AirflowClient
from integrations.airflow.client import OPERATIONS as AIRFLOW
from integrations.dbt.cloud import DISCOVERY_OPERATIONS
from integrations.dbt.cloud import OPERATIONS as DBT_CLOUD
from integrations.warehouse.catalog import OPERATIONS as WAREHOUSE
from tests.discord.conftest import DiscordStack, discord_stack, subcommand
from tests.fakes.airflow_server import GatedAirflow
from tests.fakes.discord_api import ALERTS_CHANNEL_ID, FakeDiscord
from tests.server.scrape import Scrape

# Every value each label may take (`model` aside: whatever PIPEBOT_AGENT__MODEL says).
CLOSED = {
    "source": {"slack", "discord", "webhook:airflow", "webhook:dbt_cloud", "webhook:alerts"},
    "platform": {"slack", "discord"},
    "connector": {"airflow", "dbt_cloud", "warehouse"},
    "operation": {
        "other",
        "query",
        *(name for _, name in AIRFLOW.routes + DBT_CLOUD.routes + DISCOVERY_OPERATIONS.routes),
        *WAREHOUSE,
    },
    "reason": {
        "timeout",
        "connection",
        "auth",
        "not_found",
        "rate_limited",
        "http_4xx",
        "http_5xx",
        "unavailable",
        "refused",
        "error",
    },
    "outcome": {"done", "postponed", "error", "ok", "busy", "refused", "timeout", "unreachable"},
    "type": {"input", "output", "cache_read", "cache_write"},
    "status": {"queued", "running", "done", "failed", "sending", "sent", "dead", "open"}
    | {"acknowledged", "snoozed", "cancelled", "aborted"},
}
# Job kinds are names in code; tests register a few of their own.
JOB_KIND = re.compile(r"^[a-z_][a-z_.-]*$")


@pytest.fixture
def airflow() -> Iterator[GatedAirflow]:
    with GatedAirflow() as running:
        yield running


def scrape(stack: DiscordStack) -> Scrape:
    return Scrape.parse(httpx.get(stack.url + "/metrics", timeout=10).text)


def test_discord_webhooks_connectors_and_digests_show_in_metrics(
    fake_discord: FakeDiscord, tmp_path: Path, airflow: GatedAirflow
) -> None:
    client = AirflowClient(airflow.url, username="admin", password="admin")
    with discord_stack(fake_discord, tmp_path, sources=Sources(airflow=client)) as stack:
        before = scrape(stack)

        # An app command that calls Airflow, and Discord delivering it a second time.
        asked = fake_discord.slash(options=subcommand("status"))
        fake_discord.wait_call("POST", re.escape(asked.callback_path))
        fake_discord.dispatch("INTERACTION_CREATE", asked.payload)
        stack.settle()

        # A failure alert, sent twice; another whose post Discord refuses for good.
        failed = {"dag_id": "orders_daily", "run_id": "r1", "task_id": "load", "state": "failed"}
        for _ in range(2):
            assert stack.webhook("/webhooks/airflow", failed).status_code == 200
        stack.settle()
        fake_discord.fail_next(
            "POST",
            rf"/channels/{ALERTS_CHANNEL_ID}/messages",
            status=403,
            body={"message": "Missing Access", "code": 50001},
        )
        other = {**failed, "dag_id": "customers_daily"}
        assert stack.webhook("/webhooks/airflow", other).status_code == 200
        stack.settle()

        # A scheduled digest.
        scheduled = fake_discord.slash(
            options=[
                {
                    "type": 2,
                    "name": "digest",
                    "options": subcommand("schedule", when="daily", at="09:00"),
                }
            ]
        )
        # The schedule is stored before its answer is posted.
        fake_discord.wait_call("PATCH", re.escape(scheduled.webhook_path) + "/messages/@original")
        (schedule,) = stack.store.digests.schedules()
        slot = datetime(2026, 12, 3, 8, 0, tzinfo=UTC)
        assert stack.server.submit(
            f"digest:{schedule.id}:{slot.isoformat()}", DIGEST_JOB, job_payload(schedule, slot)
        )
        stack.settle()
        after = scrape(stack)

    def delta(name: str, **labels: str) -> float:
        return after.delta(before, name, **labels)

    assert delta("pipebot_events_received_total", source="discord") == 3  # status, again, digest
    assert delta("pipebot_events_deduplicated_total", source="discord") == 1
    assert delta("pipebot_ack_latency_seconds_count", source="discord") == 2
    assert 0 < delta("pipebot_ack_latency_seconds_sum", source="discord") < 6
    assert delta("pipebot_events_received_total", source="webhook:airflow") == 3
    assert delta("pipebot_events_deduplicated_total", source="webhook:airflow") == 1
    assert delta("pipebot_ack_latency_seconds_count", source="webhook:airflow") == 3
    assert after.value("pipebot_incidents_open", status="open") == 2
    assert delta("pipebot_posts_failed_total", platform="discord") == 1
    assert after.value("pipebot_outbox", status="dead") == 1
    assert delta("pipebot_digests_posted_total", platform="discord") == 1
    assert after.value("pipebot_jobs", status="done") >= 5  # 2 commands, 2 alerts, a digest

    # `status` asked Airflow: its calls are counted under the client's method names.
    calls = {
        labels["operation"]: delta("pipebot_connector_requests_total", **labels)
        for labels in after.labels("pipebot_connector_requests_total")
        if labels["connector"] == "airflow"
    }
    assert calls["token"] == 1
    assert calls["dags"] >= 1 and calls["runs"] >= 1 and calls["import_errors"] >= 1
    assert calls.get("other", 0) == 0, "every call of the client has its operation name"
    assert sum(calls.values()) == len(airflow.requests)
    seconds = sum(
        delta("pipebot_connector_request_duration_seconds_sum", connector="airflow", operation=op)
        for op in calls
    )
    assert 0 < seconds < 30

    assert_bounded(after, before)


def assert_bounded(after: Scrape, before: Scrape) -> None:
    """Every label of every pipebot series this traffic touched takes a value from a small
    fixed set (the registry is the process's: other tests' series are left out)."""
    models: set[str] = set()
    for (name, labels), count in after.samples.items():
        if not name.startswith("pipebot_") or before.samples.get((name, labels)) == count:
            continue
        for label, value in labels:
            if label in CLOSED:
                assert value in CLOSED[label], (name, label, value)
            elif label == "kind":
                assert JOB_KIND.match(value), (name, value)
            elif label == "model":
                models.add(value)
            else:
                assert label in ("le", "version"), (name, label)
    assert len(models) < 10, models

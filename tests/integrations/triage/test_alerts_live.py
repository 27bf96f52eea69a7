"""Alert follow-ups end to end: the real `pipebot serve` app (built by bot.main), the real
Airflow 3 of the harness, the fake Slack Web API, the fake dbt Cloud serving a real dbt build."""

from __future__ import annotations

import hashlib
import hmac
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import text

from bot.compose import build_app, build_server
from bot.ports import Sources
from bot.settings import Settings
from handlers.server import ServerThread
from integrations.airflow import AirflowClient
from integrations.dbt import ArtifactsProject, CloudProject
from tests.fakes.dbt_cloud import FakeDbtCloud
from tests.fakes.slack_api import BOT_TOKEN, FakeSlack
from tests.slack.conftest import SIGNING_SECRET, event_envelope, sign
from tests.stack.airflow_fixtures import AirflowEnv
from tests.stack.dbt_stack import DbtBuild

pytestmark = pytest.mark.integration

WEBHOOK_TOKEN = "webhook-token-for-tests"
DBT_SECRET = "dbt-webhook-secret-for-tests"
ALERT_CHANNEL = "CALERTS"


class Running:
    def __init__(self, running: ServerThread, fake: FakeSlack, store_url: str) -> None:
        self.http = httpx.Client(base_url=running.url, timeout=10)
        self.fake = fake
        self.store_url = store_url
        self.engine = running.server.engine

    def idle(self) -> None:
        """Every accepted job has run (and posted whatever it posts)."""
        assert self.engine.wait_idle(60), f"jobs still pending: {self.engine.counts()}"

    def webhook(self, path: str, body: dict[str, Any], headers: dict[str, str]) -> httpx.Response:
        raw = json.dumps(body).encode()
        return self.http.post(
            path, content=raw, headers={"Content-Type": "application/json", **headers}
        )

    def airflow(self, body: dict[str, Any], token: str = WEBHOOK_TOKEN) -> httpx.Response:
        return self.webhook("/webhooks/airflow", body, {"Authorization": f"Bearer {token}"})

    def slack_event(self, event: dict[str, Any], *, retry: int = 0) -> httpx.Response:
        body = json.dumps(event_envelope(event))
        headers = {"Content-Type": "application/json", **sign(body)}
        if retry:
            headers["X-Slack-Retry-Num"] = str(retry)
        return self.http.post("/slack/events", content=body.encode(), headers=headers)

    def posts(self) -> list[Any]:
        return list(self.fake.calls_to("chat.postMessage", ok_only=True))

    def incidents(self) -> list[tuple[int, str, int, str | None]]:
        from sqlalchemy import create_engine

        engine = create_engine(self.store_url)
        with engine.connect() as connection:
            rows = connection.execute(
                text("select id, status, occurrences, thread from incidents order by id")
            ).all()
        engine.dispose()
        return [tuple(r) for r in rows]  # type: ignore[misc]


@pytest.fixture
def serve(airflow_stack: AirflowEnv, dbt_build: DbtBuild, tmp_path: Path) -> Iterator[Any]:
    def start(sources: Sources, fake: FakeSlack) -> Running:
        store_url = f"sqlite:///{tmp_path}/serve.db"
        settings = Settings(
            database_url=store_url,
            slack={  # type: ignore[arg-type]
                "bot_token": BOT_TOKEN,
                "signing_secret": SIGNING_SECRET,
                "api_url": fake.api_url,
                "mode": "http",
            },
            work={"concurrency": 4},  # type: ignore[arg-type]
            webhooks={"token": WEBHOOK_TOKEN},  # type: ignore[arg-type]
            dbt_cloud={"webhook_secret": DBT_SECRET},  # type: ignore[arg-type]
            alerts={"channel": ALERT_CHANNEL},  # type: ignore[arg-type]
            owners={"slack": ["dana=U024DANA"]},  # type: ignore[arg-type]
        )
        app = build_app(settings, sources)
        running = ServerThread(build_server(app)).start()
        started.append(running)
        return Running(running, fake, store_url)

    started: list[ServerThread] = []
    yield start
    for running in started:
        running.stop()


def airflow_sources(airflow_stack: AirflowEnv, dbt_build: DbtBuild) -> Sources:
    client = AirflowClient(airflow_stack.base_url, username="viewer", password="viewer")
    return Sources(airflow=client, dbt=ArtifactsProject(dbt_build.target_dir))


def notifier_message(run_id: str, ts: str) -> dict[str, Any]:
    """What Airflow's SlackNotifier (a typical template) posts in the alert channel."""
    return {
        "type": "message",
        "subtype": "bot_message",
        "bot_id": "BAIRFLOW",
        "username": "Airflow",
        "channel": ALERT_CHANNEL,
        "channel_type": "channel",
        "ts": ts,
        "text": ":red_circle: Task Failed.",
        "attachments": [
            {
                "fallback": "Task failed",
                "fields": [
                    {"title": "Dag", "value": "orders_daily"},
                    {"title": "Task", "value": "transform"},
                    {"title": "Run ID", "value": run_id},
                ],
            }
        ],
    }


def test_one_failure_three_deliveries_one_incident_one_thread_then_resolved(
    serve: Any, airflow_stack: AirflowEnv, dbt_build: DbtBuild
) -> None:
    with FakeSlack() as fake:
        bot = serve(airflow_sources(airflow_stack, dbt_build), fake)
        run_id = airflow_stack.run_ids["orders_daily"]
        alert_ts = "1764000000.000100"
        # 1. Airflow's notifier posts in the channel; 2. the callback webhook; 3. its retry.
        assert bot.slack_event(notifier_message(run_id, alert_ts)).status_code == 200
        failure = {
            "dag_id": "orders_daily",
            "run_id": run_id,
            "task_id": "transform",
            "state": "failed",
            "exception": "KeyError: 'amount'",
        }
        first = bot.airflow(failure)
        assert first.status_code == 200
        retry = bot.airflow(failure)
        assert retry.status_code == 200 and retry.json()["duplicate"] == 1

        fake.wait_for("chat.postMessage", 1, timeout=60)
        bot.idle()  # anything posted twice has been posted by now
        posts = bot.posts()
        assert len(posts) == 1
        assert posts[0].params.get("thread_ts") == alert_ts
        assert posts[0].params.get("channel") == ALERT_CHANNEL
        body = json.dumps(posts[0].params, ensure_ascii=False)
        assert "transform" in body and "KeyError" in body and "<@U024DANA>" in body
        [(_, status, occurrences, thread)] = bot.incidents()
        assert (status, occurrences, thread) == ("open", 1, alert_ts)

        # A later successful run resolves the incident, in the same thread.
        ok = bot.airflow({"dag_id": "orders_daily", "run_id": "manual__later", "state": "success"})
        assert ok.status_code == 200
        resolved = fake.wait_for(
            "chat.postMessage",
            2,
            timeout=30,
            where=lambda c: c.params.get("channel") == ALERT_CHANNEL,
        )[-1]
        assert resolved.params.get("thread_ts") == alert_ts
        assert "Resolved" in json.dumps(resolved.params)
        assert bot.incidents()[0][1] == "resolved"


def test_webhook_first_opens_a_thread_in_the_alert_channel(
    serve: Any, airflow_stack: AirflowEnv, dbt_build: DbtBuild
) -> None:
    with FakeSlack() as fake:
        bot = serve(airflow_sources(airflow_stack, dbt_build), fake)
        run_id = airflow_stack.run_ids["orders_daily"]
        failure = {"dag_id": "orders_daily", "run_id": run_id, "state": "failed"}
        assert bot.airflow(failure).status_code == 200
        [opened] = fake.wait_for("chat.postMessage", 1, timeout=60)
        assert opened.params.get("channel") == ALERT_CHANNEL and not opened.params.get("thread_ts")
        # The same run alerted in the channel afterwards: already handled, nothing new.
        assert bot.slack_event(notifier_message(run_id, "1764000000.000900")).status_code == 200
        bot.idle()
        assert len(bot.posts()) == 1
        assert bot.incidents()[0][3] == opened.ts  # the incident's thread is the new post


def test_bad_webhook_credentials_and_payloads(
    serve: Any, airflow_stack: AirflowEnv, dbt_build: DbtBuild
) -> None:
    with FakeSlack() as fake:
        bot = serve(airflow_sources(airflow_stack, dbt_build), fake)
        assert bot.airflow({"dag_id": "orders_daily"}, token="wrong").status_code == 401
        missing = bot.airflow({"run_id": "r"})
        assert missing.status_code == 400 and "dag_id" in missing.json()["error"]
        broken = bot.http.post(
            "/webhooks/airflow",
            content=b"{not json",
            headers={"Authorization": f"Bearer {WEBHOOK_TOKEN}"},
        )
        assert broken.status_code == 400 and "JSON" in broken.json()["error"]
        unsigned = bot.webhook("/webhooks/dbt-cloud", {"eventType": "job.run.errored"}, {})
        assert unsigned.status_code == 401
        bot.idle()
        assert bot.posts() == [] and bot.incidents() == []


def dbt_webhook(run_id: int, *, status: int = 20, event: str = "job.run.errored") -> dict[str, Any]:
    return {
        "accountId": 1,
        "webhooksID": "wsu_1",
        "eventId": f"wev_{run_id}_{event}",
        "timestamp": "2026-11-25T20:00:00.123456789Z",
        "eventType": event,
        "webhookName": "pipebot",
        "data": {
            "jobId": "1",
            "jobName": "Daily build",
            "runId": str(run_id),
            "runStatus": "Errored" if status == 20 else "Success",
            "runStatusCode": status,
            "runStatusMessage": "None",
            "runStartedAt": "2026-11-25T19:58:00Z",
        },
    }


def test_dbt_cloud_webhook_signature_and_triage_from_run_artifacts(
    serve: Any, dbt_build: DbtBuild
) -> None:
    with FakeSlack() as fake, FakeDbtCloud(build=dbt_build) as cloud:
        from integrations.dbt import DbtCloudClient

        client = DbtCloudClient(
            base_url=cloud.base_url, account_id=cloud.account_id, token=cloud.token
        )
        runs = CloudProject(client, 0)
        bot = serve(Sources(dbt=ArtifactsProject(dbt_build.target_dir), dbt_runs=runs), fake)
        run_id = cloud.latest_run_id  # the real build, which errored
        body = dbt_webhook(run_id)
        raw = json.dumps(body).encode()
        wrong = hmac.new(b"not-the-secret", raw, hashlib.sha256).hexdigest()
        assert (
            bot.http.post(
                "/webhooks/dbt-cloud", content=raw, headers={"Authorization": wrong}
            ).status_code
            == 401
        )
        good = hmac.new(DBT_SECRET.encode(), raw, hashlib.sha256).hexdigest()
        answer = bot.http.post("/webhooks/dbt-cloud", content=raw, headers={"Authorization": good})
        assert answer.status_code == 200 and answer.json()["accepted"] == 1
        # dbt Cloud sends job.run.completed for the same failed run too: one triage only.
        completed = json.dumps(dbt_webhook(run_id, event="job.run.completed")).encode()
        signature = hmac.new(DBT_SECRET.encode(), completed, hashlib.sha256).hexdigest()
        again = bot.http.post(
            "/webhooks/dbt-cloud", content=completed, headers={"Authorization": signature}
        )
        assert again.json()["duplicate"] == 1
        [post] = fake.wait_for("chat.postMessage", 1, timeout=60)
        text_ = json.dumps(post.params, ensure_ascii=False)
        # Facts from the run's own artifacts: the failing test, the erroring model, owners.
        assert "customer_ltv" in text_ and "not_null_orders_daily_revenue" in text_
        assert "revenue_dashboard" in text_
        assert "since run" in text_  # compared with the job's previous run
        bot.idle()
        assert len(bot.posts()) == 1
        assert cloud.writes == []

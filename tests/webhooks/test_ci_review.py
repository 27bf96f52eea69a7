"""Schema reviews of dbt Cloud CI runs in the channel (issue 15, part 7), end to end: the real
`pipebot serve` app built from settings, a signed ``job.run.completed`` webhook, the fake dbt
Cloud serving the CI run (the change set's real dbt build) and production (the build before
it), the review posted to the fake Slack once — however often the webhook is delivered — and
not at all for a job that is not a CI job. With the agent (the fake Messages API through the
real SDK), the post carries migration advice written from the review's facts alone."""

from __future__ import annotations

import hashlib
import hmac
import json
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest

from bot.commands import Request
from bot.compose import build_app, build_server, build_sources
from bot.errors import SourceUnavailable
from bot.facts import StateRef
from bot.messages import Tone
from bot.owners import OwnerDirectory
from bot.playbooks import schema_review
from bot.playbooks.ci_review import REVIEW_JOB, CiReviews, CiRun
from bot.ports import Sources
from bot.review.advice import HEADING, NOTE, facts, needs_advice, with_advice
from bot.review.reply import to_reply
from bot.review.report import compare
from bot.settings import Settings
from bot.store import Store
from handlers.server import ServerThread
from handlers.webhooks import BadPayload, dbt_cloud_run
from integrations.dbt.cloud import DbtCloudClient
from integrations.dbt.state import StateLoader
from tests.fakes.anthropic_api import Error, FakeAnthropic, Recorded, message, text
from tests.fakes.dbt_cloud import CI_JOB, DAILY_JOB, FakeDbtCloud, FakeRun
from tests.fakes.slack_api import BOT_TOKEN, FakeSlack
from tests.playbooks.test_digest_and_schema_review import ask
from tests.slack.conftest import SIGNING_SECRET
from tests.stack.dbt_stack import DbtBuild

DBT_SECRET = "dbt-webhook-secret-for-ci-reviews"
REVIEWS = "CSCHEMAREVIEW"
API_KEY = "sk-ant-test-ci-review"
ADVICE = (
    "- Keep `order_date` on `stg_orders` as an alias of `ordered_on` for one release.\n"
    "- Ask @dana to agree before merging."
)


def completed(
    run: FakeRun, *, job_id: int, event: str = "wev_2L6ZDoilyiWzKkSA59Gmc2d7FDD"
) -> dict[str, Any]:
    """The delivery dbt Cloud sends when `run` finishes (docs.getdbt.com, deploy/webhooks)."""
    return {
        "accountId": 1,
        "webhooksID": "wsu_12345abcde",
        "eventId": event,
        "timestamp": "2026-12-03T09:29:35.789265936Z",
        "eventType": "job.run.completed",
        "webhookName": "pipebot",
        "data": {
            "jobId": str(job_id),
            "jobName": "CI checks" if job_id == CI_JOB else "Daily shop build",
            "runId": str(run.id),
            "environmentId": "100",
            "environmentName": "CI" if job_id == CI_JOB else "Production",
            "dbtVersion": "1.11.0",
            "projectName": "shop",
            "projectId": "10",
            "runStatus": "Success" if run.status == 10 else "Error",
            "runStatusCode": run.status,
            "runStatusMessage": "None",
            "runReason": "Kicked off from GitHub by pull request #152",
            "runStartedAt": "2026-12-03T09:28:07Z",
            "runFinishedAt": "2026-12-03T09:29:32Z",
        },
    }


class Bot:
    def __init__(self, running: ServerThread, slack: FakeSlack) -> None:
        self.http = httpx.Client(base_url=running.url, timeout=10)
        self.slack = slack
        self.engine = running.server.engine

    def deliver(self, body: dict[str, Any]) -> httpx.Response:
        raw = json.dumps(body).encode()
        signature = hmac.new(DBT_SECRET.encode(), raw, hashlib.sha256).hexdigest()
        return self.http.post(
            "/webhooks/dbt-cloud",
            content=raw,
            headers={"Content-Type": "application/json", "Authorization": signature},
        )

    def idle(self) -> None:
        assert self.engine.wait_idle(90), f"jobs still pending: {self.engine.counts()}"

    def reviews(self) -> list[dict[str, Any]]:
        """The top-level messages in the schema-review channel, as Slack has them."""
        return [
            m for m in self.slack.messages(REVIEWS) if m.get("thread_ts") in (None, m.get("ts"))
        ]


@pytest.fixture
def serve(tmp_path: Path) -> Iterator[Any]:
    started: list[ServerThread] = []

    def start(cloud: FakeDbtCloud, slack: FakeSlack, **extra: Any) -> Bot:
        settings = Settings(
            _env_file=None,
            database_url=f"sqlite:///{tmp_path}/serve.db",
            slack={
                "bot_token": BOT_TOKEN,
                "signing_secret": SIGNING_SECRET,
                "api_url": slack.api_url,
                "mode": "http",
            },
            dbt_cloud={
                "account_id": cloud.account_id,
                "token": cloud.token,
                "base_url": cloud.base_url,
                "job_id": DAILY_JOB,
                "ci_job_ids": f"{CI_JOB}",
                "webhook_secret": DBT_SECRET,
            },
            schema_review={"channel": REVIEWS},
            owners={"slack": ["dana=U024DANA"]},
            work={"concurrency": 2},
            **extra,
        )
        app = build_app(settings, build_sources(settings))
        running = ServerThread(build_server(app)).start()
        started.append(running)
        return Bot(running, slack)

    yield start
    for running in started:
        running.stop()


@pytest.fixture
def cloud(dbt_build: DbtBuild) -> Iterator[FakeDbtCloud]:
    with FakeDbtCloud(build=dbt_build) as fake:
        yield fake
        assert fake.writes == [], "a write request reached the fake dbt Cloud"


def test_a_ci_run_is_reviewed_and_posted_once(
    serve: Any, cloud: FakeDbtCloud, dbt_change: DbtBuild
) -> None:
    run = cloud.publish_ci_run(dbt_change)
    with FakeSlack() as slack:
        bot = serve(cloud, slack)
        # Slack takes the post but the connection drops before its answer: the job runs again,
        # finds the message and does not post it twice.
        slack.drop_after("chat.postMessage")
        first = bot.deliver(completed(run, job_id=CI_JOB))
        assert first.status_code == 200
        # The run's alert (it is a dbt Cloud run like any other) and its review.
        assert first.json() == {"accepted": 2, "duplicate": 0, "ignored": False}
        posted = slack.wait_for(
            "chat.postMessage", 1, timeout=90, where=lambda c: c.params.get("channel") == REVIEWS
        )[0]
        # dbt Cloud retries a delivery it thinks failed: the same run is not reviewed twice.
        again = bot.deliver(completed(run, job_id=CI_JOB, event="wev_retry"))
        assert again.status_code == 200 and again.json()["duplicate"] == 2
        bot.idle()
        assert len(bot.reviews()) == 1
        assert posted.dropped  # the first attempt, whose answer never came
        body = json.dumps(posted.params, ensure_ascii=False)
        assert "Schema review of the change: breaking" in body
        assert f"dbt Cloud CI job CI checks finished run {run.id}" in body
        assert "Kicked off from GitHub by pull request #152" in body
        assert f"production: dbt Cloud run {cloud.latest_run_id}" in body
        assert "stg_orders" in body and "fct_orders" in body
        assert "<@U024DANA>" in body  # owners to notify, as mentions
        assert HEADING not in body  # no agent configured: no advice

        # A run of the deploy job (not a CI job) gets no review.
        daily = cloud.runs[cloud.latest_run_id]
        other = bot.deliver(completed(daily, job_id=DAILY_JOB, event="wev_daily"))
        assert other.status_code == 200 and other.json()["accepted"] == 1
        bot.idle()
        assert len(bot.reviews()) == 1
    # Only GETs reached dbt Cloud (the fixture checks), among them both runs' artifacts.
    paths = cloud.paths()
    assert any(f"/runs/{run.id}/artifacts/manifest.json" in p for p in paths)
    assert any(f"/runs/{cloud.latest_run_id}/artifacts/catalog.json" in p for p in paths)


def advice_only(request: Recorded) -> dict[str, Any] | Error:
    """The model: advice for the change review, a short hypothesis for the run's triage."""
    asked = json.dumps(request.body or {})
    if "<review_facts>" in asked:
        return message(text(ADVICE))
    return message(text("The run failed in a model; see its log."))


def test_with_the_agent_the_post_carries_its_migration_advice(
    serve: Any, cloud: FakeDbtCloud, dbt_change: DbtBuild
) -> None:
    run = cloud.publish_ci_run(dbt_change)
    with FakeSlack() as slack, FakeAnthropic() as api:
        api.otherwise(advice_only)
        bot = serve(cloud, slack, agent={"api_key": API_KEY, "base_url": api.url})
        assert bot.deliver(completed(run, job_id=CI_JOB)).status_code == 200
        posted = slack.wait_for(
            "chat.postMessage", 1, timeout=90, where=lambda c: c.params.get("channel") == REVIEWS
        )[0]
        bot.idle()
        body = json.dumps(posted.params, ensure_ascii=False)
        assert HEADING in body and "as an alias of `ordered_on` for one release" in body
        assert NOTE in body
        [asked] = [b for b in api.bodies if "<review_facts>" in json.dumps(b)]
        # From the facts only: no tools offered, the review's findings in the question.
        assert not asked.get("tools")
        question = json.dumps(asked["messages"], ensure_ascii=False)
        assert "owners_to_notify" in question and "ordered_on" in question
        api.assert_clean()


# --- the parts -------------------------------------------------------------------------------


def test_which_deliveries_are_runs_to_review() -> None:
    at = datetime(2026, 12, 3, 9, 28, tzinfo=UTC)
    run = FakeRun(id=4242, job_id=CI_JOB, status=10, created_at=at, started_at=at, finished_at=at)
    body = completed(run, job_id=CI_JOB)
    found = dbt_cloud_run(body)
    assert found == CiRun(
        run_id="4242",
        job_id=str(CI_JOB),
        job="CI checks",
        status="Success",
        reason="Kicked off from GitHub by pull request #152",
        event_id="wev_2L6ZDoilyiWzKkSA59Gmc2d7FDD",
    )
    assert found.key == "schema-review:4242"
    body["data"]["runStatusCode"], body["data"]["runStatus"] = 30, "Cancelled"
    assert dbt_cloud_run(body) is None
    for event in ("job.run.started", "job.run.errored"):
        assert dbt_cloud_run({**body, "eventType": event}) is None
    with pytest.raises(BadPayload, match="missing field 'jobId'"):
        dbt_cloud_run({"eventType": "job.run.completed", "data": {"runId": "1"}})
    reviews = CiReviews(
        sources=Sources(), ci_jobs=["1002", " 77 "], owners=OwnerDirectory(), platform="slack"
    )
    assert reviews.wants(found) and reviews.wants(CiRun(run_id="1", job_id="77"))
    assert not reviews.wants(CiRun(run_id="1", job_id=str(DAILY_JOB)))
    assert REVIEW_JOB == "schema-review"


def test_dbt_cloud_unreachable_retries_then_says_so() -> None:
    # Nothing listens there: both states fail to load.
    client = DbtCloudClient(
        base_url="http://127.0.0.1:9", account_id=1, token="dbtc_t", retries=0, backoff=0.01
    )
    sources = Sources(dbt_states=StateLoader(cloud=client, production_job=DAILY_JOB))
    reviews = CiReviews(
        sources=sources, ci_jobs=[str(CI_JOB)], owners=OwnerDirectory(), platform="slack"
    )
    run = CiRun(run_id="4242", job_id=str(CI_JOB), job="CI checks")
    with pytest.raises(SourceUnavailable):
        reviews.review(run, final=False)
    post = reviews.review(run, final=True)
    assert post.key == "schema-review:4242" and post.thread is None
    assert post.reply.title.startswith("Cannot review the change")
    assert post.reply.text.startswith("dbt Cloud CI job CI checks finished run 4242.")


@pytest.fixture
def folders_review(dbt_build: DbtBuild, dbt_change: DbtBuild) -> Any:
    loader = StateLoader()
    before = StateRef(kind="dir", value=str(dbt_build.target_dir))
    after = StateRef(kind="dir", value=str(dbt_change.target_dir))
    return compare(loader.state(before), loader.state(after), base_ref=before, target_ref=after)


def agent_for(api: FakeAnthropic, store: Store) -> Any:
    from bot.agent import build_agent
    from bot.redaction import Redactor

    settings = Settings(_env_file=None, agent={"api_key": API_KEY, "base_url": api.url})
    return build_agent(settings, store, Redactor())


def test_advice_is_written_from_the_facts_only(
    folders_review: Any, sqlite_store: Store, dbt_build: DbtBuild
) -> None:
    assert needs_advice(folders_review)
    found = facts(folders_review)
    assert found["verdict"] == "breaking" and found["counts"]["breaking"] == 4
    renamed = next(c for c in found["changes"] if c["change"] == "column renamed")
    assert (renamed["node"], renamed["column"], renamed["new_column"]) == (
        "stg_orders",
        "order_date",
        "ordered_on",
    )
    assert found["personal_data"][0]["column"] == "customer_contacts.full_name"
    with FakeAnthropic() as api:
        busy = Error(529, "overloaded_error", "Overloaded", {"x-should-retry": "false"})
        api.script(message(text(ADVICE)), busy)
        agent = agent_for(api, sqlite_store)
        # Sources with the dbt toolset: the advice still offers the model no tool.
        sources = build_sources(
            Settings(_env_file=None, dbt={"artifacts_dir": str(dbt_build.target_dir)})
        )
        assert sources.toolsets
        request: Request = ask(sources, "schema-review", "a", "b")
        reply = to_reply(folders_review, platform="slack")
        advised = with_advice(reply, folders_review, agent=agent, request=request)
        assert advised.sections[-1].heading == HEADING
        # The agent's bullets, as the reply writes bullets.
        assert advised.sections[-1].text == ADVICE.replace("- ", "• ")
        assert advised.notes[-1] == NOTE
        assert advised.sections[:-1] == reply.sections and advised.tone is reply.tone
        assert "tools" not in api.bodies[0] or not api.bodies[0]["tools"]
        assert "<review_facts>" in json.dumps(api.bodies[0]["messages"])
        # The model failing leaves the review as it was.
        failed = with_advice(reply, folders_review, agent=agent, request=request)
        assert failed == reply
        api.assert_clean()


def test_chat_reviews_of_a_change_carry_the_advice(
    dbt_build: DbtBuild, dbt_change: DbtBuild, sqlite_store: Store
) -> None:
    with FakeAnthropic() as api:
        api.script(message(text(ADVICE)))
        agent = agent_for(api, sqlite_store)
        sources = Sources(dbt_states=StateLoader())
        reply = schema_review.run(
            ask(sources, str(dbt_build.target_dir), str(dbt_change.target_dir)), agent
        )
        assert reply.tone is Tone.ERROR
        assert reply.sections[-1].heading == HEADING
        # A change with nothing to advise on costs no model call.
        same = schema_review.run(
            ask(sources, str(dbt_build.target_dir), str(dbt_build.target_dir)), agent
        )
        assert all(s.heading != HEADING for s in same.sections)
        assert len(api.bodies) == 1
        api.assert_clean()

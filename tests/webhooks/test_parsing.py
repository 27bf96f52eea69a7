"""Webhook payloads → alerts; signatures; readable rejections."""

from __future__ import annotations

import hashlib
import hmac
import json

import msgspec
import pytest

from bot.alerts import DEFAULT_MATCHERS, FAILED, SUCCEEDED, Alert, AlertMatchers
from bot.messages import ThreadRef
from bot.work import encode
from handlers.webhooks import (
    BadPayload,
    airflow_alert,
    dbt_cloud_alert,
    dbt_signature_ok,
    generic_alerts,
    token_ok,
)

# Taken from dbt Cloud's webhook documentation (docs.getdbt.com/docs/deploy/webhooks).
DBT_COMPLETED = {
    "accountId": 1,
    "webhooksID": "wsu_12345abcde",
    "eventId": "wev_2L6ZDoilyiWzKkSA59Gmc2d7FDD",
    "timestamp": "2023-01-31T19:29:35.789265936Z",
    "eventType": "job.run.completed",
    "webhookName": "test",
    "data": {
        "jobId": "123",
        "jobName": "Daily Job (dbt build)",
        "runId": "12345",
        "environmentId": "1234",
        "environmentName": "Production",
        "dbtVersion": "1.0.0",
        "projectName": "Snowflake Github Demo",
        "projectId": "167194",
        "runStatus": "Success",
        "runStatusCode": 10,
        "runStatusMessage": "None",
        "runReason": "Kicked off from UI by test@test.com",
        "runStartedAt": "2023-01-31T19:28:07Z",
        "runFinishedAt": "2023-01-31T19:29:32Z",
    },
}


def test_airflow_callback() -> None:
    alert = airflow_alert(
        {
            "dag_id": "orders_daily",
            "run_id": "manual__2026",
            "task_id": "transform",
            "state": "failed",
            "exception": "KeyError: 'amount'",
        }
    )
    assert (alert.system, alert.subject, alert.run_id, alert.task, alert.status) == (
        "airflow",
        "orders_daily",
        "manual__2026",
        "transform",
        FAILED,
    )
    assert airflow_alert({"dag_id": "x", "state": "success"}).status == SUCCEEDED
    with pytest.raises(BadPayload, match="missing field 'dag_id'"):
        airflow_alert({"run_id": "r"})
    with pytest.raises(BadPayload, match="state must be"):
        airflow_alert({"dag_id": "x", "state": "exploded"})


def test_dbt_cloud_events() -> None:
    ok = dbt_cloud_alert(DBT_COMPLETED)
    assert ok is not None and ok.status == SUCCEEDED and ok.run_id == "12345"
    errored = {
        **DBT_COMPLETED,
        "eventType": "job.run.errored",
        "data": {**DBT_COMPLETED["data"], "runStatus": "Errored", "runStatusCode": 20},
    }
    failed_completed = {
        **DBT_COMPLETED,
        "data": {**DBT_COMPLETED["data"], "runStatus": "Error", "runStatusCode": 20},
    }
    a, b = dbt_cloud_alert(errored), dbt_cloud_alert(failed_completed)
    assert a is not None and b is not None
    assert a.key == b.key  # completed + errored for one failed run collapse into one
    assert dbt_cloud_alert({**DBT_COMPLETED, "eventType": "job.run.started"}) is None
    cancelled = {
        **DBT_COMPLETED,
        "data": {**DBT_COMPLETED["data"], "runStatus": "Cancelled", "runStatusCode": 30},
    }
    assert dbt_cloud_alert(cancelled) is None
    with pytest.raises(BadPayload, match="unknown eventType"):
        dbt_cloud_alert({**DBT_COMPLETED, "eventType": "job.run.exploded"})
    with pytest.raises(BadPayload, match="'data'"):
        dbt_cloud_alert({"eventType": "job.run.completed"})


def test_alertmanager_format() -> None:
    alerts = generic_alerts(
        {
            "version": "4",
            "status": "firing",
            "alerts": [
                {
                    "status": "firing",
                    "labels": {"alertname": "WarehouseLag", "severity": "page"},
                    "annotations": {"summary": "lag above 2h"},
                    "fingerprint": "abc",
                    "generatorURL": "http://p",
                },
                {
                    "status": "resolved",
                    "labels": {"alertname": "X", "dag_id": "orders_daily", "run_id": "r1"},
                },
            ],
        }
    )
    assert [a.subject for a in alerts] == ["WarehouseLag", "orders_daily"]
    assert alerts[0].title == "lag above 2h" and alerts[0].status == FAILED
    assert alerts[1].system == "airflow" and alerts[1].status == SUCCEEDED
    with pytest.raises(BadPayload, match="alertname"):
        generic_alerts({"alerts": [{"labels": {}}]})


def test_signatures_and_tokens() -> None:
    body = b'{"eventType": "job.run.completed"}'
    good = hmac.new(b"s3cret", body, hashlib.sha256).hexdigest()
    assert dbt_signature_ok(body, good, "s3cret")
    assert not dbt_signature_ok(body + b" ", good, "s3cret")
    assert not dbt_signature_ok(body, "", "s3cret")
    assert token_ok("Bearer t0ken-value", "t0ken-value")
    assert not token_ok("Bearer wrong", "t0ken-value")
    assert not token_ok("", "")


def test_alert_round_trips_through_a_job_payload() -> None:
    alert = Alert(
        source="chat:airflow",
        system="airflow",
        subject="d",
        run_id="r",
        thread=ThreadRef(platform="slack", workspace="T", channel="C", thread="1.2"),
    )
    stored = json.loads(json.dumps(encode(alert)))  # what a job row holds
    assert msgspec.convert(stored, Alert) == alert


@pytest.mark.parametrize(
    ("text", "subject", "run_id"),
    [
        (
            ":red_circle: Task Failed.\n*Dag*: orders_daily\n*Task*: transform\n"
            "*Run ID*: manual__2026-11-25T10:00:00+00:00",
            "orders_daily",
            "manual__2026-11-25T10:00:00+00:00",
        ),
        (
            "Airflow alert: DAG orders_daily failed (run_id=scheduled__2026-11-24T00:00:00+00:00)",
            "orders_daily",
            "scheduled__2026-11-24T00:00:00+00:00",
        ),
        (
            "dbt Cloud job Nightly build failed — https://cloud.getdbt.com/deploy/1/projects/2/runs/70403",
            "Nightly build",
            "70403",
        ),
    ],
)
def test_default_matchers_recognise_common_alerts(text: str, subject: str, run_id: str) -> None:
    thread = ThreadRef(platform="slack", workspace="T", channel="C", thread="1.1")
    alert = AlertMatchers(DEFAULT_MATCHERS).match(text, thread=thread)
    assert alert is not None and alert.subject == subject and alert.run_id == run_id


def test_ordinary_chat_is_not_an_alert() -> None:
    thread = ThreadRef(platform="slack", workspace="T", channel="C", thread="1.1")
    for text in ("good morning team", "the dashboard looks fine today", "lunch?"):
        assert AlertMatchers(DEFAULT_MATCHERS).match(text, thread=thread) is None

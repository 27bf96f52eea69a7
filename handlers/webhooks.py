"""Alert webhooks: Airflow callbacks, dbt Cloud job webhooks and generic (Alertmanager) alerts.

Each route verifies the sender, parses the payload into an `Alert`, hands it to the work queue
and answers at once (dbt Cloud counts a reply after 10 s as a failed delivery and retries). The
triage runs on a worker. Bad credentials → 401; a payload we cannot read → 400 with the reason;
a duplicate delivery → 200 with ``"duplicate": true`` and nothing processed twice.

Routes:

- ``POST /webhooks/airflow`` — ``Authorization: Bearer <PIPEBOT_WEBHOOKS__TOKEN>``; the JSON an
  ``on_failure_callback`` / ``on_success_callback`` posts (see docs/alerts.md).
- ``POST /webhooks/dbt-cloud`` — ``Authorization: <hex HMAC-SHA256 of the raw body>`` with the
  webhook secret, compared in constant time; ``job.run.completed`` / ``job.run.errored``.
- ``POST /webhooks/alerts`` — ``Authorization: Bearer <token>``; Alertmanager's webhook format,
  or one flat alert object.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
from collections.abc import Callable
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from bot.alerts import FAILED, SUCCEEDED, Alert

log = logging.getLogger(__name__)

Submit = Callable[[Alert], bool]  # True when accepted, False when a duplicate


class BadPayload(ValueError):
    """The payload could not be read; the message says what was wrong."""


# --- pure parsers (payload → Alert) -------------------------------------------------------


def airflow_alert(body: dict[str, Any]) -> Alert:
    dag_id = _required_str(body, "dag_id")
    state = str(body.get("state") or body.get("status") or "failed").lower()
    if state not in {"failed", "success", "succeeded", "up_for_retry"}:
        raise BadPayload(f"state must be failed or success, got {state!r}")
    return Alert(
        source="airflow-callback",
        system="airflow",
        subject=dag_id,
        run_id=str(body.get("run_id") or ""),
        task=str(body.get("task_id") or ""),
        status=SUCCEEDED if state in {"success", "succeeded"} else FAILED,
        title=f"{dag_id} {'succeeded' if state in {'success', 'succeeded'} else 'failed'}",
        detail=str(body.get("exception") or "")[:2000],
        url=str(body.get("log_url") or ""),
    )


# dbt Cloud run status codes (Admin API): 10 success, 20 error, 30 cancelled.
_DBT_STATUS = {10: SUCCEEDED, 20: FAILED}


def dbt_cloud_alert(body: dict[str, Any]) -> Alert | None:
    """None for events pipebot does not act on (run started, cancelled)."""
    event = _required_str(body, "eventType")
    data = body.get("data")
    if not isinstance(data, dict):
        raise BadPayload("missing object 'data'")
    if event == "job.run.started":
        return None
    if event not in {"job.run.completed", "job.run.errored"}:
        raise BadPayload(f"unknown eventType {event!r}")
    code = data.get("runStatusCode")
    status_text = str(data.get("runStatus") or "").lower()
    if isinstance(code, int) and code in _DBT_STATUS:
        status = _DBT_STATUS[code]
    elif status_text in {"success", "succeeded"}:
        status = SUCCEEDED
    elif status_text in {"error", "errored", "failed"} or event == "job.run.errored":
        status = FAILED
    else:
        return None  # cancelled, or a status we do not triage
    job = str(data.get("jobName") or data.get("jobId") or "dbt Cloud job")
    return Alert(
        source="dbt-cloud",
        system="dbt",
        subject=job,
        run_id=_required_str(data, "runId"),
        status=status,
        title=f"dbt Cloud job {job} {'succeeded' if status == SUCCEEDED else 'failed'}",
        detail=str(data.get("runStatusMessage") or ""),
    )


def generic_alerts(body: dict[str, Any]) -> list[Alert]:
    """Alertmanager's webhook format, or one flat alert object."""
    items = body.get("alerts")
    if items is None:
        items = [body]
    if not isinstance(items, list) or not items:
        raise BadPayload("'alerts' must be a non-empty list")
    alerts = []
    for index, item in enumerate(items):
        if not isinstance(item, dict):
            raise BadPayload(f"alerts[{index}] must be an object")
        labels = item.get("labels") if isinstance(item.get("labels"), dict) else {}
        notes = item.get("annotations") if isinstance(item.get("annotations"), dict) else {}
        assert isinstance(labels, dict) and isinstance(notes, dict)
        subject = (
            labels.get("dag_id")
            or labels.get("job")
            or labels.get("alertname")
            or item.get("subject")
        )
        if not subject:
            raise BadPayload(f"alerts[{index}] needs labels.alertname (or dag_id / job / subject)")
        status = str(item.get("status") or body.get("status") or "firing").lower()
        system = str(labels.get("system") or ("airflow" if labels.get("dag_id") else "generic"))
        alerts.append(
            Alert(
                source="alertmanager",
                system=system,
                subject=str(subject),
                run_id=str(
                    labels.get("run_id") or item.get("fingerprint") or item.get("startsAt") or ""
                ),
                task=str(labels.get("task_id") or ""),
                status=SUCCEEDED if status in {"resolved", "success", "succeeded"} else FAILED,
                title=str(notes.get("summary") or item.get("title") or subject),
                detail=str(notes.get("description") or item.get("text") or ""),
                url=str(item.get("generatorURL") or item.get("url") or ""),
            )
        )
    return alerts


def _required_str(body: dict[str, Any], key: str) -> str:
    value = body.get(key)
    if value is None or value == "":
        raise BadPayload(f"missing field {key!r}")
    return str(value)


# --- authentication -----------------------------------------------------------------------


def dbt_signature_ok(raw_body: bytes, header: str, secret: str) -> bool:
    expected = hmac.new(secret.encode(), raw_body, hashlib.sha256).hexdigest()
    return hmac.compare_digest(expected, header.strip().lower())


def token_ok(header: str, token: str) -> bool:
    presented = header.removeprefix("Bearer ").strip()
    return bool(token) and hmac.compare_digest(presented.encode(), token.encode())


# --- routes -------------------------------------------------------------------------------


def routes(*, submit: Submit, token: str | None, dbt_secret: str | None) -> list[Route]:
    """The three webhook routes, to mount on the HTTP server."""

    async def airflow(request: Request) -> JSONResponse:
        if token is None:
            return _error(503, "webhooks are disabled: set PIPEBOT_WEBHOOKS__TOKEN")
        if not token_ok(request.headers.get("authorization", ""), token):
            return _error(401, "missing or wrong token (Authorization: Bearer …)")
        return await _accept(request, lambda body: [airflow_alert(body)], submit)

    async def dbt_cloud(request: Request) -> JSONResponse:
        if dbt_secret is None:
            return _error(
                503, "dbt Cloud webhooks are disabled: set PIPEBOT_DBT_CLOUD__WEBHOOK_SECRET"
            )
        raw = await request.body()
        if not dbt_signature_ok(raw, request.headers.get("authorization", ""), dbt_secret):
            return _error(
                401, "signature does not match the body (HMAC-SHA256 with the webhook secret)"
            )

        def parse(body: dict[str, Any]) -> list[Alert]:
            alert = dbt_cloud_alert(body)
            return [alert] if alert is not None else []

        return await _accept(request, parse, submit, raw=raw)

    async def alerts(request: Request) -> JSONResponse:
        if token is None:
            return _error(503, "webhooks are disabled: set PIPEBOT_WEBHOOKS__TOKEN")
        if not token_ok(request.headers.get("authorization", ""), token):
            return _error(401, "missing or wrong token (Authorization: Bearer …)")
        return await _accept(request, generic_alerts, submit)

    return [
        Route("/webhooks/airflow", airflow, methods=["POST"]),
        Route("/webhooks/dbt-cloud", dbt_cloud, methods=["POST"]),
        Route("/webhooks/alerts", alerts, methods=["POST"]),
    ]


async def _accept(
    request: Request,
    parse: Callable[[dict[str, Any]], list[Alert]],
    submit: Submit,
    raw: bytes | None = None,
) -> JSONResponse:
    raw = raw if raw is not None else await request.body()
    try:
        body = json.loads(raw)
    except ValueError:
        return _error(400, "body is not valid JSON")
    if not isinstance(body, dict):
        return _error(400, "body must be a JSON object")
    try:
        alerts = parse(body)
    except BadPayload as exc:
        return _error(400, str(exc))
    accepted = sum(1 for alert in alerts if submit(alert))
    log.info(
        "webhook accepted",
        extra={"path": request.url.path, "alerts": len(alerts), "new": accepted},
    )
    return JSONResponse(
        {"accepted": accepted, "duplicate": len(alerts) - accepted, "ignored": not alerts},
        status_code=200,
    )


def _error(status: int, reason: str) -> JSONResponse:
    return JSONResponse({"error": reason}, status_code=status)

"""Alert webhooks: Airflow callbacks, dbt Cloud job webhooks and generic (Alertmanager) alerts.

Each route verifies the sender, parses the payload into an `Alert`, hands it to the work queue
and answers at once (dbt Cloud counts a reply after 10 s as a failed delivery and retries). The
triage runs on a worker. Bad credentials → 401; a payload we cannot read → 400 with the reason;
a duplicate delivery → 200 with ``"duplicate": true`` and nothing processed twice.

Routes:

- ``POST /webhooks/airflow`` — ``Authorization: Bearer <PIPEBOT_WEBHOOKS__TOKEN>``; the JSON an
  ``on_failure_callback`` / ``on_success_callback`` posts (see docs/alerts.md).
- ``POST /webhooks/dbt-cloud`` — ``Authorization: <hex HMAC-SHA256 of the raw body>`` with the
  webhook secret, compared in constant time; ``job.run.completed`` / ``job.run.errored``. A
  completed run of a CI job the core wants reviewed (`Reviews`) is accepted as a schema-review
  job too, in the same answer.
- ``POST /webhooks/alerts`` — ``Authorization: Bearer <token>``; Alertmanager's webhook format,
  or one flat alert object.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar

from starlette.concurrency import run_in_threadpool
from starlette.requests import ClientDisconnect, Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from bot import metrics
from bot.alerts import FAILED, SUCCEEDED, Alert
from bot.playbooks.ci_review import CiRun

log = logging.getLogger(__name__)

Submit = Callable[[Alert], bool]  # True when accepted, False when a duplicate
T = TypeVar("T")


@dataclass(frozen=True)
class Reviews:
    """Which finished dbt Cloud runs get a schema review (the core's decision) and how one is
    accepted (True when accepted, False when a duplicate)."""

    wants: Callable[[CiRun], bool]
    submit: Callable[[CiRun], bool]


class BadPayload(ValueError):
    """The payload could not be read; the message says what was wrong."""


# --- pure parsers (payload → Alert) -------------------------------------------------------
#
# Total over JSON values: whatever the body holds, they return or raise `BadPayload`.


def airflow_alert(body: dict[str, Any]) -> Alert:
    dag_id = _required_str(body, "dag_id")
    state = _scalar(body.get("state") or body.get("status") or "failed", "state").lower()
    if state not in {"failed", "success", "succeeded", "up_for_retry"}:
        raise BadPayload(f"state must be failed or success, got {_shown(state)}")
    return Alert(
        source="airflow-callback",
        system="airflow",
        subject=dag_id,
        run_id=_text(body.get("run_id"), "run_id"),
        task=_text(body.get("task_id"), "task_id"),
        status=SUCCEEDED if state in {"success", "succeeded"} else FAILED,
        title=f"{dag_id} {'succeeded' if state in {'success', 'succeeded'} else 'failed'}",
        detail=_text(body.get("exception"), "exception")[:2000],
        url=_text(body.get("log_url"), "log_url"),
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
        raise BadPayload(f"unknown eventType {_shown(event)}")
    code = data.get("runStatusCode")
    status_text = _scalar(data.get("runStatus"), "runStatus").lower()
    if type(code) is int and code in _DBT_STATUS:
        status = _DBT_STATUS[code]
    elif status_text in {"success", "succeeded"}:
        status = SUCCEEDED
    elif status_text in {"error", "errored", "failed"} or event == "job.run.errored":
        status = FAILED
    else:
        return None  # cancelled, or a status we do not triage
    job = _scalar(data.get("jobName") or data.get("jobId"), "jobName") or "dbt Cloud job"
    return Alert(
        source="dbt-cloud",
        system="dbt",
        subject=job,
        run_id=_required_str(data, "runId"),
        status=status,
        title=f"dbt Cloud job {job} {'succeeded' if status == SUCCEEDED else 'failed'}",
        detail=_text(data.get("runStatusMessage"), "runStatusMessage"),
    )


def dbt_cloud_run(body: dict[str, Any]) -> CiRun | None:
    """The run a ``job.run.completed`` delivery tells of, once its artifacts are in dbt Cloud
    (``job.run.errored`` comes before them); None for other events and cancelled runs."""
    if body.get("eventType") != "job.run.completed":
        return None
    data = body.get("data")
    if not isinstance(data, dict):
        raise BadPayload("missing object 'data'")
    code = data.get("runStatusCode")
    status = _scalar(data.get("runStatus"), "runStatus")
    if (type(code) is int and code == 30) or status.lower() in {"cancelled", "canceled"}:
        return None
    return CiRun(
        run_id=_required_str(data, "runId"),
        job_id=_required_str(data, "jobId"),
        job=_text(data.get("jobName"), "jobName"),
        status=status,
        reason=_text(data.get("runReason"), "runReason")[:200],
        event_id=_text(body.get("eventId"), "eventId"),
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
        where = f"alerts[{index}]"
        labels = item.get("labels") if isinstance(item.get("labels"), dict) else {}
        notes = item.get("annotations") if isinstance(item.get("annotations"), dict) else {}
        assert isinstance(labels, dict) and isinstance(notes, dict)
        subject = _scalar(
            labels.get("dag_id")
            or labels.get("job")
            or labels.get("alertname")
            or item.get("subject"),
            f"{where}.labels.alertname",
        )
        if not subject:
            raise BadPayload(f"{where} needs labels.alertname (or dag_id / job / subject)")
        status = _scalar(
            item.get("status") or body.get("status") or "firing", f"{where}.status"
        ).lower()
        system = _scalar(
            labels.get("system") or ("airflow" if labels.get("dag_id") else "generic"),
            f"{where}.labels.system",
        )
        alerts.append(
            Alert(
                source="alertmanager",
                system=system,
                subject=subject,
                run_id=_text(
                    labels.get("run_id") or item.get("fingerprint") or item.get("startsAt"),
                    f"{where}.labels.run_id",
                ),
                task=_text(labels.get("task_id"), f"{where}.labels.task_id"),
                status=SUCCEEDED if status in {"resolved", "success", "succeeded"} else FAILED,
                title=_text(
                    notes.get("summary") or item.get("title") or subject,
                    f"{where}.annotations.summary",
                ),
                detail=_text(
                    notes.get("description") or item.get("text"),
                    f"{where}.annotations.description",
                ),
                url=_text(item.get("generatorURL") or item.get("url"), f"{where}.generatorURL"),
            )
        )
    return alerts


def _required_str(body: dict[str, Any], key: str) -> str:
    value = body.get(key)
    if value is None or value == "":
        raise BadPayload(f"missing field {key!r}")
    return _scalar(value, key)


def _scalar(value: Any, field: str) -> str:
    """An identifying field (names, ids, states) as text; an object or list there is refused:
    it would become a subject or key no one could match."""
    if isinstance(value, dict | list):
        raise BadPayload(f"field {field!r} must be a string or a number")
    return _text(value, field)


def _text(value: Any, field: str) -> str:
    """A descriptive field as text; falsy values are empty, as senders omit them either way."""
    if isinstance(value, str):
        return value
    if not value:
        return ""
    try:
        return str(value)
    except (RecursionError, ValueError):
        # Nesting deeper than the interpreter's stack, or an integer with thousands of digits.
        raise BadPayload(f"field {field!r} cannot be read as text") from None


def _shown(value: str) -> str:
    """A sender's value quoted in an error, short: the reason is echoed to whoever sent it."""
    return repr(value[:60] + "…" if len(value) > 60 else value)


# --- authentication -----------------------------------------------------------------------


def dbt_signature_ok(raw_body: bytes, header: str, secret: str) -> bool:
    expected = hmac.new(secret.encode(), raw_body, hashlib.sha256).hexdigest().encode()
    # Bytes, not str: compare_digest refuses non-ASCII str, and a header is any latin-1 text.
    presented = header.strip().lower().encode("utf-8", "replace")
    return hmac.compare_digest(expected, presented)


def token_ok(header: str, token: str) -> bool:
    presented = header.removeprefix("Bearer ").strip()
    return bool(token) and hmac.compare_digest(
        presented.encode("utf-8", "replace"), token.encode("utf-8", "replace")
    )


# --- routes -------------------------------------------------------------------------------

# The `source` of each route's events in metrics.
SOURCES = ("webhook:airflow", "webhook:dbt_cloud", "webhook:alerts")
_TOKEN_REASON = "missing or wrong token (Authorization: Bearer …)"
_RETRY_REASON = "could not accept the alert right now; retry"


def routes(
    *,
    submit: Submit,
    token: str | None,
    dbt_secret: str | None,
    reviews: Reviews | None = None,
) -> list[Route]:
    """The three webhook routes, to mount on the HTTP server (behind
    `handlers.front_door.BodyLimit`, which bounds the body before a route reads it).

    Credentials are checked first, on the event loop (a header compare, or one HMAC over the
    bounded body); the JSON is parsed and `submit` runs (a store write) in the thread pool.
    """
    for source in SOURCES:
        metrics.declare_source(source)

    async def airflow(request: Request) -> Response:
        started = time.perf_counter()
        if token is None:
            return _refuse(request, 503, "webhooks are disabled: set PIPEBOT_WEBHOOKS__TOKEN")
        if not token_ok(request.headers.get("authorization", ""), token):
            return _refuse(request, 401, _TOKEN_REASON)
        return await _accept(
            request,
            lambda body: [airflow_alert(body)],
            submit,
            source="webhook:airflow",
            started=started,
        )

    async def dbt_cloud(request: Request) -> Response:
        started = time.perf_counter()
        if dbt_secret is None:
            return _refuse(
                request,
                503,
                "dbt Cloud webhooks are disabled: set PIPEBOT_DBT_CLOUD__WEBHOOK_SECRET",
            )
        raw = await _body(request)
        if raw is None:
            return _gone()
        if not dbt_signature_ok(raw, request.headers.get("authorization", ""), dbt_secret):
            return _refuse(
                request,
                401,
                "signature does not match the body (HMAC-SHA256 with the webhook secret)",
            )

        def parse(body: dict[str, Any]) -> list[Alert | CiRun]:
            alert = dbt_cloud_alert(body)
            found: list[Alert | CiRun] = [alert] if alert is not None else []
            run = dbt_cloud_run(body) if reviews is not None else None
            if reviews is not None and run is not None and reviews.wants(run):
                found.append(run)
            return found

        def accept(item: Alert | CiRun) -> bool:
            if isinstance(item, CiRun):
                assert reviews is not None  # parse adds runs only with reviews
                return reviews.submit(item)
            return submit(item)

        return await _accept(
            request, parse, accept, source="webhook:dbt_cloud", started=started, raw=raw
        )

    async def alerts(request: Request) -> Response:
        started = time.perf_counter()
        if token is None:
            return _refuse(request, 503, "webhooks are disabled: set PIPEBOT_WEBHOOKS__TOKEN")
        if not token_ok(request.headers.get("authorization", ""), token):
            return _refuse(request, 401, _TOKEN_REASON)
        return await _accept(
            request, generic_alerts, submit, source="webhook:alerts", started=started
        )

    return [
        Route("/webhooks/airflow", airflow, methods=["POST"]),
        Route("/webhooks/dbt-cloud", dbt_cloud, methods=["POST"]),
        Route("/webhooks/alerts", alerts, methods=["POST"]),
    ]


async def _accept(
    request: Request,
    parse: Callable[[dict[str, Any]], list[T]],
    submit: Callable[[T], bool],
    *,
    source: str,
    started: float,
    raw: bytes | None = None,
) -> Response:
    """`source` names the sender in metrics; `started` is when its request arrived."""
    if raw is None:
        raw = await _body(request)
        if raw is None:
            return _gone()
    path = _path(request)
    status, answer = await run_in_threadpool(_process, path, raw, parse, submit, source)
    response = JSONResponse(answer, status_code=status)
    if status == 200:
        metrics.ACK_LATENCY.labels(source).observe(time.perf_counter() - started)
    return response


def _process(
    path: str,
    raw: bytes,
    parse: Callable[[dict[str, Any]], list[T]],
    submit: Callable[[T], bool],
    source: str,
) -> tuple[int, dict[str, Any]]:
    """Parse, then persist: the blocking half of a webhook, run in a worker thread. Each item
    parsed (an alert, a run to review) is one event."""
    try:
        alerts = parse(_json_object(raw))
    except BadPayload as exc:
        _log_refusal(path, 400, str(exc))
        return 400, {"error": str(exc)}
    try:
        accepted = sum(1 for alert in alerts if submit(alert))
    except Exception as exc:  # noqa: BLE001 - the store failed; the sender retries on a 5xx
        log.error(
            "webhook not stored; answered 503 so the sender retries",
            extra={"path": path, "error": _one_line(exc)},
        )
        return 503, {"error": _RETRY_REASON}
    # One event per alert; a delivery pipebot does not act on (a run started) is one too.
    metrics.EVENTS_RECEIVED.labels(source).inc(max(1, len(alerts)))
    if len(alerts) > accepted:
        metrics.EVENTS_DEDUPLICATED.labels(source).inc(len(alerts) - accepted)
    log.info("webhook accepted", extra={"path": path, "alerts": len(alerts), "new": accepted})
    return 200, {"accepted": accepted, "duplicate": len(alerts) - accepted, "ignored": not alerts}


def _json_object(raw: bytes) -> dict[str, Any]:
    try:
        text = raw.decode("utf-8-sig")  # RFC 8259: UTF-8; a leading BOM is tolerated
    except UnicodeDecodeError:
        raise BadPayload("body is not UTF-8 text (send JSON encoded as UTF-8)") from None
    try:
        body = json.loads(text, parse_constant=_no_constant)
    except json.JSONDecodeError as exc:
        raise BadPayload(
            f"body is not valid JSON: {exc.msg} (line {exc.lineno} column {exc.colno})"
        ) from None
    except ValueError:  # NaN / Infinity, or an integer with thousands of digits
        raise BadPayload("body is not valid JSON: a number cannot be read") from None
    except RecursionError:
        raise BadPayload("body is not valid JSON: nested too deeply") from None
    if not isinstance(body, dict):
        raise BadPayload("body must be a JSON object")
    return body


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


async def _body(request: Request) -> bytes | None:
    """The request body, or None when the client went away before sending all of it."""
    try:
        return await request.body()
    except ClientDisconnect:
        return None


def _gone() -> Response:
    # Nobody is left to read it; answering keeps the server from logging a failed request.
    return Response(status_code=400)


def _refuse(request: Request, status: int, reason: str) -> Response:
    _log_refusal(_path(request), status, reason)
    return JSONResponse({"error": reason}, status_code=status)


def _path(request: Request) -> str:
    # The route path from the scope: request.url would rebuild a URL from the (unchecked) Host.
    return str(request.scope.get("path", ""))


def _log_refusal(path: str, status: int, reason: str) -> None:
    log.warning("webhook refused", extra={"path": path, "status": status, "reason": reason})


def _one_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0][:300] if text else ''}"

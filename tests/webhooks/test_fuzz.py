"""Whatever arrives, the parsers answer and the routes refuse cleanly.

- The Slack parsers (`from_command`, `from_event`, `from_action`, `alert_message`) return None
  or a turn/payload that survives the job store (JSON) for any JSON-like input.
- The webhook parsers raise nothing but `BadPayload`.
- Over HTTP (the webhook routes behind `BodyLimit`), no body, header or content type gives a
  5xx, and nothing unauthenticated or malformed is stored.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import hmac
import json
import logging
from typing import Any

import httpx
import msgspec
import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from starlette.applications import Starlette
from starlette.types import ASGIApp

from bot.alerts import Alert
from bot.work import encode
from handlers.front_door import BodyLimit
from handlers.slack.alerts import alert_message
from handlers.slack.inbound import SlackTurn, from_action, from_command, from_event
from handlers.webhooks import (
    BadPayload,
    airflow_alert,
    dbt_cloud_alert,
    generic_alerts,
    routes,
)

FUZZ = settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
TOKEN, DBT_SECRET = "t", "s"
MiB = 1024 * 1024

# --- JSON-like values, salted with the names and values the parsers look for ---------------

KEYS = [
    # Slack
    "event", "type", "subtype", "user", "channel", "ts", "thread_ts", "text", "bot_id",
    "channel_type", "team_id", "team", "enterprise_id", "enterprise", "authorizations",
    "is_enterprise_install", "attachments", "blocks", "fields", "elements", "title", "value",
    "pretext", "fallback", "bot_profile", "name", "username", "actions", "container",
    "message", "trigger_id", "channel_id", "user_id", "user_name", "command", "response_url",
    "id", "message_ts", "is_ephemeral",
    # webhooks
    "dag_id", "state", "status", "run_id", "task_id", "exception", "log_url", "eventType",
    "data", "runStatusCode", "runStatus", "jobName", "jobId", "runId", "runStatusMessage",
    "alerts", "labels", "annotations", "alertname", "job", "subject", "summary", "description",
    "fingerprint", "startsAt", "generatorURL", "url", "system",
]  # fmt: skip
WORDS = [
    "message", "app_mention", "block_actions", "bot_message", "thread_broadcast", "im",
    "channel", "group", "U1", "UBOT", "C1", "T1", "1.0", "2.0", "<@UBOT> hi", "true",
    "failed", "success", "up_for_retry", "job.run.completed", "job.run.errored",
    "job.run.started", "Success", "error", "resolved", "firing", "orders_daily", "",
]  # fmt: skip

scalars = (
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats()  # NaN and ±Infinity too: json.loads (Bolt's parser) accepts them
    | st.text(max_size=20)
    | st.sampled_from(WORDS)
)
keys = st.sampled_from(KEYS) | st.text(max_size=8)
json_values = st.recursive(
    scalars,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(keys, inner, max_size=6),
    max_leaves=40,
)
json_objects = st.dictionaries(keys, json_values, max_size=8)


def plausible(*values: str) -> st.SearchStrategy[Any]:
    """Mostly a value the parser accepts, sometimes anything."""
    return st.sampled_from(values) | json_values


def shaped(**fields: st.SearchStrategy[Any]) -> st.SearchStrategy[dict[str, Any]]:
    """Objects with (some of) the expected keys, each a plausible or arbitrary value."""
    return st.fixed_dictionaries({}, optional=fields)


fields = shaped(title=plausible("Owner"), value=plausible("data-eng"))
text_block = shaped(
    type=plausible("section", "rich_text"), text=plausible("hi") | shaped(text=plausible("alert"))
)
blocks = st.lists(
    shaped(text=plausible("x"), fields=st.lists(text_block), elements=st.lists(text_block))
)
events = shaped(
    type=plausible("message", "app_mention"),
    subtype=plausible("bot_message", "thread_broadcast", "message_changed"),
    user=plausible("U1", "UBOT"),
    channel=plausible("C1"),
    ts=plausible("1.0"),
    thread_ts=plausible("0.5"),
    text=plausible("<@UBOT> why?", "ALERT orders_daily failed"),
    bot_id=plausible("B1"),
    channel_type=plausible("channel", "im", "group"),
    attachments=st.lists(shaped(title=plausible("t"), fields=st.lists(fields))) | json_values,
    blocks=blocks | json_values,
    bot_profile=shaped(name=plausible("airflow")) | json_values,
    username=plausible("airflow"),
)  # fmt: skip
envelopes = shaped(
    event=events | json_values,
    team_id=plausible("T1"),
    enterprise_id=plausible("E1"),
    authorizations=st.lists(shaped(is_enterprise_install=plausible("true"))) | json_values,
)
commands = shaped(
    team_id=plausible("T1"),
    channel_id=plausible("C1"),
    user_id=plausible("U1"),
    trigger_id=plausible("1.2"),
    text=plausible("status &lt;x&gt;"),
    enterprise_id=plausible("E1"),
    response_url=plausible("https://hooks.slack.com/x"),
    command=plausible("/pipebot"),
    is_enterprise_install=plausible("true", "false"),
)
presses = shaped(
    type=plausible("block_actions"),
    actions=st.lists(shaped(value=plausible("triage orders_daily")), max_size=2) | json_values,
    user=shaped(id=plausible("U1"), team_id=plausible("T1"), username=plausible("ada"))
    | json_values,
    channel=shaped(id=plausible("C1")) | json_values,
    container=shaped(
        channel_id=plausible("C1"),
        is_ephemeral=st.booleans(),
        thread_ts=plausible("1.0"),
        message_ts=plausible("1.0"),
    )
    | json_values,
    message=shaped(ts=plausible("1.0"), thread_ts=plausible("0.5")) | json_values,
    trigger_id=plausible("9.9"),
    team=shaped(id=plausible("T1")) | json_values,
    enterprise=shaped(id=plausible("E1")) | json_values,
)  # fmt: skip
airflow_bodies = shaped(
    dag_id=plausible("orders_daily"),
    state=plausible("failed", "success", "up_for_retry"),
    status=plausible("failed"),
    run_id=plausible("manual__1"),
    task_id=plausible("load"),
    exception=plausible("KeyError"),
    log_url=plausible("http://airflow/log"),
)
dbt_bodies = shaped(
    eventType=plausible("job.run.completed", "job.run.errored", "job.run.started"),
    data=shaped(
        runStatusCode=st.sampled_from([10, 20, 30]) | json_values,
        runStatus=plausible("Success", "Error", "Cancelled"),
        jobName=plausible("Daily"),
        jobId=plausible("1"),
        runId=plausible("42"),
        runStatusMessage=plausible("boom"),
    )
    | json_values,
)
alert_items = shaped(
    status=plausible("firing", "resolved"),
    labels=shaped(
        alertname=plausible("Lag"),
        dag_id=plausible("orders"),
        job=plausible("j"),
        system=plausible("airflow"),
        run_id=plausible("r"),
        task_id=plausible("t"),
    )
    | json_values,
    annotations=shaped(summary=plausible("lag"), description=plausible("2h")) | json_values,
    fingerprint=plausible("abc"),
    startsAt=plausible("2026-01-01T00:00:00Z"),
    generatorURL=plausible("http://prom"),
    subject=plausible("s"),
)  # fmt: skip
alertmanager_bodies = shaped(
    alerts=st.lists(alert_items, max_size=3) | json_values, status=plausible("firing")
)

slack_bodies = json_objects | envelopes | commands | presses
webhook_bodies = json_objects | airflow_bodies | dbt_bodies | alertmanager_bodies | alert_items


# --- the pure parsers ------------------------------------------------------------------------


def stored(payload: Any) -> Any:
    """What the job store would keep: the payload must be plain JSON (no NaN)."""
    return json.loads(json.dumps(payload, allow_nan=False))


@FUZZ
@given(body=slack_bodies, bot=st.sampled_from([None, "UBOT"]), assistant=st.booleans())
@example(  # a command that parses: its turn must survive the job payload
    body={"team_id": "T1", "channel_id": "C1", "user_id": "U1", "trigger_id": "1.2"},
    bot=None,
    assistant=False,
)
def test_slack_parsers_are_total(body: dict[str, Any], bot: str | None, assistant: bool) -> None:
    for turn in (
        from_command(body),
        from_event(body, bot_user_id=bot, assistant=assistant),
        from_action(body),
    ):
        assert turn is None or isinstance(turn, SlackTurn)
        if turn is not None:
            assert msgspec.convert(stored(encode(turn)), SlackTurn) == turn
            assert turn.team is not None and turn.channel and turn.user and turn.event_id
    found = alert_message(body, bot_user_id=bot)
    if found is not None:
        assert stored(found) == found
        assert found["channel"] and found["ts"] and found["text"].strip()


@FUZZ
@given(body=webhook_bodies)
def test_webhook_parsers_raise_only_bad_payload(body: dict[str, Any]) -> None:
    for parse in (airflow_alert, dbt_cloud_alert, generic_alerts):
        try:
            result = parse(body)
        except BadPayload as exc:
            reason = str(exc)
        else:
            reason = ""
            listed = result if isinstance(result, list) else [result]
            for alert in (a for a in listed if a is not None):
                assert isinstance(alert, Alert)
                fields = {k: v for k, v in vars(alert).items() if k != "thread"}
                assert all(isinstance(v, str) for v in fields.values())
                assert stored(fields) == fields
        assert len(reason) < 200  # a reason is echoed to the sender: short


def nested(depth: int, leaf: Any = "x") -> Any:
    """Lists in objects in lists …, `depth` levels (as json.loads builds them: no sharing)."""
    value = leaf
    for index in range(depth):
        value = [value] if index % 2 else {"text": "t", "elements": [value]}
    return value


@pytest.mark.parametrize("depth", [50, 5_000, 100_000])
def test_deep_nesting_anywhere_is_no_crash(depth: int) -> None:
    deep = nested(depth)
    event = {"type": "message", "bot_id": "B1", "channel": "C1", "ts": "1.0", "text": "x"}
    for key in ("blocks", "attachments", "text", "user", "bot_profile"):
        body = {"event": {**event, key: [deep]}, "authorizations": [deep], "team_id": deep}
        alert_message(body, bot_user_id="UBOT")
        from_event(body, bot_user_id="UBOT")
        from_action({"type": "block_actions", "actions": [deep], "user": deep})
        from_command({"team_id": deep, "text": deep})
    for body in (
        {"dag_id": "d", "exception": deep},
        {"dag_id": deep},
        {"eventType": "job.run.errored", "data": {"runId": "1", "runStatusMessage": deep}},
        {"alerts": [{"labels": {"alertname": "a"}, "annotations": {"description": deep}}]},
        {"alerts": [{"labels": {"alertname": deep}}]},
    ):
        for parse in (airflow_alert, dbt_cloud_alert, generic_alerts):
            with contextlib.suppress(BadPayload):
                parse(body)


# --- over HTTP -------------------------------------------------------------------------------


class Recorder:
    """A `submit` that remembers what was stored (and can pretend the store is down)."""

    def __init__(self) -> None:
        self.stored: list[Alert] = []
        self.down = False

    def __call__(self, alert: Alert) -> bool:
        if self.down:
            raise ConnectionError("could not connect to server: Connection refused")
        duplicate = any(a.key == alert.key for a in self.stored)
        self.stored.append(alert)
        return not duplicate


def webhook_app(recorder: Recorder, *, max_bytes: int = MiB) -> ASGIApp:
    app = Starlette(routes=routes(submit=recorder, token=TOKEN, dbt_secret=DBT_SECRET))
    return BodyLimit(app, prefixes=("/webhooks/",), max_bytes=max_bytes, timeout=5)


def post(app: ASGIApp, path: str, body: bytes, headers: dict[str, Any]) -> httpx.Response:
    async def go() -> httpx.Response:
        transport = httpx.ASGITransport(app=app)  # raises whatever the app raises
        async with httpx.AsyncClient(transport=transport, base_url="http://pipebot") as http:
            return await http.post(path, content=body, headers=headers)

    return asyncio.run(go())


def dbt_signature(body: bytes) -> str:
    return hmac.new(DBT_SECRET.encode(), body, hashlib.sha256).hexdigest()


header_bytes = st.binary(max_size=40).map(
    lambda raw: bytes(b for b in raw if b >= 0x20 and b != 0x7F)  # what an HTTP parser admits
)
bodies = (
    st.binary(max_size=300)
    | webhook_bodies.map(lambda b: json.dumps(b).encode())
    | json_values.map(lambda v: json.dumps(v).encode())
    | st.integers(min_value=1, max_value=30_000).map(lambda n: b"[" * n + b"]" * n)
    | st.sampled_from([b"", b"{", b"\xff\xfe{}", b'{"a": NaN}', b"\xef\xbb\xbf{}", b"1" * 5000])
)
AUTH = ["none", "token", "wrong", "dbt", "dbt-wrong", "garbage"]


@FUZZ
@given(
    path=st.sampled_from(["/webhooks/airflow", "/webhooks/dbt-cloud", "/webhooks/alerts"]),
    body=bodies,
    auth=st.sampled_from(AUTH),
    garbage=header_bytes,
    content_type=st.none() | st.sampled_from(["application/json", "text/plain"]) | header_bytes,
    host=st.none() | st.sampled_from([b"[", b"a:b:c", b"::1]"]) | header_bytes,
)
def test_no_request_is_a_server_error_and_only_good_ones_are_stored(
    *, path: str, body: bytes, auth: str, garbage: bytes, content_type: Any, host: bytes | None
) -> None:
    recorder = Recorder()
    headers: dict[str, Any] = {}
    if content_type is not None:
        headers["content-type"] = content_type
    if host is not None:
        headers["host"] = host
    dbt = path == "/webhooks/dbt-cloud"
    presented = {
        "none": None,
        "token": f"Bearer {TOKEN}",
        "wrong": "Bearer nope",
        "dbt": dbt_signature(body),
        "dbt-wrong": dbt_signature(body + b"x"),
        "garbage": garbage,
    }[auth]
    if presented is not None:
        headers["authorization"] = presented
    authentic = (auth == "dbt") if dbt else (auth == "token")

    answer = post(webhook_app(recorder), path, body, headers)

    assert answer.status_code < 500, answer.text
    assert isinstance(answer.json().get("error", ""), str)
    if answer.status_code != 200:
        assert recorder.stored == [], "a refused request stored something"
        assert answer.json()["error"]
    if not authentic and not (auth == "garbage" and _authentic(path, body, garbage)):
        assert answer.status_code == 401
    if answer.status_code == 200:
        reply = answer.json()
        assert reply["accepted"] + reply["duplicate"] == len(recorder.stored)


def _authentic(path: str, body: bytes, header: bytes) -> bool:
    text = header.decode("latin-1")  # as Starlette reads a header
    if path == "/webhooks/dbt-cloud":
        return text.strip().lower() == dbt_signature(body)
    return text.removeprefix("Bearer ").strip() == TOKEN


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        (b"{not json", "not valid JSON"),
        (b"[1, 2]", "must be a JSON object"),
        (b'"text"', "must be a JSON object"),
        (b"\xff\xfe\x00{", "not UTF-8"),
        (b"[" * 100_000 + b"]" * 100_000, "nested too deeply"),
        (b'{"dag_id": NaN}', "number cannot be read"),
        (b'{"dag_id": ' + b"9" * 5000 + b"}", "number cannot be read"),
        (b'{"dag_id": {"a": 1}}', "must be a string or a number"),
        (b'{"dag_id": "d", "state": "' + b"z" * 10_000 + b'"}', "state must be"),
    ],
)
def test_malformed_bodies_are_400_with_the_reason_and_one_log_line(
    body: bytes, reason: str, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    recorder = Recorder()
    answer = post(
        webhook_app(recorder), "/webhooks/airflow", body, {"authorization": f"Bearer {TOKEN}"}
    )
    assert answer.status_code == 400 and reason in answer.json()["error"]
    assert len(answer.json()["error"]) < 200  # a sender's value is quoted short
    assert recorder.stored == []
    lines = [r for r in caplog.records if r.name.startswith("handlers.")]
    assert len(lines) == 1 and lines[0].levelno == logging.WARNING and lines[0].exc_info is None


def test_unauthenticated_requests_are_401_with_one_log_line(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO)
    recorder = Recorder()
    app = webhook_app(recorder)
    body = json.dumps({"dag_id": "orders_daily"}).encode()
    for path, header in [
        ("/webhooks/airflow", "Bearer wrong"),
        ("/webhooks/alerts", ""),
        ("/webhooks/dbt-cloud", "Bearer t"),
        ("/webhooks/dbt-cloud", "ÿ" + dbt_signature(body)),  # non-ASCII: was a TypeError
    ]:
        caplog.clear()
        answer = post(app, path, body, {"authorization": header.encode("latin-1")})
        assert answer.status_code == 401
        lines = [r for r in caplog.records if r.name.startswith("handlers.")]
        assert len(lines) == 1 and lines[0].exc_info is None
    assert recorder.stored == []


def test_a_store_failure_is_a_503_the_sender_retries(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO)
    recorder = Recorder()
    app = webhook_app(recorder)
    body = json.dumps({"eventType": "job.run.errored", "data": {"runId": "7"}}).encode()
    headers = {"authorization": dbt_signature(body)}
    recorder.down = True
    answer = post(app, "/webhooks/dbt-cloud", body, headers)
    assert answer.status_code == 503
    assert answer.json() == {"error": "could not accept the alert right now; retry"}
    errors = [r for r in caplog.records if r.levelno >= logging.ERROR]
    assert len(errors) == 1 and errors[0].exc_info is None
    assert "ConnectionError" in errors[0].__dict__["error"]
    recorder.down = False
    retried = post(app, "/webhooks/dbt-cloud", body, headers)
    assert retried.status_code == 200 and retried.json()["accepted"] == 1


def test_a_body_over_the_limit_is_413_and_not_stored() -> None:
    recorder = Recorder()
    body = json.dumps({"dag_id": "d", "exception": "x" * 2048}).encode()
    answer = post(
        webhook_app(recorder, max_bytes=1024),
        "/webhooks/airflow",
        body,
        {"authorization": f"Bearer {TOKEN}"},
    )
    assert answer.status_code == 413 and recorder.stored == []


def test_a_good_alert_is_stored_once() -> None:
    recorder = Recorder()
    app = webhook_app(recorder)
    body = json.dumps({"dag_id": "orders_daily", "run_id": "r1", "state": "failed"}).encode()
    headers = {"authorization": f"Bearer {TOKEN}", "content-type": "application/json"}
    first, again = (
        post(app, "/webhooks/airflow", body, headers),
        post(app, "/webhooks/airflow", body, headers),
    )
    assert first.json() == {"accepted": 1, "duplicate": 0, "ignored": False}
    assert again.json() == {"accepted": 0, "duplicate": 1, "ignored": False}
    with_bom = post(app, "/webhooks/airflow", b"\xef\xbb\xbf" + body, headers)
    assert with_bom.status_code == 200

"""Socket Mode against a local WebSocket server: the real slack_sdk client opens the connection
(``apps.connections.open`` answers the fake's own ws:// URL), receives envelopes, acknowledges
each one on the socket, and the answers go out through the Web API."""

from __future__ import annotations

import time
import urllib.parse
from collections.abc import Iterator

import pytest

from tests.fakes.slack_api import APP_TOKEN, FakeSlack
from tests.slack.conftest import (
    SlackStack,
    answers,
    command_body,
    event_envelope,
    mention,
    posted_text,
    slack_stack,
)


@pytest.fixture(scope="module")
def connected(
    fake_slack_server: FakeSlack, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[SlackStack]:
    # One connection for the module: closing slack_sdk's socket client takes ~3 s (it waits
    # out its receive timeout). No signing secret: Socket Mode needs none.
    fake_slack_server.reset()
    tmp_path = tmp_path_factory.mktemp("socket")
    with slack_stack(
        fake_slack_server, tmp_path, mode="auto", app_token=APP_TOKEN, signing_secret=None
    ) as stack:
        fake_slack_server.wait_connected()
        yield stack


@pytest.fixture
def socket_stack(connected: SlackStack) -> SlackStack:
    opened = connected.fake.calls_to("apps.connections.open")
    connected.fake.reset()
    connected.opened = opened  # type: ignore[attr-defined]
    return connected


def test_slash_command_over_the_socket_is_acked_and_answered(socket_stack: SlackStack) -> None:
    fake = socket_stack.fake
    opened = socket_stack.opened  # type: ignore[attr-defined]
    assert len(opened) == 1 and opened[0].token == APP_TOKEN
    payload = dict(urllib.parse.parse_qsl(command_body("help")))
    started = time.monotonic()
    envelope_id = fake.send_envelope("slash_commands", payload)
    ack = fake.wait_ack(envelope_id, timeout=3)
    assert time.monotonic() - started < 3
    assert ack["envelope_id"] == envelope_id
    socket_stack.settle()
    final = answers(fake)
    assert len(final) == 1 and "read-only data-engineering colleague" in posted_text(final[0])
    assert socket_stack.http.get("/slack/events").status_code in (404, 405)


def test_a_redelivered_socket_event_is_answered_once(socket_stack: SlackStack) -> None:
    fake = socket_stack.fake
    body = event_envelope(mention("help", ts="1700003000.000100"), event_id="EvSOCK")
    first = fake.send_envelope("events_api", body)
    again = fake.send_envelope("events_api", body, retry_attempt=1, retry_reason="timeout")
    fake.wait_ack(first)
    fake.wait_ack(again)
    socket_stack.settle()
    assert len(answers(fake)) == 1
    assert len(fake.calls_to("chat.postMessage")) == 1


def test_readiness_reports_the_socket(socket_stack: SlackStack) -> None:
    ready = socket_stack.http.get("/readyz").json()
    assert ready["checks"]["slack-socket-mode"] == "ok"

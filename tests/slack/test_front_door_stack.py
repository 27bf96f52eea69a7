"""The front door of the real `pipebot serve` app (Server + SlackChannel + webhooks): huge,
unsigned, malformed or fuzzed requests to /slack/events never cost a 5xx, never store
anything, and never hold up /healthz."""

from __future__ import annotations

import json
import logging
import threading
import time
import urllib.parse
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.fakes.slack_api import FakeSlack
from tests.server.test_front_door import (
    MiB,
    PeakRss,
    Upload,
    healthz_latencies,
    post_head,
    upload,
    zeros,
)
from tests.slack.conftest import SlackStack, command_body, sign, slack_stack

HUGE = 150 * MiB


@pytest.fixture(scope="module")
def module_stack(
    fake_slack_server: FakeSlack, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[SlackStack]:
    with slack_stack(fake_slack_server, tmp_path_factory.mktemp("front")) as running:
        yield running


def stored(stack: SlackStack) -> dict[str, int]:
    return stack.server.engine.counts()


def test_an_unsigned_150_mb_post_is_refused_at_once_and_healthz_stays_fast(
    module_stack: SlackStack, caplog: pytest.LogCaptureFixture
) -> None:
    stack = module_stack
    assert stack.running is not None
    assert stack.http.get("/healthz").status_code == 200
    before = stored(stack)
    results: list[Upload] = []
    stop = threading.Event()
    latencies: list[float] = []
    prober = threading.Thread(
        target=lambda: latencies.extend(healthz_latencies(stack.running.url, stop, minimum=20))
    )
    with caplog.at_level(logging.INFO), PeakRss() as rss:
        prober.start()
        results.append(
            upload(stack.running.port, post_head("/slack/events", length=HUGE), zeros(HUGE))
        )
        stop.set()
        prober.join(30)
    [refused] = results
    assert refused.status == 413 and refused.answered_after < 1.0
    assert max(latencies) < 0.1, latencies
    assert rss.growth < 20 * MiB, f"RSS grew by {rss.growth / MiB:.1f} MiB"
    assert stored(stack) == before
    lines = [r for r in caplog.records if r.levelno >= logging.WARNING]
    assert len(lines) == 1 and lines[0].exc_info is None
    print(
        f"\n150 MB unsigned to /slack/events: 413 after {refused.answered_after * 1000:.1f} ms; "
        f"/healthz max {max(latencies) * 1000:.1f} ms over {len(latencies)}; "
        f"RSS +{rss.growth / MiB:.1f} MiB"
    )


@pytest.mark.parametrize(
    ("body", "headers", "status"),
    [
        ("token=x&team_id=T1", {}, 401),  # unsigned
        (
            "token=x",
            {"X-Slack-Request-Timestamp": "soon", "X-Slack-Signature": "v0=00"},
            401,
        ),  # a non-numeric timestamp once cost a 500
        ("{not json", None, 400),  # signed, unreadable JSON
        ("payload=%7Bnot+json", None, 400),  # signed, a broken interactive payload
        ("payload=%5B1%5D", None, 400),  # signed, a payload that is not an object
    ],
)
def test_bad_requests_get_a_4xx_and_one_log_line(
    module_stack: SlackStack,
    caplog: pytest.LogCaptureFixture,
    body: str,
    headers: dict[str, str] | None,
    status: int,
) -> None:
    before = stored(module_stack)
    content_type = (
        "application/json" if body.startswith("{") else ("application/x-www-form-urlencoded")
    )
    with caplog.at_level(logging.INFO):
        response = module_stack.post(
            body,
            content_type=content_type,
            headers=headers,
            signed=headers is None,
        )
    assert response.status_code == status, response.text
    assert stored(module_stack) == before
    refusals = [r for r in caplog.records if r.levelno >= logging.WARNING]
    assert len(refusals) == 1 and refusals[0].exc_info is None
    assert "Traceback" not in caplog.text


form_values = st.text(max_size=40)
forms = st.dictionaries(
    st.sampled_from(
        ["team_id", "channel_id", "user_id", "trigger_id", "text", "command", "payload", "x"]
    ),
    form_values,
    max_size=6,
)


@settings(
    max_examples=120,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(
    body=st.one_of(
        forms.map(urllib.parse.urlencode),
        st.recursive(
            st.none() | st.booleans() | st.integers() | st.text(max_size=20),
            lambda inner: (
                st.lists(inner, max_size=4)
                | st.dictionaries(st.text(max_size=10), inner, max_size=4)
            ),
            max_leaves=12,
        ).map(json.dumps),
    ),
    signed=st.booleans(),
    json_type=st.booleans(),
)
def test_fuzzed_requests_never_cost_a_5xx_and_unsigned_ones_store_nothing(
    module_stack: SlackStack, body: str, signed: bool, json_type: bool
) -> None:
    before = stored(module_stack)
    content_type = "application/json" if json_type else "application/x-www-form-urlencoded"
    response = module_stack.post(body, content_type=content_type, signed=signed)
    assert response.status_code < 500, (response.status_code, response.text, body)
    if not signed:
        assert response.status_code == 401
        assert stored(module_stack) == before


def test_a_signed_command_still_works_behind_the_front_door(
    fake_slack: FakeSlack, tmp_path: Path
) -> None:
    with slack_stack(fake_slack, tmp_path) as stack:
        body = command_body("help")
        started = time.monotonic()
        response = stack.post(body, headers=sign(body))
        assert response.status_code == 200 and time.monotonic() - started < 3
        stack.settle()
        assert any("read-only" in json.dumps(m) for m in fake_slack.messages("C1"))

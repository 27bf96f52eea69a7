"""Slack request signatures, checked on the raw bytes: agreement with slack_sdk's verifier,
readable reasons for every refusal, and no exception whatever arrives."""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from slack_sdk.signature import Clock, SignatureVerifier
from starlette.datastructures import Headers

from handlers.slack.signature import verify

SECRET = "8f742231b10e8888abcd99yyyzzz85a5"
NOW = 1_700_000_000


def signed(body: bytes, *, timestamp: int | str = NOW, secret: str = SECRET) -> dict[str, str]:
    signature = SignatureVerifier(secret).generate_signature(
        timestamp=str(timestamp), body=body.decode()
    )
    assert signature is not None
    return {"X-Slack-Request-Timestamp": str(timestamp), "X-Slack-Signature": signature}


class FixedClock(Clock):
    def now(self) -> float:
        return float(NOW)


EVENT = json.dumps({"type": "event_callback", "event": {"type": "app_mention"}}).encode()
COMMAND = b"token=x&team_id=T1&command=%2Fpipebot&text=status+%E2%9C%85&trigger_id=1.2.3"


@pytest.mark.parametrize("body", [EVENT, COMMAND, b"", "ünïcode ✅".encode()])
def test_slacks_own_signatures_verify(body: bytes) -> None:
    headers = signed(body)
    assert verify(body, headers, SECRET, now=NOW) is None
    assert verify(body, Headers(headers=headers), SECRET, now=NOW) is None  # Starlette's
    lower = {k.lower(): v for k, v in headers.items()}
    assert verify(body, lower, SECRET, now=NOW + 299) is None
    # Its own clock: slack_sdk's default Clock() is one instance shared by every verifier.
    verifier = SignatureVerifier(SECRET, clock=FixedClock())
    assert verifier.is_valid_request(body, headers)  # the two agree


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        ({"now": NOW + 301}, "stale or non-numeric X-Slack-Request-Timestamp"),
        ({"now": NOW - 301}, "stale or non-numeric X-Slack-Request-Timestamp"),  # from the future
        ({"timestamp": "17e8"}, "stale or non-numeric X-Slack-Request-Timestamp"),
        ({"timestamp": "-1700000000"}, "stale or non-numeric X-Slack-Request-Timestamp"),
        ({"timestamp": "١٧٠٠٠٠٠٠٠٠"}, "stale or non-numeric X-Slack-Request-Timestamp"),
        ({"timestamp": "9" * 5000}, "stale or non-numeric X-Slack-Request-Timestamp"),
        ({"timestamp": ""}, "stale or non-numeric X-Slack-Request-Timestamp"),
        ({"drop": "X-Slack-Signature"}, "missing X-Slack-Signature"),
        ({"drop": "X-Slack-Request-Timestamp"}, "missing X-Slack-Request-Timestamp"),
        ({"body": EVENT + b" "}, "signature does not match"),
        ({"body": EVENT.replace(b"app_mention", b"app_mentiom")}, "signature does not match"),
        ({"secret": "another secret"}, "signature does not match"),
        ({"signature": "v0=" + "0" * 64}, "signature does not match"),
        ({"signature": "v0=ÿ"}, "signature does not match"),
        ({"signature": ""}, "signature does not match"),
        ({"verify_secret": " "}, "no signing secret is configured"),
    ],
)
def test_refusals_say_why(change: dict[str, Any], reason: str) -> None:
    headers = signed(EVENT, secret=change.get("secret", SECRET))
    if "timestamp" in change:
        headers["X-Slack-Request-Timestamp"] = change["timestamp"]
    if "signature" in change:
        headers["X-Slack-Signature"] = change["signature"]
    if "drop" in change:
        del headers[change["drop"]]
    body = change.get("body", EVENT)
    secret = change.get("verify_secret", SECRET)
    assert verify(body, headers, secret, now=change.get("now", NOW)) == reason


def test_a_signature_for_another_timestamp_does_not_verify() -> None:
    headers = signed(EVENT, timestamp=NOW - 10)
    headers["X-Slack-Request-Timestamp"] = str(NOW)  # a replay with a fresh timestamp
    assert verify(EVENT, headers, SECRET, now=NOW) == "signature does not match"


def test_the_clock_defaults_to_now() -> None:
    import time

    fresh = int(time.time())
    assert verify(EVENT, signed(EVENT, timestamp=fresh), SECRET) is None
    assert verify(EVENT, signed(EVENT, timestamp=fresh - 3600), SECRET) is not None


header_text = st.text(max_size=80)
header_names = st.sampled_from(
    ["X-Slack-Signature", "x-slack-signature", "X-Slack-Request-Timestamp", "x-other"]
) | st.text(max_size=20)


@settings(max_examples=300, deadline=None)
@given(
    raw=st.binary(max_size=2048),
    headers=st.dictionaries(header_names, header_text | st.from_regex(r"\A[0-9]{1,15}\Z")),
    secret=st.text(max_size=40),
    now=st.floats(allow_nan=False, allow_infinity=False, min_value=-1e12, max_value=1e12),
)
def test_verify_never_raises(raw: bytes, headers: dict[str, str], secret: str, now: float) -> None:
    reason = verify(raw, headers, secret, now=now)
    assert reason is None or isinstance(reason, str)
    assert reason is not None  # nothing random is Slack's


@settings(max_examples=100, deadline=None)
@given(text=st.text(max_size=500), flip=st.integers(min_value=0))
def test_any_changed_byte_is_refused(text: str, flip: int) -> None:
    body = text.encode("utf-8", "surrogatepass") + b"!"
    if not _utf8(body):
        return
    headers = signed(body)
    assert verify(body, headers, SECRET, now=NOW) is None
    index = flip % len(body)
    tampered = body[:index] + bytes([body[index] ^ 0x01]) + body[index + 1 :]
    assert verify(tampered, headers, SECRET, now=NOW) == "signature does not match"


def _utf8(body: bytes) -> bool:
    try:
        body.decode()
    except UnicodeDecodeError:
        return False  # slack_sdk signs text; Slack's bodies are UTF-8
    return True

"""Slack request signatures, checked on the raw body before anything parses it.

Slack signs each HTTP request: ``X-Slack-Signature: v0=<hex HMAC-SHA256>`` over
``v0:{X-Slack-Request-Timestamp}:{raw body}`` with the app's signing secret, and a request
older than five minutes is a replay (docs.slack.dev, "Verifying requests from Slack"; the same
rule as ``slack_sdk.signature.SignatureVerifier``). Verifying first means an unsigned request
costs one HMAC over a body `handlers.front_door.BodyLimit` already bounded — never a parse.
"""

from __future__ import annotations

import hashlib
import hmac
import time
from collections.abc import Mapping

MAX_AGE_S = 300
SIGNATURE_HEADER = "x-slack-signature"
TIMESTAMP_HEADER = "x-slack-request-timestamp"
# Unix seconds have 10 digits until the year 2286; a longer "timestamp" is garbage.
_MAX_TIMESTAMP_DIGITS = 12


def verify(
    raw: bytes, headers: Mapping[str, str], secret: str, *, now: float | None = None
) -> str | None:
    """None when Slack signed `raw` with `secret`, else the short reason it is refused.

    `headers` may be any mapping (Starlette's case-insensitive ``Headers`` or a plain dict in
    any letter case). Pure: the body is hashed, never parsed.
    """
    if not secret.strip():
        return "no signing secret is configured"
    signature = _header(headers, SIGNATURE_HEADER)
    if signature is None:
        return "missing X-Slack-Signature"
    timestamp = _header(headers, TIMESTAMP_HEADER)
    if timestamp is None:
        return "missing X-Slack-Request-Timestamp"
    timestamp = timestamp.strip()
    clock = time.time() if now is None else now
    if (
        not (timestamp.isascii() and timestamp.isdigit())
        or len(timestamp) > _MAX_TIMESTAMP_DIGITS
        or abs(clock - int(timestamp)) > MAX_AGE_S
    ):
        return "stale or non-numeric X-Slack-Request-Timestamp"
    base = b"v0:" + timestamp.encode("ascii") + b":" + raw
    expected = b"v0=" + hmac.new(secret.encode(), base, hashlib.sha256).hexdigest().encode()
    # Header values arrive as latin-1 text; "replace" keeps any other str comparable as bytes
    # (compare_digest refuses non-ASCII str).
    presented = signature.strip().encode("utf-8", "replace")
    if not hmac.compare_digest(expected, presented):
        return "signature does not match"
    return None


def _header(headers: Mapping[str, str], name: str) -> str | None:
    value = headers.get(name)
    if value is None:
        for key, candidate in headers.items():
            if isinstance(key, str) and key.lower() == name:
                value = candidate
                break
    return value if isinstance(value, str) else None

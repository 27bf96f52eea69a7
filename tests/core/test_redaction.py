"""The redactor masks configured secrets and secret-shaped text."""

from __future__ import annotations

import pytest

from bot.redaction import MASK, Redactor


@pytest.mark.parametrize(
    "text",
    [
        "token xox" + "b-1234567890-abcdefghij",  # split: no literal token in the repository
        "app xapp-1-A0123-456-abcdef",
        "key sk-" + "ant-api03-abcdefghijklmnopqrstuvwxyz",
        "postgresql://reader:hunter2secret@db:5432/wh",
        "Authorization: Bearer abc.def.ghi-0123456789",
        "password=s3cr3t-value",
        '"api_key": "abcd1234efgh"',
        "jwt eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJhZG1pbiJ9.c2lnbmF0dXJlc2ln",
        "AKIAABCDEFGHIJKLMNOP",
        "dbtc_0123456789abcdefghij",
    ],
)
def test_secret_shapes_are_masked(text: str) -> None:
    out = Redactor.build([])(text)
    assert MASK in out
    for secret in (
        "1234567890-abcdefghij",
        "hunter2secret",
        "s3cr3t-value",
        "abcd1234efgh",
        "c2lnbmF0dXJlc2ln",
        "ABCDEFGHIJKLMNOP",
        "0123456789abcdefghij",
    ):
        assert secret not in out


def test_configured_values_are_masked_whatever_their_shape() -> None:
    redact = Redactor.build(["plain-words-secret", "ab"])
    assert redact("the value plain-words-secret leaked") == f"the value {MASK} leaked"
    assert redact("ab stays") == "ab stays"  # too short to mask safely


def test_pii_patterns() -> None:
    redact = Redactor.build([], pii_patterns=[r"[\w.+-]+@[\w-]+\.[\w.]+"])
    assert redact("owner dana@example.com") == "owner [PII]"


def test_ordinary_text_is_untouched() -> None:
    text = "orders_daily failed: KeyError 'amount' in task transform (try 2 of 3)"
    assert Redactor.build(["hunter2"])(text) == text

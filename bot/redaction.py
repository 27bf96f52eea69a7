"""The redactor: everything logged, posted or sent to the model passes through it.

Two layers: the exact secret values configured in `Settings` (whatever their shape), and
patterns for secrets that arrive from elsewhere — a token printed in a task log, a password in a
connection string, an API key in an error message.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable
from dataclasses import dataclass, field

MASK = "[REDACTED]"

# Order matters: specific token shapes first, generic "key=value" last.
_PATTERNS: tuple[tuple[re.Pattern[str], str], ...] = (
    # Slack tokens (bot, user, app, config, refresh).
    (re.compile(r"\bxox[abposre]-[0-9A-Za-z-]{8,}"), MASK),
    (re.compile(r"\bxapp-[0-9A-Za-z-]{8,}"), MASK),
    # Anthropic and OpenAI-style keys.
    (re.compile(r"\bsk-(?:ant-)?[0-9A-Za-z_-]{16,}"), MASK),
    # GitHub, AWS access keys, Google API keys.
    (re.compile(r"\bgh[pousr]_[0-9A-Za-z]{20,}"), MASK),
    (re.compile(r"\b(?:AKIA|ASIA)[0-9A-Z]{16}\b"), MASK),
    (re.compile(r"\bAIza[0-9A-Za-z_-]{35}\b"), MASK),
    # dbt Cloud service tokens and personal access tokens.
    (re.compile(r"\bdbt[cu]_[0-9A-Za-z_-]{16,}"), MASK),
    # JWTs (Airflow API tokens among them).
    (re.compile(r"\beyJ[0-9A-Za-z_-]{8,}\.[0-9A-Za-z_-]{8,}\.[0-9A-Za-z_-]{8,}"), MASK),
    # Private key blocks.
    (
        re.compile(r"-----BEGIN [A-Z ]*PRIVATE KEY-----.*?-----END [A-Z ]*PRIVATE KEY-----", re.S),
        MASK,
    ),
    # Authorization headers.
    (
        re.compile(r"(?i)\b(authorization\s*[:=]\s*(?:bearer|token|basic)?\s*)[^\s'\",]+"),
        r"\1" + MASK,
    ),
    (re.compile(r"(?i)\b(bearer|token)\s+[0-9A-Za-z._~+/=-]{16,}"), r"\1 " + MASK),
    # Passwords inside URLs: scheme://user:password@host
    (re.compile(r"(?i)\b([a-z][a-z0-9+.-]*://[^\s:/@'\"]+:)[^\s@/'\"]+@"), r"\1" + MASK + "@"),
    # key=value / key: value for secret-looking keys.
    (
        re.compile(
            r"(?i)\b((?:password|passwd|pwd|secret|api[_-]?key|access[_-]?key|auth[_-]?token|"
            r"client[_-]?secret|private[_-]?key|token)\b[\"']?\s*[:=]\s*[\"']?)([^\s\"',;&]+)"
        ),
        r"\1" + MASK,
    ),
)


@dataclass(frozen=True)
class Redactor:
    """Replace secrets in text. Build it once from the settings' secret values.

    `pii_values` are literal values (e-mail addresses, customer names) configured as personal
    data; `pii_patterns` are regular expressions for the same purpose.
    """

    secrets: tuple[str, ...] = ()
    pii_patterns: tuple[re.Pattern[str], ...] = field(default=())

    @classmethod
    def build(cls, secrets: Iterable[str], pii_patterns: Iterable[str] = ()) -> Redactor:
        # Very short values would mask ordinary words; settings validation keeps real secrets
        # longer than this. Each secret is also looked for as Python's repr and JSON would
        # escape it: a secret holding a quote, a backslash or a control character reaches text
        # that way (``str(KeyError(secret))`` is its repr). Longest first, so a secret that
        # contains another is masked whole.
        kept = {s for s in secrets if len(s) >= 4}
        variants = {v for s in kept for v in _escaped(s)}
        ordered = sorted(kept | variants, key=len, reverse=True)
        return cls(tuple(ordered), tuple(re.compile(p) for p in pii_patterns))

    def __call__(self, text: str) -> str:
        for secret in self.secrets:
            if secret in text:
                text = text.replace(secret, MASK)
        for pattern, replacement in _PATTERNS:
            text = pattern.sub(replacement, text)
        for pii in self.pii_patterns:
            text = pii.sub("[PII]", text)
        return text


def _escaped(secret: str) -> set[str]:
    """`secret` as it reads inside a Python repr and a JSON string (ASCII-only or not)."""
    return {
        repr(secret)[1:-1],
        json.dumps(secret)[1:-1],
        json.dumps(secret, ensure_ascii=False)[1:-1],
    }

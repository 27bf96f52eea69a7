"""Terminal escape sequences out of text that is shown anywhere but a terminal.

dbt colours its messages (a failing unit test's diff arrives as ``\\x1b[32mactual\\x1b[0m
differs from …``), and task logs carry whatever colours the task printed. In Slack, JSON or a
Markdown file the codes are noise that hides the words, so connectors strip them where the
text enters (`strip_escapes`) and every renderer strips what may still have slipped through
(`without_escapes`)::

    strip_escapes("\\x1b[31mexpected\\x1b[0m")   # 'expected'
"""

from __future__ import annotations

import re
from typing import Any

import msgspec

from bot.messages import Reply

__all__ = ["strip_escapes", "strip_strings", "without_escapes"]

# ECMA-48: CSI sequences (colours, cursor moves: ESC [ … final byte, or the 8-bit CSI), OSC
# strings (window titles, hyperlinks: ESC ] … BEL or ESC \), and the two-byte escapes.
_ESCAPES = re.compile(
    r"\x1b\[[0-?]*[ -/]*[@-~]"
    r"|\x9b[0-?]*[ -/]*[@-~]"
    r"|\x1b\][^\x07\x1b\n]*(?:\x07|\x1b\\)?"
    r"|\x1b[@-Z\\-_]"
    r"|\x1b"
)


def strip_escapes(text: str) -> str:
    """`text` without terminal escape sequences; carriage returns become line breaks (dbt's
    diffs end their rows with ``\\r\\n``, progress output rewrites lines with ``\\r``)."""
    if "\x1b" not in text and "\x9b" not in text and "\r" not in text:
        return text
    return _ESCAPES.sub("", text).replace("\r\n", "\n").replace("\r", "\n")


def strip_strings(value: Any) -> Any:
    """`strip_escapes` applied to every string inside JSON-like data (dicts, lists)."""
    if isinstance(value, str):
        return strip_escapes(value)
    if isinstance(value, dict):
        return {key: strip_strings(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [strip_strings(item) for item in value]
    return value


_MARKERS = (b"\\u001b", b"\\r", "\x9b".encode())


def without_escapes(reply: Reply) -> Reply:
    """`reply` with every text stripped of escape sequences (the same object when it has none,
    which is nearly always: the check is one encode and three byte searches)."""
    encoded = msgspec.json.encode(reply)
    if not any(marker in encoded for marker in _MARKERS):
        return reply
    return msgspec.convert(strip_strings(msgspec.to_builtins(reply)), Reply)

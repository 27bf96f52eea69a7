"""Keys that fit their column: a key longer than the column is hashed, never cut.

Cutting would make two long keys that share a prefix (two DAG ids of 250 characters, the same
alert delivered for two runs) one key, and the second event would be dropped as a duplicate.
A fitted key keeps a readable prefix for operators and ends in the SHA-256 of the whole key.
"""

from __future__ import annotations

import hashlib

KEY_LENGTH = 255
_DIGEST_CHARS = 64


def fit(key: str, length: int = KEY_LENGTH) -> str:
    """`key` itself when it fits in `length` characters, else ``prefix#sha256(key)``."""
    if len(key) <= length:
        return key
    digest = hashlib.sha256(key.encode()).hexdigest()
    return f"{key[: length - _DIGEST_CHARS - 1]}#{digest}"


def clip(text: str, length: int) -> str:
    """A display value (a DAG id, a task list) shortened to its column, marked with "…"."""
    return text if len(text) <= length else text[: length - 1] + "…"

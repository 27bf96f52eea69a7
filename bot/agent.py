"""The Data Engineer agent's interface, as the conversation sees it.

The conversation hands free-form questions to an `Agent`; without an Anthropic API key there
is none and the conversation says so instead of guessing.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

from bot.commands import Request
from bot.messages import Reply
from bot.store.threads import StoredMessage


class Agent(Protocol):
    def answer(self, question: str, *, history: Sequence[StoredMessage], request: Request) -> Reply:
        """Answer `question` in the context of the thread's `history`.

        Reports progress through ``request.progress``; never raises for upstream failures
        (they become part of the answer).
        """
        ...

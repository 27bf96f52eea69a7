"""The Data Engineer agent: Claude with pipebot's read-only tools.

The package keeps the agent's parts together:

- `claude` — the loop on the Messages API (`ClaudeAgent`, built by `build_agent`);
- `toolbox` — the tools one answer may use and how their calls run;
- `transcript` — the agent's memory of a thread;
- `context` — token estimates, capped tool output, data framing, elision;
- `answer` — the model's text as a `Reply`;
- `narration` — what the agent tells people while it works;
- `pii` — masking configured personal-data columns in tool results;
- `pricing` — what a model call costs.

Importing this package is cheap: the Anthropic SDK loads only when an agent is built.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    from bot.agent.claude import ClaudeAgent
    from bot.commands import Request
    from bot.messages import Reply
    from bot.redaction import Redactor
    from bot.settings import AgentSettings, Settings
    from bot.store import Store
    from bot.store.threads import StoredMessage


class Agent(Protocol):
    def answer(self, question: str, *, history: Sequence[StoredMessage], request: Request) -> Reply:
        """Answer `question` in the context of the thread's `history`.

        Reports progress through ``request.progress``; never raises for upstream failures
        (they become part of the answer).
        """
        ...


def check(agent: AgentSettings) -> tuple[bool, str]:
    """Whether the agent's API key and model work (`pipebot doctor`)."""
    from bot.agent import claude

    return claude.check(agent)


def build_agent(settings: Settings, store: Store, redactor: Redactor) -> ClaudeAgent:
    """The Claude agent the settings describe (see `bot.agent.claude.build_agent`)."""
    from bot.agent import claude

    return claude.build_agent(settings, store, redactor)

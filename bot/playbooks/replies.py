"""Replies every playbook gives the same way: missing source, missing argument, not found."""

from __future__ import annotations

from typing import Any

from bot import phrases
from bot.errors import Ambiguous, NotFound
from bot.fanout import Outcome
from bot.messages import Reply, Tone


def source_missing(system: str) -> Reply:
    return Reply(
        title=f"{system} is not configured", tone=Tone.WARNING, text=phrases.not_configured(system)
    )


def missing_argument(usage: str, what: str) -> Reply:
    return Reply(
        title="Missing argument", tone=Tone.WARNING, text=f"Usage: `{usage}` — give {what}."
    )


def not_found_reply(outcome: Outcome[Any], *, what: str) -> Reply:
    """A failed lookup: "no such thing, did you mean …", "which one of these …" or "the
    source could not answer"."""
    if isinstance(outcome.exc, Ambiguous):
        names = " or ".join(f"`{c.ref}`" for c in outcome.exc.candidates)
        return Reply(
            title=f"More than one {what}",
            tone=Tone.WARNING,
            text=f"{outcome.error}. Name one exactly: {names}.",
        )
    if isinstance(outcome.exc, NotFound):
        text = outcome.error
        if outcome.exc.suggestions:
            text += " Did you mean " + ", ".join(f"`{s}`" for s in outcome.exc.suggestions) + "?"
        return Reply(title=f"No {what}", tone=Tone.WARNING, text=text)
    return Reply(
        title=f"Could not read {what}",
        tone=Tone.ERROR,
        text=phrases.UNREACHABLE.format(system=outcome.system, reason=outcome.error),
    )


def agent_text(answer: Reply) -> str:
    """The agent's answer as one block of text, to sit inside a playbook's reply."""
    parts = [answer.text]
    for section in answer.sections:
        parts += [section.heading, section.text, "\n".join(f"• {b}" for b in section.bullets)]
    return "\n\n".join(part for part in parts if part).strip()

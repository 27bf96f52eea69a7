"""The agent's migration advice on a `ChangeReview` — from the review's facts only.

With the agent configured, a review that breaks something (or flags personal data) gets a
"Migration advice" section: how to ship each breaking change safely (keep the old column as an
alias for one release, move the readers in the same pull request, version a contracted model),
who must agree, and what to classify. The agent is given the review as data (`facts`, capped)
and **no tools** for this answer, so the advice can only cite what the review found; the
verdict stays the review's::

    reply = with_advice(to_reply(review), review, agent=agent, request=request)

A failed or empty answer leaves the reply as it was: the review never waits on the advice.
"""

from __future__ import annotations

import json
from dataclasses import replace
from typing import Any

from bot.agent import Agent
from bot.commands import Request
from bot.messages import Reply, Section, Tone
from bot.prompts import prompt
from bot.review.change import Change, Classification
from bot.review.report import ChangeReview
from bot.review.wording import state_line

HEADING = "Migration advice"
NOTE = "Migration advice written by the agent from the review's facts only."
# What the prompt carries at most: the most severe changes, and so many readers of each.
MAX_CHANGES = 40
MAX_READERS = 8
MAX_PRIVACY = 20


def needs_advice(review: ChangeReview) -> bool:
    """Something to advise on: a change that can break a reader, or personal data to classify."""
    return bool(review.breaking or review.partial or review.privacy)


def facts(review: ChangeReview) -> dict[str, Any]:
    """The review as the prompt's facts: what breaks, who reads it, whom to ask (capped)."""
    risky = [c for c in review.changes if c.classification is not Classification.NON_BREAKING]
    return {
        "verdict": str(review.verdict),
        "base": state_line(review.base),
        "target": state_line(review.target),
        "counts": {
            "breaking": len(review.breaking),
            "partial_breaking": len(review.partial),
            "non_breaking": len(review.non_breaking),
        },
        "owners_to_notify": list(review.owners),
        "changes": [_change(c) for c in risky[:MAX_CHANGES]],
        "changes_left_out": max(0, len(risky) - MAX_CHANGES),
        "personal_data": [
            {
                "column": f"{f.name}.{f.column}",
                "type": f.data_type,
                "looks_like": f.category,
                "origin": f.origin,
                "owners": list(f.owners),
            }
            for f in review.privacy[:MAX_PRIVACY]
        ],
    }


def advise(review: ChangeReview, *, agent: Agent, request: Request) -> str:
    """The advice as text; "" when there is nothing to advise or the agent could not answer."""
    if not needs_advice(review):
        return ""
    request.progress("Agent: writing migration advice from the review")
    change = " → ".join((state_line(review.base), state_line(review.target)))
    question = prompt(
        "change_review",
        change=change,
        facts=json.dumps(facts(review), ensure_ascii=False, indent=1),
    )
    # Facts only: no toolset, so the answer cannot wander beyond the review.
    factual = replace(request, sources=replace(request.sources, toolsets=()))
    answer = agent.answer(question, history=[], request=factual)
    # Anything but a plain answer (the model busy or unreachable, a budget used up, a step
    # cap reached) is not advice: the review goes out without it.
    if answer.tone is not Tone.INFO:
        return ""
    return _text(answer)


def with_advice(reply: Reply, review: ChangeReview, *, agent: Agent, request: Request) -> Reply:
    """`reply` with the advice as its last section (unchanged when there is none)."""
    text = advise(review, agent=agent, request=request)
    if not text:
        return reply
    return replace(
        reply,
        sections=(*reply.sections, Section(heading=HEADING, text=text)),
        notes=(*reply.notes, NOTE),
    )


def _change(change: Change) -> dict[str, Any]:
    impact = change.impact
    readers = list(impact.readers) if impact is not None else []
    return {
        "change": change.kind.replace("_", " "),
        "classification": str(change.classification),
        "node": change.name,
        "column": change.column,
        "new_column": change.new_column,
        "before": change.before,
        "after": change.after,
        "shift": change.shift,
        "why": change.reason,
        "contract_enforced": change.contracted,
        "public": change.public,
        "evidence": [e.detail for e in change.evidence],
        "readers": [
            {
                "name": r.name,
                "type": r.resource_type,
                "how": r.via,
                "certainty": r.certainty,
                "owners": list(r.owners),
            }
            for r in readers[:MAX_READERS]
        ],
        "readers_left_out": max(0, len(readers) - MAX_READERS)
        + (impact.truncated if impact is not None else 0),
    }


def _text(answer: Reply) -> str:
    parts = [answer.text]
    for section in answer.sections:
        parts += [section.heading, section.text, "\n".join(f"• {b}" for b in section.bullets)]
    return "\n\n".join(part for part in parts if part).strip()

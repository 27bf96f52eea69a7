"""The agent's answer as a `Reply`: the model's text in sections, plus sources and notes.

The model is asked for plain text with ``## `` headings, ``- `` bullets and fenced code blocks;
`sections_from_text` turns that into `Section`s so every renderer can show it natively::

    sections_from_text("Lead.\\n\\n## Evidence\\n- log says X\\n")
    # → (Section(text="Lead."), Section(heading="Evidence", bullets=("log says X",)))

`AgentReply` is a `Reply` that also carries the agent's memory of this answer (see
`bot.agent.transcript`); the conversation stores that memory in the bot message's payload, so
the next question in the thread finds it there, and hands channels only the plain `Reply`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field, fields
from typing import Any

from bot.messages import Code, Reply, Section

__all__ = ["AgentReply", "sections_from_text"]

_HEADING = re.compile(r"^\s{0,3}#{1,6}\s+(.+?)\s*#*\s*$")
_BOLD_HEADING = re.compile(r"^\s*\*\*([^*]+?)\*\*:?\s*$")
_BULLET = re.compile(r"^\s*(?:[-*•]|\d+[.)])\s+(.*)$")
_FENCE = re.compile(r"^\s*(```+|~~~+)\s*([\w+-]*)\s*$")


@dataclass(frozen=True, kw_only=True)
class AgentReply(Reply):
    """A `Reply` plus the agent's compact transcript (JSON-ready), for follow-up questions."""

    memory: dict[str, Any] = field(default_factory=dict, repr=False)

    def plain(self) -> Reply:
        """The reply without the memory: what channels render and JSON output shows."""
        return Reply(**{f.name: getattr(self, f.name) for f in fields(Reply)})


def _plain(text: str) -> str:
    # Bold and italics markers are noise in plain-text renderers; `code` spans stay.
    return re.sub(r"(\*\*|__)(.+?)\1", r"\2", text)


@dataclass
class _Draft:
    heading: str = ""
    paragraphs: list[str] = field(default_factory=list)
    bullets: list[str] = field(default_factory=list)

    def empty(self) -> bool:
        return not (self.heading or self.paragraphs or self.bullets)

    def section(self) -> Section:
        return Section(
            heading=self.heading,
            text="\n\n".join(p.strip() for p in self.paragraphs if p.strip()),
            bullets=tuple(self.bullets),
        )


def sections_from_text(text: str) -> tuple[Section, ...]:
    sections: list[Section] = []
    draft = _Draft()
    paragraph: list[str] = []
    code: list[str] | None = None
    language = ""
    fence = ""

    def close_paragraph() -> None:
        if paragraph:
            draft.paragraphs.append(_plain(" ".join(line.strip() for line in paragraph)))
            paragraph.clear()

    def close_section() -> None:
        nonlocal draft
        close_paragraph()
        if not draft.empty():
            sections.append(draft.section())
        draft = _Draft()

    for line in text.splitlines():
        if code is not None:
            if line.strip().startswith(fence):
                sections.append(Section(code=Code(text="\n".join(code), language=language)))
                code = None
            else:
                code.append(line)
            continue
        if fenced := _FENCE.match(line):
            close_section()
            code, fence, language = [], fenced.group(1), fenced.group(2)
            continue
        heading = _HEADING.match(line) or _BOLD_HEADING.match(line)
        if heading:
            close_section()
            draft.heading = _plain(heading.group(1)).rstrip(":")
            continue
        if bullet := _BULLET.match(line):
            close_paragraph()
            draft.bullets.append(_plain(bullet.group(1).strip()))
            continue
        if not line.strip():
            close_paragraph()
            continue
        if draft.bullets:
            if line.startswith((" ", "\t")):  # a wrapped bullet
                draft.bullets[-1] += " " + _plain(line.strip())
                continue
            # Text after a list starts a new block so renderers keep the order.
            close_section()
        paragraph.append(line)
    if code is not None:  # an unclosed fence: keep what was there
        sections.append(Section(code=Code(text="\n".join(code), language=language)))
    close_section()
    return tuple(sections)

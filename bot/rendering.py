"""Platform-neutral renderers of a `Reply`: plain text, Markdown and JSON.

Block Kit, Discord embeds and the Rich console live with their channels in ``handlers/``; these
three serve the CLI (``--format``), logs, the audit store and any channel without rich output.
Every renderer drops terminal escape sequences (`bot.terminal`) that a log or dbt message may
still carry.

The JSON form is a public contract (``docs/reply-json.md``): keys are only ever added, and
``schema`` changes when something is removed or changes meaning.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import msgspec

from bot.messages import Reply, Section, Tone
from bot.terminal import without_escapes

JSON_SCHEMA = "pipebot.reply/1"

_TONE_MARK = {Tone.INFO: "", Tone.SUCCESS: "✓ ", Tone.WARNING: "! ", Tone.ERROR: "✗ "}


def to_text(reply: Reply) -> str:
    """Readable plain text: what a terminal without colours or a log line shows."""
    reply = without_escapes(reply)
    out: list[str] = []
    if reply.title:
        out.append(_TONE_MARK[reply.tone] + reply.title)
        out.append("")
    if reply.text:
        out.extend([reply.text, ""])
    for section in reply.sections:
        out.extend(_section_text(section))
        out.append("")
    # Plain text cannot collapse: the details follow the top lines.
    for section in reply.details:
        out.extend(_section_text(section))
        out.append("")
    # Plain text has no buttons: a link button is shown as its link, the others are left out
    # (their commands can be typed; a label alone would look like something to click).
    links = [a for a in reply.actions if a.url]
    if links:
        out.extend(f"{a.label}: {a.url}" for a in links)
        out.append("")
    if reply.sources:
        out.append("Sources: " + "; ".join(reply.sources))
    out.extend(f"Note: {note}" for note in reply.notes)
    return "\n".join(out).strip() + "\n"


def _section_text(section: Section) -> list[str]:
    lines: list[str] = []
    if section.heading:
        lines.append(section.heading)
        lines.append("-" * len(section.heading))
    if section.text:
        lines.append(section.text)
    if section.fields:
        width = max(len(f.label) for f in section.fields)
        lines.extend(f"{f.label.ljust(width)}  {f.value}" for f in section.fields)
    lines.extend(f"• {bullet}" for bullet in section.bullets)
    if section.code is not None:
        if section.code.title:
            lines.append(section.code.title + ":")
        lines.extend("    " + line for line in section.code.text.splitlines())
        if section.code.truncated_from is not None:
            lines.append(f"    [truncated: excerpt of {section.code.truncated_from:,} characters]")
    lines.extend(f"{link.label}: {link.url}" for link in section.links)
    if section.image is not None:
        lines.append(f"[image: {section.image.alt}] {section.image.url}")
    return lines


_TONE_EMOJI = {Tone.INFO: "", Tone.SUCCESS: "✅ ", Tone.WARNING: "⚠️ ", Tone.ERROR: "🔴 "}


def to_markdown(reply: Reply) -> str:
    """GitHub-flavoured Markdown (Discord and most chat tools render it)."""
    reply = without_escapes(reply)
    out: list[str] = []
    if reply.title:
        out.extend([f"### {_TONE_EMOJI[reply.tone]}{_escape(reply.title)}", ""])
    if reply.text:
        out.extend([reply.text, ""])
    for section in reply.sections:
        out.extend(_section_markdown(section))
    if reply.details:
        # Collapsed where Markdown is shown as HTML (GitHub, most viewers); a blank line after
        # <summary> lets the Markdown inside render.
        out.extend(["<details><summary>Details</summary>", ""])
        for section in reply.details:
            out.extend(_section_markdown(section))
        out.extend(["</details>", ""])
    for action in reply.actions:
        if action.url:
            out.append(f"- [{_escape(action.label)}]({action.url})")
    if reply.sources:
        out.append("<sub>Sources: " + "; ".join(reply.sources) + "</sub>")
    out.extend(f"<sub>{note}</sub>" for note in reply.notes)
    return "\n".join(out).strip() + "\n"


def _section_markdown(section: Section) -> list[str]:
    out: list[str] = []
    if section.heading:
        out.append(f"**{_escape(section.heading)}**")
    if section.text:
        out.append(section.text)
    out.extend(f"- **{_escape(f.label)}:** {f.value}" for f in section.fields)
    out.extend(f"- {bullet}" for bullet in section.bullets)
    if section.code is not None:
        fence = "````" if "```" in section.code.text else "```"
        if section.code.title:
            out.append(f"_{_escape(section.code.title)}_")
        out.extend([f"{fence}{section.code.language}", section.code.text, fence])
        if section.code.truncated_from is not None:
            out.append(f"_[truncated: excerpt of {section.code.truncated_from:,} characters]_")
    out.extend(f"- [{_escape(link.label)}]({link.url})" for link in section.links)
    if section.image is not None:
        out.append(f"![{_escape(section.image.alt)}]({section.image.url})")
    out.append("")
    return out


def _escape(text: str) -> str:
    return text.replace("*", "\\*").replace("_", "\\_").replace("[", "\\[").replace("]", "\\]")


def to_dict(reply: Reply) -> dict[str, Any]:
    """The documented JSON structure (see ``docs/reply-json.md``), JSON-native types only."""
    reply = without_escapes(reply)
    native: dict[str, Any] = msgspec.json.decode(msgspec.json.encode(reply))
    return {"schema": JSON_SCHEMA, **native}


def from_dict(body: dict[str, Any]) -> Reply:
    """Rebuild a `Reply` from `to_dict` output (stored answers are kept this way)."""
    if body.get("schema") != JSON_SCHEMA:
        raise ValueError(f"not a {JSON_SCHEMA} document: schema={body.get('schema')!r}")
    return msgspec.convert(body, Reply)


def to_json(reply: Reply, *, indent: int | None = 2) -> str:
    return json.dumps(to_dict(reply), indent=indent, ensure_ascii=False, sort_keys=False)


def redacted(reply: Reply, redact: Callable[[str], str]) -> Reply:
    """`reply` with every text passed through `redact`. Channels do this on the document before
    they render, so their length limits hold for what is posted (a mask can be longer than the
    secret it hides)."""
    return from_dict(_redact_strings(to_dict(reply), redact))


def _redact_strings(value: Any, redact: Callable[[str], str]) -> Any:
    if isinstance(value, str):
        return redact(value)
    if isinstance(value, dict):
        return {k: v if k == "schema" else _redact_strings(v, redact) for k, v in value.items()}
    if isinstance(value, list):
        return [_redact_strings(v, redact) for v in value]
    return value

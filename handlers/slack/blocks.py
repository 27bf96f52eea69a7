"""`Reply` → Slack Block Kit, always within Slack's limits.

`render_blocks(reply)` returns a list of `SlackMessage` (``text`` fallback + ``blocks``): one
message for an ordinary reply, several (posted in order in the same thread) for a long one, and
a "… N more lines" notice after `MAX_MESSAGES`. Every block is built with slack_sdk's block
model classes, whose ``to_dict()`` validates the limits they know (header 150, section text
3000, 10 fields, 25 buttons, 10 context elements, button text/value/url, alt text); the limits
slack_sdk does not check (field text 2000, 50 blocks per message, ~12k characters of
cumulative text before Slack answers ``msg_blocks_too_long``) are enforced here.

A `Reply`'s text is plain text in which only `` `code` `` spans mean something, so it is only
escaped (``& < >``) for mrkdwn, never interpreted.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any, NamedTuple

from slack_sdk.models.blocks import (
    ActionsBlock,
    Block,
    ButtonElement,
    ContextBlock,
    HeaderBlock,
    ImageBlock,
    MarkdownTextObject,
    PlainTextObject,
    SectionBlock,
)

from bot.messages import Action, Code, Image, Reply, Section, Tone
from bot.rendering import to_text
from bot.terminal import without_escapes

HEADER_MAX = 150
SECTION_TEXT_MAX = 3000
FIELD_TEXT_MAX = 2000
FIELDS_PER_SECTION = 10
CONTEXT_ELEMENTS_MAX = 10
CONTEXT_TEXT_MAX = 2000
BUTTON_TEXT_MAX = 75
BUTTON_VALUE_MAX = 2000
ACTION_ID_MAX = 255
BUTTONS_PER_BLOCK = 25
URL_MAX = 3000
ALT_TEXT_MAX = 2000
BLOCKS_PER_MESSAGE = 50
# Slack refuses messages whose blocks hold roughly 12–13k characters in total even when every
# block is valid (msg_blocks_too_long); stay well clear of it.
MESSAGE_TEXT_BUDGET = 9000
FALLBACK_TEXT_MAX = 3000
# Beyond this many messages a reply is cut with a notice instead of flooding the thread.
MAX_MESSAGES = 5
# Action ids pipebot's buttons carry; the Bolt app listens for these prefixes.
ACTION_PREFIX = "pipebot:"
LINK_ACTION_PREFIX = "pipebot-link:"

_TONE_EMOJI = {Tone.INFO: "", Tone.SUCCESS: "✅ ", Tone.WARNING: "⚠️ ", Tone.ERROR: "🔴 "}
_ELLIPSIS = "…"


class SlackMessage(NamedTuple):
    """One Slack message: the plain ``text`` (notifications, screen readers) and its blocks."""

    text: str
    blocks: list[dict[str, Any]]


@dataclass(frozen=True)
class _Piece:
    block: dict[str, Any]
    chars: int  # text the block carries, counted against MESSAGE_TEXT_BUDGET
    lines: int  # for the "N more lines" notice when a reply is cut


def render_blocks(reply: Reply, *, caption: str = "") -> list[SlackMessage]:
    """Render `reply` as one or more Slack messages, in posting order.

    `caption` (mrkdwn, e.g. who ran a slash command) goes in a context block at the end of the
    first message; Slack shows no trace of a slash command otherwise.

    >>> [m.blocks[0]["type"] for m in render_blocks(Reply(title="All clear"))]
    ['header']
    """
    reply = without_escapes(reply)  # a colour code from a log or dbt message never reaches Slack
    body = list(_body(reply))
    tail = list(_tail(reply))
    captions = [_context([caption])] if caption else []
    messages = _pack(body, tail, captions)
    if not messages:
        messages = [[_piece(_section(_ELLIPSIS))]]
    if reply.details:
        # The details start a message of their own: posted after the top lines, in the thread.
        messages += _pack(list(_details(reply)), [], [])
    total = len(messages)
    rendered: list[SlackMessage] = []
    for index, pieces in enumerate(messages):
        if index == 0:
            text = _fallback(reply)
        else:
            text = _escape(f"{reply.title or 'pipebot'} (continued, {index + 1} of {total})")
        rendered.append(SlackMessage(text=text, blocks=[p.block for p in pieces]))
    return rendered


def render_working(status: str, *, caption: str = "") -> SlackMessage:
    """The "working…" message that progress updates edit in place."""
    text = _truncate(f"⏳ {_escape(status.rstrip('.…'))}…", SECTION_TEXT_MAX)
    blocks = [_section(text).to_dict()]
    if caption:
        blocks.append(_context([caption]).block)
    return SlackMessage(text=text, blocks=blocks)


def render_actions(reply: Reply) -> list[dict[str, Any]]:
    """Only the buttons of `reply` (streamed answers carry them as blocks under the text)."""
    return [piece.block for piece in _actions(reply.actions)]


def render_markdown(reply: Reply) -> str:
    """`reply` as standard Markdown, the format Slack's streaming methods take."""
    reply = without_escapes(reply)
    out: list[str] = []
    if reply.title:
        out.append(f"**{_TONE_EMOJI[reply.tone]}{reply.title}**")
    if reply.text:
        out.append(reply.text)
    for section in (*reply.sections, *reply.details):
        lines: list[str] = []
        if section.heading:
            lines.append(f"**{section.heading}**")
        if section.text:
            lines.append(section.text)
        lines.extend(f"- **{f.label}:** {f.value}" for f in section.fields)
        lines.extend(f"- {bullet}" for bullet in section.bullets)
        if section.code is not None:
            fence = "````" if "```" in section.code.text else "```"
            if section.code.title:
                lines.append(f"_{section.code.title}_")
            lines.append(f"{fence}\n{section.code.text}\n{fence}")
        lines.extend(f"- [{link.label}]({link.url})" for link in section.links)
        if section.image is not None:
            lines.append(f"[{section.image.alt}]({section.image.url})")
        out.append("\n".join(lines))
    if reply.sources:
        out.append("_Sources: " + "; ".join(reply.sources) + "_")
    out.extend(f"_{note}_" for note in reply.notes)
    return "\n\n".join(part for part in out if part)


def escape(text: str) -> str:
    """Escape the three characters Slack's mrkdwn reserves."""
    return _escape(text)


# --- the parts of a reply ------------------------------------------------------------------


def _body(reply: Reply) -> Iterator[_Piece]:
    title = " ".join(reply.title.split())  # a header is one line of plain text
    if title:
        title = _TONE_EMOJI[reply.tone] + title
        yield _piece(HeaderBlock(text=PlainTextObject(text=_truncate(title, HEADER_MAX))))
    if reply.text:
        yield from _texts(_escape(reply.text))
    for section in reply.sections:
        yield from _section_pieces(section)


def _details(reply: Reply) -> Iterator[_Piece]:
    title = " ".join(reply.title.split())
    yield _piece(_section(f"*Details* — {_escape(title)}" if title else "*Details*"))
    for section in reply.details:
        yield from _section_pieces(section)


def local_images(reply: Reply) -> list[Image]:
    """Images of `reply` that are files on this machine (a chart pipebot drew): uploaded
    beside the message (``files_upload_v2``), since a block can only show a web URL."""
    return [
        section.image
        for section in (*reply.sections, *reply.details)
        if section.image is not None and _local_file(section.image.url)
    ]


def _local_file(url: str) -> bool:
    return url.removeprefix("file://").startswith("/")


def _tail(reply: Reply) -> Iterator[_Piece]:
    """What closes the last message: buttons, then sources and notes as small print."""
    yield from _actions(reply.actions)
    if reply.sources:
        yield _context(["Sources: " + _escape("; ".join(reply.sources))])
    if reply.notes:
        yield _context([_escape(note) for note in reply.notes])


def _section_pieces(section: Section) -> Iterator[_Piece]:
    heading = f"*{_escape(section.heading)}*" if section.heading else ""
    if section.text:
        yield from _texts(_escape(section.text), heading=heading)
        heading = ""
    if section.fields:
        fields = [
            MarkdownTextObject(
                text=_truncate(f"*{_escape(f.label)}*\n{_escape(f.value)}", FIELD_TEXT_MAX)
            )
            for f in section.fields
        ]
        for chunk in _field_chunks(fields):
            text = MarkdownTextObject(text=heading) if heading else None
            yield _piece(SectionBlock(text=text, fields=chunk))
            heading = ""
    if section.bullets:
        bullets = "\n".join(f"• {_escape(bullet)}" for bullet in section.bullets)
        yield from _texts(bullets, heading=heading)
        heading = ""
    if section.code is not None:
        yield from _code(section.code, heading=heading)
        heading = ""
    if section.links:
        links = "\n".join(_link(link.label, link.url) for link in section.links)
        yield from _texts(links, heading=heading)
        heading = ""
    if section.image is not None:
        image = section.image
        if _web_url(image.url):
            alt = _truncate(image.alt or "image", ALT_TEXT_MAX)
            yield _piece(ImageBlock(image_url=image.url, alt_text=alt))
        elif _local_file(image.url):
            pass  # uploaded beside the message (`local_images`)
        else:
            yield from _texts(_escape(f"[image: {image.alt}] {image.url}"), heading=heading)
        heading = ""
    if heading:
        yield _piece(_section(heading))


def _code(code: Code, *, heading: str) -> Iterator[_Piece]:
    # Three backticks inside the excerpt would close Slack's code block early; a zero-width
    # space between them keeps the text readable and the block intact.
    body = _escape(code.text).replace("```", "`\u200b`\u200b`")
    caption = f"_{_escape(code.title)}_" if code.title else ""
    title = "\n".join(part for part in (heading, caption) if part)
    room = SECTION_TEXT_MAX - len("```\n\n```") - (len(title) + 1 if title else 0)
    for index, chunk in enumerate(_split(body, room)):
        prefix = f"{title}\n" if title and index == 0 else ""
        yield _piece(_section(f"{prefix}```\n{chunk}\n```"))
    if code.truncated_from is not None:
        yield _context([f"truncated: excerpt of {code.truncated_from:,} characters"])


def _actions(actions: tuple[Action, ...]) -> Iterator[_Piece]:
    buttons: list[ButtonElement] = []
    for index, action in enumerate(actions):
        button = _button(index, action)
        if button is not None:
            buttons.append(button)
    for start in range(0, len(buttons), BUTTONS_PER_BLOCK):
        yield _piece(ActionsBlock(elements=buttons[start : start + BUTTONS_PER_BLOCK]))


def _button(index: int, action: Action) -> ButtonElement | None:
    label = " ".join(action.label.split()) or " ".join(action.action_id.split()) or _ELLIPSIS
    label = _truncate(label, BUTTON_TEXT_MAX)
    style = action.style if action.style in ("primary", "danger") else None
    if action.url:
        if not _web_url(action.url):
            return None
        action_id = f"{LINK_ACTION_PREFIX}{index}"
        return ButtonElement(text=label, url=action.url, action_id=action_id, style=style)
    if not action.value or len(action.value) > BUTTON_VALUE_MAX:
        # A cut command line would run something else; a button without one does nothing.
        return None
    action_id = f"{ACTION_PREFIX}{index}:{action.action_id}"[:ACTION_ID_MAX]
    return ButtonElement(text=label, value=action.value, action_id=action_id, style=style)


# --- packing into messages -------------------------------------------------------------------


def _pack(body: list[_Piece], tail: list[_Piece], captions: list[_Piece]) -> list[list[_Piece]]:
    """Fill messages in order; the tail closes the last one, the caption the first one.

    Past MAX_MESSAGES the body is cut (never the buttons or sources) and a notice says how
    many lines were left out.
    """
    reserve = len(captions)
    messages = _fill([*body, *tail], reserve)
    if len(messages) > MAX_MESSAGES:
        kept = sum(len(m) for m in messages[:MAX_MESSAGES]) - len(tail)
        while True:
            kept = max(0, min(kept, len(body)))
            omitted = sum(p.lines for p in body[kept:])
            notice = _context([f"{_ELLIPSIS} full answer: {omitted:,} more lines not shown"])
            messages = _fill([*body[:kept], notice, *tail], reserve)
            if len(messages) <= MAX_MESSAGES or kept == 0:
                break
            kept -= 1
    if captions and messages:
        messages[0] = [*messages[0], *captions]
    return messages


def _fill(pieces: list[_Piece], reserve: int) -> list[list[_Piece]]:
    """Greedy packing within the block count and text budget of one message."""
    messages: list[list[_Piece]] = []
    current: list[_Piece] = []
    chars = 0
    for piece in pieces:
        room = reserve if not messages else 0
        too_many = len(current) + 1 + room > BLOCKS_PER_MESSAGE
        if current and (too_many or chars + piece.chars > MESSAGE_TEXT_BUDGET):
            messages.append(current)
            current, chars = [], 0
        current.append(piece)
        chars += piece.chars
    if current:
        messages.append(current)
    return messages


# --- block helpers ---------------------------------------------------------------------------


def _texts(text: str, *, heading: str = "") -> Iterator[_Piece]:
    """Sections for (already escaped) mrkdwn `text`, split at line ends to fit 3000 chars."""
    room = SECTION_TEXT_MAX - (len(heading) + 1 if heading else 0)
    for index, chunk in enumerate(_split(text, room)):
        yield _piece(_section(f"{heading}\n{chunk}" if heading and index == 0 else chunk))


def _section(text: str) -> SectionBlock:
    return SectionBlock(text=MarkdownTextObject(text=text or _ELLIPSIS))


def _context(texts: list[str]) -> _Piece:
    texts = [t for t in texts if t.strip()] or [_ELLIPSIS]
    if len(texts) > CONTEXT_ELEMENTS_MAX:
        keep = CONTEXT_ELEMENTS_MAX - 1
        texts = [*texts[:keep], " · ".join(texts[keep:])]
    # Small print stays small: one context block carries at most SECTION_TEXT_MAX characters.
    each = min(CONTEXT_TEXT_MAX, SECTION_TEXT_MAX // len(texts))
    elements = [MarkdownTextObject(text=_truncate(t, each)) for t in texts]
    return _piece(ContextBlock(elements=elements))


def _field_chunks(fields: list[MarkdownTextObject]) -> Iterator[list[MarkdownTextObject]]:
    """At most 10 fields per section, and no more text than one section may hold."""
    chunk: list[MarkdownTextObject] = []
    size = 0
    for field in fields:
        length = len(field.text)
        if chunk and (len(chunk) == FIELDS_PER_SECTION or size + length > SECTION_TEXT_MAX):
            yield chunk
            chunk, size = [], 0
        chunk.append(field)
        size += length
    if chunk:
        yield chunk


def _piece(block: Block | _Piece) -> _Piece:
    if isinstance(block, _Piece):
        return block
    rendered = block.to_dict()  # validates the limits slack_sdk knows; raises otherwise
    texts = list(_strings(rendered))
    return _Piece(
        block=rendered,
        chars=sum(len(t) for t in texts),
        lines=max(1, sum(t.count("\n") + 1 for t in texts)),
    )


def _strings(value: Any) -> Iterator[str]:
    """The human-visible text inside a rendered block."""
    if isinstance(value, dict):
        if value.get("type") in ("mrkdwn", "plain_text") and isinstance(value.get("text"), str):
            yield value["text"]
            return
        if isinstance(value.get("alt_text"), str):
            yield value["alt_text"]
        for key, item in value.items():
            if key != "alt_text":
                yield from _strings(item)
    elif isinstance(value, list):
        for item in value:
            yield from _strings(item)


def _split(text: str, limit: int) -> Iterator[str]:
    """Chunks of at most `limit` characters, cut at line ends, else at spaces, never inside an
    ``&amp;``-style entity."""
    text = text.strip("\n")
    while len(text) > limit:
        cut = text.rfind("\n", 0, limit + 1)
        if cut <= 0:
            cut = text.rfind(" ", 0, limit + 1)
        if cut <= 0:
            cut = limit
            amp = text.rfind("&", max(0, cut - 5), cut)
            if amp > 0 and ";" not in text[amp:cut]:
                cut = amp
        yield text[:cut].rstrip()
        text = text[cut:].lstrip("\n")
    if text.strip():
        yield text


def _link(label: str, url: str) -> str:
    if not _web_url(url) and not url.startswith("mailto:"):
        return _escape(f"{label}: {url}")
    safe = url.replace("&", "&amp;").replace("<", "%3C").replace(">", "%3E").replace("|", "%7C")
    return f"<{safe}|{_escape(label or url).replace('|', '¦')}>"


def _web_url(url: str) -> bool:
    return url.startswith(("https://", "http://")) and len(url) <= URL_MAX and " " not in url


def _fallback(reply: Reply) -> str:
    return _truncate(_escape(to_text(reply).strip()), FALLBACK_TEXT_MAX) or _ELLIPSIS


# Mentions the core writes for owners (users, user groups) and channel links stay live; every
# other angle bracket is escaped, so no text can inject @here/@channel or a link.
_MENTION = re.compile(r"(<(?:@[UW][A-Z0-9]+|!subteam\^S[A-Z0-9]+|#C[A-Z0-9]+)>)")


def _escape(text: str) -> str:
    parts = _MENTION.split(text)
    return "".join(
        part if index % 2 else part.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
        for index, part in enumerate(parts)
    )


def _truncate(text: str, limit: int) -> str:
    if len(text) <= limit:
        return text
    cut = text[: limit - 1]
    amp = cut.rfind("&", max(0, len(cut) - 5))
    if amp >= 0 and ";" not in cut[amp:]:
        cut = cut[:amp]
    return cut + _ELLIPSIS

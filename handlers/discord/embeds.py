"""`Reply` → Discord messages of embeds, always within Discord's limits.

`render_embeds(reply)` returns a list of `DiscordMessage` (``content`` + ``embeds``), posted in
order in the same channel or thread: one for an ordinary reply, several for a long one. Each
embed is a real `discord.Embed`; the limits Discord enforces with an HTTP 400 are enforced here
(``../shared/reference/discord.md`` §5): title 256, description 4,096, 25 fields of name 256
and value 1,024, footer 2,048, 10 embeds and 6,000 characters of embed text per message,
2,000 characters of content.

Long text is split on line boundaries, never inside a code block: a block that must be split
is closed at the end of one part and reopened (with its language) at the start of the next.

A `Reply`'s text is plain text in which only `` `code` `` spans mean something, so Discord's
markdown characters outside them are escaped, never interpreted. Link buttons become links in
the last embed; the others are `Button`s on the last message, which the sender turns into
`discord.ui` components. Owners' mentions are repeated in the first message's content (in an
embed they would notify nobody); images that are local files are attached.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from dataclasses import dataclass, replace

import discord

from bot.messages import Code, Reply, Section, Tone
from bot.terminal import without_escapes

TITLE_MAX = 256
DESCRIPTION_MAX = 4096
FIELDS_PER_EMBED = 25
FIELD_NAME_MAX = 256
FIELD_VALUE_MAX = 1024
FOOTER_MAX = 2048
EMBEDS_PER_MESSAGE = 10
EMBED_TEXT_PER_MESSAGE = 6000
CONTENT_MAX = 2000
# A field at most this long sits beside others (Discord's inline fields, three to a row).
INLINE_FIELD_MAX = 40
# Beyond this many messages a reply is cut with a notice instead of flooding the channel.
MAX_MESSAGES = 5

COLOURS = {
    Tone.INFO: discord.Colour.blurple(),
    Tone.SUCCESS: discord.Colour.green(),
    Tone.WARNING: discord.Colour.gold(),
    Tone.ERROR: discord.Colour.red(),
}
# Discord's limits on components and attachments.
BUTTONS_PER_ROW = 5
BUTTON_ROWS = 5
BUTTON_LABEL_MAX = 80
MAX_FILES = 10
_MENTION = re.compile(r"<@&?\d+>")
_FENCE = re.compile(r"^```(\S*)\s*$")
_SPAN = re.compile(r"(`[^`\n]+`)")


@dataclass(frozen=True)
class Button:
    """A button under a message: sends `command` (a command line) when pressed, or opens
    `url`."""

    label: str
    command: str = ""
    style: str = ""  # "", "primary" or "danger"
    url: str = ""


@dataclass(frozen=True)
class DiscordMessage:
    """One message to post: ``content`` (may be empty), up to 10 embeds, the reply's buttons
    (on its last message) and local files to attach (images)."""

    content: str = ""
    embeds: tuple[discord.Embed, ...] = ()
    buttons: tuple[Button, ...] = ()
    files: tuple[str, ...] = ()


def render_embeds(reply: Reply) -> list[DiscordMessage]:
    """`reply` as Discord messages: a head embed (title, text), one or more per section, the
    sources and notes in the footer of the last."""
    reply = without_escapes(reply)  # terminal colour codes from dbt or logs, once for all
    colour = COLOURS.get(reply.tone, discord.Colour.blurple())
    embeds: list[discord.Embed] = []
    embeds += _text_embeds(_plain(reply.title), _escape(reply.text), colour)
    for section in reply.sections:
        embeds += _section_embeds(section, colour)
    links = [f"[{_escape(a.label)}]({a.url})" for a in reply.actions if a.url]
    if links:
        embeds += _text_embeds("", " · ".join(links), colour)
    if not embeds:
        embeds.append(discord.Embed(colour=colour))
    groups = list(_pack(embeds))
    omitted = 0
    if len(groups) > MAX_MESSAGES:
        omitted = sum(len(e) for group in groups[MAX_MESSAGES:] for e in group)
        groups = groups[:MAX_MESSAGES]
    footer = _footer(reply)
    if footer:
        # Sources and notes are never cut: on the last embed, or on an embed of their own.
        last = groups[-1]
        size = sum(len(e) for e in last)
        if size + len(footer) <= EMBED_TEXT_PER_MESSAGE:
            last[-1].set_footer(text=footer)
        else:
            alone = discord.Embed(colour=colour).set_footer(text=footer)
            if len(groups) < MAX_MESSAGES:
                groups.append([alone])
            else:  # a cut reply: its last part makes room
                while last and (
                    len(last) == EMBEDS_PER_MESSAGE
                    or sum(len(e) for e in last) + len(footer) > EMBED_TEXT_PER_MESSAGE
                ):
                    omitted += len(last.pop())
                last.append(alone)
    messages = [DiscordMessage(embeds=tuple(group)) for group in groups]
    if omitted:
        notice = (
            f"… {omitted:,} more characters of this answer not shown: "
            "ask about one DAG or model for the rest."
        )
        messages[-1] = replace(messages[-1], content=notice)
    if reply.details:
        # The details start a message of their own: posted after the top lines, in the thread.
        detail_embeds = _text_embeds(f"Details — {_plain(reply.title)}"[:TITLE_MAX], "", colour)
        for section in reply.details:
            detail_embeds += _section_embeds(section, colour)
        messages += [
            DiscordMessage(embeds=tuple(group))
            for group in list(_pack(detail_embeds))[:MAX_MESSAGES]
        ]
    # Mentions inside embeds are shown but notify nobody: the owners are named in the content.
    people = mentions(reply)
    if people:
        head = _truncate("cc " + " ".join(people), CONTENT_MAX)
        messages[0] = replace(messages[0], content=head)
    files = tuple(local_images(reply))
    if files:
        messages[0] = replace(messages[0], files=files[:MAX_FILES])
    buttons = tuple(
        Button(label=a.label[:BUTTON_LABEL_MAX], command=a.value, style=a.style)
        for a in reply.actions
        if not a.url and a.value
    )
    if buttons:
        messages[-1] = replace(messages[-1], buttons=buttons[: BUTTONS_PER_ROW * BUTTON_ROWS])
    return messages


def mentions(reply: Reply) -> list[str]:
    """The Discord user and role mentions in `reply`, once each, in order of appearance."""
    found: dict[str, None] = {}
    for text in _texts(reply):
        for match in _MENTION.finditer(text):
            found.setdefault(match.group(0), None)
    return list(found)


def local_images(reply: Reply) -> list[str]:
    """Images of `reply` that are files on this machine (a chart pipebot drew): attached to
    the message rather than linked."""
    paths = []
    for section in (*reply.sections, *reply.details):
        url = section.image.url if section.image is not None else ""
        path = url.removeprefix("file://")
        if path.startswith("/"):
            paths.append(path)
    return paths


def _texts(reply: Reply) -> Iterator[str]:
    yield reply.text
    for section in reply.sections:
        yield section.text
        yield from section.bullets
        for field in section.fields:
            yield field.value


def split_content(text: str, limit: int = CONTENT_MAX) -> list[str]:
    """`text` in parts of at most `limit` characters, on line boundaries, code blocks whole in
    each part (closed and reopened where one had to be split)."""
    return list(_split(text, limit)) if text else []


def _text_embeds(title: str, description: str, colour: discord.Colour) -> list[discord.Embed]:
    parts = list(_split(description, DESCRIPTION_MAX)) if description else []
    if not title and not parts:
        return []
    embeds = [discord.Embed(title=_truncate(title, TITLE_MAX) or None, colour=colour)]
    embeds[0].description = parts[0] if parts else None
    embeds += [discord.Embed(description=part, colour=colour) for part in parts[1:]]
    return embeds


def _section_embeds(section: Section, colour: discord.Colour) -> list[discord.Embed]:
    lines: list[str] = []
    if section.text:
        lines.append(_escape(section.text))
    lines += [f"• {_escape(bullet)}" for bullet in section.bullets]
    if section.code is not None:
        lines.append(_code(section.code))
    lines += [f"[{_escape(link.label)}]({link.url})" for link in section.links]
    embeds = _text_embeds(_plain(section.heading), "\n".join(lines), colour)
    fields = [
        (name, value)
        for field in section.fields
        for name, value in _field_parts(_plain(field.label), _escape(field.value))
    ]
    if fields and not embeds:
        embeds.append(discord.Embed(title=_truncate(_plain(section.heading), TITLE_MAX) or None))
        embeds[0].colour = colour
    for name, value in fields:
        embed = embeds[-1]
        if (
            len(embed.fields) == FIELDS_PER_EMBED
            or len(embed) + len(name) + len(value) > EMBED_TEXT_PER_MESSAGE
        ):
            embed = discord.Embed(colour=colour)
            embeds.append(embed)
        embed.add_field(name=name, value=value, inline=len(value) <= INLINE_FIELD_MAX)
    if section.image is not None:
        url = section.image.url
        path = url.removeprefix("file://")
        if path.startswith("/"):
            url = f"attachment://{os.path.basename(path)}"  # the file attached to the message
        if url.startswith(("https://", "http://", "attachment://")):
            target = embeds[-1] if embeds else discord.Embed(colour=colour)
            target.set_image(url=url)
            if not embeds:
                embeds.append(target)
    return embeds


def _field_parts(name: str, value: str) -> Iterator[tuple[str, str]]:
    name = _truncate(name, FIELD_NAME_MAX) or "\u200b"
    for index, part in enumerate(_split(value or "–", FIELD_VALUE_MAX)):
        yield (name if index == 0 else _truncate(f"{name} (cont.)", FIELD_NAME_MAX)), part


def _code(code: Code) -> str:
    text = code.text.replace("```", "`\u200b``")
    block = f"```{code.language}\n{text}\n```"
    title = f"**{_escape(code.title)}**\n" if code.title else ""
    note = (
        f"\n_truncated: excerpt of {code.truncated_from:,} characters_"
        if code.truncated_from is not None
        else ""
    )
    return title + block + note


def _footer(reply: Reply) -> str:
    lines = [f"Sources: {'; '.join(reply.sources)}"] if reply.sources else []
    lines += [f"Note: {note}" for note in reply.notes]
    return _truncate(_plain("\n".join(lines)), FOOTER_MAX)


def _pack(embeds: list[discord.Embed]) -> Iterator[list[discord.Embed]]:
    """Embeds in order, at most 10 and 6,000 characters of text per message."""
    group: list[discord.Embed] = []
    size = 0
    for embed in embeds:
        full = len(group) == EMBEDS_PER_MESSAGE or size + len(embed) > EMBED_TEXT_PER_MESSAGE
        if group and full:
            yield group
            group, size = [], 0
        group.append(embed)
        size += len(embed)
    if group:
        yield group


def _split(text: str, limit: int) -> Iterator[str]:
    """Parts of at most `limit` characters on line boundaries; a code block split across two
    parts is closed at the end of the first and reopened with its language in the next."""
    part: list[str] = []
    size = 0
    fence = ""  # the opening line of the code block the current part is inside, if any
    for line in _lines(text, limit - 8):
        closing = 4 if fence else 0  # "\n```" to close the block at a split
        if part and size + len(line) + 1 + closing > limit:
            yield "\n".join(part) + ("\n```" if fence else "")
            part, size = ([fence], len(fence)) if fence else ([], 0)
        part.append(line)
        size += len(line) + (1 if len(part) > 1 else 0)
        match = _FENCE.match(line)
        if match is not None:
            fence = "" if fence else line
    if part and any(p.strip() for p in part):
        yield "\n".join(part)


def _lines(text: str, width: int) -> Iterator[str]:
    """The lines of `text`, any longer than `width` cut into pieces of `width`."""
    for line in text.split("\n"):
        rest = line
        while len(rest) > width:
            yield rest[:width]
            rest = rest[width:]
        yield rest


def _escape(text: str) -> str:
    """Discord markdown characters escaped outside `` `code` `` spans."""
    pieces = _SPAN.split(text)
    return "".join(
        piece if index % 2 else discord.utils.escape_markdown(piece, as_needed=True)
        for index, piece in enumerate(pieces)
    )


def _plain(text: str) -> str:
    """Titles, field names and footers: Discord shows them without markdown."""
    return text.strip()


def _truncate(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"

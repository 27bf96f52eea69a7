"""Slack payloads → what the core understands. Pure functions, no I/O.

Slack sends five kinds of things pipebot answers: slash commands, ``app_mention`` events,
``message`` events (DMs, assistant threads, follow-ups in threads pipebot already answered in)
and ``block_actions`` (button presses). Each converter turns one payload into a `SlackTurn`:
the subset of the payload the worker needs later (it is stored as the job's payload, so it holds
no tokens), or None when pipebot should stay silent (bot messages, edits, deletions, chatter).

`to_inbound` then builds the core's `InboundMessage`. Keys, so every duplicate collapses:

- ``event_id`` (the core's de-duplication id): ``cmd:{trigger_id}`` for commands,
  ``msg:{channel}:{ts}`` for messages — an ``app_mention`` and its ``message`` twin share it, as
  do Slack's retries — and ``act:{trigger_id}`` for button presses;
- ``job_key`` = ``slack:{team}:{event_id}``, the `StoreQueue` key persisted before the ack.

Threads: a mention is answered in ``thread_ts or ts`` and that thread is the conversation, so
follow-ups continue it; a slash command has no thread until pipebot's "working…" message opens
one (`to_inbound(turn, opened_ts=…)`); a top-level DM is answered top-level and the whole DM is
one conversation.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from bot.messages import InboundMessage

PLATFORM = "slack"

# Top-level DMs have no Slack thread; they share one conversation per DM channel.
DM_CONVERSATION = "dm"

# Message subtypes that are a person saying something; every other subtype (edits, deletions,
# joins, bot posts, unfurls re-delivered as message_changed …) is ignored.
_SPOKEN_SUBTYPES = frozenset({None, "thread_broadcast", "file_share"})

_LINK = re.compile(r"<([^<>|]+)(?:\|([^<>]*))?>")


@dataclass(frozen=True, kw_only=True)
class SlackTurn:
    """One thing said to pipebot on Slack, reduced to what answering it needs."""

    source: str  # command | mention | message | dm | assistant | action
    team: str
    channel: str
    user: str
    text: str
    event_id: str
    user_name: str = ""
    enterprise: str | None = None
    enterprise_install: bool = False
    # Slack thread to answer in; None = top level (a command's thread is opened by the answer).
    reply_thread: str | None = None
    # The core's conversation key; "" = the thread pipebot's first message opens (commands).
    conversation: str = ""
    response_url: str | None = None
    command: str = ""
    # An un-mentioned message in a channel thread: answered only where pipebot already talks.
    follow_up: bool = False

    @property
    def job_key(self) -> str:
        return f"{PLATFORM}:{self.team}:{self.event_id}"


def to_inbound(turn: SlackTurn, *, opened_ts: str | None = None) -> InboundMessage:
    """The core's view of `turn`; `opened_ts` is the message that opened a command's thread."""
    return InboundMessage(
        platform=PLATFORM,
        workspace=turn.team,
        channel=turn.channel,
        thread=turn.conversation or opened_ts or turn.event_id,
        user=turn.user,
        user_name=turn.user_name,
        text=turn.text,
        event_id=turn.event_id,
    )


def from_command(body: dict[str, Any]) -> SlackTurn | None:
    """A slash command (form fields): the text after the command goes to the core as typed.

    None when a field a reply needs (team, channel, user, trigger id) is missing or not text.
    """
    team = _str(body.get("team_id"))
    channel = _str(body.get("channel_id"))
    user = _str(body.get("user_id"))
    trigger = _str(body.get("trigger_id"))
    if not team or not channel or not user or not trigger:
        return None
    return SlackTurn(
        source="command",
        team=team,
        enterprise=_str(body.get("enterprise_id")) or None,
        enterprise_install=_true(body.get("is_enterprise_install")),
        channel=channel,
        user=user,
        user_name=_str(body.get("user_name")),
        text=plain_text(_str(body.get("text"))),
        event_id=f"cmd:{trigger}",
        response_url=_str(body.get("response_url")) or None,
        command=_str(body.get("command")),
    )


def from_event(
    body: dict[str, Any], *, bot_user_id: str | None, assistant: bool = False
) -> SlackTurn | None:
    """An Events API envelope (``app_mention`` / ``message``) → a turn, or None to stay silent.

    `assistant` marks a user message in a Slack assistant thread (Bolt's `Assistant` decides).
    """
    event = _dict(body.get("event"))
    kind = event.get("type")
    if kind not in ("app_mention", "message"):
        return None
    subtype = event.get("subtype")
    if not isinstance(subtype, str | None) or subtype not in _SPOKEN_SUBTYPES:
        return None
    if event.get("bot_id"):
        return None
    user, channel, ts = _str(event.get("user")), _str(event.get("channel")), _str(event.get("ts"))
    if not user or not channel or not ts or user == bot_user_id:
        return None
    raw = _str(event.get("text"))
    thread_ts = _str(event.get("thread_ts")) or None
    mentioned = kind == "app_mention" or (bot_user_id is not None and f"<@{bot_user_id}" in raw)
    is_dm = event.get("channel_type") == "im"
    reply_thread: str | None = thread_ts or ts
    conversation = str(reply_thread)
    if assistant:
        source = "assistant"
    elif is_dm:
        source = "dm"
        if not thread_ts:
            reply_thread, conversation = None, DM_CONVERSATION
    elif mentioned:
        source = "mention"
    elif thread_ts:
        source, reply_thread, conversation = "message", thread_ts, thread_ts
    else:
        return None  # channel chatter that does not mention pipebot
    authorization = _dict(_first(body.get("authorizations")))
    return SlackTurn(
        source=source,
        team=_str(body.get("team_id")) or _str(event.get("team")),
        enterprise=_str(body.get("enterprise_id")) or None,
        enterprise_install=_true(authorization.get("is_enterprise_install")),
        channel=channel,
        user=user,
        text=plain_text(raw, bot_user_id=bot_user_id),
        event_id=f"msg:{channel}:{ts}",
        reply_thread=reply_thread,
        conversation=conversation,
        follow_up=source == "message",
    )


def from_action(body: dict[str, Any]) -> SlackTurn | None:
    """A button press: its ``value`` is a command line, sent to the core as the presser.

    Answered in the thread of the message that carries the button, so the core's access
    policy judges the person who pressed, where they pressed.
    """
    if body.get("type") != "block_actions":
        return None
    value = _str(_dict(_first(body.get("actions"))).get("value")).strip()
    user = _dict(body.get("user"))
    container = _dict(body.get("container"))
    channel = _str(_dict(body.get("channel")).get("id")) or _str(container.get("channel_id"))
    user_id = _str(user.get("id"))
    trigger = _str(body.get("trigger_id"))
    if not value or not user_id or not channel or not trigger:
        return None  # a link button, or a press outside a conversation (App Home, modal)
    message = _dict(body.get("message"))
    if container.get("is_ephemeral"):
        # An ephemeral message is no thread parent; answer where it was shown.
        thread = _str(container.get("thread_ts")) or None
    else:
        thread = (
            _str(message.get("thread_ts"))
            or _str(message.get("ts"))
            or _str(container.get("message_ts"))
            or None
        )
    event_id = f"act:{trigger}"
    team = _str(_dict(body.get("team")).get("id")) or _str(user.get("team_id"))
    return SlackTurn(
        source="action",
        team=team,
        enterprise=_str(_dict(body.get("enterprise")).get("id")) or None,
        enterprise_install=_true(body.get("is_enterprise_install")),
        channel=channel,
        user=user_id,
        user_name=_str(user.get("username")) or _str(user.get("name")),
        text=value,
        event_id=event_id,
        reply_thread=thread,
        conversation=thread or event_id,
    )


def plain_text(text: str, *, bot_user_id: str | None = None) -> str:
    """Slack's message markup → the plain text a person typed.

    Drops pipebot's own mention, turns ``<#C1|data>`` into ``#data``, ``<https://x|x>`` into
    the URL and ``<!here>`` into ``@here``, and undoes Slack's ``&amp; &lt; &gt;`` escaping.
    Other people's mentions stay as ``<@U…>`` so a reply can address them.
    """

    def link(match: re.Match[str]) -> str:
        target, label = match.group(1), match.group(2)
        if target.startswith("@"):
            return "" if target[1:] == bot_user_id else f"<{target}>"
        if target.startswith("#"):
            return f"#{label}" if label else target
        if target.startswith("!"):
            name = label or target[1:].split("^")[0]
            return name if name.startswith("@") else f"@{name}"
        if target.startswith("mailto:"):
            return label or target.removeprefix("mailto:")
        return target

    text = _LINK.sub(link, text)
    text = text.replace("&lt;", "<").replace("&gt;", ">").replace("&amp;", "&")
    return " ".join(text.split())


def _true(value: Any) -> bool:
    return value is True or value == "true"


# Slack sends ids, timestamps and text as JSON strings; anything else in their place (a number,
# an object, null) is garbage and reads as absent, so the parsers above stay total.
def _str(value: Any) -> str:
    return value if isinstance(value, str) else ""


def _dict(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _first(value: Any) -> Any:
    return value[0] if isinstance(value, list) and value else None

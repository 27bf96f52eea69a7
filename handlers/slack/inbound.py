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
from dataclasses import asdict, dataclass
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

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> SlackTurn:
        return cls(**data)


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


def from_command(body: dict[str, Any]) -> SlackTurn:
    """A slash command (form fields): the text after the command goes to the core as typed."""
    return SlackTurn(
        source="command",
        team=str(body["team_id"]),
        enterprise=body.get("enterprise_id") or None,
        enterprise_install=_true(body.get("is_enterprise_install")),
        channel=str(body["channel_id"]),
        user=str(body["user_id"]),
        user_name=str(body.get("user_name") or ""),
        text=plain_text(str(body.get("text") or "")),
        event_id=f"cmd:{body['trigger_id']}",
        response_url=body.get("response_url") or None,
        command=str(body.get("command") or ""),
    )


def from_event(
    body: dict[str, Any], *, bot_user_id: str | None, assistant: bool = False
) -> SlackTurn | None:
    """An Events API envelope (``app_mention`` / ``message``) → a turn, or None to stay silent.

    `assistant` marks a user message in a Slack assistant thread (Bolt's `Assistant` decides).
    """
    event = body.get("event") or {}
    if event.get("type") not in ("app_mention", "message"):
        return None
    if event.get("subtype") not in _SPOKEN_SUBTYPES or event.get("bot_id"):
        return None
    user, channel, ts = event.get("user"), event.get("channel"), event.get("ts")
    if not user or not channel or not ts or user == bot_user_id:
        return None
    raw = str(event.get("text") or "")
    thread_ts = event.get("thread_ts") or None
    mentioned = event["type"] == "app_mention" or (
        bot_user_id is not None and f"<@{bot_user_id}" in raw
    )
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
    authorization = (body.get("authorizations") or [{}])[0]
    return SlackTurn(
        source=source,
        team=str(body.get("team_id") or event.get("team") or ""),
        enterprise=body.get("enterprise_id") or None,
        enterprise_install=_true(authorization.get("is_enterprise_install")),
        channel=str(channel),
        user=str(user),
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
    if body.get("type") != "block_actions" or not body.get("actions"):
        return None
    value = str(body["actions"][0].get("value") or "").strip()
    user = body.get("user") or {}
    container = body.get("container") or {}
    channel = (body.get("channel") or {}).get("id") or container.get("channel_id")
    if not value or not user.get("id") or not channel:
        return None  # a link button, or a press outside a conversation (App Home, modal)
    message = body.get("message") or {}
    if container.get("is_ephemeral"):
        # An ephemeral message is no thread parent; answer where it was shown.
        thread = container.get("thread_ts") or None
    else:
        thread = message.get("thread_ts") or message.get("ts") or container.get("message_ts")
    event_id = f"act:{body['trigger_id']}"
    team = (body.get("team") or {}).get("id") or user.get("team_id") or ""
    return SlackTurn(
        source="action",
        team=str(team),
        enterprise=(body.get("enterprise") or {}).get("id") or None,
        enterprise_install=_true(body.get("is_enterprise_install")),
        channel=str(channel),
        user=str(user["id"]),
        user_name=str(user.get("username") or user.get("name") or ""),
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

"""Discord events → what the core understands. Pure functions over discord.py objects, no I/O.

pipebot answers four kinds of thing on Discord: ``/pipebot …`` app commands, presses of its
buttons, messages that mention it (in a channel, or in a thread) and direct messages. Each
becomes a `DiscordTurn`: the part of the event answering needs later — it is the job's payload,
so it holds no bot token (an interaction's own token is kept: it is the only way to answer the
interaction, and it dies after 15 minutes).

Keys: ``event_id`` is ``int:{interaction id}`` or ``msg:{message id}``; a gateway that replays an
event after a reconnect delivers the same id, and `job_key` (``discord:{guild}:{event_id}``)
collapses it.

Conversations: a mention in a channel is answered in a new thread started from the mention —
Discord gives that thread the id of the message, so the conversation key is known before the
thread exists and a retry cannot open a second one; a message in a thread continues the
thread's conversation; a DM channel is one conversation; an app command or a button press is a
conversation of its own.
"""

from __future__ import annotations

import re
import shlex
from dataclasses import dataclass, replace

import discord

from bot.messages import InboundMessage

PLATFORM = "discord"
# The workspace of direct messages (Discord's own name for "no server" in its URLs).
DM_WORKSPACE = "@me"
# A button's custom id: this prefix, then the command line it sends.
BUTTON_PREFIX = "pipebot:"
_MENTION = re.compile(r"<@!?(\d+)>")
_THREAD_TYPES = (
    discord.ChannelType.public_thread,
    discord.ChannelType.private_thread,
    discord.ChannelType.news_thread,
)


@dataclass(frozen=True, kw_only=True)
class DiscordTurn:
    """One thing said to pipebot on Discord, reduced to what answering it needs."""

    source: str  # command | button | mention | message | dm
    guild: str  # "" in a DM
    channel: str  # where it was said (a thread's id inside a thread)
    user: str
    text: str
    event_id: str
    conversation: str
    parent: str = ""  # the channel a thread belongs to
    user_name: str = ""
    roles: tuple[str, ...] = ()
    # A mention in a channel: the message to start the answer's thread from.
    thread_from: str = ""
    # An interaction (command, button): how to answer it while its token lives.
    interaction_id: str = ""
    interaction_token: str = ""
    application_id: str = ""
    # When the event happened (seconds since the epoch; an interaction's token counts from it).
    created_at: float = 0.0

    @property
    def workspace(self) -> str:
        return self.guild or DM_WORKSPACE

    @property
    def job_key(self) -> str:
        return f"{PLATFORM}:{self.workspace}:{self.event_id}"

    @property
    def interaction(self) -> bool:
        return bool(self.interaction_token)

    @property
    def reply_channel(self) -> str:
        """Where the answer goes: the new thread for a mention in a channel, else where it was
        said."""
        return self.thread_from or self.channel


def to_inbound(turn: DiscordTurn) -> InboundMessage:
    """The core's view of `turn`: said where it is answered (a mention's thread), inside the
    channel it came from, inside its server."""
    outer = (turn.channel if turn.thread_from else "", turn.parent, turn.guild)
    return InboundMessage(
        platform=PLATFORM,
        workspace=turn.workspace,
        channel=turn.reply_channel,
        thread=turn.conversation,
        user=turn.user,
        user_name=turn.user_name,
        text=turn.text,
        event_id=turn.event_id,
        roles=turn.roles,
        within=tuple(x for x in outer if x),
    )


def from_interaction(interaction: discord.Interaction, text: str, *, source: str) -> DiscordTurn:
    """An app command (its text in the core's grammar) or a button press (its command line)."""
    channel = interaction.channel
    return DiscordTurn(
        source=source,
        guild=str(interaction.guild_id or ""),
        channel=str(interaction.channel_id or ""),
        parent=_parent(channel),
        user=str(interaction.user.id),
        user_name=_name(interaction.user),
        roles=_roles(interaction.user),
        text=text,
        event_id=f"int:{interaction.id}",
        conversation=f"int:{interaction.id}",
        interaction_id=str(interaction.id),
        interaction_token=interaction.token,
        application_id=str(interaction.application_id),
        created_at=interaction.created_at.timestamp(),
    )


def from_message(
    message: discord.Message, *, bot_id: int, follow_threads: bool = False
) -> DiscordTurn | None:
    """A message → a turn, or None when pipebot should stay silent.

    Answered: DMs, messages that mention pipebot, and — with `follow_threads` (the
    message-content intent) — any message in a thread; whether pipebot takes part in that
    thread is the caller's question (it asks the store).
    """
    author = message.author
    if author.bot or author.id == bot_id or message.type not in _SPOKEN:
        return None
    channel = message.channel
    in_thread = getattr(channel, "type", None) in _THREAD_TYPES
    is_dm = message.guild is None
    mentioned = any(user.id == bot_id for user in message.mentions)
    turn = DiscordTurn(
        source="dm",
        guild=str(message.guild.id) if message.guild else "",
        channel=str(channel.id),
        parent=_parent(channel),
        user=str(author.id),
        user_name=_name(author),
        roles=_roles(author),
        text=plain_text(message.content, bot_id=bot_id),
        event_id=f"msg:{message.id}",
        conversation=str(channel.id),
        created_at=message.created_at.timestamp(),
    )
    if is_dm:
        return turn
    if in_thread and (mentioned or follow_threads):
        return replace(turn, source="mention" if mentioned else "message")
    if mentioned:
        return replace(
            turn, source="mention", conversation=str(message.id), thread_from=str(message.id)
        )
    return None


def command_line(name: str, *args: str | int | None) -> str:
    """An app command's subcommand and options as the line a person would type."""
    words = [name, *(str(a) for a in args if a not in (None, ""))]
    return " ".join(shlex.quote(w) if w != name else w for w in words)


def button_id(command: str) -> str:
    """A button's custom id for the command line it sends (Discord allows 100 characters)."""
    return (BUTTON_PREFIX + command)[:100]


def plain_text(content: str, *, bot_id: int) -> str:
    """A message's text without pipebot's own mention; other mentions stay as they are."""
    text = _MENTION.sub(lambda m: "" if m.group(1) == str(bot_id) else m.group(0), content)
    return " ".join(text.split())


_SPOKEN = (discord.MessageType.default, discord.MessageType.reply)


def _parent(channel: object) -> str:
    parent = getattr(channel, "parent_id", None)
    return str(parent) if parent else ""


def _name(user: discord.abc.User) -> str:
    return user.display_name or user.name


def _roles(user: discord.abc.User) -> tuple[str, ...]:
    if not isinstance(user, discord.Member):
        return ()
    return tuple(str(role.id) for role in user.roles if not role.is_default())

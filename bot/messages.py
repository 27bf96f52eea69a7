"""The core's message model: what comes in (`InboundMessage`) and what goes out (`Reply`).

Both are frozen values. Handlers build an `InboundMessage` with a pure ``to_inbound()`` and
render a `Reply` for their platform; the core never sees a platform payload and never posts.

A `Reply` is a small document, not markup: text fields hold plain text in which only
`` `code` `` spans are meaningful, so every renderer (Block Kit, Discord, Markdown, Rich, JSON)
can represent it faithfully.

Example::

    Reply(
        title="orders_daily failed",
        tone=Tone.ERROR,
        sections=(Section(fields=(Field("Task", "transform"), Field("Try", "2 of 3"))),),
        sources=("Airflow · GET /api/v2/dags/orders_daily/dagRuns",),
    )
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from enum import StrEnum
from typing import TypeAlias

from bot import phrases


@dataclass(frozen=True, kw_only=True)
class ThreadRef:
    """Where a conversation lives: one thread in one channel of one workspace."""

    platform: str
    workspace: str
    channel: str
    thread: str

    @property
    def key(self) -> str:
        return f"{self.platform}:{self.workspace}:{self.channel}:{self.thread}"


@dataclass(frozen=True, kw_only=True)
class InboundMessage:
    """One thing a person (or a system) said to pipebot.

    `event_id` is the platform's delivery id and the de-duplication key: the same event
    delivered twice carries the same id. `text` is what the user typed, without the bot
    mention; the core decides whether it is a command or a question.
    """

    platform: str
    workspace: str
    channel: str
    thread: str
    user: str
    text: str
    event_id: str
    user_name: str = ""
    received_at: datetime = field(default_factory=lambda: datetime.now(UTC))
    # The asker's roles where the platform has them (Discord), for access rules.
    roles: tuple[str, ...] = ()
    # What contains `channel` (a thread's parent channel, the server), for access rules.
    within: tuple[str, ...] = ()

    @property
    def thread_ref(self) -> ThreadRef:
        return ThreadRef(
            platform=self.platform,
            workspace=self.workspace,
            channel=self.channel,
            thread=self.thread,
        )

    @property
    def dedupe_key(self) -> str:
        return f"{self.platform}:{self.workspace}:{self.event_id}"


class Tone(StrEnum):
    """How a reply should feel: colours and emoji in the renderers."""

    INFO = "info"
    SUCCESS = "success"
    WARNING = "warning"
    ERROR = "error"


@dataclass(frozen=True)
class Field:
    """A label and its value, shown side by side (Block Kit fields, a table row)."""

    label: str
    value: str


@dataclass(frozen=True, kw_only=True)
class Code:
    """A code or log excerpt, shown verbatim in a monospaced block."""

    text: str
    language: str = ""
    title: str = ""
    # Set when the excerpt was cut: how many characters the full text had.
    truncated_from: int | None = None


@dataclass(frozen=True)
class Link:
    label: str
    url: str


@dataclass(frozen=True)
class Image:
    url: str
    alt: str


@dataclass(frozen=True, kw_only=True)
class Action:
    """A button. `action_id` names what it does; `value` carries the context it needs."""

    label: str
    action_id: str
    value: str = ""
    style: str = ""  # "", "primary" or "danger"
    url: str = ""  # a link button when set


@dataclass(frozen=True, kw_only=True)
class Section:
    """One block of a reply; every part is optional."""

    heading: str = ""
    text: str = ""
    fields: tuple[Field, ...] = ()
    bullets: tuple[str, ...] = ()
    code: Code | None = None
    links: tuple[Link, ...] = ()
    image: Image | None = None


@dataclass(frozen=True, kw_only=True)
class Reply:
    """What the core answers. Handlers render it; nobody mutates it."""

    title: str = ""
    tone: Tone = Tone.INFO
    text: str = ""
    sections: tuple[Section, ...] = ()
    actions: tuple[Action, ...] = ()
    # What was consulted to build this reply, e.g. "Airflow · GET /api/v2/dags/x/dagRuns".
    sources: tuple[str, ...] = ()
    # Small print under the reply: caveats, "as of", what could not be checked.
    notes: tuple[str, ...] = ()
    # Shown only to the person who asked, where the platform supports it.
    ephemeral: bool = False
    # What a reader opens when the top lines are not enough: posted in the reply's thread
    # (Slack, Discord), collapsed (Markdown), after the rest in plain text.
    details: tuple[Section, ...] = ()

    @classmethod
    def failed(cls, ref: str) -> Reply:
        """What a person sees when answering failed: no exception text, a reference the
        operator finds in the logs."""
        return cls(
            title="Sorry — that failed",
            tone=Tone.ERROR,
            text=phrases.INTERNAL_ERROR.format(ref=ref),
        )


# A playbook or the agent reports what it is doing ("Airflow: reading log of transform, try 2");
# the handler shows it (an updated "working…" message, a console spinner).
Progress: TypeAlias = Callable[[str], None]


def no_progress(status: str) -> None:
    """The progress callback for callers that show no progress."""

"""Chat commands: their names, usage and the playbook each one runs.

The same commands work everywhere (Slack ``/pipebot …``, Discord, console lines, mentions).
`Commands.route` decides whether a line is a command, a mistyped command (answered with
"did you mean") or a free-form question for the agent.
"""

from __future__ import annotations

import difflib
import shlex
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field

from bot.messages import InboundMessage, Progress, Reply
from bot.ports import Sources


@dataclass(frozen=True, kw_only=True)
class Request:
    """What a playbook receives."""

    message: InboundMessage
    args: tuple[str, ...]
    sources: Sources
    progress: Progress
    conversation_id: int | None = None


@dataclass(frozen=True, kw_only=True)
class Command:
    name: str
    usage: str  # e.g. "dag <dag_id>"
    summary: str
    run: Callable[[Request], Reply]
    # Access-control group (settings grant groups to channels and users).
    group: str = "read"
    # Subcommands in another group, e.g. {"schedule": "digest"} for `digest schedule …`.
    subgroups: Mapping[str, str] = field(default_factory=dict)
    # The sources a line needs (``airflow``, ``dbt``, ``warehouse``; ``any`` = Airflow or dbt):
    # without them the shell exits 2 before running (`Sources.missing`).
    needs: Callable[[Sequence[str]], tuple[str, ...]] = field(default=lambda _args: ())

    def group_for(self, args: Sequence[str]) -> str:
        return self.subgroups.get(args[0].lower(), self.group) if args else self.group


@dataclass(frozen=True, kw_only=True)
class Routed:
    """The outcome of routing one line of text."""

    command: Command | None = None
    args: tuple[str, ...] = ()
    question: str = ""  # free text for the agent
    unknown: str = ""  # a word that looked like a command but is not one
    suggestions: tuple[str, ...] = ()


class Commands:
    def __init__(self, commands: Sequence[Command]) -> None:
        self._by_name = {command.name: command for command in commands}

    def __iter__(self) -> Iterator[Command]:
        return iter(self._by_name.values())

    @property
    def names(self) -> list[str]:
        return list(self._by_name)

    def get(self, name: str) -> Command | None:
        return self._by_name.get(name)

    def route(self, text: str) -> Routed:
        text = text.strip()
        if text.startswith("/pipebot"):
            text = text[len("/pipebot") :].strip()
        words = _split(text)
        if not words:
            return Routed(command=self._by_name.get("help"))
        first = words[0].lower()
        if first in self._by_name:
            return Routed(command=self._by_name[first], args=tuple(words[1:]))
        if first == "ask":
            return Routed(question=text[len(words[0]) :].strip())
        close = tuple(difflib.get_close_matches(first, [*self._by_name, "ask"], n=3, cutoff=0.75))
        # A single word, or a near-miss of a command name, is a mistyped command; anything
        # longer is a question in plain language.
        if (close and len(words) <= 3) or (len(words) == 1 and not first.endswith("?")):
            return Routed(unknown=words[0], suggestions=close)
        return Routed(question=text)


def _split(text: str) -> list[str]:
    try:
        return shlex.split(text)
    except ValueError:  # an unbalanced quote: fall back to whitespace
        return text.split()

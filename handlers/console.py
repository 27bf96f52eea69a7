"""The console channel: a local REPL for `pipebot chat` / `pipebot demo`, and the pipe mode
the README quickstart and end-to-end tests use.

Interactive (stdin is a terminal): prompt with history, a spinner that shows the agent's and
playbooks' progress, replies rendered with Rich. Piped: one message per line, each reply printed
in the chosen format, exit 0 at end of input.

Like every handler it only translates: text → `InboundMessage`, `Reply` → output.
"""

from __future__ import annotations

import getpass
import sys
import uuid
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import TextIO

from rich import box
from rich.console import Console, Group, RenderableType
from rich.markdown import Markdown
from rich.panel import Panel
from rich.syntax import Syntax
from rich.table import Table
from rich.text import Text

from bot.messages import InboundMessage, Reply, Tone
from bot.rendering import to_json, to_markdown, to_text
from bot.terminal import without_escapes
from bot.tools import Check

PLATFORM = "console"
FORMATS = ("rich", "text", "markdown", "json")
_EXIT = {"exit", "quit", ":q"}
_TONE_STYLE = {Tone.INFO: "cyan", Tone.SUCCESS: "green", Tone.WARNING: "yellow", Tone.ERROR: "red"}

Handle = Callable[[InboundMessage, Callable[[str], None]], Reply | None]


def to_inbound(line: str, *, session: str, user: str) -> InboundMessage:
    """One console line → an `InboundMessage`; the whole session is one thread."""
    return InboundMessage(
        platform=PLATFORM,
        workspace="local",
        channel="console",
        thread=session,
        user=user,
        user_name=user,
        text=line.strip(),
        event_id=uuid.uuid4().hex,
    )


def render_rich(reply: Reply) -> RenderableType:
    """A `Reply` as a Rich panel: title bar coloured by tone, sections, fields as a table."""
    parts: list[RenderableType] = []
    if reply.text:
        parts.append(Markdown(reply.text))
    # A terminal cannot collapse: the details follow the top lines.
    for section in (*reply.sections, *reply.details):
        if section.heading:
            parts.append(Text(section.heading, style="bold"))
        if section.text:
            parts.append(Markdown(section.text))
        if section.fields:
            table = Table(box=None, show_header=False, padding=(0, 2, 0, 0))
            table.add_column(style="dim")
            table.add_column()
            for field in section.fields:
                table.add_row(field.label, Markdown(field.value))
            parts.append(table)
        if section.bullets:
            parts.append(Markdown("\n".join(f"- {b}" for b in section.bullets)))
        if section.code is not None:
            code = section.code
            parts.append(
                Panel(
                    Syntax(code.text, code.language or "text", word_wrap=True),
                    title=code.title or None,
                    subtitle=f"truncated: excerpt of {code.truncated_from:,} characters"
                    if code.truncated_from is not None
                    else None,
                    box=box.SIMPLE,
                )
            )
        for link in section.links:
            parts.append(Text.assemble((link.label, "underline"), " ", (link.url, "blue")))
        if section.image is not None:
            # A chart pipebot drew is a file: its path is printed to open it.
            path = section.image.url.removeprefix("file://")
            parts.append(Text(f"[image] {section.image.alt}: {path}", style="dim"))
    # No buttons in a terminal: link buttons become links, the others are left out.
    parts.extend(Text(f"{a.label}: {a.url}", style="dim") for a in reply.actions if a.url)
    footer = []
    if reply.sources:
        footer.append("Sources: " + "; ".join(reply.sources))
    footer.extend(reply.notes)
    if footer:
        parts.append(Text("\n".join(footer), style="dim italic"))
    return Panel(
        Group(*parts) if parts else Text(""),
        title=Text(reply.title, style=f"bold {_TONE_STYLE[reply.tone]}") if reply.title else None,
        title_align="left",
        border_style=_TONE_STYLE[reply.tone],
        box=box.ROUNDED,
    )


def render(reply: Reply, fmt: str) -> str | RenderableType:
    if fmt == "rich":
        return render_rich(without_escapes(reply))  # the others strip them themselves
    if fmt == "markdown":
        return to_markdown(reply)
    if fmt == "json":
        return to_json(reply, indent=None) + "\n"
    return to_text(reply)


class ConsoleChannel:
    """Reads lines, asks the core, prints replies."""

    def __init__(
        self,
        handle: Handle,
        *,
        fmt: str | None = None,
        banner: str = "",
        history_file: Path | None = None,
        stdin: TextIO | None = None,
        stdout: TextIO | None = None,
    ) -> None:
        self._handle = handle
        self._stdin = stdin or sys.stdin
        self._console = Console(file=stdout or sys.stdout, soft_wrap=False, highlight=False)
        self._interactive = self._stdin.isatty() and self._console.is_terminal
        self._fmt = fmt or ("rich" if self._interactive else "text")
        self._banner = banner
        self._history_file = history_file
        self._session = uuid.uuid4().hex[:12]
        self._user = _user()

    def run(self) -> int:
        if self._interactive:
            return self._repl()
        for line in self._stdin:
            if line.strip():
                self._answer(line)
        return 0

    def _lines(self) -> Iterable[str]:
        from prompt_toolkit import PromptSession
        from prompt_toolkit.history import FileHistory, InMemoryHistory

        history = FileHistory(str(self._history_file)) if self._history_file else InMemoryHistory()
        prompt: PromptSession[str] = PromptSession(history=history)
        while True:
            try:
                yield prompt.prompt("pipebot › ")
            except KeyboardInterrupt:
                continue
            except EOFError:
                return

    def _repl(self) -> int:
        if self._banner:
            self._console.print(Text(self._banner, style="dim"))
        for line in self._lines():
            if line.strip().lower() in _EXIT:
                break
            if line.strip():
                self._answer(line)
        return 0

    def _answer(self, line: str) -> None:
        message = to_inbound(line, session=self._session, user=self._user)
        if self._interactive:
            with self._console.status("working…", spinner="dots") as status:
                reply = self._handle(message, lambda text: status.update(f"{text}…"))
        else:
            reply = self._handle(message, lambda text: None)
        if reply is None:
            return
        output = render(reply, self._fmt)
        if isinstance(output, str):
            self._console.file.write(output if self._fmt == "json" else output + "\n")
            self._console.file.flush()
        else:
            self._console.print(output)


def print_checks(
    checks: Sequence[Check],
    *,
    store: tuple[bool, str],
    nothing_configured: bool = False,
    stdout: TextIO | None = None,
) -> bool:
    """`pipebot doctor`'s table; True when every check passed."""
    console = Console(file=stdout or sys.stdout, highlight=False)
    table = Table(box=box.SIMPLE_HEAVY)
    for column in ("", "part", "target", "result"):
        table.add_column(column)
    ok = store[0]
    table.add_row(_mark(store[0]), "bot database", "", store[1])
    for check in checks:
        ok = ok and check.ok
        detail = check.detail + (f" (version {check.version})" if check.version else "")
        table.add_row(_mark(check.ok), check.system, check.target, detail)
    if nothing_configured:
        table.add_row(
            "✗",
            "configuration",
            "",
            "nothing configured: no Airflow, dbt or warehouse, no Slack or Discord "
            "(docs/configuration.md; `pipebot demo` needs nothing)",
        )
    if not any(c.system == "agent" for c in checks):
        table.add_row("–", "agent", "", "no API key: commands work, free-form questions don't")
    console.print(table)
    if nothing_configured:
        console.print("nothing configured", style="red")
    else:
        console.print(
            "all checks passed" if ok else "some checks failed", style="green" if ok else "red"
        )
    return ok and not nothing_configured


def _mark(ok: bool) -> str:
    return "✓" if ok else "✗"


def _user() -> str:
    try:
        return getpass.getuser()
    except (KeyError, OSError):  # no passwd entry in some containers
        return "console"

"""The console channel in pipe mode, end to end through the real core and store."""

from __future__ import annotations

import io
import json

import pytest

from bot.conversation import Conversation
from bot.playbooks import default_commands
from bot.ports import Sources
from bot.store import Store
from bot.tools import Check
from handlers.console import ConsoleChannel, print_checks, to_inbound


@pytest.fixture
def conversation(sqlite_store: Store) -> Conversation:
    return Conversation(store=sqlite_store, commands=default_commands(), sources=Sources())


def run(conversation: Conversation, lines: str, fmt: str | None = None) -> str:
    out = io.StringIO()
    channel = ConsoleChannel(conversation.handle, fmt=fmt, stdin=io.StringIO(lines), stdout=out)
    assert channel.run() == 0
    return out.getvalue()


def test_pipe_mode_answers_each_line_in_text(conversation: Conversation) -> None:
    out = run(conversation, "help\n\nstatus\n")
    assert out.count("pipebot — your read-only data-engineering colleague") == 1
    assert "Nothing to report yet" in out
    assert "\x1b[" not in out  # no terminal escapes in a pipe


def test_json_lines(conversation: Conversation) -> None:
    out = run(conversation, "help\nstauts\n", fmt="json")
    docs = [json.loads(line) for line in out.splitlines()]
    assert [d["title"] for d in docs] == [
        "pipebot — your read-only data-engineering colleague",
        "Unknown command",
    ]


def test_one_session_is_one_thread(conversation: Conversation, sqlite_store: Store) -> None:
    run(conversation, "help\nstatus\n")
    first = to_inbound("x", session="s", user="u")
    assert first.thread == "s" and first.platform == "console"
    with sqlite_store.engine.connect() as connection:
        from sqlalchemy import text

        threads = connection.execute(text("select count(*) from conversations")).scalar()
        messages = connection.execute(text("select count(*) from messages")).scalar()
    assert threads == 1 and messages == 4


def test_rich_rendering_in_a_file(conversation: Conversation) -> None:
    out = run(conversation, "help\n", fmt="rich")
    assert "╭" in out and "status" in out


def test_doctor_table() -> None:
    out = io.StringIO()
    ok = print_checks(
        [
            Check(
                system="Airflow",
                ok=False,
                detail="cannot connect (connection refused)",
                target="http://127.0.0.1:9",
            )
        ],
        store=(True, "sqlite:///x.db at revision 0001"),
        stdout=out,
    )
    assert not ok
    text = out.getvalue()
    assert "Airflow" in text and "connection refused" in text and "some checks failed" in text

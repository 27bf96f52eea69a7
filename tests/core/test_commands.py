"""Routing of a line of text: command, mistyped command, or question."""

from __future__ import annotations

import pytest

from bot.playbooks import default_commands

COMMANDS = default_commands()


@pytest.mark.parametrize(
    ("text", "command", "args"),
    [
        ("help", "help", ()),
        ("", "help", ()),
        ("status", "status", ()),
        ("STATUS", "status", ()),
        ("/pipebot dag orders_daily", "dag", ("orders_daily",)),
        ("runs", "runs", ()),
        ('lineage "fct_orders"', "lineage", ("fct_orders",)),
    ],
)
def test_commands_are_recognised(text: str, command: str, args: tuple[str, ...]) -> None:
    routed = COMMANDS.route(text)
    assert routed.command is not None and routed.command.name == command
    assert routed.args == args


@pytest.mark.parametrize(
    ("text", "suggestion"),
    [("stauts", "status"), ("lineag fct_orders", "lineage"), ("freshnes", "freshness")],
)
def test_near_misses_get_did_you_mean(text: str, suggestion: str) -> None:
    routed = COMMANDS.route(text)
    assert routed.command is None and routed.unknown
    assert suggestion in routed.suggestions


def test_single_unknown_word_is_an_unknown_command() -> None:
    routed = COMMANDS.route("frobnicate")
    assert routed.unknown == "frobnicate" and routed.suggestions == ()


@pytest.mark.parametrize(
    "text",
    [
        "why did orders_daily fail?",
        "what reads fct_orders.amount?",
        "who owns the revenue dashboard",
    ],
)
def test_sentences_are_questions(text: str) -> None:
    routed = COMMANDS.route(text)
    assert routed.command is None and not routed.unknown
    assert routed.question == text


def test_ask_prefix_is_stripped() -> None:
    assert COMMANDS.route("ask why is it slow?").question == "why is it slow?"


def test_unbalanced_quotes_do_not_crash() -> None:
    routed = COMMANDS.route('dag "orders')
    assert routed.command is not None and routed.args == ('"orders',)

"""Pure converters: Slack payloads → `SlackTurn` → the core's `InboundMessage`.

Payload shapes follow docs.slack.dev (events app_mention and message, slash command form
fields, block_actions interaction payload)."""

from __future__ import annotations

import json
import urllib.parse
from typing import Any

import msgspec
import pytest

from bot.work import encode
from handlers.slack.inbound import (
    DM_CONVERSATION,
    SlackTurn,
    from_action,
    from_command,
    from_event,
    plain_text,
    to_inbound,
)
from tests.slack.conftest import actions_body, command_body, event_envelope, mention


def form(body: str) -> dict[str, Any]:
    return dict(urllib.parse.parse_qsl(body))


def test_slash_command_text_goes_to_the_core_as_typed() -> None:
    body = form(command_body("triage orders_daily  &lt;latest&gt;", trigger_id="trig-1"))
    turn = from_command(body)
    assert turn.source == "command" and turn.event_id == "cmd:trig-1"
    assert turn.job_key == "slack:T1:cmd:trig-1"
    assert turn.text == "triage orders_daily <latest>"
    assert turn.reply_thread is None and turn.conversation == ""
    assert "token" not in json.dumps(encode(turn))  # the legacy token is not kept
    inbound = to_inbound(turn, opened_ts="1700000000.000100")
    assert inbound.thread == "1700000000.000100"  # pipebot's first message opens the thread
    assert (inbound.platform, inbound.workspace, inbound.channel) == ("slack", "T1", "C1")
    assert inbound.dedupe_key == "slack:T1:cmd:trig-1"


def test_mention_in_a_thread_keys_the_conversation_by_the_parent() -> None:
    body = event_envelope(mention("why did orders fail?", ts="2.0", thread_ts="1.0"))
    turn = from_event(body, bot_user_id="UBOT")
    assert turn is not None
    assert turn.text == "why did orders fail?"
    assert turn.reply_thread == "1.0" and turn.conversation == "1.0"
    assert turn.event_id == "msg:C1:2.0"
    assert to_inbound(turn).thread == "1.0"


def test_the_message_twin_of_a_mention_has_the_same_keys() -> None:
    mention_turn = from_event(event_envelope(mention("help", ts="3.0")), bot_user_id="UBOT")
    twin = {
        "type": "message",
        "channel_type": "channel",
        "channel": "C1",
        "user": "U1",
        "text": "<@UBOT|pipebot> help",
        "ts": "3.0",
    }
    twin_turn = from_event(event_envelope(twin), bot_user_id="UBOT")
    assert mention_turn is not None and twin_turn is not None
    assert twin_turn.job_key == mention_turn.job_key
    assert twin_turn.text == mention_turn.text == "help"
    assert not twin_turn.follow_up


def test_dms_top_level_and_in_threads() -> None:
    dm = {
        "type": "message",
        "channel_type": "im",
        "channel": "D1",
        "user": "U1",
        "text": "status",
        "ts": "4.0",
    }
    top = from_event(event_envelope(dm), bot_user_id="UBOT")
    assert top is not None and top.reply_thread is None and top.conversation == DM_CONVERSATION
    threaded = from_event(event_envelope({**dm, "thread_ts": "3.9"}), bot_user_id="UBOT")
    assert threaded is not None and threaded.reply_thread == "3.9"
    assistant = from_event(
        event_envelope({**dm, "thread_ts": "3.9"}), bot_user_id="UBOT", assistant=True
    )
    assert assistant is not None and assistant.source == "assistant"


def test_unmentioned_thread_messages_are_follow_ups_and_chatter_is_ignored() -> None:
    msg = {
        "type": "message",
        "channel_type": "channel",
        "channel": "C1",
        "user": "U1",
        "text": "and yesterday?",
        "ts": "5.1",
        "thread_ts": "5.0",
    }
    turn = from_event(event_envelope(msg), bot_user_id="UBOT")
    assert turn is not None and turn.follow_up and turn.conversation == "5.0"
    del msg["thread_ts"]
    assert from_event(event_envelope(msg), bot_user_id="UBOT") is None


@pytest.mark.parametrize(
    "change",
    [
        {"subtype": "message_changed"},
        {"subtype": "message_deleted"},
        {"subtype": "channel_join"},
        {"subtype": "bot_message", "bot_id": "B2"},
        {"bot_id": "B2"},
        {"user": "UBOT"},
        {"user": None},
        {"type": "reaction_added"},
    ],
)
def test_what_pipebot_never_answers(change: dict[str, Any]) -> None:
    event = {
        "type": "message",
        "channel_type": "im",
        "channel": "D1",
        "user": "U1",
        "text": "status",
        "ts": "6.0",
        **change,
    }
    assert from_event(event_envelope(event), bot_user_id="UBOT") is None


def test_thread_broadcasts_are_ordinary_replies() -> None:
    event = {
        "type": "message",
        "subtype": "thread_broadcast",
        "channel_type": "channel",
        "channel": "C1",
        "user": "U1",
        "text": "<@UBOT> status",
        "ts": "7.1",
        "thread_ts": "7.0",
    }
    turn = from_event(event_envelope(event), bot_user_id="UBOT")
    assert turn is not None and turn.reply_thread == "7.0" and turn.text == "status"


def test_button_press_sends_its_value_as_the_presser() -> None:
    body = json.loads(form(actions_body("triage orders_daily r1", message_ts="8.0"))["payload"])
    turn = from_action(body)
    assert turn is not None
    assert (turn.user, turn.text, turn.reply_thread) == ("U2", "triage orders_daily r1", "8.0")
    assert turn.event_id == f"act:{body['trigger_id']}"
    in_thread = {**body, "message": {**body["message"], "thread_ts": "7.5"}}
    assert from_action(in_thread).reply_thread == "7.5"  # type: ignore[union-attr]
    link = {**body, "actions": [{**body["actions"][0], "value": ""}]}
    assert from_action(link) is None


def test_plain_text_undoes_slack_markup() -> None:
    raw = "<@UBOT> lineage <#C9|data-eng> &lt;fct&gt; &amp; <https://x.io/a?b=1|x.io> <!here> <@U7>"
    assert (
        plain_text(raw, bot_user_id="UBOT")
        == "lineage #data-eng <fct> & https://x.io/a?b=1 @here <@U7>"
    )


def test_turns_survive_the_job_payload() -> None:
    turn = from_command(form(command_body("status")))
    assert turn is not None
    assert msgspec.convert(json.loads(json.dumps(encode(turn))), SlackTurn) == turn

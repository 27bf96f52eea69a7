"""deploy/slack-app-manifest.yaml says exactly what the code uses: the events the Bolt app
answers, the scopes of the Web API methods it calls, the slash command and interactivity."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest
import yaml

from bot.settings import SLACK_BOT_SCOPES, SlackSettings
from handlers.slack.app import BOT_EVENTS, WEB_API_METHODS
from tests.slack.conftest import SlackStack, event_envelope

ROOT = Path(__file__).parents[2]
MANIFEST = yaml.safe_load((ROOT / "deploy" / "slack-app-manifest.yaml").read_text())

# Scopes per Web API method (docs.slack.dev/reference/methods/*). None: needs no bot scope
# (auth.test, the OAuth exchange, or an app-level token with connections:write).
METHOD_SCOPES: dict[str, str | None] = {
    "apps.connections.open": None,
    "assistant.threads.setStatus": "assistant:write",
    "assistant.threads.setSuggestedPrompts": "assistant:write",
    "auth.test": None,
    "chat.appendStream": "chat:write",
    "chat.delete": "chat:write",
    "chat.postEphemeral": "chat:write",
    "chat.postMessage": "chat:write",
    "chat.startStream": "chat:write",
    "chat.stopStream": "chat:write",
    "chat.update": "chat:write",
    "files.completeUploadExternal": "files:write",
    "files.getUploadURLExternal": "files:write",
    "oauth.v2.access": None,
}
# Scopes per subscribed event (docs.slack.dev/reference/events/*).
EVENT_SCOPES = {
    "app_mention": "app_mentions:read",
    "assistant_thread_started": "assistant:write",
    "assistant_thread_context_changed": "assistant:write",
    "message.channels": "channels:history",
    "message.groups": "groups:history",
    "message.im": "im:history",
}
# Not tied to a method or event: the slash command, and posting where pipebot was not invited.
OTHER_SCOPES = {"commands", "chat:write.public"}


def manifest_scopes() -> set[str]:
    return set(MANIFEST["oauth_config"]["scopes"]["bot"])


def test_events_match_what_the_app_listens_to() -> None:
    assert sorted(MANIFEST["settings"]["event_subscriptions"]["bot_events"]) == sorted(BOT_EVENTS)


def test_scopes_are_exactly_what_the_code_needs() -> None:
    needed = {s for s in METHOD_SCOPES.values() if s} | set(EVENT_SCOPES.values()) | OTHER_SCOPES
    assert manifest_scopes() == needed
    assert set(SLACK_BOT_SCOPES) == needed  # what an OAuth install asks for
    assert set(SlackSettings().scopes) == needed


def test_every_web_api_method_the_code_calls_is_declared_and_scoped() -> None:
    source = "\n".join(p.read_text() for p in (ROOT / "handlers" / "slack").glob("*.py"))
    called = {
        _method_name(name)
        for name in re.findall(
            r"\.((?:chat|assistant_threads|apps|auth|oauth|files)_\w+)\(", source
        )
    }
    if "files.upload_v2" in called:  # slack_sdk's helper: two methods with the upload between
        called = (called - {"files.upload_v2"}) | {
            "files.getUploadURLExternal",
            "files.completeUploadExternal",
        }
    if "chat.stream" in called:  # slack_sdk's helper that calls the three streaming methods
        called = (called - {"chat.stream"}) | {
            "chat.startStream",
            "chat.appendStream",
            "chat.stopStream",
        }
    assert called
    assert called <= set(WEB_API_METHODS) - {"apps.connections.open", "oauth.v2.access"}
    assert set(WEB_API_METHODS) == set(METHOD_SCOPES)


def _method_name(python_name: str) -> str:
    special = {
        "assistant_threads_setStatus": "assistant.threads.setStatus",
        "assistant_threads_setSuggestedPrompts": "assistant.threads.setSuggestedPrompts",
        "auth_test": "auth.test",
        "apps_connections_open": "apps.connections.open",
        "oauth_v2_access": "oauth.v2.access",
    }
    return special.get(python_name, python_name.replace("_", ".", 1))


def test_slash_command_interactivity_socket_mode_and_assistant() -> None:
    features = MANIFEST["features"]
    assert [c["command"] for c in features["slash_commands"]] == ["/pipebot"]
    assert features["slash_commands"][0]["should_escape"] is False
    assert MANIFEST["settings"]["interactivity"]["is_enabled"] is True  # buttons
    assert MANIFEST["settings"]["socket_mode_enabled"] is True
    assert features["assistant_view"]["assistant_description"]
    assert features["app_home"]["messages_tab_enabled"] is True  # DMs
    assert 174 <= len(MANIFEST["display_information"]["long_description"]) <= 4000


def _event_for(name: str) -> dict[str, Any]:
    if name.startswith("message."):
        channel_type = {"channels": "channel", "groups": "group", "im": "im"}[name.split(".")[1]]
        return {
            "type": "message",
            "channel_type": channel_type,
            "channel": "C9",
            "user": "U1",
            "text": "hello",
            "ts": "9.0",
        }
    if name.startswith("assistant_thread"):
        thread = {"user_id": "U1", "channel_id": "D9", "thread_ts": "9.0", "context": {}}
        return {"type": name, "assistant_thread": thread, "event_ts": "9.1"}
    return {"type": name, "user": "U1", "text": "<@UBOT> hi", "ts": "9.0", "channel": "C9"}


@pytest.mark.parametrize("name", BOT_EVENTS)
def test_every_subscribed_event_is_handled(stack: SlackStack, name: str) -> None:
    # Bolt answers 404 to an event no listener handles, and Slack would retry it.
    body = json.dumps(event_envelope(_event_for(name)))
    assert stack.post(body, content_type="application/json").status_code == 200

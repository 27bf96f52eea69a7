"""The composition root builds the agent when a key is configured, and only then."""

from __future__ import annotations

from bot.compose import build_app
from bot.settings import Settings
from bot.store import Store
from tests.agent.support import airflow_toolset, failed_world, inbound, settings, sources
from tests.fakes.anthropic_api import FakeAnthropic, message, text


def test_free_text_reaches_the_agent(api: FakeAnthropic, sqlite_store: Store) -> None:
    api.script(message(text("Nothing failed last night.")))
    app = build_app(settings(api.url), sources(airflow_toolset(failed_world())), store=sqlite_store)
    reply = app.conversation.handle(inbound("did anything fail last night?"))
    assert reply is not None
    assert reply.sections[0].text == "Nothing failed last night."
    assert api.bodies[0]["messages"][0]["content"][-1]["text"] == "did anything fail last night?"


def test_without_a_key_there_is_no_agent(sqlite_store: Store) -> None:
    app = build_app(
        Settings(_env_file=None, agent={"api_key": None}), sources(), store=sqlite_store
    )
    reply = app.conversation.handle(inbound("did anything fail last night?"))
    assert reply is not None and reply.title == "The agent is not configured"

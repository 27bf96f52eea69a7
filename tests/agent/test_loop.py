"""The agent loop through the real SDK against the fake Messages API: stop reasons, tools,
progress, audit and the reply."""

from __future__ import annotations

import logging
from datetime import UTC, datetime
from typing import Any

import pytest

from bot.messages import Reply, Tone
from bot.store import Store
from tests.agent.support import (
    RUN_ID,
    ProgressLog,
    World,
    agent_for,
    airflow_toolset,
    conversation,
    failed_world,
    request_for,
    sources,
)
from tests.fakes.anthropic_api import FakeAnthropic, message, text, tool_use

LOG_CALL = {"dag_id": "orders_daily", "run_id": RUN_ID, "task_id": "transform", "try_number": 2}
TASKS_CALL = {"dag_id": "orders_daily", "run_id": RUN_ID, "states": ["failed"]}


def ask(
    api: FakeAnthropic,
    store: Store,
    world: World,
    question: str = "why did orders_daily fail?",
    *,
    progress: ProgressLog | None = None,
    conversation_id: int | None = None,
    **agent: Any,
) -> Reply:
    return agent_for(api.url, store, **agent).answer(
        question,
        history=[],
        request=request_for(
            sources(airflow_toolset(world)),
            progress=progress,
            conversation_id=conversation_id,
        ),
    )


def reply_text(reply: Reply) -> str:
    parts: list[str] = [reply.text] if reply.text else []
    for section in reply.sections:
        parts.extend([section.heading, section.text, *section.bullets])
    return "\n".join(p for p in parts if p)


def tool_results(body: dict[str, Any]) -> list[dict[str, Any]]:
    last = body["messages"][-1]
    return [b for b in last["content"] if b.get("type") == "tool_result"]


def test_tool_use_then_end_turn(api: FakeAnthropic, sqlite_store: Store) -> None:
    world = failed_world()
    first = tool_use("get_task_instances", TASKS_CALL)
    api.script(
        message(text("Looking at the failed run."), first),
        message(tool_use("get_task_log", LOG_CALL)),
        message(text("`transform` failed with `KeyError: 'amount'`.\n\n## Next steps\n- fix it")),
    )
    progress = ProgressLog()
    conversation_id = conversation(sqlite_store)

    reply = ask(api, sqlite_store, world, progress=progress, conversation_id=conversation_id)

    assert reply.tone is Tone.INFO
    assert reply.sections[0].text == "`transform` failed with `KeyError: 'amount'`."
    assert reply.sections[1].heading == "Next steps"
    assert reply.sections[1].bullets == ("fix it",)
    assert reply.sources == (
        f"Airflow · GET /api/v2/dags/orders_daily/dagRuns/{RUN_ID}/taskInstances",
        f"Airflow · GET /api/v2/dags/orders_daily/dagRuns/{RUN_ID}/taskInstances/transform/logs/2",
    )
    assert reply.notes == ()
    # The second request answers the first turn's tool_use with a matching tool_result first.
    second = api.bodies[1]
    assert second["messages"][-2]["content"][1]["id"] == first["id"]
    assert tool_results(second)[0]["tool_use_id"] == first["id"]
    assert tool_results(second)[0]["is_error"] is False
    assert progress.lines == [
        "Thinking about your question…",
        f"Airflow: reading failed tasks of orders_daily run {RUN_ID}",
        "Airflow: reading log of transform, try 2",
    ]
    # Audit: every tool call and every model call, with tokens, for this conversation.
    assert sqlite_store.audit.tool_calls(conversation_id=conversation_id) == [
        f"GET /api/v2/dags/orders_daily/dagRuns/{RUN_ID}/taskInstances",
        f"GET /api/v2/dags/orders_daily/dagRuns/{RUN_ID}/taskInstances/transform/logs/2",
    ]
    reported = sum(sum(r.response["usage"].values()) for r in api.messages_requests if r.response)
    used = sqlite_store.audit.tokens_used(
        since=datetime(2000, 1, 1, tzinfo=UTC), conversation_id=conversation_id
    )
    assert used == reported > 0


def test_request_shape(api: FakeAnthropic, sqlite_store: Store) -> None:
    api.script(message(text("Nothing failed.")))
    ask(api, sqlite_store, failed_world(), model="claude-haiku-5-5", max_tokens=1024)
    body = api.bodies[0]
    request = api.messages_requests[0]
    assert body["model"] == "claude-haiku-5-5"
    assert body["max_tokens"] == 1024
    assert body["tool_choice"] == {"type": "auto"}
    assert {"temperature", "top_p", "top_k"}.isdisjoint(body)
    assert request.headers["anthropic-version"] == "2026-10-21"
    assert [t["name"] for t in body["tools"]] == [
        "list_dag_runs",
        "get_task_instances",
        "get_task_log",
    ]
    assert body["tools"][0]["input_schema"]["required"] == ["dag_id"]
    context, question = body["messages"][0]["content"]
    assert question["text"] == "why did orders_daily fail?"
    assert "Time now: 2026-11-25 10:00 UTC" in context["text"]
    assert "Airflow (3 tools)" in context["text"]
    assert "warehouse (set PIPEBOT_WAREHOUSE__URL)" in context["text"]


def test_stop_sequence_is_a_final_answer(api: FakeAnthropic, sqlite_store: Store) -> None:
    api.script(message(text("Done here."), stop_reason="stop_sequence"))
    reply = ask(api, sqlite_store, failed_world())
    assert reply_text(reply) == "Done here."
    assert len(api.bodies) == 1


def test_pause_turn_is_sent_back_unchanged(api: FakeAnthropic, sqlite_store: Store) -> None:
    paused = message(text("Still working on it"), stop_reason="pause_turn")
    api.script(paused, message(text("Finished.")))
    reply = ask(api, sqlite_store, failed_world())
    assert reply_text(reply) == "Finished."
    second = api.bodies[1]["messages"]
    assert second[-1] == {"role": "assistant", "content": [text("Still working on it")]}
    assert second[:-1] == api.bodies[0]["messages"]


def test_truncated_tool_call_is_never_run_and_retried_with_more_room(
    api: FakeAnthropic, sqlite_store: Store
) -> None:
    world = failed_world()
    api.script(
        message(text("Let me read"), tool_use("get_task_log", LOG_CALL), stop_reason="max_tokens"),
        message(text("It failed on a KeyError.")),
    )
    reply = ask(api, sqlite_store, world, max_tokens=1000)
    assert world.calls == []
    assert [b["max_tokens"] for b in api.bodies] == [1000, 2000]
    assert api.bodies[1]["messages"] == api.bodies[0]["messages"]
    assert reply_text(reply) == "It failed on a KeyError."


def test_truncated_tool_call_twice_returns_partial_with_note(
    api: FakeAnthropic, sqlite_store: Store
) -> None:
    world = failed_world()
    cut = message(
        text("Partial thoughts"), tool_use("get_task_log", LOG_CALL), stop_reason="max_tokens"
    )
    api.script(cut, cut)
    reply = ask(api, sqlite_store, world)
    assert world.calls == []
    assert len(api.bodies) == 2
    assert reply_text(reply) == "Partial thoughts"
    assert "The answer was cut at the output limit." in reply.notes


def test_text_cut_at_max_tokens_is_returned_marked(api: FakeAnthropic, sqlite_store: Store) -> None:
    api.script(message(text("The run failed because the col"), stop_reason="max_tokens"))
    reply = ask(api, sqlite_store, failed_world())
    assert reply_text(reply) == "The run failed because the col"
    assert reply.notes == ("The answer was cut at the output limit.",)
    assert len(api.bodies) == 1


def test_refusal_gets_a_neutral_message_and_no_retry(
    api: FakeAnthropic, sqlite_store: Store, caplog: pytest.LogCaptureFixture
) -> None:
    api.script(
        message(
            text("I won't"),
            stop_reason="refusal",
            stop_details={"type": "refusal", "category": "cyber", "explanation": "policy"},
        )
    )
    with caplog.at_level(logging.WARNING, logger="bot.agent"):
        reply = ask(api, sqlite_store, failed_world())
    assert reply_text(reply) == "I can't help with that request."
    assert len(api.bodies) == 1
    refused = [r for r in caplog.records if r.getMessage() == "the model refused"]
    assert refused and refused[0].category == "cyber"  # type: ignore[attr-defined]


def test_context_window_exceeded_drops_old_outputs_and_retries_once(
    api: FakeAnthropic, sqlite_store: Store
) -> None:
    world = failed_world()
    api.script(
        message(tool_use("get_task_instances", TASKS_CALL)),
        message(tool_use("get_task_log", LOG_CALL)),
        message(stop_reason="model_context_window_exceeded"),
        message(text("transform failed.")),
    )
    reply = ask(api, sqlite_store, world)
    before, after = api.bodies[2]["messages"], api.bodies[3]["messages"]
    assert "task_instances" in before[2]["content"][0]["content"]
    assert "removed to keep the conversation" in after[2]["content"][0]["content"]
    assert "KeyError" in after[4]["content"][0]["content"]  # the latest findings stay
    assert reply_text(reply) == "transform failed."
    assert any("too large" in note for note in reply.notes)


def test_context_window_exceeded_twice_returns_what_it_has(
    api: FakeAnthropic, sqlite_store: Store
) -> None:
    api.script(
        message(text("Reading the log."), tool_use("get_task_log", LOG_CALL)),
        message(stop_reason="model_context_window_exceeded"),
        message(stop_reason="model_context_window_exceeded"),
    )
    reply = ask(api, sqlite_store, failed_world())
    assert len(api.bodies) == 3
    assert reply_text(reply) == "Reading the log."
    assert any("too large" in note for note in reply.notes)


def test_unknown_stop_reason_is_final_and_logged(
    api: FakeAnthropic, sqlite_store: Store, caplog: pytest.LogCaptureFixture
) -> None:
    api.script(message(text("An answer."), stop_reason="brand_new_reason"))
    with caplog.at_level(logging.WARNING, logger="bot.agent"):
        reply = ask(api, sqlite_store, failed_world())
    assert reply_text(reply) == "An answer."
    assert any(getattr(r, "stop_reason", None) == "brand_new_reason" for r in caplog.records)


def test_empty_answer_says_so(api: FakeAnthropic, sqlite_store: Store) -> None:
    api.script(message())
    reply = ask(api, sqlite_store, failed_world())
    assert reply_text(reply) == "The model returned no answer."
    assert reply.tone is Tone.WARNING


def test_empty_question_needs_no_model(api: FakeAnthropic, sqlite_store: Store) -> None:
    reply = agent_for(api.url, sqlite_store).answer(
        "  ", history=[], request=request_for(sources())
    )
    assert "Ask me about your pipelines" in reply.text
    assert api.requests == []


def test_without_toolsets_no_tools_are_offered(api: FakeAnthropic, sqlite_store: Store) -> None:
    api.script(message(text("Nothing is connected, so I can't check.")))
    agent_for(api.url, sqlite_store).answer(
        "what failed?", history=[], request=request_for(sources())
    )
    body = api.bodies[0]
    assert "tools" not in body and "tool_choice" not in body
    assert "Connected systems and their tools: none" in body["messages"][0]["content"][0]["text"]


def test_context_window_exceeded_with_nothing_to_drop_is_not_retried(
    api: FakeAnthropic, sqlite_store: Store
) -> None:
    api.script(message(stop_reason="model_context_window_exceeded"))
    reply = ask(api, sqlite_store, failed_world())
    assert len(api.bodies) == 1
    assert reply_text(reply) == "The model returned no answer."
    assert any("too large" in note for note in reply.notes)

"""Limits of one answer: steps, tool calls, repeats, budgets, wall clock, API errors."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import pytest

from bot.store import Store
from bot.store.audit import LlmUsage
from tests.agent.support import RUN_ID, conversation, failed_world
from tests.agent.test_loop import LOG_CALL, TASKS_CALL, ask, reply_text, tool_results
from tests.fakes.anthropic_api import (
    Error,
    FakeAnthropic,
    auth_failed,
    message,
    overloaded,
    rate_limited,
    text,
    tool_use,
)


def runs_call(n: int) -> dict[str, object]:
    return {"dag_id": "orders_daily", "limit": n}


def test_last_step_forbids_tools_but_keeps_them_listed(
    api: FakeAnthropic, sqlite_store: Store
) -> None:
    api.script(
        message(tool_use("list_dag_runs", runs_call(1))),
        message(tool_use("list_dag_runs", runs_call(2))),
        message(text("Best answer so far: the run failed.")),
    )
    reply = ask(api, sqlite_store, failed_world(), max_steps=3)
    choices = [b["tool_choice"] for b in api.bodies]
    assert choices == [{"type": "auto"}, {"type": "auto"}, {"type": "none"}]
    assert api.bodies[2]["tools"] == api.bodies[0]["tools"]
    last_user = api.bodies[2]["messages"][-1]["content"]
    assert last_user[0]["type"] == "tool_result"
    assert "no more tools can run" in last_user[-1]["text"]
    assert reply_text(reply) == "Best answer so far: the run failed."
    assert "I stopped after 3 model steps (the limit), so this answer may be incomplete." in (
        reply.notes
    )


def test_a_tool_call_on_the_forbidden_last_step_is_not_run(
    api: FakeAnthropic, sqlite_store: Store
) -> None:
    world = failed_world()
    api.script(message(text("I would check the log"), tool_use("get_task_log", LOG_CALL)))
    reply = ask(api, sqlite_store, world, max_steps=1)
    assert api.bodies[0]["tool_choice"] == {"type": "none"}
    assert world.calls == []
    assert reply_text(reply) == "I would check the log"


def test_identical_repeated_call_is_refused(api: FakeAnthropic, sqlite_store: Store) -> None:
    world = failed_world()
    api.script(
        message(tool_use("get_task_log", LOG_CALL)),
        message(
            tool_use("get_task_log", dict(LOG_CALL)),
            tool_use("get_task_log", LOG_CALL | {"try_number": 1}),
        ),
        message(text("Done.")),
    )
    ask(api, sqlite_store, world)
    assert world.calls == ["log transform 2", "log transform 1"]
    repeated, other = tool_results(api.bodies[2])
    assert repeated["is_error"] is True
    assert "already called with exactly this input" in repeated["content"]
    assert other["is_error"] is True  # try 1 has no log: a real tool error, not a refusal
    assert "503" in other["content"]


def test_tool_calls_beyond_the_limit_are_refused_then_tools_are_off(
    api: FakeAnthropic, sqlite_store: Store
) -> None:
    world = failed_world()
    api.script(
        message(
            tool_use("list_dag_runs", runs_call(1)),
            tool_use("list_dag_runs", runs_call(2)),
            tool_use("list_dag_runs", runs_call(3)),
        ),
        message(text("Two runs lists were enough.")),
    )
    reply = ask(api, sqlite_store, world, max_tool_calls=2)
    assert len(world.calls) == 2
    results = tool_results(api.bodies[1])
    assert [r["is_error"] for r in results] == [False, False, True]
    assert "limit of 2 tool calls" in results[2]["content"]
    assert api.bodies[1]["tool_choice"] == {"type": "none"}
    assert "I reached the limit of 2 tool calls, so some checks were not run." in reply.notes


def _spend(store: Store, tokens: int, conversation_id: int | None) -> None:
    store.audit.llm_call(
        LlmUsage(
            model="claude-sonnet-5-5", stop_reason="end_turn", input_tokens=tokens, output_tokens=0
        ),
        conversation_id=conversation_id,
    )


def test_conversation_budget_exhausted_before_asking(
    api: FakeAnthropic, sqlite_store: Store
) -> None:
    conversation_id = conversation(sqlite_store)
    _spend(sqlite_store, 5_000, conversation_id)
    reply = ask(
        api,
        sqlite_store,
        failed_world(),
        conversation_id=conversation_id,
        conversation_token_budget=5_000,
    )
    assert "This thread has used its token budget (5,000 of 5,000 tokens)" in reply.text
    assert api.requests == []


def test_daily_budget_counts_every_conversation(api: FakeAnthropic, sqlite_store: Store) -> None:
    _spend(sqlite_store, 3_000, conversation(sqlite_store, "other"))
    _spend(sqlite_store, 3_000, None)
    reply = ask(
        api,
        sqlite_store,
        failed_world(),
        conversation_id=conversation(sqlite_store),
        daily_token_budget=6_000,
    )
    assert "daily token budget is used up (6,000 of 6,000 tokens)" in reply.text
    assert api.requests == []


def test_yesterdays_tokens_do_not_count_today(api: FakeAnthropic, sqlite_store: Store) -> None:
    from sqlalchemy import update

    from bot.store.tables import LlmCallRow

    _spend(sqlite_store, 9_000, None)
    with sqlite_store.engine.begin() as connection:
        connection.execute(
            update(LlmCallRow).values(created_at=datetime.now(UTC) - timedelta(days=1, hours=1))
        )
    api.script(message(text("Fine.")))
    reply = ask(api, sqlite_store, failed_world(), daily_token_budget=6_000)
    assert reply_text(reply) == "Fine."


def test_budget_running_out_mid_answer_stops_with_a_note(
    api: FakeAnthropic, sqlite_store: Store
) -> None:
    api.script(message(text("Checking the runs."), tool_use("list_dag_runs", runs_call(5))))
    reply = ask(
        api,
        sqlite_store,
        failed_world(),
        conversation_id=conversation(sqlite_store),
        conversation_token_budget=1_000,
    )
    assert len(api.bodies) == 1  # the first call spent more than 1,000 tokens
    assert reply_text(reply) == "Checking the runs."
    assert "The token budget ran out while I was working, so this answer is incomplete." in (
        reply.notes
    )


def test_wall_clock_timeout_stops_a_slow_tool(api: FakeAnthropic, sqlite_store: Store) -> None:
    world = failed_world(delay=3.0)
    api.script(message(text("Reading the log."), tool_use("get_task_log", LOG_CALL)))
    started = time.monotonic()
    reply = ask(api, sqlite_store, world, timeout=1.0)
    assert time.monotonic() - started < 2.5
    assert len(api.bodies) == 1
    assert reply_text(reply) == "Reading the log."
    assert "I ran out of time (1 s), so this answer may be incomplete." in reply.notes
    assert sqlite_store.audit.tool_calls()[-1].startswith("get_task_log(")


@pytest.mark.parametrize("busy", [overloaded, rate_limited], ids=["529", "429"])
def test_busy_model_is_retried_then_succeeds(
    api: FakeAnthropic, sqlite_store: Store, busy: Callable[[], Error]
) -> None:
    api.script(busy(), message(text("Answer after a retry.")))
    reply = ask(api, sqlite_store, failed_world())
    assert reply_text(reply) == "Answer after a retry."
    retries = [r.headers.get("x-stainless-retry-count") for r in api.messages_requests]
    assert retries == ["0", "1"]


@pytest.mark.parametrize("busy", [overloaded, rate_limited], ids=["529", "429"])
def test_busy_model_after_retries_gets_a_clear_message(
    api: FakeAnthropic,
    sqlite_store: Store,
    busy: Callable[[], Error],
) -> None:
    api.script(busy(), busy(), busy())
    reply = ask(api, sqlite_store, failed_world())
    assert len(api.bodies) == 3  # the first try and the SDK's two retries
    assert reply_text(reply) == "The model is busy right now — try again in a minute."


@pytest.mark.parametrize("status", [401, 403])
def test_rejected_credentials_are_for_the_operator(
    api: FakeAnthropic, sqlite_store: Store, caplog: pytest.LogCaptureFixture, status: int
) -> None:
    api.script(auth_failed(status))
    with caplog.at_level(logging.ERROR, logger="bot.agent"):
        reply = ask(api, sqlite_store, failed_world())
    assert len(api.bodies) == 1  # never retried
    shown = reply_text(reply)
    assert "The agent can't use the model right now" in shown
    logged = [r for r in caplog.records if "credentials" in r.getMessage()]
    assert logged and logged[0].status == status  # type: ignore[attr-defined]
    assert logged[0].ref in shown  # type: ignore[attr-defined]
    # The random reference may itself contain "401": look at the words around it.
    words = shown.replace(logged[0].ref, "")  # type: ignore[attr-defined]
    assert "API key" not in words and str(status) not in words


def test_parallel_calls_of_one_turn_run_at_once(api: FakeAnthropic, sqlite_store: Store) -> None:
    world = failed_world(delay=0.4)
    api.script(
        message(
            tool_use("list_dag_runs", runs_call(1)),
            tool_use("get_task_instances", TASKS_CALL),
            tool_use("get_task_log", LOG_CALL),
        ),
        message(text("Done.")),
    )
    started = time.monotonic()
    ask(api, sqlite_store, world)
    assert world.peak == 3
    assert time.monotonic() - started < 1.2 + 0.4  # three 0.4 s calls, not 1.2 s in a row
    results = tool_results(api.bodies[1])
    ids = [b["id"] for b in api.bodies[1]["messages"][-2]["content"]]
    assert [r["tool_use_id"] for r in results] == ids


def test_failing_tools_become_is_error_results(api: FakeAnthropic, sqlite_store: Store) -> None:
    world = failed_world()
    api.script(
        message(
            tool_use("get_task_log", LOG_CALL | {"try_number": 1}),  # no such log: 503
            tool_use("list_dag_runs", {"dag_id": "nope"}),  # NotFound
            tool_use("get_task_log", {"dag_id": "orders_daily"}),  # invalid parameters
            tool_use("drop_table", {"name": "orders"}),  # not a tool
        ),
        message(text("Some checks failed.")),
    )
    reply = ask(api, sqlite_store, world)
    unavailable, missing, invalid, unknown = tool_results(api.bodies[1])
    assert all(r["is_error"] for r in (unavailable, missing, invalid, unknown))
    assert "returned 503 Service Unavailable" in unavailable["content"]
    assert "DAG 'nope' not found" in missing["content"]
    assert "invalid parameters" in invalid["content"] and "run_id" in invalid["content"]
    assert "There is no tool named 'drop_table'" in unknown["content"]
    assert any(n.startswith("Could not check: Airflow get_task_log") for n in reply.notes)
    assert any(n.startswith("Could not check: Airflow list_dag_runs") for n in reply.notes)
    assert reply.sources == ()
    assert RUN_ID not in " ".join(reply.sources)


def test_a_crashing_tool_does_not_sink_the_answer(
    api: FakeAnthropic, sqlite_store: Store, caplog: pytest.LogCaptureFixture
) -> None:
    world = failed_world()
    world.tasks = None  # type: ignore[assignment]  # the connector now has a bug
    api.script(
        message(tool_use("get_task_instances", TASKS_CALL), tool_use("get_task_log", LOG_CALL)),
        message(text("The log shows KeyError 'amount'; I could not list the tasks.")),
    )
    with caplog.at_level(logging.ERROR, logger="bot.agent.toolbox"):
        reply = ask(api, sqlite_store, world)
    crashed, log = tool_results(api.bodies[1])
    assert crashed["is_error"] is True
    assert crashed["content"] == (
        "get_task_instances failed with an internal error; its result is unknown."
    )
    assert log["is_error"] is False
    assert any(r.getMessage() == "tool raised" for r in caplog.records)
    assert reply_text(reply).startswith("The log shows")

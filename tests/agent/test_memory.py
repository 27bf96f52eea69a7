"""Thread memory: follow-ups reuse earlier tool results; long threads are compacted."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import anthropic

from bot.agent.claude import ClaudeAgent
from bot.agent.transcript import Call, Exchange, compact, exchanges, remember, to_messages
from bot.conversation import Conversation
from bot.playbooks import default_commands
from bot.redaction import Redactor
from bot.store import Store
from bot.store.threads import StoredMessage
from tests.agent.support import (
    API_KEY,
    airflow_toolset,
    failed_world,
    inbound,
    request_for,
    settings,
    sources,
)
from tests.agent.test_loop import LOG_CALL
from tests.fakes.anthropic_api import FakeAnthropic, message, text, tool_use


def test_a_follow_up_reuses_the_earlier_tool_results(
    api: FakeAnthropic, sqlite_store: Store
) -> None:
    world = failed_world()
    from bot.agent import build_agent

    agent = build_agent(settings(api.url), sqlite_store, Redactor())
    conversation = Conversation(
        store=sqlite_store,
        commands=default_commands(),
        sources=sources(airflow_toolset(world)),
        agent=agent,
    )
    first_call = tool_use("get_task_log", LOG_CALL)
    api.script(
        message(first_call),
        message(text("`transform` failed on try 2 with `KeyError: 'amount'`.")),
        message(text("It was the second try; the first one is not in the log I read.")),
    )
    conversation.handle(inbound("why did orders_daily fail last night?", event_id="e1"))
    reply = conversation.handle(inbound("which try was that and what did it say?", event_id="e2"))

    assert reply is not None
    assert world.calls == ["log transform 2"]  # not called again
    follow_up = api.bodies[2]["messages"]
    assert [m["role"] for m in follow_up] == ["user", "assistant", "user", "assistant", "user"]
    assert follow_up[0]["content"] == [text("why did orders_daily fail last night?")]
    assert follow_up[1]["content"] == [first_call]
    remembered = follow_up[2]["content"][0]
    assert remembered["tool_use_id"] == first_call["id"]
    assert "KeyError: 'amount'" in remembered["content"]
    assert follow_up[3]["content"] == [
        text("`transform` failed on try 2 with `KeyError: 'amount'`.")
    ]
    assert follow_up[4]["content"][-1]["text"] == "which try was that and what did it say?"
    # The memory lives in the bot message's payload.
    conversation_id = sqlite_store.threads.find(inbound("x").thread_ref)
    assert conversation_id is not None
    stored = sqlite_store.threads.history(conversation_id)
    memory = stored[1].payload["memory"]  # type: ignore[index]
    assert memory["calls"][0]["tool"] == "get_task_log"
    assert memory["answer"].startswith("`transform` failed on try 2")


def _exchange_history(
    count: int, *, output_chars: int, answer_chars: int = 0
) -> list[StoredMessage]:
    history: list[StoredMessage] = []
    for n in range(count):
        call = Call(
            id=f"toolu_old{n}",
            tool="get_task_log",
            input={"dag_id": f"dag_{n}", "task_id": "t", "try_number": 1},
            content=f"<tool_output>log of dag_{n} " + "x" * output_chars + "</tool_output>",
        )
        history.append(
            StoredMessage(
                role="user",
                author="dana",
                text=f"question {n}",
                payload=None,
                created_at=datetime.now(UTC),
            )
        )
        history.append(
            StoredMessage(
                role="bot",
                author="",
                text=f"answer {n} (rendered)",
                payload={"memory": remember(f"answer {n} " + "z" * answer_chars, [call])},
                created_at=datetime.now(UTC),
            )
        )
    return history


def test_a_long_thread_is_compacted(api: FakeAnthropic, sqlite_store: Store) -> None:
    api.script(message(text("ok")))
    client = anthropic.Anthropic(api_key=API_KEY, base_url=api.url, max_retries=0)
    agent = ClaudeAgent(
        client=client,
        settings=settings(api.url).agent,
        store=sqlite_store,
        redactor=Redactor(),
        history_budget_tokens=1_500,
    )
    history = _exchange_history(8, output_chars=3_000, answer_chars=2_000)
    agent.answer(
        "and now?",
        history=history,
        request=request_for(sources(airflow_toolset(failed_world()))),
    )
    sent = api.bodies[0]["messages"]
    flat = " ".join(str(b) for m in sent for b in m["content"])
    assert "question 0" in flat  # the thread's first question stays
    assert "log of dag_7" in flat  # the latest findings stay whole
    for n in range(0, 7):
        assert f"log of dag_{n} " not in flat  # older tool outputs are gone …
    assert "Tools consulted then, outputs no longer shown: get_task_log(dag_0, t, 1)" in flat
    assert "earlier exchange(s) of this thread left out to save space" in flat
    assert "question 1" not in flat
    assert sent[-1]["content"][-1]["text"] == "and now?"
    assert "[truncated: " in flat  # … and the answers kept are shortened
    assert len(flat) < 1_500 * 4 + 4_000


def test_compaction_first_drops_older_tool_outputs_only() -> None:
    items = exchanges(_exchange_history(4, output_chars=2_000))
    kept, compacted = compact(items, budget_tokens=1_000)
    assert compacted
    assert [e.question for e in kept] == ["question 0", "question 1", "question 2", "question 3"]
    assert [len(e.calls) for e in kept] == [0, 0, 0, 1]
    assert kept[0].answer.startswith("answer 0 \n(Tools consulted then")


def test_compaction_keeps_small_threads_as_they_are() -> None:
    items = exchanges(_exchange_history(3, output_chars=100))
    kept, compacted = compact(items, budget_tokens=10_000)
    assert kept == items and compacted is False


def test_history_turns_alternate_and_start_with_the_user() -> None:
    history = [
        StoredMessage(
            role="bot",
            author="",
            text="Daily digest: all green",
            payload=None,
            created_at=datetime.now(UTC),
        ),
        StoredMessage(
            role="user", author="d", text="status", payload=None, created_at=datetime.now(UTC)
        ),
        StoredMessage(
            role="bot", author="", text="3 DAGs ok", payload=None, created_at=datetime.now(UTC)
        ),
        StoredMessage(
            role="user", author="d", text="unanswered", payload=None, created_at=datetime.now(UTC)
        ),
    ]
    messages = to_messages(exchanges(history), tools={"get_task_log"}, redactor=str)
    roles = [m["role"] for m in messages]
    assert roles == ["user", "assistant", "user", "assistant", "user"]
    assert messages[0]["content"] == [text("(earlier in this thread)")]
    assert messages[-1]["content"] == [text("unanswered")]


def test_calls_of_tools_no_longer_connected_are_named_not_replayed() -> None:
    call = Call(id="toolu_1", tool="describe_table", input={"table": "orders"}, content="cols")
    items = [Exchange(question="q", answer="a", calls=(call,))]
    messages = to_messages(items, tools={"get_task_log"}, redactor=str)
    assert [m["role"] for m in messages] == ["user", "assistant"]
    assert "no longer connected: describe_table(orders)" in messages[1]["content"][0]["text"]


def test_memory_is_capped() -> None:
    calls = [
        Call(id=f"toolu_{n}", tool="t", input={"n": n}, content="y" * 20_000) for n in range(5)
    ]
    memory: dict[str, Any] = remember("answer", calls)
    sizes = [len(c["content"]) for c in memory["calls"]]
    assert all(size < 4_200 for size in sizes)
    assert sum(sizes) <= 40_000
    assert memory["calls"][-1]["content"].startswith("y")  # the newest keeps its output

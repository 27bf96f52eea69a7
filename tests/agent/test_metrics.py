"""The agent's model calls in the metrics: requests by outcome, tokens by type and their cost,
labelled with the configured model (through the real SDK against the fake Messages API)."""

from __future__ import annotations

import uuid

import pytest
import sqlalchemy as sa

from bot import metrics
from bot.store import Store
from tests.agent.support import agent_for, airflow_toolset, failed_world, request_for, sources
from tests.fakes.anthropic_api import FakeAnthropic, message, overloaded, text, tool_use


def sample(name: str, **labels: str) -> float:
    return metrics.REGISTRY.get_sample_value(name, labels) or 0.0


def test_answered_calls_count_tokens_and_cost_by_model(
    api: FakeAnthropic, sqlite_store: Store
) -> None:
    # A model name no other test uses: the registry is the process's.
    model = f"claude-sonnet-4-5-metrics-{uuid.uuid4().hex[:6]}"
    api.script(
        message(
            tool_use("get_task_instances", {"dag_id": "orders_daily", "run_id": "r"}),
            usage={"input_tokens": 1200, "output_tokens": 80, "cache_read_input_tokens": 3000},
        ),
        message(text("It failed."), usage={"input_tokens": 1500, "output_tokens": 40}),
    )
    agent = agent_for(api.url, sqlite_store, model=model)
    # Declared when the agent is built: the series are there, at 0, before the first call.
    assert metrics.REGISTRY.get_sample_value("pipebot_llm_cost_usd_total", {"model": model}) == 0
    agent.answer(
        "why did orders_daily fail?",
        history=[],
        request=request_for(sources(airflow_toolset(failed_world()))),
    )
    assert sample("pipebot_llm_requests_total", model=model, outcome="ok") == 2
    # The same tokens and cost as the audit rows of the two calls (the fake adds its own
    # prompt-cache accounting to the usage scripted above).
    with sqlite_store.engine.connect() as connection:
        audited = connection.execute(
            sa.text(
                "select sum(input_tokens), sum(output_tokens), sum(cache_read_tokens), "
                "sum(cache_write_tokens), sum(cost_usd), count(*) from llm_calls"
            )
        ).one()
    assert audited[-1] == 2 and audited[0] == 2700 and audited[1] == 120
    for kind, tokens in zip(
        ("input", "output", "cache_read", "cache_write"), audited, strict=False
    ):
        assert sample("pipebot_llm_tokens_total", model=model, type=kind) == tokens
    assert sample("pipebot_llm_cost_usd_total", model=model) == pytest.approx(audited[4])
    assert audited[4] > 0
    assert sample("pipebot_llm_request_duration_seconds_count", model=model) == 2


def test_a_busy_model_counts_one_failed_request(api: FakeAnthropic, sqlite_store: Store) -> None:
    model = f"claude-haiku-4-5-metrics-{uuid.uuid4().hex[:6]}"
    api.script(overloaded(), overloaded(), overloaded())  # the SDK retries twice, then gives up
    agent_for(api.url, sqlite_store, model=model).answer(
        "why did orders_daily fail?",
        history=[],
        request=request_for(sources(airflow_toolset(failed_world()))),
    )
    assert sample("pipebot_llm_requests_total", model=model, outcome="busy") == 1
    assert sample("pipebot_llm_requests_total", model=model, outcome="ok") == 0
    assert sample("pipebot_llm_tokens_total", model=model, type="input") == 0

"""Autocompletion names: from the real Airflow client against a fake Airflow that can hold its
answers, a lookup never waits past its budget and answers from the cache once filled."""

from __future__ import annotations

import time

from bot.names import Names
from bot.ports import Sources
from integrations.airflow import AirflowClient
from tests.fakes.airflow_server import GatedAirflow


def test_a_slow_airflow_costs_at_most_the_budget_then_the_cache_answers() -> None:
    with GatedAirflow() as airflow:
        client = AirflowClient(airflow.url, username="admin", password="admin")
        names = Names(Sources(airflow=client), ttl=300, budget=0.3)
        airflow.close_gate()
        started = time.monotonic()
        first = names.dags("ord")
        waited = time.monotonic() - started
        airflow.open_gate()
        deadline = time.monotonic() + 10
        found: list[str] = []
        while not found and time.monotonic() < deadline:
            found = names.dags("ord")
        requests_before = len(airflow.requests)
        again = names.dags("daily")
    assert first == [] and waited < 1.0
    assert "orders_daily" in found and found[0].startswith("ord")
    assert "orders_daily" in again
    assert len(airflow.requests) == requests_before, "a fresh cache asks Airflow nothing"

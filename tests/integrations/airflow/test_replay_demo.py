"""The demo's replay answers filtered list requests it never recorded from its broadest
recording, selecting only recorded items."""

from __future__ import annotations

import pytest

from bot.errors import NotFound
from integrations.airflow import AirflowClient
from integrations.demo import DEMO_AIRFLOW_URL, data_dir
from integrations.replay import ReplayAdapter


def client() -> AirflowClient:
    return AirflowClient(
        DEMO_AIRFLOW_URL,
        username="viewer",
        password="demo",
        api_version="v2",
        adapter=ReplayAdapter(data_dir() / "airflow"),
    )


def test_state_filter_and_limit_select_recorded_runs() -> None:
    every = client().runs("payments_sync", limit=25)
    assert every and {r.state for r in every} == {"success"}
    assert client().runs("payments_sync", states=("failed",), limit=5) == []
    failed = client().runs("orders_daily", states=("failed",), limit=1)
    assert len(failed) == 1 and failed[0].state == "failed"
    assert failed[0].run_id in {r.run_id for r in client().runs("orders_daily", limit=25)}


def test_something_never_recorded_is_not_found() -> None:
    with pytest.raises(NotFound, match="not in the recorded demo data"):
        client().run("orders_daily", "no_such_run")
    with pytest.raises(NotFound, match="Airflow has no DAG `no_such_dag`"):
        client().dag("no_such_dag")  # a DAG is named for people, as a live 404 is

"""pytest fixtures of the real Airflow 3 stack (see airflow_stack.py).

``airflow_stack`` (session scope) starts Airflow once, triggers each sample DAG once, waits
until every run has finished and the broken DAG file is listed as an import error, and yields
an `AirflowEnv`. Teardown stops every process (also on ``pytest -x`` and on failures) and
removes the temporary AIRFLOW_HOME.
"""

from __future__ import annotations

import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass

import pytest

from tests.stack.airflow_stack import AirflowStack, StackError

SAMPLE_DAGS = {"shop_ingest": "success", "orders_daily": "failed", "payments_sync": "success"}


@dataclass(frozen=True)
class Credentials:
    username: str
    password: str


@dataclass(frozen=True)
class AirflowEnv:
    base_url: str
    admin: Credentials
    viewer: Credentials
    run_ids: Mapping[str, str]  # sample dag_id → the run id the fixture triggered
    stack: AirflowStack
    ready_s: float  # start → every sample run finished


@pytest.fixture(scope="session")
def airflow_stack() -> Iterator[AirflowEnv]:
    started = time.monotonic()
    stack = AirflowStack()
    try:
        stack.start()
        run_ids = {dag_id: stack.trigger(dag_id) for dag_id in SAMPLE_DAGS}
        for dag_id, expected in SAMPLE_DAGS.items():
            state = stack.wait(dag_id, run_ids[dag_id])
            if state != expected:
                tasks = stack.task_states(dag_id, run_ids[dag_id])
                raise StackError(f"{dag_id} ended {state}, expected {expected}; tasks: {tasks}")
        stack.wait_for_import_errors(1)
    except BaseException as exc:
        tails = stack.log_tails()
        stack.stop()
        stack.remove_home()
        if isinstance(exc, Exception):
            pytest.fail(f"Airflow stack failed: {exc}\n{tails}", pytrace=False)
        raise
    try:
        yield AirflowEnv(
            base_url=stack.base_url,
            admin=Credentials("admin", "admin"),
            viewer=Credentials("viewer", "viewer"),
            run_ids=run_ids,
            stack=stack,
            ready_s=time.monotonic() - started,
        )
    finally:
        stack.stop()
        leftovers = stack.stragglers()
        stack.remove_home()
        if leftovers:
            pytest.fail(f"Airflow processes left behind: {leftovers}", pytrace=False)

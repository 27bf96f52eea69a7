"""Record what pipebot's Airflow client sees on the real stack, for the demo and evals.

    python -m tests.stack.record_airflow OUT_DIR

starts the Airflow 3 harness, triggers the sample DAGs, runs `default_exercise` through an
`AirflowClient` whose adapter is a `RecordingAdapter`, and stops the stack. `record` is the
reusable part: any exercise function, any running stack. Files are described in
`integrations.replay`.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path

from requests.adapters import HTTPAdapter

from integrations.airflow import AirflowClient
from integrations.replay import RecordingAdapter
from tests.stack.airflow_stack import AirflowStack, running_stack

SAMPLE_DAGS = ("shop_ingest", "orders_daily", "payments_sync")
TRIAGE_STATES = ("failed", "upstream_failed", "up_for_retry")
Exercise = Callable[[AirflowClient, RecordingAdapter], None]


def default_exercise(client: AirflowClient, recorder: RecordingAdapter) -> None:
    """Every read the bot's playbooks and tools make on the sample data."""
    client.health()
    client.version()
    dags = client.dags()
    client.import_errors()
    client.runs(None, limit=15)
    client.runs(
        None, states=("failed",), since=recorder.recorded_at - timedelta(hours=24), limit=100
    )
    for dag in dags:
        client.dag(dag.dag_id)
        runs = client.runs(dag.dag_id, limit=10)
        client.runs(dag.dag_id, limit=15)
        runs = client.runs(dag.dag_id, limit=25)
        for run in runs:
            client.task_instances(dag.dag_id, run.run_id, states=TRIAGE_STATES)
            for ti in client.task_instances(dag.dag_id, run.run_id):
                for attempt in client.tries(
                    dag.dag_id, run.run_id, ti.task_id, map_index=ti.map_index
                ):
                    client.task_log(
                        dag.dag_id,
                        run.run_id,
                        ti.task_id,
                        attempt.try_number,
                        map_index=ti.map_index,
                    )


def record(
    stack: AirflowStack,
    out_dir: str | Path,
    exercise: Exercise = default_exercise,
    *,
    username: str = "viewer",
) -> RecordingAdapter:
    """Run `exercise` against `stack` as `username`, writing every answer to `out_dir`."""
    recorder = RecordingAdapter(HTTPAdapter(), out_dir)
    client = AirflowClient(stack.base_url, username=username, password=username, adapter=recorder)
    exercise(client, recorder)
    return recorder


def main(argv: list[str]) -> int:
    if len(argv) != 1:
        print("usage: python -m tests.stack.record_airflow OUT_DIR", file=sys.stderr)
        return 2
    started = time.monotonic()
    with running_stack() as stack:
        for dag_id, run_id in [(d, stack.trigger(d)) for d in SAMPLE_DAGS]:
            stack.wait(dag_id, run_id)
        stack.wait_for_import_errors(1)
        recorder = record(stack, argv[0])
    count = len(list(Path(argv[0]).glob("*.json"))) - 1
    print(f"recorded {count} responses in {argv[0]} ({time.monotonic() - started:.0f} s)")
    print(f"recorded_at {recorder.recorded_at.isoformat()}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

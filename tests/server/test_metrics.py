"""Several processes behind one ``/metrics`` (``PROMETHEUS_MULTIPROC_DIR``): whichever is
scraped answers with the counts of all of them — exited ones included — and the same store
gauges."""

from __future__ import annotations

import os
import select
import subprocess
import sys
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path

import httpx

from bot.store import Store
from tests.server.metrics_process import TOKEN
from tests.server.scrape import Scrape

ROOT = Path(__file__).resolve().parents[2]


@contextmanager
def web_process(store_url: str, env: dict[str, str]) -> Iterator[tuple[subprocess.Popen[str], str]]:
    process = subprocess.Popen(
        [sys.executable, "-m", "tests.server.metrics_process", store_url],
        cwd=ROOT,
        env=env,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert process.stdin is not None and process.stdout is not None
    try:
        ready, _, _ = select.select([process.stdout], [], [], 60)
        assert ready, "the web process did not start within 60 s"
        url = process.stdout.readline().strip()
        assert url.startswith("http://"), url
        yield process, url
    finally:
        process.stdin.close()
        try:
            process.wait(20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(5)


def alert(run_id: str) -> dict[str, str]:
    return {"dag_id": "orders_daily", "run_id": run_id, "task_id": "load", "state": "failed"}


def send(url: str, run_id: str) -> None:
    response = httpx.post(
        url + "/webhooks/airflow",
        json=alert(run_id),
        headers={"Authorization": f"Bearer {TOKEN}"},
        timeout=10,
    )
    assert response.status_code == 200, response.text


def scrape(url: str) -> Scrape:
    return Scrape.parse(httpx.get(url + "/metrics", timeout=10).text)


def test_two_web_processes_and_a_worker_report_one_coherent_view(
    pg_url: str, tmp_path: Path
) -> None:
    Store.open(pg_url).close()  # migrated once, before the processes start
    shared = tmp_path / "prometheus"
    shared.mkdir()
    env = {**os.environ, "PROMETHEUS_MULTIPROC_DIR": str(shared)}
    with ExitStack() as stack:
        first, first_url = stack.enter_context(web_process(pg_url, env))
        second, second_url = stack.enter_context(web_process(pg_url, env))
        send(first_url, "r1")
        send(first_url, "r2")
        send(second_url, "r3")
        send(second_url, "r1")  # a redelivery, to the other process
        # A worker process of the same host counts connector calls, then exits.
        subprocess.run(
            [
                sys.executable,
                "-c",
                "from bot import metrics; "
                "metrics.observe_connector('airflow', 'dags', 0.25, None); "
                "metrics.observe_connector('airflow', 'dags', 2.0, 'timeout')",
            ],
            cwd=ROOT,
            env=env,
            check=True,
            timeout=60,
        )
        views = [scrape(first_url), scrape(second_url)]
        for view in views:
            webhook = {"source": "webhook:airflow"}
            assert view.value("pipebot_events_received_total", **webhook) == 4
            assert view.value("pipebot_events_deduplicated_total", **webhook) == 1
            assert view.value("pipebot_ack_latency_seconds_count", **webhook) == 4
            assert view.value("pipebot_ack_latency_seconds_bucket", le="+Inf", **webhook) == 4
            airflow = {"connector": "airflow", "operation": "dags"}
            assert view.value("pipebot_connector_requests_total", **airflow) == 2
            assert view.value("pipebot_connector_errors_total", reason="timeout", **airflow) == 1
            assert view.value("pipebot_connector_request_duration_seconds_sum", **airflow) == 2.25
            # Read from the shared store at scrape time: the same whichever process answers.
            assert view.value("pipebot_jobs", status="queued") == 3
            assert view.value("pipebot_job_oldest_age_seconds") > 0
            assert view.value("pipebot_store_up") == 1
        assert views[0].samples == views[1].samples or _same_but_ages(*views)

        # The second process exits; what it counted still counts.
        second.stdin.close()  # type: ignore[union-attr]
        second.wait(20)
        after = scrape(first_url)
        assert after.value("pipebot_events_received_total", source="webhook:airflow") == 4
        assert after.value("pipebot_events_deduplicated_total", source="webhook:airflow") == 1
        assert first.poll() is None


def _same_but_ages(one: Scrape, other: Scrape) -> bool:
    """Equal apart from the oldest job's age, which grows between two scrapes."""
    age: tuple[str, frozenset[tuple[str, str]]] = ("pipebot_job_oldest_age_seconds", frozenset())
    return {k: v for k, v in one.samples.items() if k != age} == {
        k: v for k, v in other.samples.items() if k != age
    }


def test_without_the_directory_each_process_counts_alone(pg_url: str) -> None:
    """The default (one process per ``/metrics``): nothing is shared."""
    Store.open(pg_url).close()
    env = {k: v for k, v in os.environ.items() if k != "PROMETHEUS_MULTIPROC_DIR"}
    with web_process(pg_url, env) as (_, first_url), web_process(pg_url, env) as (_, second_url):
        send(first_url, "r1")
        webhook = {"source": "webhook:airflow"}
        assert scrape(first_url).value("pipebot_events_received_total", **webhook) == 1
        assert scrape(second_url).value("pipebot_events_received_total", **webhook) == 0
        # Store gauges are shared all the same.
        assert scrape(second_url).value("pipebot_jobs", status="queued") == 1

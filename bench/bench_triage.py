"""Triage benchmarks (issue #6). Prints figures; not a test.

1. Parallel fan-out: every connector call is delayed by 200 ms (each Airflow HTTP request and
   each dbt project call) and `triage orders_daily` runs on the recorded demo data. Target: the
   whole triage takes under 3× one call, because the reads run in two parallel rounds.
2. A 50 MB task log: the failing task's log is replaced by 50 MB of JSON log events streamed
   by the adapter; the triage must keep memory flat (it keeps only the tail it needs).

    .venv/bin/python bench/bench_triage.py
"""

from __future__ import annotations

import io
import json
import statistics
import time
import tracemalloc
from collections.abc import Callable, Iterator
from typing import Any

import requests
from requests.adapters import BaseAdapter

from bot.playbooks.triage import TriageReport, triage_airflow
from bot.ports import Sources
from integrations.airflow import AirflowClient
from integrations.dbt import ArtifactsProject
from integrations.demo import DEMO_AIRFLOW_URL, data_dir, demo_sources
from integrations.replay import ReplayAdapter

DELAY_S = 0.2
LOG_BYTES = 50 * 1024 * 1024


class DelayedAdapter(BaseAdapter):
    """Every HTTP request waits `DELAY_S` before the recorded answer comes back."""

    def __init__(self, inner: BaseAdapter) -> None:
        super().__init__()
        self.inner = inner
        self.requests = 0

    def send(self, request: requests.PreparedRequest, **kwargs: Any) -> requests.Response:  # type: ignore[override]
        self.requests += 1
        time.sleep(DELAY_S)
        return self.inner.send(request, **kwargs)

    def close(self) -> None:
        self.inner.close()


class DelayedProject:
    """A dbt project whose every method call waits `DELAY_S` (as if it were remote)."""

    def __init__(self, inner: ArtifactsProject) -> None:
        self._inner = inner
        self.system = inner.system
        self.calls = 0

    def __getattr__(self, name: str) -> Any:
        attr = getattr(self._inner, name)
        if not callable(attr):
            return attr

        def delayed(*args: Any, **kwargs: Any) -> Any:
            self.calls += 1
            time.sleep(DELAY_S)
            return attr(*args, **kwargs)

        return delayed


def fan_out() -> None:
    demo = demo_sources()
    adapter = DelayedAdapter(ReplayAdapter(data_dir() / "airflow"))
    client = AirflowClient(
        DEMO_AIRFLOW_URL, username="viewer", password="demo", api_version="v2", adapter=adapter
    )
    project = DelayedProject(ArtifactsProject(data_dir() / "dbt"))
    sources = Sources(airflow=client, dbt=project, now=demo.now)  # type: ignore[arg-type]
    client.health()  # token exchange and connection set-up happen once, before timing

    one_call = []
    for _ in range(3):
        started = time.perf_counter()
        client.dag("orders_daily")
        one_call.append(time.perf_counter() - started)
    baseline = statistics.median(one_call)

    times = []
    for _ in range(3):
        adapter.requests, project.calls = 0, 0
        started = time.perf_counter()
        report = triage_airflow(sources, dag_id="orders_daily")
        times.append(time.perf_counter() - started)
        assert isinstance(report, TriageReport) and report.failed, "triage found no failure"
    wall = statistics.median(times)
    calls = adapter.requests + project.calls
    print("1. triage of orders_daily, every connector call delayed 200 ms")
    print(f"   one call (median of 3)             {baseline * 1000:7.0f} ms")
    print(
        f"   connector calls per triage         {calls:7d} "
        f"({adapter.requests} Airflow HTTP, {project.calls} dbt)"
    )
    print(f"   sequential would take              {calls * DELAY_S * 1000:7.0f} ms")
    print(f"   triage wall time (median of 3)     {wall * 1000:7.0f} ms")
    print(f"   ratio to one call                  {wall / baseline:7.2f}×  (target < 3×)")


class _Stream(io.RawIOBase):
    """50 MB of Airflow 3 JSON log events, generated as they are read; counts bytes read."""

    def __init__(self, total: int) -> None:
        self.total = total
        self.sent = 0
        self._chunks = self._generate()
        self._buffer = b""

    def _generate(self) -> Iterator[bytes]:
        yield b'{"content": ['
        line = json.dumps(
            {
                "timestamp": "2026-11-25T20:42:44.000000Z",
                "level": "info",
                "event": "processed a batch of rows " + "x" * 120,
                "logger": "task",
            }
        ).encode()
        produced = 0
        first = True
        while produced < self.total - 2048:
            block = b"".join((b"" if first and i == 0 else b",") + line for i in range(256))
            first = False
            produced += len(block)
            yield block
        tail = {
            "timestamp": "2026-11-25T20:42:45.000000Z",
            "level": "error",
            "event": "Task failed with exception",
            "error_detail": [
                {
                    "exc_type": "KeyError",
                    "exc_value": "column 'amount' missing",
                    "frames": [
                        {"filename": "dags/orders_daily.py", "lineno": 41, "name": "transform"}
                    ],
                }
            ],
        }
        yield b"," + json.dumps(tail).encode() + b'], "continuation_token": null}'

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        while not self._buffer:
            try:
                self._buffer = next(self._chunks)
            except StopIteration:
                return 0
        size = min(len(buffer), len(self._buffer))
        buffer[:size] = self._buffer[:size]
        self._buffer = self._buffer[size:]
        self.sent += size
        return size


class BigLogAdapter(BaseAdapter):
    """Recorded answers, except task logs: those are the 50 MB stream."""

    def __init__(self, inner: BaseAdapter) -> None:
        super().__init__()
        self.inner = inner
        self.streams: list[_Stream] = []

    def send(self, request: requests.PreparedRequest, **kwargs: Any) -> requests.Response:  # type: ignore[override]
        if "/logs/" not in (request.url or ""):
            return self.inner.send(request, **kwargs)
        stream = _Stream(LOG_BYTES)
        self.streams.append(stream)
        response = requests.Response()
        response.status_code = 200
        response.headers["Content-Type"] = "application/json"
        response.raw = io.BufferedReader(stream, buffer_size=64 * 1024)
        response.url = request.url or ""
        response.request = request
        return response

    def close(self) -> None:
        self.inner.close()


def big_log() -> None:
    demo = demo_sources()
    adapter = BigLogAdapter(ReplayAdapter(data_dir() / "airflow"))
    client = AirflowClient(
        DEMO_AIRFLOW_URL, username="viewer", password="demo", api_version="v2", adapter=adapter
    )
    sources = Sources(airflow=client, dbt=ArtifactsProject(data_dir() / "dbt"), now=demo.now)
    client.health()
    started = time.perf_counter()
    report = triage_airflow(sources, dag_id="orders_daily")
    wall = time.perf_counter() - started
    # Memory is measured in a second run: tracemalloc slows every allocation several-fold.
    tracemalloc.start()
    triage_airflow(sources, dag_id="orders_daily")
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    assert isinstance(report, TriageReport)
    [failed] = report.failed
    streamed = adapter.streams[0].sent
    print("2. triage of a run whose failed task has a 50 MB log")
    print(f"   log size                           {LOG_BYTES / 1e6:7.1f} MB")
    print(
        f"   bytes read from the log stream     {streamed / 1e6:7.1f} MB "
        "(Airflow's log API has no tail offset, so the stream is read once, in 64 kB chunks)"
    )
    print(f"   peak Python memory during triage   {peak / 1e6:7.2f} MB  (kept: the tail)")
    print(f"   triage wall time                   {wall:7.2f} s")
    print(f"   error still found at the end       {failed.error_type}: {failed.error_message}")
    print(f"   characters omitted before the tail {failed.log_omitted_chars:,}")


def main(*benches: Callable[[], None]) -> None:
    for bench in benches:
        bench()
        print()


if __name__ == "__main__":
    main(fan_out, big_log)

"""`GeneratedAirflow`: a local Airflow 3 REST API serving runs a test or benchmark made up.

It answers what the digest and status read, shaped and paged like a real Airflow 3 (the
shapes of ``../shared/reference/airflow-api.md`` §4): ``GET /api/v2/version``, ``POST
/auth/token`` (201 with a JWT-looking token, which every other call then needs),
``/api/v2/monitor/health``, ``/api/v2/importErrors``, ``/api/v2/dags`` (``tags``, ``owners``,
``dag_id_pattern``), and ``/api/v2/dags/{dag_id}/dagRuns`` for one DAG or for all (``~``) with
``run_after_gte`` / ``start_date_gte`` / ``updated_at_gte``, repeated ``state``, ``order_by``
(``id``, ``-id``, ``run_after``, ``-run_after``), ``limit`` capped at `page_cap` (Airflow's
``[api] maximum_page_limit``, 100 by default) and ``offset``, answered with ``total_entries``.
Unknown query parameters are ignored, as the reference advises for doubles.

Runs are encoded to JSON once, when the server is made; a page is joined from those bytes, so
the fake costs little next to the client it measures. `requests` counts the calls by path kind.

Run it in its own process for a benchmark (so it does not share the client's interpreter)::

    python -m tests.fakes.airflow_generated --dags 1000 --runs 40000 --days 14 \\
        --now 2026-12-01T09:00:00+00:00
    # prints "listening on http://127.0.0.1:PORT", serves until stdin closes
"""

from __future__ import annotations

import argparse
import json
import random
import socket
import sys
import threading
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

TOKEN = "generated.jwt.token"


@dataclass(frozen=True, kw_only=True)
class Run:
    id: int
    dag_id: str
    run_id: str
    state: str
    run_after: datetime
    start_date: datetime | None
    end_date: datetime | None

    def payload(self) -> dict[str, Any]:
        duration = (
            (self.end_date - self.start_date).total_seconds()
            if self.start_date and self.end_date
            else None
        )
        return {
            "dag_run_id": self.run_id,
            "dag_id": self.dag_id,
            "dag_display_name": self.dag_id,
            "logical_date": self.run_after.isoformat(),
            "queued_at": self.run_after.isoformat(),
            "start_date": self.start_date.isoformat() if self.start_date else None,
            "end_date": self.end_date.isoformat() if self.end_date else None,
            "duration": duration,
            "run_after": self.run_after.isoformat(),
            "data_interval_start": self.run_after.isoformat(),
            "data_interval_end": self.run_after.isoformat(),
            "run_type": "scheduled",
            "state": self.state,
            "triggered_by": "timetable",
            "triggering_user_name": None,
            "conf": {},
            "note": None,
            "bundle_version": None,
            "dag_versions": [],
        }


@dataclass(frozen=True, kw_only=True)
class DagSpec:
    dag_id: str
    owners: tuple[str, ...] = ("airflow",)
    tags: tuple[str, ...] = ()

    def payload(self) -> dict[str, Any]:
        return {
            "dag_id": self.dag_id,
            "dag_display_name": self.dag_id,
            "is_paused": False,
            "is_stale": False,
            "fileloc": f"/dags/{self.dag_id}.py",
            "file_token": "x",
            "owners": list(self.owners),
            "tags": [{"name": t, "dag_id": self.dag_id} for t in self.tags],
            "max_active_tasks": 16,
            "max_consecutive_failed_dag_runs": 0,
            "has_task_concurrency_limits": False,
            "has_import_errors": False,
            "timetable_partitioned": False,
        }


@dataclass
class _Encoded:
    run: Run
    data: bytes


@dataclass
class GeneratedAirflow:
    dags: Sequence[DagSpec]
    runs: Sequence[Run]
    import_errors: Sequence[str] = ()
    page_cap: int = 100
    # Run-list offsets answered 400 (a page that cannot be read: the digest must say so).
    broken_offsets: frozenset[int] = frozenset()
    requests: Counter[str] = field(default_factory=Counter)

    def __post_init__(self) -> None:
        self._encoded = sorted(
            (_Encoded(r, json.dumps(r.payload()).encode()) for r in self.runs),
            key=lambda e: e.run.id,
        )
        self._cache: dict[tuple[Any, ...], list[_Encoded]] = {}
        self._lock = threading.Lock()
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self._server.daemon_threads = True
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}"

    def start(self) -> GeneratedAirflow:
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    def __enter__(self) -> GeneratedAirflow:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # --- answers ------------------------------------------------------------------------------

    def _runs_page(self, dag_id: str, query: dict[str, list[str]]) -> bytes:
        since = {
            name: datetime.fromisoformat(query[name][0])
            for name in ("run_after_gte", "start_date_gte", "updated_at_gte")
            if name in query
        }
        states = tuple(sorted(query.get("state", [])))
        order = (query.get("order_by") or ["id"])[0]
        key = (dag_id, tuple(sorted((k, v.isoformat()) for k, v in since.items())), states, order)
        with self._lock:
            selected = self._cache.get(key)
            if selected is None:
                selected = [e for e in self._encoded if _keeps(e.run, dag_id, since, states)]
                if order.lstrip("-") == "run_after":
                    selected.sort(key=lambda e: e.run.run_after)
                if order.startswith("-"):
                    selected.reverse()
                self._cache[key] = selected
        limit = min(int((query.get("limit") or ["50"])[0]), self.page_cap)
        offset = int((query.get("offset") or ["0"])[0])
        page = selected[offset : offset + limit]
        return (
            b'{"dag_runs":['
            + b",".join(e.data for e in page)
            + b'],"total_entries":'
            + str(len(selected)).encode()
            + b"}"
        )

    def _dags_page(self, query: dict[str, list[str]]) -> bytes:
        tags = set(query.get("tags", []))
        owners = set(query.get("owners", []))
        kept = [
            d
            for d in self.dags
            if (not tags or tags & set(d.tags)) and (not owners or owners & set(d.owners))
        ]
        limit = min(int((query.get("limit") or ["50"])[0]), self.page_cap)
        offset = int((query.get("offset") or ["0"])[0])
        body = {
            "dags": [d.payload() for d in kept[offset : offset + limit]],
            "total_entries": len(kept),
        }
        return json.dumps(body).encode()

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        fake = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def setup(self) -> None:
                super().setup()
                # Headers and body are two writes: with Nagle's algorithm the body waits for
                # the client's delayed ACK (40 ms a page), which no real server makes it pay.
                self.request.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

            def log_message(self, format: str, *args: Any) -> None:
                """Quiet: `requests` is the log."""

            def _reply(self, status: int, body: bytes) -> None:
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                self.rfile.read(length)
                fake.requests["token"] += 1
                if self.path == "/auth/token":
                    self._reply(201, json.dumps({"access_token": TOKEN}).encode())
                else:
                    self._reply(405, b'{"detail": "Method Not Allowed"}')

            def do_GET(self) -> None:
                parts = urlsplit(self.path)
                path = unquote(parts.path)
                query = parse_qs(parts.query)
                if path == "/api/v2/version":
                    fake.requests["version"] += 1
                    self._reply(200, b'{"version": "3.1.0", "git_version": null}')
                    return
                if path == "/api/v2/monitor/health":
                    fake.requests["health"] += 1
                    body = {
                        "metadatabase": {"status": "healthy"},
                        "scheduler": {"status": "healthy", "latest_scheduler_heartbeat": None},
                        "triggerer": {"status": None},
                        "dag_processor": {"status": None},
                    }
                    self._reply(200, json.dumps(body).encode())
                    return
                if self.headers.get("Authorization") != f"Bearer {TOKEN}":
                    self._reply(401, b'{"detail": "Not authenticated"}')
                    return
                segments = path.removeprefix("/api/v2/").split("/")
                if segments == ["importErrors"]:
                    fake.requests["import_errors"] += 1
                    errors = [
                        {
                            "import_error_id": i + 1,
                            "timestamp": "2026-01-01T00:00:00+00:00",
                            "filename": name,
                            "stack_trace": "Traceback …",
                        }
                        for i, name in enumerate(fake.import_errors)
                    ]
                    body = {"import_errors": errors, "total_entries": len(errors)}
                    self._reply(200, json.dumps(body).encode())
                elif segments == ["dags"]:
                    fake.requests["dags"] += 1
                    self._reply(200, fake._dags_page(query))
                elif len(segments) == 3 and segments[0] == "dags" and segments[2] == "dagRuns":
                    fake.requests["runs"] += 1
                    if int((query.get("offset") or ["0"])[0]) in fake.broken_offsets:
                        self._reply(400, b'{"detail": "page broken on purpose"}')
                        return
                    self._reply(200, fake._runs_page(segments[1], query))
                else:
                    self._reply(404, b'{"detail": "Not Found"}')

        return Handler


def _keeps(run: Run, dag_id: str, since: dict[str, datetime], states: tuple[str, ...]) -> bool:
    if dag_id not in ("~", run.dag_id):
        return False
    if states and run.state not in states:
        return False
    for name, at in since.items():
        value = run.start_date if name == "start_date_gte" else run.run_after
        if name == "updated_at_gte":
            value = run.end_date or run.start_date or run.run_after
        if value is None or value < at:
            return False
    return True


# --- generated platforms ------------------------------------------------------------------------


def platform(
    *,
    dags: int,
    runs: int,
    days: int,
    now: datetime,
    failing: int = 25,
    slower: int = 10,
    seed: int = 7,
) -> tuple[list[DagSpec], list[Run]]:
    """`dags` DAGs with `runs` runs spread evenly over the `days` days before `now`: most
    succeed; `failing` DAGs fail their last runs (half of them since before the last day, the
    others only on it), `slower` DAGs take three times as long on the last day. Ids grow with
    time, as Airflow's do."""
    rng = random.Random(seed)
    specs = [
        DagSpec(
            dag_id=f"dag_{i:04d}",
            owners=(f"team_{i % 7}",),
            tags=(f"domain_{i % 5}", "critical" if i % 10 == 0 else "standard"),
        )
        for i in range(dags)
    ]
    base = {s.dag_id: 30 + rng.random() * 600 for s in specs}
    failing_ids = {specs[i].dag_id for i in range(0, min(failing, dags))}
    long_failing = set(sorted(failing_ids)[: len(failing_ids) // 2])
    slow_ids = {specs[dags - 1 - i].dag_id for i in range(min(slower, dags))}
    per_dag = max(1, runs // dags)
    step = timedelta(days=days) / per_dag
    start = now - timedelta(days=days)
    made: list[Run] = []
    for index in range(per_dag):
        due = start + step * (index + 0.5)
        for spec in specs:
            last_day = due >= now - timedelta(days=1)
            failed_window = now - timedelta(days=3 if spec.dag_id in long_failing else 1)
            state = "success"
            if spec.dag_id in failing_ids and due >= failed_window:
                state = "failed"
            elif rng.random() < 0.01:
                state = "failed"  # the odd flaky failure
            took = base[spec.dag_id] * (3 if spec.dag_id in slow_ids and last_day else 1)
            took *= 0.9 + rng.random() * 0.2
            began = due + timedelta(seconds=rng.random() * 60)
            made.append(
                Run(
                    id=0,
                    dag_id=spec.dag_id,
                    run_id=f"scheduled__{due.isoformat()}",
                    state=state,
                    run_after=due,
                    start_date=began,
                    end_date=began + timedelta(seconds=took),
                )
            )
    made.sort(key=lambda r: (r.run_after, r.dag_id))
    numbered = [
        Run(
            id=i + 1,
            dag_id=r.dag_id,
            run_id=r.run_id,
            state=r.state,
            run_after=r.run_after,
            start_date=r.start_date,
            end_date=r.end_date,
        )
        for i, r in enumerate(made)
    ]
    return specs, numbered


def main(argv: Iterable[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Serve a generated Airflow 3 API")
    parser.add_argument("--dags", type=int, default=1000)
    parser.add_argument("--runs", type=int, default=40_000)
    parser.add_argument("--days", type=int, default=14)
    parser.add_argument("--now", default=datetime.now(UTC).isoformat())
    args = parser.parse_args(list(argv) if argv is not None else None)
    dags, runs = platform(
        dags=args.dags, runs=args.runs, days=args.days, now=datetime.fromisoformat(args.now)
    )
    server = GeneratedAirflow(dags=dags, runs=runs, import_errors=("dags/broken.py",)).start()
    print(f"listening on {server.url}", flush=True)
    sys.stdin.read()  # until the parent closes our stdin
    print(json.dumps(dict(server.requests)), flush=True)
    server.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())

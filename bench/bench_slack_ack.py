"""How fast does `pipebot serve` acknowledge Slack while every connector call is slow — on
both work engines?

200 signed ``/pipebot status`` slash commands, 20 at a time, against the real HTTP app of
``pipebot serve`` — built by `bot.main.build_app` / `build_server` and run by uvicorn in its own
processes, as in production — with an Airflow whose every call takes 2 s; Slack is the local fake
Web API (in this process). The load generator runs in another process: one asyncio loop with
20 keep-alive connections sending pre-signed requests, so the figures measure the server, not
the client. Layouts:

- ``sqlite``: one `pipebot serve` on a SQLite store (the embedded engine);
- ``pg1``: PostgreSQL with procrastinate, one ``--role web`` + one ``--role worker``;
- ``pg2``: the same with two ``--role web`` processes sharing the port.

Prints the acknowledgement latency the clients saw (Slack's limit: 3 s; target p99 < 100 ms),
the commands per second the web side sustained, how long until every answer was in Slack, and
checks that each of the 200 commands was answered exactly once.

    .venv/bin/python bench/bench_slack_ack.py [--layout all|sqlite|pg1|pg2] [--requests 200]
        [--concurrency 20] [--delay 2] [--postgres-url postgresql+psycopg://…]

Not a test: it prints figures (``make bench``).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path

import httpx
from sqlalchemy import create_engine, text

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bot.facts import AirflowHealth, Dag, DagRun, ImportError_, TaskInstance, TaskLog
from bot.main import build_app, build_server
from bot.ports import Sources
from bot.settings import Settings, SlackSettings, WorkSettings
from tests.crash.support import post_keys
from tests.fakes.slack_api import BOT_TOKEN, FakeSlack
from tests.slack.conftest import command_body, sign

POSTGRES_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/test"


class SlowAirflow:
    """An Orchestrator (bot.ports) whose every call takes `delay` seconds, like a slow API."""

    system = "Airflow"

    def __init__(self, delay: float) -> None:
        self.delay = delay

    def _wait(self) -> None:
        time.sleep(self.delay)

    def health(self) -> AirflowHealth:
        self._wait()
        return AirflowHealth(metadatabase="healthy", scheduler="healthy")

    def version(self) -> str:
        self._wait()
        return "3.1.0"

    def dags(self, *, limit: int = 500) -> list[Dag]:
        self._wait()
        return []

    def dag(self, dag_id: str) -> Dag:
        self._wait()
        return Dag(dag_id=dag_id)

    def runs(
        self,
        dag_id: str | None = None,
        *,
        states: Sequence[str] = (),
        since: datetime | None = None,
        limit: int = 25,
    ) -> list[DagRun]:
        self._wait()
        return []

    def run(self, dag_id: str, run_id: str) -> DagRun:
        self._wait()
        return DagRun(dag_id=dag_id, run_id=run_id, state="success")

    def task_instances(
        self, dag_id: str, run_id: str, *, states: Sequence[str] = ()
    ) -> list[TaskInstance]:
        self._wait()
        return []

    def tries(
        self, dag_id: str, run_id: str, task_id: str, *, map_index: int = -1
    ) -> list[TaskInstance]:
        self._wait()
        return []

    def task_log(
        self,
        dag_id: str,
        run_id: str,
        task_id: str,
        try_number: int,
        *,
        map_index: int = -1,
        max_chars: int = 20_000,
    ) -> TaskLog:
        raise NotImplementedError("not used by `status`")

    def import_errors(self) -> list[ImportError_]:
        self._wait()
        return []


def percentile(values: list[float], pct: float) -> float:
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, round(pct / 100 * len(ordered)) - 1))
    return ordered[index]


SECRET = "bench-signing-secret"


def serve(args: argparse.Namespace) -> int:
    """The server process: what `pipebot serve` builds, with the slow Airflow plugged in."""

    slack = SlackSettings(
        bot_token=BOT_TOKEN,  # type: ignore[arg-type]
        signing_secret=SECRET,  # type: ignore[arg-type]
        api_url=args.api_url,
        mode="http",
    )
    settings = Settings(database_url=args.database_url, slack=slack, log_level="WARNING")
    app = build_app(settings, Sources(airflow=SlowAirflow(args.delay)))
    server = build_server(app, role=args.role)
    if args.role == "worker":
        server.run_worker()
    else:
        server.run("127.0.0.1", args.port)
    return 0


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def main() -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--requests", type=int, default=200)
    parser.add_argument(
        "--warmup", type=int, default=40, help="commands sent first and reported apart"
    )
    parser.add_argument("--concurrency", type=int, default=20)
    parser.add_argument("--delay", type=float, default=2.0, help="seconds per connector call")
    parser.add_argument("--postgres-url", default=POSTGRES_URL)
    parser.add_argument("--deliver-timeout", type=float, default=600.0)
    parser.add_argument("--serve", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--load", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--port", type=int, default=0, help=argparse.SUPPRESS)
    parser.add_argument("--api-url", default="", help=argparse.SUPPRESS)
    parser.add_argument("--database-url", default="", help=argparse.SUPPRESS)
    parser.add_argument(
        "--layout",
        choices=["all", "sqlite", "pg1", "pg2"],
        default="all",
        help="sqlite: one `pipebot serve` (embedded engine); pg1: PostgreSQL/procrastinate, "
        "`--role web` + `--role worker`; pg2: two web processes on one port + a worker",
    )
    parser.add_argument("--role", default="all", help=argparse.SUPPRESS)
    parser.add_argument("--prefix", default="bench", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve:
        return serve(args)
    if args.load:
        return load(args)
    layouts = ["sqlite", "pg1", "pg2"] if args.layout == "all" else [args.layout]
    failed = 0
    for layout in layouts:
        failed |= run_layout(layout, args)
        print()
    return failed


@contextmanager
def database(layout: str, args: argparse.Namespace, tmp: str) -> Iterator[str]:
    """A fresh store: a SQLite file, or a throwaway schema on the PostgreSQL server."""
    if layout == "sqlite":
        yield f"sqlite:///{tmp}/bench.db"
        return
    schema = f"pipebot_bench_{uuid.uuid4().hex[:8]}"
    engine = create_engine(args.postgres_url)
    with engine.begin() as connection:
        connection.execute(text(f'create schema "{schema}"'))
    try:
        yield f"{args.postgres_url}?options=-csearch_path%3D{schema}"
    finally:
        with engine.begin() as connection:
            connection.execute(text(f'drop schema "{schema}" cascade'))
        engine.dispose()


def pending(database_url: str) -> int:
    """Jobs not finished yet, from the store (whichever engine holds them)."""
    engine = create_engine(database_url)
    try:
        with engine.connect() as connection:
            if engine.dialect.name == "postgresql":
                query = (
                    "select count(*) from procrastinate_jobs "
                    "where queue_name = 'jobs' and status in ('todo', 'doing')"
                )
            else:
                query = "select count(*) from jobs where status in ('queued', 'running')"
            return int(connection.execute(text(query)).scalar_one())
    finally:
        engine.dispose()


def run_layout(layout: str, args: argparse.Namespace) -> int:
    roles = {"sqlite": ["all"], "pg1": ["web", "worker"], "pg2": ["web", "web", "worker"]}[layout]
    with (
        FakeSlack() as fake,
        tempfile.TemporaryDirectory(prefix="pipebot-bench-") as tmp,
        database(layout, args, tmp) as database_url,
    ):
        port = free_port()
        env = {k: v for k, v in os.environ.items() if not k.startswith(("PIPEBOT_", "SLACK_"))}
        processes = []
        for role in roles:
            command = [sys.executable, __file__, "--serve", "--port", str(port), "--role", role]
            command += ["--api-url", fake.api_url, "--database-url", database_url]
            command += ["--delay", str(args.delay)]
            processes.append(subprocess.Popen(command, env=env, cwd=tmp))
        server = processes[0]
        base = f"http://127.0.0.1:{port}"
        try:
            with httpx.Client(base_url=base, timeout=10) as http:
                deadline = time.monotonic() + 60
                while True:
                    try:
                        if http.get("/readyz").status_code == 200:
                            break
                    except httpx.TransportError:
                        pass
                    if server.poll() is not None or time.monotonic() > deadline:
                        print("the server did not start")
                        return 1
                    time.sleep(0.1)
                how = {
                    "sqlite": "one `pipebot serve` on SQLite (embedded engine)",
                    "pg1": "PostgreSQL + procrastinate: `--role web` + `--role worker`",
                    "pg2": "PostgreSQL + procrastinate: two `--role web` on one port + a worker",
                }[layout]
                print(
                    f"{how}; {WorkSettings().concurrency} jobs at once per worker; Airflow: every "
                    f"call {args.delay:g} s; {args.requests} x /pipebot status at concurrency "
                    f"{args.concurrency}"
                )
                # A fresh process's first burst pays for what runs once (lazy imports, thread
                # and connection set-up, statements prepared per connection): it is measured
                # apart, and counts against the 3 s limit, but not against the steady p99.
                cold, _ = _load(port, args, requests=args.warmup, prefix="warm-up")
                started = time.monotonic()
                results, sent_in = _load(port, args, requests=args.requests, prefix="bench")
                delivered_in = _wait_delivered(fake, args, database_url, started)
                metrics = http.get("/metrics").text
        finally:
            for process in processes:
                process.send_signal(signal.SIGTERM)
            for process in processes:
                try:
                    process.wait(30)
                except subprocess.TimeoutExpired:
                    process.kill()
    return _report(
        results,
        cold=cold,
        sent_in=sent_in,
        delivered_in=delivered_in,
        fake=fake,
        metrics=metrics,
        args=args,
    )


def _load(
    port: int, args: argparse.Namespace, *, requests: int, prefix: str
) -> tuple[list[tuple[float, int]], float]:
    """Run the load generator process; returns (seconds, status) per request and the span."""
    command = [sys.executable, __file__, "--load", "--port", str(port), "--prefix", prefix]
    command += ["--requests", str(requests), "--concurrency", str(args.concurrency)]
    done = subprocess.run(command, capture_output=True, text=True, timeout=600, check=True)
    report = json.loads(done.stdout)
    return [tuple(r) for r in report["results"]], report["seconds"]  # type: ignore[misc]


def load(args: argparse.Namespace) -> int:
    """The load generator: pre-signed requests over `concurrency` keep-alive connections."""
    requests: list[bytes] = []
    for n in range(args.requests):
        body = command_body("status", trigger_id=f"{args.prefix}-{n}")
        headers = {"Content-Type": "application/x-www-form-urlencoded", **sign(body, secret=SECRET)}
        head = "".join(f"{k}: {v}\r\n" for k, v in headers.items())
        requests.append(
            (
                f"POST /slack/events HTTP/1.1\r\nHost: 127.0.0.1\r\n{head}"
                f"Content-Length: {len(body)}\r\n\r\n"
            ).encode()
            + body.encode()
        )
    results: list[tuple[float, int]] = []

    async def connection(queue: asyncio.Queue[bytes]) -> None:
        reader, writer = await asyncio.open_connection("127.0.0.1", args.port)
        while not queue.empty():
            request = queue.get_nowait()
            started = time.perf_counter()
            writer.write(request)
            await writer.drain()
            head = await reader.readuntil(b"\r\n\r\n")
            lines = head.decode("latin-1").split("\r\n")
            length = next(
                int(line.split(":", 1)[1])
                for line in lines
                if line.lower().startswith("content-length")
            )
            await reader.readexactly(length)
            results.append((time.perf_counter() - started, int(lines[0].split()[1])))
        writer.close()

    async def run() -> float:
        queue: asyncio.Queue[bytes] = asyncio.Queue()
        for request in requests:
            queue.put_nowait(request)
        started = time.perf_counter()
        await asyncio.gather(*(connection(queue) for _ in range(args.concurrency)))
        return time.perf_counter() - started

    seconds = asyncio.run(run())
    print(json.dumps({"results": results, "seconds": seconds}))
    return 0


def _answers(fake: FakeSlack) -> list[str]:
    """The ts of every answer edit (progress edits show the hourglass)."""
    return [
        str(c.params.get("ts"))
        for c in fake.calls_to("chat.update", ok_only=True)
        if "⏳" not in str(c.params.get("text"))
    ]


def _wait_delivered(
    fake: FakeSlack, args: argparse.Namespace, database_url: str, started: float
) -> float:
    """Seconds from the first command until every answer was in Slack and no job was left
    (a duplicate would have been posted by then)."""
    deadline = started + args.deliver_timeout
    while len(set(_answers(fake))) < args.requests + args.warmup and time.monotonic() < deadline:
        time.sleep(0.2)
    delivered = time.monotonic() - started
    while pending(database_url) and time.monotonic() < deadline:
        time.sleep(0.2)
    return delivered


def _report(
    results: list[tuple[float, int]],
    *,
    cold: list[tuple[float, int]],
    sent_in: float,
    delivered_in: float,
    fake: FakeSlack,
    metrics: str,
    args: argparse.Namespace,
) -> int:
    latencies = [seconds * 1000 for seconds, _ in results]
    cold_ms = [seconds * 1000 for seconds, _ in cold]
    statuses = sorted({status for _, status in results + cold})
    answers = _answers(fake)
    posts = fake.calls_to("chat.postMessage", ok_only=True)
    expected = args.requests + len(cold)
    print(
        f"acks: {len(results)} requests answered {statuses} in {sent_in:.1f} s "
        f"({len(results) / sent_in:.0f} commands/s sustained)"
    )
    print(
        "ack latency seen by the clients (ms): "
        f"p50 {statistics.median(latencies):.1f}  p90 {percentile(latencies, 90):.1f}  "
        f"p99 {percentile(latencies, 99):.1f}  max {max(latencies):.1f}  "
        f"over 3 s: {sum(1 for v in latencies if v > 3000)}"
    )
    if cold_ms:
        print(
            f"first burst of a fresh process ({len(cold_ms)} warm-up commands, not in the "
            f"figures above): p50 {statistics.median(cold_ms):.1f}  max {max(cold_ms):.1f} ms"
        )
    for line in metrics.splitlines():
        if line.startswith(
            ("pipebot_slack_ack_seconds_bucket", "pipebot_jobs{", "pipebot_outbox{")
        ):
            print("  " + line)
    keys = post_keys(fake)
    duplicates = sum(count - 1 for count in keys.values())
    print(
        f"answers delivered: {len(set(answers))} of {expected} distinct "
        f"({len(answers)} answer edits, {len(posts)} working messages, {duplicates} duplicate "
        f"posts); all in Slack {delivered_in:.1f} s after the first command"
    )
    ok = (
        statuses == [200]
        and len(set(answers)) == len(answers) == expected
        and len(posts) == expected
        and duplicates == 0
        and max(latencies + cold_ms) < 3000
        and percentile(latencies, 99) < 100
    )
    print(
        "result: " + ("OK" if ok else "FAILED") + " (targets: p99 < 100 ms, none over 3 s, "
        "every command answered exactly once)"
    )
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())

"""How fast does `pipebot serve` acknowledge Slack while every connector call is slow?

200 signed ``/pipebot status`` slash commands, 20 at a time, against the real HTTP app of
``pipebot serve`` — built by `bot.main.build_app` / `build_server` and run by uvicorn in its own
process, as in production — with an Airflow whose every call takes 2 s; Slack is the local fake
Web API (in this process). The load generator runs in a third process: one asyncio loop with
20 keep-alive connections sending pre-signed requests, so the figures measure the server, not
the client (a thread-per-request Python HTTP client alone adds ~20 ms p50 on this machine).
Prints the acknowledgement latency the clients saw (Slack's limit: 3 s) and checks that every
answer was delivered to Slack exactly once.

    .venv/bin/python bench/bench_slack_ack.py [--requests 200] [--concurrency 20] [--delay 2]
                                              [--database-url postgresql+psycopg://…]

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
from collections.abc import Sequence
from datetime import datetime
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bot.facts import AirflowHealth, Dag, DagRun, ImportError_, TaskInstance, TaskLog
from bot.main import build_app, build_server
from bot.ports import Sources
from bot.settings import Settings, SlackSettings
from tests.fakes.slack_api import BOT_TOKEN, FakeSlack
from tests.slack.conftest import command_body, sign


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
    parser.add_argument("--concurrency", type=int, default=20)
    parser.add_argument("--delay", type=float, default=2.0, help="seconds per connector call")
    parser.add_argument("--database-url", default="", help="default: a SQLite file in a tmp dir")
    parser.add_argument("--deliver-timeout", type=float, default=600.0)
    parser.add_argument("--serve", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--load", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--port", type=int, default=0, help=argparse.SUPPRESS)
    parser.add_argument("--api-url", default="", help=argparse.SUPPRESS)
    parser.add_argument(
        "--layout",
        choices=["both", "single", "split", "split2"],
        default="both",
        help="single: one `pipebot serve` process; split: `--role web` + `--role worker`; "
        "split2: two web processes on one port + a worker",
    )
    parser.add_argument("--role", default="all", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve:
        return serve(args)
    if args.load:
        return load(args)
    layouts = ["single", "split"] if args.layout == "both" else [args.layout]
    failed = 0
    for layout in layouts:
        failed |= run_layout(layout, args)
        print()
    return failed


def run_layout(layout: str, args: argparse.Namespace) -> int:
    roles = {"single": ["all"], "split": ["web", "worker"], "split2": ["web", "web", "worker"]}[
        layout
    ]
    with FakeSlack() as fake, tempfile.TemporaryDirectory(prefix="pipebot-bench-") as tmp:
        port = free_port()
        database_url = args.database_url or f"sqlite:///{tmp}/bench.db"
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
                store = "PostgreSQL" if database_url.startswith("postgres") else "SQLite"
                how = {
                    "single": "one `pipebot serve` process",
                    "split": "`pipebot serve --role web` + `--role worker`",
                    "split2": "two `pipebot serve --role web` on one port + `--role worker`",
                }[layout]
                print(
                    f"{how} (store {store}, default Slack settings: "
                    f"{SlackSettings().workers} workers); Airflow: every call {args.delay:g} s; "
                    f"{args.requests} x /pipebot status at concurrency {args.concurrency}"
                )
                results, sent_in = _load(port, args)
                delivered_in = _wait_delivered(fake, args)
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
        results, sent_in=sent_in, delivered_in=delivered_in, fake=fake, metrics=metrics, args=args
    )


def _load(port: int, args: argparse.Namespace) -> tuple[list[tuple[float, int]], float]:
    """Run the load generator process; returns (seconds, status) per request and the span."""
    command = [sys.executable, __file__, "--load", "--port", str(port)]
    command += ["--requests", str(args.requests), "--concurrency", str(args.concurrency)]
    done = subprocess.run(command, capture_output=True, text=True, timeout=600, check=True)
    report = json.loads(done.stdout)
    return [tuple(r) for r in report["results"]], report["seconds"]  # type: ignore[misc]


def load(args: argparse.Namespace) -> int:
    """The load generator: pre-signed requests over `concurrency` keep-alive connections."""
    requests: list[bytes] = []
    for n in range(args.requests):
        body = command_body("status", trigger_id=f"bench-{n}")
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


def _wait_delivered(fake: FakeSlack, args: argparse.Namespace) -> float:
    started = time.monotonic()
    deadline = started + args.deliver_timeout
    while len(_answers(fake)) < args.requests and time.monotonic() < deadline:
        time.sleep(0.5)
    time.sleep(1.0)  # a duplicate would show up right after; give it the chance
    return time.monotonic() - started


def _report(
    results: list[tuple[float, int]],
    *,
    sent_in: float,
    delivered_in: float,
    fake: FakeSlack,
    metrics: str,
    args: argparse.Namespace,
) -> int:
    latencies = [seconds * 1000 for seconds, _ in results]
    statuses = sorted({status for _, status in results})
    answers = _answers(fake)
    posts = fake.calls_to("chat.postMessage", ok_only=True)
    print(f"acks: {len(results)} requests answered {statuses} in {sent_in:.1f} s")
    print(
        "ack latency seen by the clients (ms): "
        f"p50 {statistics.median(latencies):.1f}  p90 {percentile(latencies, 90):.1f}  "
        f"p99 {percentile(latencies, 99):.1f}  max {max(latencies):.1f}  "
        f"over 3 s: {sum(1 for v in latencies if v > 3000)}"
    )
    for line in metrics.splitlines():
        if line.startswith(
            ("pipebot_slack_ack_seconds_bucket", "pipebot_jobs{", "pipebot_outbox{")
        ):
            print("  " + line)
    print(
        f"answers delivered: {len(set(answers))} of {args.requests} distinct "
        f"({len(answers)} answer edits, {len(posts)} working messages) "
        f"{delivered_in:.1f} s after the last ack"
    )
    ok = (
        statuses == [200]
        and len(set(answers)) == len(answers) == args.requests
        and len(posts) == args.requests
        and max(latencies) < 3000
    )
    print("result: " + ("OK" if ok else "FAILED"))
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())

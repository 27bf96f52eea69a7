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

Then a little of everything else — questions for the agent (a fake Messages API), a duplicate
delivery, Airflow failure webhooks (one repeated, one whose post Slack refuses), a post Slack
rate-limits, a scheduled digest — and it prints ``/metrics`` of a web process: every series
docs/operations.md lists, each checked present with a plausible value. The layouts with several
processes run them all with ``PROMETHEUS_MULTIPROC_DIR`` (one host), so whichever web process
answers shows the counts of all of them, the worker's included.

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
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
from sqlalchemy import create_engine, text

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bot.compose import build_app, build_engine, build_server, build_sources
from bot.playbooks.schedules import DIGEST_JOB, job_key, job_payload
from bot.settings import Settings, SlackSettings, WorkSettings
from bot.store import Store
from tests.crash.support import post_keys
from tests.fakes import anthropic_api
from tests.fakes.airflow_server import GatedAirflow
from tests.fakes.anthropic_api import FakeAnthropic
from tests.fakes.slack_api import BOT_TOKEN, FakeSlack
from tests.server.scrape import Scrape
from tests.slack.conftest import command_body, sign

POSTGRES_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/test"


class SlowAirflow(GatedAirflow):
    """The demo's recorded Airflow 3 over HTTP (what the real client talks to), every answer
    `delay` seconds late, like a slow API."""

    def __init__(self, delay: float) -> None:
        super().__init__()
        self.delay = delay

    def _answer(self, *args: Any) -> tuple[int, str, bytes]:
        time.sleep(self.delay)
        return super()._answer(*args)


def percentile(values: list[float], pct: float) -> float:
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, round(pct / 100 * len(ordered)) - 1))
    return ordered[index]


SECRET = "bench-signing-secret"
WEBHOOK_TOKEN = "bench-webhook-token"
ANTHROPIC_KEY = "bench-anthropic-key"


def serve(args: argparse.Namespace) -> int:
    """The server process: what `pipebot serve` builds, with the slow Airflow plugged in."""

    slack = SlackSettings(
        bot_token=BOT_TOKEN,  # type: ignore[arg-type]
        signing_secret=SECRET,  # type: ignore[arg-type]
        api_url=args.api_url,
        mode="http",
    )
    settings = Settings(
        database_url=args.database_url,
        slack=slack,
        log_level="WARNING",
        airflow={"base_url": args.airflow_url, "username": "admin", "password": "admin"},
        agent={"api_key": ANTHROPIC_KEY, "base_url": args.anthropic_url},
        webhooks={"token": WEBHOOK_TOKEN},
        alerts={"channel": "C1", "workspace": "T1"},
    )
    app = build_app(settings, build_sources(settings))
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
    parser.add_argument("--airflow-url", default="", help=argparse.SUPPRESS)
    parser.add_argument("--anthropic-url", default="", help=argparse.SUPPRESS)
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
        SlowAirflow(args.delay) as airflow,
        FakeAnthropic() as anthropic,
        tempfile.TemporaryDirectory(prefix="pipebot-bench-") as tmp,
        database(layout, args, tmp) as database_url,
    ):
        answer = anthropic_api.message(anthropic_api.text("`transform` failed: a missing column."))
        anthropic.otherwise(lambda _request: answer)
        port = free_port()
        env = {
            k: v
            for k, v in os.environ.items()
            if not k.startswith(("PIPEBOT_", "SLACK_", "ANTHROPIC_", "PROMETHEUS_"))
        }
        if len(roles) > 1:
            # One host, several processes: one /metrics for all of them (docs/operations.md).
            env["PROMETHEUS_MULTIPROC_DIR"] = tempfile.mkdtemp(prefix="metrics-", dir=tmp)
        processes = []
        for role in roles:
            command = [sys.executable, __file__, "--serve", "--port", str(port), "--role", role]
            command += ["--api-url", fake.api_url, "--database-url", database_url]
            command += ["--airflow-url", airflow.url, "--anthropic-url", anthropic.url]
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
                delivered = Delivered.of(fake)
                _everything_else(http, fake, database_url, args)
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
        delivered=delivered,
        metrics=metrics,
        args=args,
    )


@dataclass(frozen=True)
class Delivered:
    """What Slack shows once the measured commands are answered (before anything else runs)."""

    answers: list[str]  # the ts of every answer edit
    posts: int  # "working…" messages
    duplicates: int  # posts carrying a key another post carries too

    @classmethod
    def of(cls, fake: FakeSlack) -> Delivered:
        keys = post_keys(fake)
        return cls(
            answers=_answers(fake),
            posts=len(fake.calls_to("chat.postMessage", ok_only=True)),
            duplicates=sum(count - 1 for count in keys.values()),
        )


def _everything_else(
    http: httpx.Client, fake: FakeSlack, database_url: str, args: argparse.Namespace
) -> None:
    """Traffic for the series the load leaves at zero, each step waited out: questions for the
    agent and a duplicate delivery; a failure webhook sent twice whose post Slack rate-limits
    once; a webhook for an unknown DAG whose post Slack refuses; a scheduled digest."""

    def command(text: str, trigger: str) -> None:
        body = command_body(text, trigger_id=trigger)
        headers = {"Content-Type": "application/x-www-form-urlencoded", **sign(body, secret=SECRET)}
        assert http.post("/slack/events", content=body, headers=headers).status_code == 200

    def webhook(dag_id: str) -> None:
        alert = {"dag_id": dag_id, "run_id": "r-bench", "task_id": "transform", "state": "failed"}
        response = http.post(
            "/webhooks/airflow", json=alert, headers={"Authorization": f"Bearer {WEBHOOK_TOKEN}"}
        )
        assert response.status_code == 200, response.text

    for n in range(3):
        command("why did orders_daily fail?", f"ask-{n}")
    command("why did orders_daily fail?", "ask-0")  # delivered again
    _wait_idle(database_url, args)
    # Above the client's in-place limit (5 s): the job retries the post later.
    fake.rate_limit("chat.postMessage", retry_after=6)
    webhook("orders_daily")
    webhook("orders_daily")  # delivered again
    _wait_idle(database_url, args)
    fake.fail("chat.postMessage", "channel_not_found")
    webhook("no_such_dag")
    _wait_idle(database_url, args)
    store = Store.open(database_url)
    try:
        schedule = store.digests.add_schedule(
            name="bench",
            platform="slack",
            workspace="T1",
            channel="C2",
            cron="0 9 * * *",
            timezone="UTC",
            created_by="bench",
        )
        assert schedule is not None
        slot = datetime(2026, 12, 3, 9, 0, tzinfo=UTC)
        engine = build_engine(Settings(database_url=database_url), store, role="clock")
        engine.submit(job_key(schedule.id, slot), DIGEST_JOB, job_payload(schedule, slot))
        _wait_idle(database_url, args)
    finally:
        store.close()


def _wait_idle(database_url: str, args: argparse.Namespace) -> None:
    deadline = time.monotonic() + args.deliver_timeout
    time.sleep(0.5)  # a job just submitted through another process's engine is seen by now
    while pending(database_url) and time.monotonic() < deadline:
        time.sleep(0.2)


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
    delivered: Delivered,
    metrics: str,
    args: argparse.Namespace,
) -> int:
    latencies = [seconds * 1000 for seconds, _ in results]
    cold_ms = [seconds * 1000 for seconds, _ in cold]
    statuses = sorted({status for _, status in results + cold})
    answers = delivered.answers
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
    print(
        f"answers delivered: {len(set(answers))} of {expected} distinct "
        f"({len(answers)} answer edits, {delivered.posts} working messages, "
        f"{delivered.duplicates} duplicate posts); all in Slack {delivered_in:.1f} s after the "
        "first command"
    )
    metrics_ok = _metrics_report(Scrape.parse(metrics), expected=expected, delay=args.delay)
    ok = (
        statuses == [200]
        and len(set(answers)) == len(answers) == expected
        and delivered.posts == expected
        and delivered.duplicates == 0
        and max(latencies + cold_ms) < 3000
        and percentile(latencies, 99) < 100
        and metrics_ok
    )
    print(
        "result: " + ("OK" if ok else "FAILED") + " (targets: p99 < 100 ms, none over 3 s, "
        "every command answered exactly once, every series present and plausible)"
    )
    return 0 if ok else 1


def _metrics_report(scrape: Scrape, *, expected: int, delay: float) -> bool:
    """Print every series docs/operations.md lists (histograms as count and sum) and check each
    is there with a plausible value after this run; True when all are."""

    def total(name: str, **labels: str) -> float:
        return sum(
            value
            for (sample, found), value in scrape.samples.items()
            if sample == name and set(labels.items()) <= set(found)
        )

    calls = total("pipebot_connector_request_duration_seconds_count", connector="airflow")
    waited = total("pipebot_connector_request_duration_seconds_sum", connector="airflow")
    # The run: `expected` status commands (3+ Airflow calls each), 4 questions (one a
    # duplicate), 3 alert webhooks (one a duplicate; one post rate-limited once, one refused),
    # one digest.
    checks: dict[str, bool] = {
        "pipebot_events_received_total": total("pipebot_events_received_total", source="slack")
        >= expected + 4
        and total("pipebot_events_received_total", source="webhook:airflow") == 3,
        "pipebot_events_deduplicated_total": total(
            "pipebot_events_deduplicated_total", source="slack"
        )
        >= 1
        and total("pipebot_events_deduplicated_total", source="webhook:airflow") == 1,
        "pipebot_ack_latency_seconds": total("pipebot_ack_latency_seconds_count", source="slack")
        >= expected + 4
        and total("pipebot_ack_latency_seconds_bucket", source="slack", le="3.0")
        == total("pipebot_ack_latency_seconds_count", source="slack"),
        "pipebot_jobs": total("pipebot_jobs", status="queued") == 0
        and total("pipebot_jobs", status="done") >= expected + 5,
        "pipebot_job_oldest_age_seconds": total("pipebot_job_oldest_age_seconds") == 0,
        "pipebot_job_duration_seconds": total("pipebot_job_duration_seconds_count") >= expected + 5,
        "pipebot_outbox": total("pipebot_outbox", status="sent") >= 2 * expected
        and total("pipebot_outbox", status="dead") == 1,
        "pipebot_posts_retried_total": total("pipebot_posts_retried_total", platform="slack") >= 1,
        "pipebot_posts_failed_total": total("pipebot_posts_failed_total", platform="slack") == 1,
        "pipebot_digests_posted_total": total("pipebot_digests_posted_total", platform="slack")
        == 1,
        "pipebot_incidents_open": total("pipebot_incidents_open", status="open") == 2,
        "pipebot_connector_requests_total": total(
            "pipebot_connector_requests_total", connector="airflow"
        )
        >= 3 * expected,
        "pipebot_connector_errors_total": total("pipebot_connector_errors_total") >= 1,
        # Every Airflow answer came `delay` seconds late.
        "pipebot_connector_request_duration_seconds": calls > 0
        and delay <= waited / calls < delay + 1,
        # The questions, and the alert's triage summary.
        "pipebot_llm_requests_total": total("pipebot_llm_requests_total", outcome="ok") >= 3,
        "pipebot_llm_tokens_total": total("pipebot_llm_tokens_total", type="output") > 0
        and total("pipebot_llm_tokens_total") > total("pipebot_llm_tokens_total", type="output"),
        "pipebot_llm_cost_usd_total": total("pipebot_llm_cost_usd_total") > 0,
        "pipebot_llm_request_duration_seconds": total("pipebot_llm_request_duration_seconds_count")
        >= 3,
        "pipebot_store_up": total("pipebot_store_up") == 1,
        "pipebot_build_info": total("pipebot_build_info") == 1,
    }
    print("/metrics of a web process:")
    for name, ok in checks.items():
        present = name in scrape.families
        suffixes = ("_count", "_sum") if scrape.families.get(name) == "histogram" else ("",)
        for (sample, labels), value in sorted(scrape.samples.items(), key=str):
            if any(sample == name + suffix for suffix in suffixes):
                shown = ",".join(f'{k}="{v}"' for k, v in sorted(labels))
                print(f"  {sample}{{{shown}}} {value:g}" if shown else f"  {sample} {value:g}")
        if not (present and ok):
            print(f"  !! {name}: " + ("implausible" if present else "missing"))
    return all(name in scrape.families and ok for name, ok in checks.items())


if __name__ == "__main__":
    sys.exit(main())

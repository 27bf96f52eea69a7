"""How fast does `pipebot serve` defer Discord interactions while every connector call is slow?

200 ``/pipebot status`` app commands, dispatched 20 at a time over the gateway of the local fake
Discord (in this process) to a `pipebot serve` process — built by `bot.main.build_app` /
`build_server`, as in production — on a SQLite store, with an Airflow whose every call takes 2 s.
An interaction must be acknowledged within 3 s or Discord invalidates it; pipebot persists the
job, then defers. Prints the time from dispatching each interaction to its deferral (the fake
records both), how long until every answer was in its interaction's response, and checks that
each was answered exactly once.

    .venv/bin/python bench/bench_discord_defer.py [--requests 200] [--concurrency 20] [--delay 2]

Not a test: it prints figures (``make bench``).
"""

from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_slack_ack import SlowAirflow, percentile

from bot.compose import build_app, build_server
from bot.ports import Sources
from bot.settings import DiscordSettings, Settings
from tests.fakes.discord_api import BOT_TOKEN, FakeDiscord, FakeInteraction


def serve(args: argparse.Namespace) -> int:
    """The server process: what `pipebot serve` builds, with the slow Airflow plugged in."""
    discord = DiscordSettings(token=BOT_TOKEN, api_url=args.api_url)  # type: ignore[arg-type]
    settings = Settings(database_url=args.database_url, discord=discord, log_level="WARNING")
    app = build_app(settings, Sources(airflow=SlowAirflow(args.delay)))
    build_server(app).run("127.0.0.1", args.port)
    return 0


def answered(fake: FakeDiscord, interaction: FakeInteraction) -> int:
    path = re.escape(interaction.webhook_path) + "/messages/@original"
    return sum(1 for c in fake.calls_to("PATCH", path) if c.status < 300)


def main() -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--requests", type=int, default=200)
    parser.add_argument("--concurrency", type=int, default=20)
    parser.add_argument("--delay", type=float, default=2.0, help="seconds per connector call")
    parser.add_argument("--deliver-timeout", type=float, default=600.0)
    parser.add_argument("--serve", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--port", type=int, default=0, help=argparse.SUPPRESS)
    parser.add_argument("--api-url", default="", help=argparse.SUPPRESS)
    parser.add_argument("--database-url", default="", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve:
        return serve(args)
    from tests.crash.support import free_port

    with tempfile.TemporaryDirectory() as tmp, FakeDiscord() as fake:
        database_url = f"sqlite:///{tmp}/bench.db"
        process = subprocess.Popen(
            [
                sys.executable,
                __file__,
                "--serve",
                f"--port={free_port()}",
                f"--api-url={fake.api_url}",
                f"--database-url={database_url}",
                f"--delay={args.delay}",
            ],
            env={k: v for k, v in os.environ.items() if not k.startswith(("PIPEBOT_", "DISCORD"))},
        )
        try:
            fake.wait_ready(60)
            interactions: list[FakeInteraction] = []
            started = time.monotonic()
            for first in range(0, args.requests, args.concurrency):
                burst = [
                    fake.slash(options=[{"type": 1, "name": "status", "options": []}])
                    for _ in range(min(args.concurrency, args.requests - first))
                ]
                for interaction in burst:
                    fake.wait_call("POST", re.escape(interaction.callback_path), timeout=30)
                interactions += burst
            accepted_s = time.monotonic() - started
            deadline = time.monotonic() + args.deliver_timeout
            while any(answered(fake, i) == 0 for i in interactions):
                if time.monotonic() > deadline:
                    print("not every interaction was answered in time")
                    return 1
                time.sleep(0.2)
            delivered_s = time.monotonic() - started
            time.sleep(1.0)  # a second answer would show now
        finally:
            process.terminate()
            process.wait(30)
        # The first callback of each interaction: the gateway's deferral (a worker that gets
        # there later is told "already acknowledged").
        callbacks = {}
        for call in fake.calls_to("POST", r"/interactions/.*/callback"):
            callbacks.setdefault(call.path, call)
        latencies = [callbacks[i.callback_path].at - i.dispatched_at for i in interactions]
        counts = [answered(fake, i) for i in interactions]
        deferred = sum(1 for i in interactions if callbacks[i.callback_path].json == {"type": 5})
    print(
        f"{args.requests} interactions, {args.concurrency} at a time, connector delay "
        f"{args.delay:.0f} s (SQLite, one `pipebot serve`)"
    )
    print(
        f"  deferral after dispatch: p50 {percentile(latencies, 50) * 1000:.0f} ms, "
        f"p99 {percentile(latencies, 99) * 1000:.0f} ms, max {max(latencies) * 1000:.0f} ms "
        f"(Discord's limit: 3,000 ms)"
    )
    print(f"  all accepted in {accepted_s:.1f} s; all answered in {delivered_s:.1f} s")
    print(
        f"  deferred with type 5: {deferred}/{len(interactions)}; answered once: "
        f"{sum(1 for c in counts if c == 1)}/{len(interactions)}"
    )
    ok = deferred == len(interactions) and all(c == 1 for c in counts)
    ok = ok and max(latencies) < 3.0
    print("  OK" if ok else "  FAILED")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())

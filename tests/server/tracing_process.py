"""The process of `tests/server/test_tracing.py`: `pipebot serve`'s tracing set-up, one HTTP
request served and one job that calls an upstream with requests, then exit (spans are sent at
exit). Prints whether tracing was on.

    python -m tests.server.tracing_process STORE_URL UPSTREAM_URL
"""

from __future__ import annotations

import sys
import threading
from typing import Any

import httpx
import requests

from bot.store import Store
from bot.work import Attempt, JobKind
from bot.work.local import LocalEngine
from handlers import tracing
from handlers.server import Server, ServerThread


def main() -> int:
    store_url, upstream = sys.argv[1], sys.argv[2]
    print("tracing on" if tracing.setup() else "tracing off", flush=True)
    store = Store.open(store_url)
    server = Server(store=store, engine=LocalEngine(store, poll=0.05))
    done = threading.Event()

    def call_upstream(payload: dict[str, Any], attempt: Attempt) -> None:
        requests.get(upstream + "/ping", timeout=5).raise_for_status()
        done.set()

    server.add_jobs([JobKind("test.call", call_upstream, dict)])
    with ServerThread(server) as running:
        assert httpx.get(running.url + "/healthz", timeout=5).status_code == 200
        server.submit("tracing:1", "test.call", {})
        assert done.wait(20), "the job did not run"
        assert server.engine.wait_idle(20)
    store.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())

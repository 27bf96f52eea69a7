"""One web process of `tests/server/test_metrics.py`'s multiprocess test.

Run as ``python -m tests.server.metrics_process STORE_URL``: a `Server` in the web role with the
webhook routes, on a free port of 127.0.0.1. It prints its URL, then serves until its standard
input closes. The test starts it with ``PROMETHEUS_MULTIPROC_DIR`` set, as a deployment would.
"""

from __future__ import annotations

import sys

from bot.alerts import ALERT_JOB
from bot.store import Store
from bot.work.postgres import ProcrastinateEngine
from handlers import webhooks
from handlers.server import Server, ServerThread

TOKEN = "multiprocess-test-token"


def main() -> int:
    store = Store.open(sys.argv[1])
    server = Server(store=store, engine=ProcrastinateEngine(store), role="web")
    server.add_routes(
        webhooks.routes(
            submit=lambda alert: server.submit(alert.key, ALERT_JOB, alert),
            token=TOKEN,
            dbt_secret=None,
        )
    )
    with ServerThread(server) as running:
        print(running.url, flush=True)
        sys.stdin.read()  # until the test closes it
    store.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())

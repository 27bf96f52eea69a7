"""PostgreSQL, procrastinate, three processes: two `pipebot serve --role web` take 500 signed
slash commands between them while one `--role worker` answers; the worker is SIGKILLed in the
middle of the burst and restarted — and every command is answered exactly once."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest

from tests.crash.support import Serve, post_keys, text_of
from tests.fakes.slack_api import FakeSlack

COMMANDS = 500
RATE_PER_S = 50  # a busy workspace; the burst lasts ~10 s, the kill lands in its middle
KILL_AFTER_ANSWERS = 100


@pytest.fixture
def fake() -> Iterator[FakeSlack]:
    with FakeSlack() as running:
        yield running


def answered(fake: FakeSlack) -> int:
    return sum("read-only" in text_of(m) for m in fake.messages("C1"))


def test_five_hundred_commands_two_web_one_killed_worker_all_answered_once(
    pg_url: str, fake: FakeSlack, tmp_path: Path
) -> None:
    env = {"PIPEBOT_WORK__CONCURRENCY": "16"}
    webs = [
        Serve(tmp_path, database_url=pg_url, fake=fake, role="web", name=f"web{n}", extra_env=env)
        for n in (1, 2)
    ]
    worker = Serve(tmp_path, database_url=pg_url, fake=fake, role="worker", extra_env=env)
    statuses: list[int] = []
    lock = threading.Lock()
    try:
        for web in webs:
            web.start()
        worker.start()
        clients = [httpx.Client(base_url=web.url, timeout=10) for web in webs]

        def send(n: int) -> None:
            status, _ = webs[n % 2].command("help", http=clients[n % 2])
            with lock:
                statuses.append(status)

        with ThreadPoolExecutor(max_workers=20) as pool:
            started = time.monotonic()
            for n in range(COMMANDS):
                # Paced: the n-th command leaves at n / RATE_PER_S seconds.
                delay = started + n / RATE_PER_S - time.monotonic()
                if delay > 0:
                    time.sleep(delay)
                pool.submit(send, n)
                if n == COMMANDS // 2:
                    fake.wait_until(lambda f: answered(f) >= KILL_AFTER_ANSWERS, 60)
                    worker.kill()  # jobs in flight, hundreds still to come
                    killed_at = time.monotonic()
                    worker.start()
        for client in clients:
            client.close()
        assert statuses.count(200) == COMMANDS, sorted(set(statuses))
        fake.wait_until(lambda f: answered(f) >= COMMANDS, timeout=120)
        recovered_after = time.monotonic() - killed_at
    finally:
        worker.stop()
        for web in webs:
            web.stop()
    top_level = [m for m in fake.messages("C1") if m.get("thread_ts") in (None, m["ts"])]
    assert len(top_level) == COMMANDS  # one message per command: "working…" became the answer
    assert answered(fake) == COMMANDS
    keys = post_keys(fake)
    assert sum(k.startswith("slack:open:") for k in keys) == COMMANDS
    assert all(count == 1 for count in keys.values()), [k for k, c in keys.items() if c > 1]
    print(f"\nall {COMMANDS} answered once; the last {recovered_after:.1f} s after the kill")

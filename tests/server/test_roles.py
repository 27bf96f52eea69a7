"""`pipebot serve --role web|worker`: one process accepts, another runs the work."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import pytest

from bot.store import Store
from handlers.server import Server


def test_web_accepts_and_a_worker_process_runs(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path}/shared.db"
    web_store, worker_store = Store.open(url), Store.open(url)  # as two processes would
    ran: list[str] = []
    web = Server(store=web_store, workers=2, role="web")
    worker = Server(store=worker_store, workers=2, role="worker")
    for server in (web, worker):
        server.add_jobs({"note": lambda payload: ran.append(payload["text"])})
    web.start()
    stop = threading.Event()
    runner = threading.Thread(target=worker.run_worker, args=(stop,), daemon=True)
    runner.start()
    try:
        assert web.submit("e1", "note", {"text": "hello"})
        assert not web.submit("e1", "note", {"text": "hello"})  # a redelivery
        assert web.queue is not None and not web.queue.alive()  # the web role runs nothing
        deadline = time.monotonic() + 10
        while not ran and time.monotonic() < deadline:
            time.sleep(0.05)
        assert ran == ["hello"]
        assert worker_store.jobs.status("e1") == "done"
    finally:
        stop.set()
        runner.join(10)
        web.stop()
        web_store.close()
        worker_store.close()


def test_services_follow_their_role(tmp_path: Path) -> None:
    started: list[str] = []

    class Service:
        def __init__(self, name: str) -> None:
            self.name = name

        def start(self) -> None:
            started.append(self.name)

        def stop(self, timeout: float = 10.0) -> None:
            return None

        def alive(self) -> bool:
            return True

    store = Store.open(f"sqlite:///{tmp_path}/s.db")
    for role, expected in (
        ("web", ["socket"]),
        ("worker", ["delivery"]),
        ("all", ["socket", "delivery"]),
    ):
        started.clear()
        server = Server(store=store, workers=1, role=role)
        server.add_service(Service("socket"))
        server.add_service(Service("delivery"), drain=True, background=True)
        server.start()
        server.stop()
        assert started == expected, role
    store.close()


def test_unknown_role_is_refused(tmp_path: Path) -> None:
    store = Store.open(f"sqlite:///{tmp_path}/s.db")
    with pytest.raises(ValueError, match="role must be one of all, web, worker"):
        Server(store=store, role="both")
    store.close()

"""`pipebot serve --role web|worker`: on PostgreSQL one process accepts, another runs the work."""

from __future__ import annotations

import subprocess
import sys
import threading
from pathlib import Path
from typing import Any

import pytest

from bot.compose import build_engine
from bot.errors import ConfigError
from bot.settings import Settings
from bot.store import Store
from bot.work import Attempt, JobKind
from bot.work.local import LocalEngine
from bot.work.postgres import ProcrastinateEngine
from handlers.server import Server


def test_web_accepts_and_a_worker_process_runs(pg_url: str) -> None:
    web_store, worker_store = Store.open(pg_url), Store.open(pg_url)  # as two processes would
    ran: list[str] = []
    done = threading.Event()

    def note(payload: dict[str, Any], attempt: Attempt) -> None:
        ran.append(payload["text"])
        done.set()

    web = Server(store=web_store, engine=ProcrastinateEngine(web_store), role="web")
    worker = Server(store=worker_store, engine=ProcrastinateEngine(worker_store), role="worker")
    for server in (web, worker):
        server.add_jobs([JobKind("note", note, dict)])
    web.start()
    stop = threading.Event()
    runner = threading.Thread(target=worker.run_worker, args=(stop,), daemon=True)
    runner.start()
    try:
        assert web.submit("e1", "note", {"text": "hello"})
        assert not web.submit("e1", "note", {"text": "hello"})  # a redelivery
        assert not web.engine.alive()  # the web role runs nothing
        assert done.wait(20)
        assert worker.engine.wait_idle(20)
        assert ran == ["hello"]
        assert worker.engine.counts() == {"succeeded": 1}
    finally:
        stop.set()
        runner.join(20)
        web.stop()
        web_store.close()
        worker_store.close()


def test_services_follow_their_role(sqlite_store: Store) -> None:
    started: list[str] = []

    class Service:
        name = "socket"

        def start(self) -> None:
            started.append(self.name)

        def stop(self, timeout: float = 10.0) -> None:
            return None

        def alive(self) -> bool:
            return True

    for role, expected in (("web", ["socket"]), ("worker", []), ("all", ["socket"])):
        started.clear()
        server = Server(store=sqlite_store, engine=LocalEngine(sqlite_store), role=role)
        server.add_service(Service())
        server.start()
        server.stop()
        assert started == expected, role


def test_unknown_role_is_refused(sqlite_store: Store) -> None:
    with pytest.raises(ValueError, match="role must be one of all, web, worker"):
        Server(store=sqlite_store, engine=LocalEngine(sqlite_store), role="both")


def test_splitting_roles_needs_postgresql(sqlite_store: Store, tmp_path: Path) -> None:
    settings = Settings(database_url=f"sqlite:///{tmp_path}/x.db")
    with pytest.raises(ConfigError, match="needs a PostgreSQL database"):
        build_engine(settings, sqlite_store, role="worker")
    assert build_engine(settings, sqlite_store, role="clock").name == "embedded"
    result = subprocess.run(
        [sys.executable, "-m", "bot", "serve", "--role", "web"],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=tmp_path,
        env={
            "PATH": "/usr/bin:/bin",
            "HOME": str(tmp_path),
            "PIPEBOT_DATABASE_URL": f"sqlite:///{tmp_path}/x.db",
        },
        check=False,
    )
    assert result.returncode == 2
    assert "--role web needs a PostgreSQL database" in result.stderr
    assert "Traceback" not in result.stderr

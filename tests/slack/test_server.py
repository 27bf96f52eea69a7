"""The `pipebot serve` host: routes mounted by other modules, jobs they submit, readiness."""

from __future__ import annotations

import threading
from typing import Any

import httpx
import pytest
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from bot.store import Store
from bot.work import Attempt, JobKind
from bot.work.local import LocalEngine
from handlers.server import Server, ServerThread


class Flaky:
    name = "flaky-service"

    def __init__(self) -> None:
        self.up = False
        self.stopped = False

    def start(self) -> None:
        self.up = True

    def stop(self, timeout: float = 10.0) -> None:
        self.stopped = True

    def alive(self) -> bool:
        return self.up


def test_a_module_mounts_a_route_and_runs_its_work_off_the_request(sqlite_store: Store) -> None:
    server = Server(store=sqlite_store, engine=LocalEngine(sqlite_store, poll=0.05))
    ran: list[dict[str, Any]] = []
    done = threading.Event()

    def run(payload: dict[str, Any], attempt: Attempt) -> None:
        ran.append(payload)
        done.set()

    async def receive(request: Request) -> Response:
        body = await request.json()
        accepted = server.submit(f"echo:{body['id']}", "echo", body)
        return JSONResponse({"accepted": accepted}, status_code=202)

    server.add_routes([Route("/webhooks/echo", receive, methods=["POST"])])
    server.add_jobs([JobKind("echo", run, dict)])
    service = Flaky()
    server.add_service(service)
    with pytest.raises(ValueError, match="already mounted"):
        server.add_routes([Route("/webhooks/echo", receive, methods=["POST"])])
    with ServerThread(server) as running, httpx.Client(base_url=running.url) as http:
        first = http.post("/webhooks/echo", json={"id": 1})
        again = http.post("/webhooks/echo", json={"id": 1})
        assert (first.status_code, first.json()) == (202, {"accepted": True})
        assert again.json() == {"accepted": False}  # a redelivery is refused
        assert done.wait(10)
        assert ran == [{"id": 1}]
        assert http.get("/readyz").json() == {
            "ready": True,
            "checks": {"store": "ok", "workers": "ok", "flaky-service": "ok"},
        }
        service.up = False
        not_ready = http.get("/readyz")
        assert not_ready.status_code == 503
        assert not_ready.json()["checks"]["flaky-service"] == "not running"
        with pytest.raises(RuntimeError):
            server.add_jobs([JobKind("late", run, dict)])
    assert service.stopped

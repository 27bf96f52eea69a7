"""`pipebot serve`: one HTTP server plus the work behind it.

The `Server` hosts a Starlette app (run by uvicorn), the process's work engine
(`bot.work.Engine`: the embedded one on SQLite, procrastinate on PostgreSQL) and long-running
services (Slack's Socket Mode connection …). Its own routes:

- ``GET /healthz``: the process answers (liveness);
- ``GET /readyz``: the store answers a query and the workers and services are alive (readiness;
  503 with the failing checks otherwise);
- ``GET /metrics``: Prometheus text (`bot.metrics`): what this process counted — or, with
  ``PROMETHEUS_MULTIPROC_DIR``, every process of the host — plus jobs, outbox rows and open
  incidents read from the store at scrape time.

**Adding routes and work** (how channels plug in; call these before `start`/`asgi`)::

    server = Server(store=store, engine=engine)
    server.add_routes([Route("/webhooks/dbt-cloud", endpoint, methods=["POST"])])
    server.add_jobs([JobKind("webhook.dbt_cloud", run_dbt_webhook, Alert)])
    server.add_service(my_poller)                              # start() / stop() / alive()
    ...
    server.submit(key, "webhook.dbt_cloud", alert)             # from a route: persist, then 2xx

An endpoint persists what it accepted with `submit` (keyed by the sender's delivery id, so a
redelivery is refused) and answers at once; blocking work belongs in a job. Endpoints are async:
parse and submit off the event loop (``starlette.concurrency.run_in_threadpool``).

**Roles.** ``all`` (the default) accepts and runs the work; on PostgreSQL the work can be split:
``web`` processes accept (routes, Socket Mode) and only persist jobs, ``worker`` processes run
them and post the answers.
"""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import socket
import threading
import time
from collections.abc import AsyncIterator, Iterable
from contextlib import asynccontextmanager
from typing import Any, Protocol

import anyio
import uvicorn
from sqlalchemy import text
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route
from starlette.types import ASGIApp

from bot import metrics
from bot.metrics import StoreGauges
from bot.settings import ServerSettings
from bot.store import Store
from bot.work import JOB_NICENESS, Engine, JobKind
from handlers import tracing
from handlers.front_door import BodyLimit, uvicorn_limits

log = logging.getLogger(__name__)

READY_TIMEOUT_S = 2.0


class Service(Protocol):
    """Something that accepts work beside the routes (Socket Mode): it starts after the engine
    and stops before it."""

    name: str

    def start(self) -> None: ...

    def stop(self, timeout: float = 10.0) -> None: ...

    def alive(self) -> bool: ...


ROLES = ("all", "web", "worker")
# Routes anyone on the internet can reach: their bodies are bounded before they are read.
BOUNDED_PATHS = ("/slack/", "/webhooks/")


class Server:
    """The process behind `pipebot serve`: HTTP routes, the work engine and services."""

    def __init__(
        self,
        *,
        store: Store,
        engine: Engine,
        role: str = "all",
        limits: ServerSettings | None = None,
    ) -> None:
        if role not in ROLES:
            raise ValueError(f"role must be one of {', '.join(ROLES)}, not {role!r}")
        self.role = role
        self.store = store
        self.engine = engine
        self.limits = limits or ServerSettings()
        self._routes: list[BaseRoute] = []
        self._services: list[tuple[Service, frozenset[str]]] = []
        self._started = False
        self._lock = threading.Lock()
        self._gauges = StoreGauges(store, engine)

    # --- composition ---------------------------------------------------------------------------

    def add_routes(self, routes: Iterable[BaseRoute]) -> None:
        for route in routes:
            path = getattr(route, "path", None)
            if path is not None and any(getattr(r, "path", None) == path for r in self._routes):
                raise ValueError(f"route {path} is already mounted")
            self._routes.append(route)

    def add_jobs(self, kinds: Iterable[JobKind[Any]]) -> None:
        if self._started:
            raise RuntimeError("add job kinds before the server starts")
        traced = [tracing.traced(kind) for kind in kinds]
        for kind in traced:
            metrics.declare_job(kind.name)
        self.engine.register(traced)

    def add_service(self, service: Service, *, roles: Iterable[str] = ("all", "web")) -> None:
        """Run `service` with the server in `roles` (by default where work is accepted; a
        connection that delivers answers runs in the worker role too)."""
        self._services.append((service, frozenset(roles)))

    def submit(self, key: str, kind: str, payload: object) -> bool:
        """Persist a job (False when `key` was submitted before); the workers run it."""
        return self.engine.submit(key, kind, payload)

    # --- lifecycle -------------------------------------------------------------------------------

    def start(self) -> None:
        """Start the workers, then the services (which may already accept work)."""
        with self._lock:
            if self._started:
                return
            if self.role != "worker":
                self.store.warm()
            if self.role != "web":
                self.engine.start()
            started: list[Service] = []
            try:
                for service in self._own_services():
                    service.start()
                    started.append(service)
                    log.info("service started", extra={"service": service.name})
            except BaseException:
                # e.g. a refused token: undo what started, so the process can exit cleanly.
                for service in reversed(started):
                    service.stop()
                if self.role != "web":
                    self.engine.stop()
                raise
            self._started = True

    def stop(self, timeout: float = 10.0) -> None:
        """Stop accepting (services first), then let the running jobs finish — or put them
        back in the queue when they cannot within `timeout`."""
        with self._lock:
            if not self._started:
                return
            for service in reversed(self._own_services()):
                service.stop(timeout)
            if self.role != "web":
                self.engine.stop(timeout)
            self._started = False

    def _own_services(self) -> list[Service]:
        return [service for service, roles in self._services if self.role in roles]

    def run_worker(self, stop: threading.Event | None = None) -> None:
        """The worker role's main loop: run jobs until SIGTERM/SIGINT."""
        stopping = stop or threading.Event()
        if stop is None:
            for signum in (signal.SIGTERM, signal.SIGINT):
                # Set from another thread: the interrupted main thread may hold the event's
                # lock inside Event.wait.
                signal.signal(
                    signum,
                    lambda *_: threading.Thread(target=stopping.set, daemon=True).start(),
                )
        # A worker process shares its host with web processes more often than not: its work
        # takes seconds anyway, theirs is an acknowledgement within Slack's 3 s.
        with contextlib.suppress(OSError):
            os.nice(JOB_NICENESS)
        self.start()
        try:
            while not stopping.wait(1.0):
                if not self.engine.alive():
                    log.error("the job engine stopped; exiting so the process is restarted")
                    break
        finally:
            self.stop()

    def asgi(self) -> ASGIApp:
        """The ASGI app; its lifespan starts and stops the workers and services."""

        @asynccontextmanager
        async def lifespan(_app: Starlette) -> AsyncIterator[None]:
            await run_in_threadpool(self.start)
            try:
                yield
            finally:
                await run_in_threadpool(self.stop)

        routes = [
            Route("/healthz", self._healthz, methods=["GET"]),
            Route("/readyz", self._readyz, methods=["GET"]),
            Route("/metrics", self._metrics, methods=["GET"]),
            *self._routes,
        ]
        app = Starlette(routes=routes, lifespan=lifespan)
        tracing.instrument_app(app)
        return BodyLimit(
            app,
            prefixes=BOUNDED_PATHS,
            max_bytes=self.limits.max_body_bytes,
            timeout=self.limits.body_timeout,
        )

    def run(self, host: str, port: int) -> None:
        """Serve until SIGINT/SIGTERM (uvicorn), then shut down gracefully.

        The port is bound with SO_REUSEPORT where the OS has it, so several web processes can
        share one port and the kernel spreads connections across them.
        """
        # Start before serving: a service that cannot start (a refused token) stops the
        # process with its own message instead of a failed ASGI lifespan.
        self.start()
        config = self.uvicorn_config(host=host, port=port)
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        sock = tcp_socket(family)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        if hasattr(socket, "SO_REUSEPORT"):
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        sock.bind((host, port))
        uvicorn.Server(config).run(sockets=[sock])

    def uvicorn_config(self, *, host: str = "127.0.0.1", port: int = 0) -> uvicorn.Config:
        return uvicorn.Config(
            self.asgi(),
            host=host,
            port=port,
            log_config=None,  # pipebot's logging is configured once, in bot/main.py
            access_log=False,
            timeout_graceful_shutdown=10,
            lifespan="on",
            **uvicorn_limits(self.limits),
        )

    # --- the server's own routes -------------------------------------------------------------

    async def _healthz(self, request: Request) -> Response:
        return JSONResponse({"status": "ok"})

    async def _readyz(self, request: Request) -> Response:
        checks: dict[str, str] = {}
        try:
            with anyio.fail_after(READY_TIMEOUT_S):
                await run_in_threadpool(self._ping_store)
            checks["store"] = "ok"
        except TimeoutError:
            checks["store"] = f"no answer within {READY_TIMEOUT_S:g} s"
        except Exception as exc:  # noqa: BLE001 - any failure means "not ready"; named, not raised
            checks["store"] = f"unreachable: {type(exc).__name__}"
        if self.role != "web":  # a web process runs no workers; its worker process does
            checks["workers"] = "ok" if self.engine.alive() else "not running"
        for service in self._own_services():
            checks[service.name] = "ok" if service.alive() else "not running"
        ready = all(value == "ok" for value in checks.values())
        return JSONResponse({"ready": ready, "checks": checks}, status_code=200 if ready else 503)

    async def _metrics(self, request: Request) -> Response:
        body = await run_in_threadpool(metrics.exposition, self._gauges)
        return Response(body, media_type=metrics.CONTENT_TYPE)

    def _ping_store(self) -> None:
        with self.store.engine.connect() as connection:
            connection.execute(text("select 1"))


class ServerThread:
    """Run a `Server` on a real socket in a background thread (tests, benchmarks, embedding).

    >>> with ServerThread(server) as running:          # doctest: +SKIP
    ...     httpx.get(running.url + "/healthz")
    """

    def __init__(self, server: Server, *, host: str = "127.0.0.1", port: int = 0) -> None:
        self.server = server
        self._sock = tcp_socket(socket.AF_INET)
        self._sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._sock.bind((host, port))
        self.host, self.port = self._sock.getsockname()[:2]
        self._uvicorn = uvicorn.Server(server.uvicorn_config(host=host, port=self.port))
        self._thread = threading.Thread(target=self._serve, name="http-server", daemon=True)

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def _serve(self) -> None:
        self._uvicorn.run(sockets=[self._sock])

    def start(self, timeout: float = 15.0) -> ServerThread:
        self._thread.start()
        deadline = time.monotonic() + timeout
        while not self._uvicorn.started:
            if not self._thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError("the HTTP server did not start")
            time.sleep(0.01)
        return self

    def stop(self, timeout: float = 15.0) -> None:
        self._uvicorn.should_exit = True
        self._thread.join(timeout)
        self._sock.close()

    def __enter__(self) -> ServerThread:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


def tcp_socket(family: socket.AddressFamily) -> socket.socket:
    """A listening socket whose connections get TCP_NODELAY.

    asyncio sets TCP_NODELAY only on sockets whose protocol is IPPROTO_TCP, and a socket made
    with the default protocol 0 does not say so: uvicorn writes a response's head and body
    separately, and on a keep-alive connection the body then waited for a delayed ACK — about
    40 ms added to every acknowledgement.
    """
    return socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)

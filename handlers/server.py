"""`pipebot serve`: one HTTP server plus the background work behind it.

The `Server` hosts a Starlette app (run by uvicorn) and, for the same process, the job queue
(`bot.work.StoreQueue`: one per process, since every queue claims jobs of every kind) and
long-running services (Slack's outbox senders, its Socket Mode connection …). Its own routes:

- ``GET /healthz``: the process answers (liveness);
- ``GET /readyz``: the store answers a query and the workers and services are alive (readiness;
  503 with the failing checks otherwise);
- ``GET /metrics``: Prometheus text — jobs and outbox rows by status, acknowledgements and their
  latency, whatever else components count.

**Adding routes and work** (how channels plug in; call these before `start`/`asgi`)::

    server = Server(store=store, workers=32)
    server.add_routes([Route("/webhooks/dbt-cloud", endpoint, methods=["POST"])])
    server.add_jobs({"webhook.dbt_cloud": run_dbt_webhook})   # job kind → handler(payload)
    server.add_service(my_poller)                              # start() / stop() / alive()
    ...
    server.submit(key, "webhook.dbt_cloud", payload)           # from a route: persist, then 2xx

An endpoint should persist what it accepted with `submit` (keyed by the sender's delivery id, so
a redelivery is refused) and answer at once; blocking work belongs in a job. Endpoints are async:
run blocking calls with ``starlette.concurrency.run_in_threadpool``.
"""

from __future__ import annotations

import bisect
import gc
import logging
import signal
import socket
import threading
import time
from collections.abc import AsyncIterator, Callable, Iterable, Mapping, Sequence
from contextlib import asynccontextmanager
from typing import Any, Protocol

import anyio
import uvicorn
from sqlalchemy import text
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import BaseRoute, Route

from bot.store import Store
from bot.work import JobHandler, StoreQueue

log = logging.getLogger(__name__)

READY_TIMEOUT_S = 2.0
# Seconds: an acknowledgement must stay far below Slack's 3 s; the buckets show how far.
ACK_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0)


class Service(Protocol):
    """Something the server starts after its queue and stops before it."""

    name: str

    def start(self) -> None: ...

    def stop(self, timeout: float = 10.0) -> None: ...

    def alive(self) -> bool: ...


class Metrics:
    """Counters and histograms in the Prometheus text format (thread-safe, in memory)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._help: dict[str, tuple[str, str]] = {}
        self._counters: dict[tuple[str, tuple[tuple[str, str], ...]], float] = {}
        self._histograms: dict[tuple[str, tuple[tuple[str, str], ...]], list[float]] = {}
        self._collectors: list[Callable[[], Iterable[str]]] = []

    def inc(self, name: str, help_text: str, amount: float = 1.0, **labels: str) -> None:
        key = (name, tuple(sorted(labels.items())))
        with self._lock:
            self._help.setdefault(name, ("counter", help_text))
            self._counters[key] = self._counters.get(key, 0.0) + amount

    def observe(self, name: str, help_text: str, value: float, **labels: str) -> None:
        """Record one value in a histogram with `ACK_BUCKETS`."""
        key = (name, tuple(sorted(labels.items())))
        with self._lock:
            self._help.setdefault(name, ("histogram", help_text))
            # Per bucket counts, then sum and count.
            row = self._histograms.setdefault(key, [0.0] * (len(ACK_BUCKETS) + 2))
            index = bisect.bisect_left(ACK_BUCKETS, value)
            if index < len(ACK_BUCKETS):
                row[index] += 1
            row[-2] += value
            row[-1] += 1

    def add_collector(self, collect: Callable[[], Iterable[str]]) -> None:
        """Lines computed at scrape time (gauges read from the store)."""
        self._collectors.append(collect)

    def render(self) -> str:
        lines: list[str] = []
        with self._lock:
            for name, (kind, help_text) in sorted(self._help.items()):
                lines += [f"# HELP {name} {help_text}", f"# TYPE {name} {kind}"]
                if kind == "counter":
                    for (metric, labels), value in sorted(self._counters.items()):
                        if metric == name:
                            lines.append(f"{name}{_labels(labels)} {value:g}")
                    continue
                for (metric, labels), row in sorted(self._histograms.items()):
                    if metric != name:
                        continue
                    cumulative = 0.0
                    for bound, count in zip(ACK_BUCKETS, row, strict=False):
                        cumulative += count
                        le = (*labels, ("le", f"{bound:g}"))
                        lines.append(f"{name}_bucket{_labels(le)} {cumulative:g}")
                    inf = (*labels, ("le", "+Inf"))
                    lines.append(f"{name}_bucket{_labels(inf)} {row[-1]:g}")
                    lines.append(f"{name}_sum{_labels(labels)} {row[-2]:g}")
                    lines.append(f"{name}_count{_labels(labels)} {row[-1]:g}")
        for collect in self._collectors:
            lines.extend(collect())
        return "\n".join(lines) + "\n"


def _labels(labels: Sequence[tuple[str, str]]) -> str:
    if not labels:
        return ""
    quoted = ",".join(
        f'{k}="{v.replace(chr(92), chr(92) * 2).replace(chr(34), chr(92) + chr(34))}"'
        for k, v in labels
    )
    return "{" + quoted + "}"


ROLES = ("all", "web", "worker")
# How often a worker process looks for jobs another process accepted (it has no wake-up call).
WORKER_POLL_S = 0.2


class Server:
    """The process behind `pipebot serve`: HTTP routes, the job queue and services.

    `role` splits the work across processes when one is not enough: ``web`` accepts (routes,
    Socket Mode) and persists jobs; ``worker`` runs them and delivers the posts; ``all`` (the
    default) does both. Accepting and answering then no longer share one interpreter lock, which
    keeps acknowledgements fast while slow answers are being worked out.
    """

    def __init__(
        self,
        *,
        store: Store,
        workers: int = 16,
        metrics: Metrics | None = None,
        role: str = "all",
    ) -> None:
        if role not in ROLES:
            raise ValueError(f"role must be one of {', '.join(ROLES)}, not {role!r}")
        self.role = role
        self.store = store
        self.metrics = metrics or Metrics()
        self._workers = workers
        self._routes: list[BaseRoute] = []
        self._jobs: dict[str, JobHandler] = {}
        self._services: list[Service] = []
        self._draining: set[str] = set()
        self._background: set[str] = set()
        self._queue: StoreQueue | None = None
        self._started = False
        self._lock = threading.Lock()
        self.metrics.add_collector(self._store_gauges)

    # --- composition ---------------------------------------------------------------------------

    def add_routes(self, routes: Iterable[BaseRoute]) -> None:
        for route in routes:
            path = getattr(route, "path", None)
            if path is not None and any(getattr(r, "path", None) == path for r in self._routes):
                raise ValueError(f"route {path} is already mounted")
            self._routes.append(route)

    def add_jobs(self, handlers: Mapping[str, JobHandler]) -> None:
        if self._queue is not None:
            raise RuntimeError("add job kinds before the server starts")
        for kind in handlers:
            if kind in self._jobs:
                raise ValueError(f"job kind {kind!r} is already registered")
        self._jobs.update(handlers)

    def add_service(
        self, service: Service, *, drain: bool = False, background: bool = False
    ) -> None:
        """Run `service` with the server. `drain=True` marks one that running jobs still need
        (an outbox sender): it stops only after the workers have finished. `background=True`
        marks work that belongs to the worker role (delivery); others accept work (web)."""
        self._services.append(service)
        if drain:
            self._draining.add(service.name)
        if background:
            self._background.add(service.name)

    def submit(self, key: str, kind: str, payload: dict[str, Any]) -> bool:
        """Persist a job (False when `key` was submitted before); the workers run it."""
        if self._queue is None:
            raise RuntimeError("the server is not started")
        return self._queue.submit(key, kind, payload)

    @property
    def queue(self) -> StoreQueue | None:
        return self._queue

    # --- lifecycle -------------------------------------------------------------------------------

    def start(self) -> None:
        """Start the workers, then the services (which may already accept work)."""
        with self._lock:
            if self._started:
                return
            poll = WORKER_POLL_S if self.role == "worker" else 2.0
            self._queue = StoreQueue(
                self.store, self._jobs, workers=self._workers, poll_interval=poll
            )
            if self.role != "web":
                self._queue.start()
            for service in self._own_services():
                service.start()
                log.info("service started", extra={"service": service.name})
            self._started = True

    def stop(self, timeout: float = 10.0) -> None:
        """Stop accepting (services first), let the workers finish what they run, then stop
        the services those jobs needed (their posts are delivered)."""
        with self._lock:
            if not self._started:
                return
            own = self._own_services()
            for service in reversed(own):
                if service.name not in self._draining:
                    service.stop(timeout)
            if self._queue is not None:
                self._queue.stop(timeout)
            for service in reversed(own):
                if service.name in self._draining:
                    service.stop(timeout)
            self._started = False

    def _own_services(self) -> list[Service]:
        if self.role == "web":
            return [s for s in self._services if s.name not in self._background]
        if self.role == "worker":
            return [s for s in self._services if s.name in self._background]
        return list(self._services)

    def run_worker(self, stop: threading.Event | None = None) -> None:
        """The worker role's main loop: run jobs and deliveries until SIGTERM/SIGINT."""
        stopping = stop or threading.Event()
        if stop is None:
            for signum in (signal.SIGTERM, signal.SIGINT):
                signal.signal(signum, lambda *_: stopping.set())
        freeze_startup_heap()
        self.start()
        try:
            while not stopping.wait(1.0):
                if self._queue is not None and not self._queue.alive():
                    log.error("the job dispatcher stopped; exiting so the process is restarted")
                    break
        finally:
            self.stop()

    def asgi(self) -> Starlette:
        """The Starlette app; its lifespan starts and stops the workers and services."""

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
        return Starlette(routes=routes, lifespan=lifespan)

    def run(self, host: str, port: int) -> None:
        """Serve until SIGINT/SIGTERM (uvicorn), then shut down gracefully.

        The port is bound with SO_REUSEPORT where the OS has it, so several web processes can
        share one port and the kernel spreads connections across them.
        """
        config = self.uvicorn_config(host=host, port=port)
        freeze_startup_heap()
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        sock = socket.socket(family, socket.SOCK_STREAM)
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
            checks["workers"] = "ok" if self._workers_alive() else "not running"
        for service in self._own_services():
            checks[service.name] = "ok" if service.alive() else "not running"
        ready = all(value == "ok" for value in checks.values())
        return JSONResponse({"ready": ready, "checks": checks}, status_code=200 if ready else 503)

    async def _metrics(self, request: Request) -> Response:
        body = await run_in_threadpool(self.metrics.render)
        return PlainTextResponse(body, media_type="text/plain; version=0.0.4; charset=utf-8")

    def _ping_store(self) -> None:
        with self.store.engine.connect() as connection:
            connection.execute(text("select 1"))

    def _workers_alive(self) -> bool:
        return self._queue is not None and self._queue.alive()

    def _store_gauges(self) -> Iterable[str]:
        lines: list[str] = []
        for name, counts in (
            ("pipebot_jobs", self.store.jobs.counts()),
            ("pipebot_outbox", self.store.outbox.counts()),
        ):
            what = "Jobs" if name == "pipebot_jobs" else "Outbox rows (outgoing posts)"
            lines += [f"# HELP {name} {what} by status.", f"# TYPE {name} gauge"]
            lines += [f'{name}{{status="{s}"}} {n}' for s, n in sorted(counts.items())]
        return lines


class ServerThread:
    """Run a `Server` on a real socket in a background thread (tests, benchmarks, embedding).

    >>> with ServerThread(server) as running:          # doctest: +SKIP
    ...     httpx.get(running.url + "/healthz")
    """

    def __init__(self, server: Server, *, host: str = "127.0.0.1", port: int = 0) -> None:
        self.server = server
        self._sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
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


def freeze_startup_heap() -> None:
    """Exempt everything built at start-up from the cyclic garbage collector.

    A serving process holds hundreds of thousands of long-lived objects (modules, SDK clients,
    the dbt manifest's index). Every full collection walks all of them: a pause of ~150 ms on
    the 2-core reference machine that froze every request in flight, the worst of the Slack
    acknowledgement latencies (bench/bench_slack_ack.py, PostgreSQL store: p99 180-250 ms with
    the pause, ~40 ms without). Objects made later are still collected as usual.
    """
    gc.collect()
    gc.freeze()

"""`GatedAirflow`: a real HTTP Airflow 3 that answers from the demo recordings and can hold
requests, for tests that kill `pipebot serve` while an Airflow call is in flight.

It listens on ``127.0.0.1:<free port>`` and answers the REST API exactly as the bundled demo
does in-process: every request is turned back into a `requests.PreparedRequest` and handed to
`integrations.replay.ReplayAdapter` over ``integrations/demo/airflow`` (the recordings of a real
Airflow 3, keys ``GET /api/v2/…``), including the token exchange ``POST /auth/token`` (any
credentials get the replay's dummy token) and the replay's 404 for anything never recorded. The
recordings sit at the server root, so the base URL is `url` itself — no path prefix::

    with GatedAirflow() as airflow:
        client = AirflowClient(airflow.url, username="admin", password="admin")
        # or: PIPEBOT_AIRFLOW__BASE_URL=airflow.url for a `pipebot` subprocess

Like a real Airflow 3, the API wants the bearer token the exchange handed out: without it a
call is answered ``401 {"detail": "Not authenticated"}``; ``/api/v2/version`` and
``/api/v2/monitor/health`` are public (pass ``require_token=False`` to accept anything).

**The gate.** `close_gate()` makes every request that arrives afterwards wait in its own
handler thread (the server keeps accepting) until `open_gate()`; `wait_blocked(n)` returns once
``n`` requests are waiting, so a test knows a job is mid-flight and can SIGKILL it. When the
client of a held request has gone, opening the gate later writes into a dead socket: that is
ignored, the server carries on. `stop()` opens the gate first so no handler thread is left
hanging.

Bookkeeping (all thread-safe, copies): `requests` — ``(method, path)`` of every request
received, in arrival order, held ones included (path percent-decoded, no query); `held` — those
waiting at the gate now; `blocked` — how many that is; `errors` — unexpected handler exceptions
(a vanished client is not one); `wait_idle()` — until no request is being handled.
"""

from __future__ import annotations

import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from types import TracebackType
from typing import Any
from urllib.parse import unquote, urlsplit

import requests

from integrations.demo import data_dir
from integrations.replay import DUMMY_TOKEN, ReplayAdapter

# Paths a real Airflow 3 answers without a token (the client's version detection and health).
PUBLIC_PATHS = frozenset({"/api/v2/version", "/api/v2/monitor/health", "/auth/token"})
_GONE = (BrokenPipeError, ConnectionResetError, ConnectionAbortedError)


class GatedAirflow:
    def __init__(self, recordings: str | Path | None = None, *, require_token: bool = True) -> None:
        self.adapter = ReplayAdapter(recordings or data_dir() / "airflow")
        self.require_token = require_token
        self._cond = threading.Condition()
        self._gate_open = True
        self._held: list[tuple[str, str]] = []
        self._requests: list[tuple[str, str]] = []
        self._errors: list[BaseException] = []
        self._in_flight = 0
        self._server: _Server | None = None
        self._url = ""
        self._thread: threading.Thread | None = None

    # -- lifecycle --------------------------------------------------------------------------

    @property
    def url(self) -> str:
        if not self._url:
            raise RuntimeError("GatedAirflow is not started")
        return self._url

    def start(self) -> GatedAirflow:
        if self._server is not None:
            return self
        self._server = _Server(("127.0.0.1", 0), _Handler, self)
        self._server.daemon_threads = True
        self._url = f"http://127.0.0.1:{self._server.server_address[1]}"
        self._thread = threading.Thread(
            target=self._server.serve_forever,
            kwargs={"poll_interval": 0.05},  # how fast stop() returns
            name="gated-airflow",
            daemon=True,
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        self.open_gate()  # release held handlers; their clients get their answers (or are gone)
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None
        if self._thread is not None:
            self._thread.join(timeout=10)
            self._thread = None

    def __enter__(self) -> GatedAirflow:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    # -- the gate ---------------------------------------------------------------------------

    def close_gate(self) -> None:
        """Hold every request that arrives from now on until `open_gate`."""
        with self._cond:
            self._gate_open = False

    def open_gate(self) -> None:
        """Let the held requests (and all later ones) through."""
        with self._cond:
            self._gate_open = True
            self._cond.notify_all()

    def wait_blocked(self, count: int = 1, timeout: float = 10.0) -> None:
        """Return once at least `count` requests wait at the closed gate; AssertionError after
        `timeout` seconds."""
        with self._cond:
            if not self._cond.wait_for(lambda: len(self._held) >= count, timeout):
                raise AssertionError(
                    f"expected {count} request(s) held at the gate within {timeout:g} s, "
                    f"got {len(self._held)}; received so far: {self._requests}"
                )

    def wait_idle(self, timeout: float = 10.0) -> None:
        """Return once no request is being handled (held or answering); AssertionError after
        `timeout` seconds."""
        with self._cond:
            if not self._cond.wait_for(lambda: self._in_flight == 0, timeout):
                raise AssertionError(
                    f"{self._in_flight} request(s) still being handled after {timeout:g} s "
                    f"(held: {self._held})"
                )

    @property
    def blocked(self) -> int:
        with self._cond:
            return len(self._held)

    @property
    def held(self) -> list[tuple[str, str]]:
        with self._cond:
            return list(self._held)

    @property
    def requests(self) -> list[tuple[str, str]]:
        with self._cond:
            return list(self._requests)

    @property
    def errors(self) -> list[BaseException]:
        with self._cond:
            return list(self._errors)

    # -- serving ----------------------------------------------------------------------------

    def _handle(self, handler: BaseHTTPRequestHandler) -> None:
        method = handler.command.upper()
        target = handler.path
        path = unquote(urlsplit(target).path)
        length = int(handler.headers.get("Content-Length") or 0)
        body = handler.rfile.read(length) if length > 0 else b""
        call = (method, path)
        with self._cond:
            self._requests.append(call)
            self._in_flight += 1
            if not self._gate_open:
                self._held.append(call)
                self._cond.notify_all()
                self._cond.wait_for(lambda: self._gate_open)
                self._held.remove(call)
                self._cond.notify_all()
        try:
            status, content_type, payload = self._answer(method, target, path, handler, body)
            try:
                handler.send_response(status)
                handler.send_header("Content-Type", content_type)
                handler.send_header("Content-Length", str(len(payload)))
                handler.end_headers()
                if method != "HEAD":
                    handler.wfile.write(payload)
                handler.wfile.flush()
            except _GONE:
                handler.close_connection = True  # the client went away while we held it
        finally:
            with self._cond:
                self._in_flight -= 1
                self._cond.notify_all()

    def _answer(
        self,
        method: str,
        target: str,
        path: str,
        handler: BaseHTTPRequestHandler,
        body: bytes,
    ) -> tuple[int, str, bytes]:
        token = handler.headers.get("Authorization", "")
        if self.require_token and path not in PUBLIC_PATHS and token != f"Bearer {DUMMY_TOKEN}":
            return 401, "application/json", b'{"detail": "Not authenticated"}'
        prepared = requests.Request(
            method,
            self._url + target,
            data=body or None,
            headers={"Content-Type": handler.headers.get("Content-Type", "application/json")}
            if body
            else None,
        ).prepare()
        response = self.adapter.send(prepared)
        return (
            response.status_code,
            response.headers.get("Content-Type", "application/json"),
            response.content,
        )

    def _record_error(self, exc: BaseException) -> None:
        with self._cond:
            self._errors.append(exc)


class _Server(ThreadingHTTPServer):
    def __init__(self, address: tuple[str, int], handler: Any, airflow: GatedAirflow) -> None:
        self.airflow = airflow
        super().__init__(address, handler)

    def handle_error(self, request: Any, client_address: Any) -> None:
        exc = sys.exc_info()[1]
        if exc is not None and not isinstance(exc, _GONE):
            self.airflow._record_error(exc)


class _Handler(BaseHTTPRequestHandler):
    server: _Server

    def _serve(self) -> None:
        self.server.airflow._handle(self)

    do_GET = do_POST = do_HEAD = do_PUT = do_PATCH = do_DELETE = _serve

    def log_message(self, format: str, *args: Any) -> None:
        return None
